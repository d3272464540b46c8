//! Run-time choice of the kernel path, made once into a table of function pointers.
//!
//! Paths: `scalar` (always), `avx2` (x86_64 AVX2 + FMA + F16C), `avx512` (reported as
//! "avx512-vnni": AVX-512 F/BW/VL + VNNI on top of the AVX2 set), `amx` (reported as
//! "avx512-amx": the AVX-512 table plus AMX int8 tiles for resident batches of 16 vectors and
//! more, where the CPU has AMX-INT8 and Linux grants the tile state), `neon` (aarch64),
//! `dotprod` (reported as "neon-dotprod": NEON + SDOT) and `i8mm` (reported as "neon-i8mm":
//! dotprod + SMMLA prefill tiles). `OURO_SIMD=<path>` forces one.
//!
//! On aarch64 a path's table starts from the one below it and overrides the kernels it speeds
//! up (scalar → neon → dotprod → i8mm): the aarch64 module provides
//! `pub(crate) fn neon_kernels(base: Kernels) -> Kernels`,
//! `pub(crate) fn dotprod_kernels(base: Kernels) -> Kernels` (which asserts dotprod) and
//! `pub(crate) fn i8mm_kernels(base: Kernels) -> Kernels` (which asserts i8mm). The
//! x86_64 module's `unsafe fn avx2_kernels()` and `avx512_kernels()` return complete tables
//! whose fields wrap `#[target_feature]` functions; dispatch reaches them only through
//! `detected_avx2_kernels()` / `detected_avx512_kernels()`, which detect the features first,
//! so this module needs no `unsafe`.

use std::sync::OnceLock;

use crate::{scalar, GgmlType};

/// Quantize a row of f32 (a whole number of blocks) into `dst` (exactly the row's bytes).
pub type QuantizeFn = fn(src: &[f32], dst: &mut [u8]);

/// Dot product of one weight row with one activation row, both as bytes of whole blocks
/// covering the same number of elements (the activation in the weight type's
/// [`vec_dot_type`](crate::vec_dot_type); f32 activations as little-endian f32 bytes).
pub type VecDotFn = fn(w: &[u8], a: &[u8]) -> f32;

/// Dot products of one weight row with four activation rows at once (a prefill tile): each
/// weight block is loaded and unpacked once for the four. Bit-identical to four calls of the
/// matching [`VecDotFn`] of the same table.
pub type VecDotX4Fn = fn(w: &[u8], a: [&[u8]; 4]) -> [f32; 4];

/// Dot products of four weight rows with one activation row (decode GEMV): the activation
/// blocks are loaded once for the four rows and the four accumulation chains overlap.
/// Bit-identical to four calls of the matching [`VecDotFn`] of the same table.
pub type VecDotR4Fn = fn(w: [&[u8]; 4], a: &[u8]) -> [f32; 4];

/// Σ x·y of an f16 row and an f32 row of the same length, accumulated in f32 (attention q·k).
pub type DotF16Fn = fn(x: &[half::f16], y: &[f32]) -> f32;

/// y += a·x for an f16 row `x` of `y`'s length (attention's weighted sum of values).
pub type MadF16Fn = fn(y: &mut [f32], a: f32, x: &[half::f16]);

/// `out[r] = x[r·stride..][..y.len()] · y` for `r < out.len()`: one query against consecutive
/// cached keys (`stride` values apart). Bit for bit the same table's [`DotF16Fn`] of each row.
pub type DotF16RowsFn = fn(x: &[half::f16], stride: usize, y: &[f32], out: &mut [f32]);

/// `y += a[r]·x[r·stride..][..y.len()]` for `r = 0, 1, …` in order: the weighted sum of
/// consecutive cached values. Bit for bit the same table's [`MadF16Fn`] row after row.
pub type MadF16RowsFn = fn(y: &mut [f32], a: &[f32], x: &[half::f16], stride: usize);

/// Σ x·y over values `off..off + y.len()` of a row of Q8_0 blocks `x` (a q8_0 KV-cache key)
/// and an f32 query `y`; the range may start and end inside a block.
pub type DotQ8_0F32Fn = fn(x: &[u8], off: usize, y: &[f32]) -> f32;

/// y += a·x over values `off..off + y.len()` of a row of Q8_0 blocks `x` (a q8_0 KV-cache value).
pub type MadQ8_0F32Fn = fn(y: &mut [f32], a: f32, x: &[u8], off: usize);

/// `out[r]` = [`DotQ8_0F32Fn`] of `x` at `off + r·stride` for `r < out.len()`: one query
/// against consecutive cached q8_0 keys (`off`, `stride` in values). Bit for bit the same
/// table's single-row kernel of each row.
pub type DotQ8_0RowsFn = fn(x: &[u8], off: usize, stride: usize, y: &[f32], out: &mut [f32]);

/// [`MadQ8_0F32Fn`] with `a[r]` at `off + r·stride`, `r = 0, 1, …` in order: the weighted sum
/// of consecutive cached q8_0 values. Bit for bit the same table's single-row kernel row after
/// row.
pub type MadQ8_0RowsFn = fn(y: &mut [f32], a: &[f32], x: &[u8], off: usize, stride: usize);

/// Four prepared weight rows × four prepared activation rows → `[row][vector]`.
pub type TileFn = fn(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4];

/// A prefill tile: four weight rows × four activation rows in one call, weights and
/// activations first rearranged into the path's own layouts. Bit-identical to sixteen calls of the matching
/// [`VecDotFn`] of the same table.
#[derive(Clone, Copy)]
pub struct Tile4x4 {
    /// Bytes of one prepared activation row made from `a_row` bytes of the weight type's
    /// `vec_dot_type`, or `None` if this tile cannot take such rows (then use the other kernels).
    pub prepared_bytes: fn(a_row: usize) -> Option<usize>,
    /// Activation row bytes → prepared bytes (`out.len()` as `prepared_bytes` says).
    pub prepare: fn(a: &[u8], out: &mut [u8]),
    /// Bytes of four prepared weight rows of `w_row` bytes each.
    pub prepared_w_bytes: fn(w_row: usize) -> usize,
    /// Four weight rows → prepared bytes (`out.len()` as `prepared_w_bytes` says): done once
    /// per four-row group, then read by the tiles of every group of four vectors.
    pub prepare_w: fn(w: [&[u8]; 4], out: &mut [u8]),
    /// Four prepared weight rows × four prepared activation rows → `[row][vector]`.
    pub tile: TileFn,
}

/// The kernel table. Every field has ggml's name; the scalar table is [`Kernels::SCALAR`].
#[derive(Clone, Copy)]
pub struct Kernels {
    /// f32 → Q8_0 (34-byte blocks); bit-identical to `scalar::quantize_row_q8_0` on every path.
    pub quantize_row_q8_0: QuantizeFn,
    /// f32 → Q8_1 (36-byte blocks: d, s = d·Σq, 32 int8).
    pub quantize_row_q8_1: QuantizeFn,
    /// f32 → Q8_K (292-byte super-blocks: f32 d, 256 int8, 16 i16 sums).
    pub quantize_row_q8_K: QuantizeFn,
    /// Q4_0 weights · Q8_0 activations.
    pub vec_dot_q4_0_q8_0: VecDotFn,
    /// Q4_1 weights · Q8_1 activations.
    pub vec_dot_q4_1_q8_1: VecDotFn,
    /// Q5_0 weights · Q8_0 activations.
    pub vec_dot_q5_0_q8_0: VecDotFn,
    /// Q5_1 weights · Q8_1 activations.
    pub vec_dot_q5_1_q8_1: VecDotFn,
    /// Q8_0 weights · Q8_0 activations.
    pub vec_dot_q8_0_q8_0: VecDotFn,
    /// Q4_K weights · Q8_K activations.
    pub vec_dot_q4_K_q8_K: VecDotFn,
    /// Q5_K weights · Q8_K activations.
    pub vec_dot_q5_K_q8_K: VecDotFn,
    /// Q6_K weights · Q8_K activations.
    pub vec_dot_q6_K_q8_K: VecDotFn,
    /// f32 weights · f32 activations.
    pub vec_dot_f32: VecDotFn,
    /// f16 weights · f32 activations.
    pub vec_dot_f16_f32: VecDotFn,
    /// bf16 weights · f32 activations.
    pub vec_dot_bf16_f32: VecDotFn,
    /// Q4_0 · 4 × Q8_0 tile, if the path has one (else `matmul` calls the single dot 4 times).
    pub vec_dot_q4_0_q8_0_x4: Option<VecDotX4Fn>,
    /// Q8_0 · 4 × Q8_0 tile, if the path has one.
    pub vec_dot_q8_0_q8_0_x4: Option<VecDotX4Fn>,
    /// Q4_K · 4 × Q8_K tile, if the path has one.
    pub vec_dot_q4_K_q8_K_x4: Option<VecDotX4Fn>,
    /// Q5_K · 4 × Q8_K tile, if the path has one.
    pub vec_dot_q5_K_q8_K_x4: Option<VecDotX4Fn>,
    /// Q6_K · 4 × Q8_K tile, if the path has one.
    pub vec_dot_q6_K_q8_K_x4: Option<VecDotX4Fn>,
    /// 4 rows of Q4_0 · one Q8_0 vector, if the path has it (else `matmul` calls the single dot).
    pub vec_dot_q4_0_q8_0_r4: Option<VecDotR4Fn>,
    /// 4 rows of Q8_0 · one Q8_0 vector, if the path has it.
    pub vec_dot_q8_0_q8_0_r4: Option<VecDotR4Fn>,
    /// The panel GEMM for large batches (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K; [`crate::panel`]), if
    /// the path has it. Its scalar twin is `panel::gemm_scalar`, which the scalar table does
    /// not use (the row-at-a-time dots are as fast there and exact).
    pub panel_gemm: Option<crate::panel::PanelKernels>,
    /// The resident-panel kernel (Q4_0 / Q8_0 / Q4_K / Q6_K weights repacked at load,
    /// [`crate::resident`]), if the path has it (avx512-vnni, avx2, neon-dotprod and neon-i8mm);
    /// its scalar twin is `resident::gemm_scalar`. Where it is `Some`, the loader repacks (see
    /// [`crate::resident_enabled`]).
    pub resident: Option<crate::resident::ResidentFn>,
    /// The resident kernel for any number of vectors that multiplies 16 at a time in AMX
    /// tiles (Q4_0 / Q8_0; the rest through `resident`), if the path has it (avx512-amx).
    /// `matmul_resident` uses it from [`crate::TILES_MIN_VECS`] vectors on.
    pub resident_tiles: Option<crate::resident::ResidentTilesFn>,
    /// Q4_0 prefill tile (4 rows × 4 vectors), if the path has one.
    pub gemm_q4_0_q8_0_4x4: Option<Tile4x4>,
    /// Q8_0 prefill tile (4 rows × 4 vectors), if the path has one.
    pub gemm_q8_0_q8_0_4x4: Option<Tile4x4>,
    /// Q4_K prefill tile (4 rows × 4 Q8_K vectors), if the path has one.
    pub gemm_q4_K_q8_K_4x4: Option<Tile4x4>,
    /// Q5_K prefill tile (4 rows × 4 Q8_K vectors), if the path has one.
    pub gemm_q5_K_q8_K_4x4: Option<Tile4x4>,
    /// Q6_K prefill tile (4 rows × 4 Q8_K vectors), if the path has one.
    pub gemm_q6_K_q8_K_4x4: Option<Tile4x4>,
    /// f16 key row · f32 query row (attention scores over the f16 KV cache).
    pub dot_f16_f32: DotF16Fn,
    /// f32 output row += weight · f16 value row (ggml's `vec_mad`).
    pub mad_f16_f32: MadF16Fn,
    /// [`Kernels::dot_f16_f32`] over consecutive rows (decode attention's scores of one head).
    pub dot_f16_f32_rows: DotF16RowsFn,
    /// [`Kernels::mad_f16_f32`] over consecutive rows (decode attention's value sum of one head).
    pub mad_f16_f32_rows: MadF16RowsFn,
    /// Q8_0 key row (a range of it) · f32 query row (attention over a q8_0 KV cache).
    pub dot_q8_0_f32: DotQ8_0F32Fn,
    /// f32 output row += weight · Q8_0 value row (a range of it).
    pub mad_q8_0_f32: MadQ8_0F32Fn,
    /// [`Kernels::dot_q8_0_f32`] over consecutive rows (decode attention, q8_0 KV cache).
    pub dot_q8_0_f32_rows: DotQ8_0RowsFn,
    /// [`Kernels::mad_q8_0_f32`] over consecutive rows (decode attention, q8_0 KV cache).
    pub mad_q8_0_f32_rows: MadQ8_0RowsFn,
}

impl Kernels {
    /// The scalar reference table.
    pub const SCALAR: Kernels = Kernels {
        quantize_row_q8_0: scalar::quantize_row_q8_0,
        quantize_row_q8_1: scalar::quantize_row_q8_1,
        quantize_row_q8_K: scalar::quantize_row_q8_K,
        vec_dot_q4_0_q8_0: scalar::vec_dot_q4_0_q8_0,
        vec_dot_q4_1_q8_1: scalar::vec_dot_q4_1_q8_1,
        vec_dot_q5_0_q8_0: scalar::vec_dot_q5_0_q8_0,
        vec_dot_q5_1_q8_1: scalar::vec_dot_q5_1_q8_1,
        vec_dot_q8_0_q8_0: scalar::vec_dot_q8_0_q8_0,
        vec_dot_q4_K_q8_K: scalar::vec_dot_q4_K_q8_K,
        vec_dot_q5_K_q8_K: scalar::vec_dot_q5_K_q8_K,
        vec_dot_q6_K_q8_K: scalar::vec_dot_q6_K_q8_K,
        vec_dot_f32: scalar::vec_dot_f32,
        vec_dot_f16_f32: scalar::vec_dot_f16_f32,
        vec_dot_bf16_f32: scalar::vec_dot_bf16_f32,
        vec_dot_q4_0_q8_0_x4: None,
        vec_dot_q8_0_q8_0_x4: None,
        vec_dot_q4_K_q8_K_x4: None,
        vec_dot_q5_K_q8_K_x4: None,
        vec_dot_q6_K_q8_K_x4: None,
        vec_dot_q4_0_q8_0_r4: None,
        vec_dot_q8_0_q8_0_r4: None,
        panel_gemm: None,
        resident: None,
        resident_tiles: None,
        gemm_q4_0_q8_0_4x4: None,
        gemm_q8_0_q8_0_4x4: None,
        gemm_q4_K_q8_K_4x4: None,
        gemm_q5_K_q8_K_4x4: None,
        gemm_q6_K_q8_K_4x4: None,
        dot_f16_f32: scalar::dot_f16_f32,
        mad_f16_f32: scalar::mad_f16_f32,
        dot_f16_f32_rows: scalar::dot_f16_f32_rows,
        mad_f16_f32_rows: scalar::mad_f16_f32_rows,
        dot_q8_0_f32: scalar::dot_q8_0_f32,
        mad_q8_0_f32: scalar::mad_q8_0_f32,
        dot_q8_0_f32_rows: scalar::dot_q8_0_f32_rows,
        mad_q8_0_f32_rows: scalar::mad_q8_0_f32_rows,
    };

    /// The dot product for weights of type `wtype` against its `vec_dot_type`, if any.
    pub fn vec_dot(&self, wtype: GgmlType) -> Option<VecDotFn> {
        Some(match wtype {
            GgmlType::F32 => self.vec_dot_f32,
            GgmlType::F16 => self.vec_dot_f16_f32,
            GgmlType::BF16 => self.vec_dot_bf16_f32,
            GgmlType::Q4_0 => self.vec_dot_q4_0_q8_0,
            GgmlType::Q4_1 => self.vec_dot_q4_1_q8_1,
            GgmlType::Q5_0 => self.vec_dot_q5_0_q8_0,
            GgmlType::Q5_1 => self.vec_dot_q5_1_q8_1,
            GgmlType::Q8_0 => self.vec_dot_q8_0_q8_0,
            GgmlType::Q4_K => self.vec_dot_q4_K_q8_K,
            GgmlType::Q5_K => self.vec_dot_q5_K_q8_K,
            GgmlType::Q6_K => self.vec_dot_q6_K_q8_K,
            _ => return None,
        })
    }

    /// The four-vector tile kernel for weights of type `wtype`, if this path has one.
    pub fn vec_dot_x4(&self, wtype: GgmlType) -> Option<VecDotX4Fn> {
        match wtype {
            GgmlType::Q4_0 => self.vec_dot_q4_0_q8_0_x4,
            GgmlType::Q8_0 => self.vec_dot_q8_0_q8_0_x4,
            GgmlType::Q4_K => self.vec_dot_q4_K_q8_K_x4,
            GgmlType::Q5_K => self.vec_dot_q5_K_q8_K_x4,
            GgmlType::Q6_K => self.vec_dot_q6_K_q8_K_x4,
            _ => None,
        }
    }

    /// The four-row GEMV kernel for weights of type `wtype`, if this path has one.
    pub fn vec_dot_r4(&self, wtype: GgmlType) -> Option<VecDotR4Fn> {
        match wtype {
            GgmlType::Q4_0 => self.vec_dot_q4_0_q8_0_r4,
            GgmlType::Q8_0 => self.vec_dot_q8_0_q8_0_r4,
            _ => None,
        }
    }

    /// The 4×4 prefill tile for weights of type `wtype`, if this path has one.
    pub fn tile_4x4(&self, wtype: GgmlType) -> Option<Tile4x4> {
        match wtype {
            GgmlType::Q4_0 => self.gemm_q4_0_q8_0_4x4,
            GgmlType::Q8_0 => self.gemm_q8_0_q8_0_4x4,
            GgmlType::Q4_K => self.gemm_q4_K_q8_K_4x4,
            GgmlType::Q5_K => self.gemm_q5_K_q8_K_4x4,
            GgmlType::Q6_K => self.gemm_q6_K_q8_K_4x4,
            _ => None,
        }
    }

    /// The quantizer producing activations of type `atype` (F32, Q8_0, Q8_1 or Q8_K).
    pub fn quantize_activation(&self, atype: GgmlType) -> Option<QuantizeFn> {
        Some(match atype {
            GgmlType::F32 => scalar::quantize_row_f32,
            GgmlType::Q8_0 => self.quantize_row_q8_0,
            GgmlType::Q8_1 => self.quantize_row_q8_1,
            GgmlType::Q8_K => self.quantize_row_q8_K,
            _ => return None,
        })
    }
}

/// A kernel path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    Scalar,
    Avx2,
    Avx512,
    Amx,
    Neon,
    Dotprod,
    I8mm,
}

/// Why a path cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimdError {
    #[error("OURO_SIMD={value:?} is not a kernel path (expected one of scalar, avx2, avx512, amx, neon, dotprod, i8mm)")]
    UnknownPath { value: String },
    #[error("OURO_SIMD={path}: this CPU lacks {missing}")]
    Unsupported {
        path: &'static str,
        missing: &'static str,
    },
}

impl Path {
    /// Every path, slowest first.
    pub const ALL: [Path; 7] = [
        Path::Scalar,
        Path::Avx2,
        Path::Avx512,
        Path::Amx,
        Path::Neon,
        Path::Dotprod,
        Path::I8mm,
    ];

    /// The name accepted by `OURO_SIMD`.
    pub fn env_name(self) -> &'static str {
        match self {
            Path::Scalar => "scalar",
            Path::Avx2 => "avx2",
            Path::Avx512 => "avx512",
            Path::Amx => "amx",
            Path::Neon => "neon",
            Path::Dotprod => "dotprod",
            Path::I8mm => "i8mm",
        }
    }

    /// The name reported by [`selected`](crate::selected).
    pub fn name(self) -> &'static str {
        match self {
            Path::Scalar => "scalar",
            Path::Avx2 => "avx2",
            Path::Avx512 => "avx512-vnni",
            Path::Amx => "avx512-amx",
            Path::Neon => "neon",
            Path::Dotprod => "neon-dotprod",
            Path::I8mm => "neon-i8mm",
        }
    }

    /// Parse an `OURO_SIMD` value (case-insensitive; the reported names are accepted too).
    pub fn from_name(s: &str) -> Option<Path> {
        Path::ALL
            .into_iter()
            .find(|p| p.env_name().eq_ignore_ascii_case(s) || p.name().eq_ignore_ascii_case(s))
    }

    /// The CPU features this path needs that this CPU lacks, or `None` if it can run.
    fn missing(self) -> Option<&'static str> {
        match self {
            Path::Scalar => None,
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => crate::x86_64::missing_avx2(),
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => crate::x86_64::missing_avx512(),
            #[cfg(target_arch = "x86_64")]
            Path::Amx => crate::x86_64::missing_amx(),
            #[cfg(not(target_arch = "x86_64"))]
            Path::Avx2 | Path::Avx512 | Path::Amx => Some("x86_64"),
            #[cfg(target_arch = "aarch64")]
            Path::Neon => (!std::arch::is_aarch64_feature_detected!("neon")).then_some("neon"),
            #[cfg(target_arch = "aarch64")]
            Path::Dotprod => {
                if !std::arch::is_aarch64_feature_detected!("neon") {
                    Some("neon")
                } else if !std::arch::is_aarch64_feature_detected!("dotprod") {
                    Some("dotprod")
                } else {
                    None
                }
            }
            #[cfg(target_arch = "aarch64")]
            Path::I8mm => Path::Dotprod
                .missing()
                .or_else(|| (!std::arch::is_aarch64_feature_detected!("i8mm")).then_some("i8mm")),
            #[cfg(not(target_arch = "aarch64"))]
            Path::Neon | Path::Dotprod | Path::I8mm => Some("aarch64"),
        }
    }

    /// Whether this CPU can run the path.
    pub fn is_available(self) -> bool {
        self.missing().is_none()
    }

    /// The paths this CPU can run, slowest first (always starts with `Scalar`).
    pub fn available() -> Vec<Path> {
        Path::ALL.into_iter().filter(|p| p.is_available()).collect()
    }

    /// The fastest path this CPU can run.
    pub fn best() -> Path {
        Path::ALL
            .into_iter()
            .rev()
            .find(|p| p.is_available())
            .unwrap_or(Path::Scalar)
    }

    /// The path's kernel table, or why this CPU cannot run it.
    pub fn kernels(self) -> Result<Kernels, SimdError> {
        if let Some(missing) = self.missing() {
            return Err(SimdError::Unsupported {
                path: self.env_name(),
                missing,
            });
        }
        Ok(self.build())
    }

    /// Assemble the table; only called after `missing()` returned `None`.
    fn build(self) -> Kernels {
        match self {
            Path::Scalar => Kernels::SCALAR,
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => crate::x86_64::detected_avx2_kernels()
                .expect("build() runs only after missing() found AVX2, FMA and F16C"),
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => crate::x86_64::detected_avx512_kernels()
                .expect("build() runs only after missing() found the AVX-512 features"),
            #[cfg(target_arch = "x86_64")]
            Path::Amx => crate::x86_64::detected_amx_kernels()
                .expect("build() runs only after missing() found AVX-512, AMX and its permission"),
            #[cfg(target_arch = "aarch64")]
            Path::Neon => crate::aarch64::neon_kernels(Kernels::SCALAR),
            #[cfg(target_arch = "aarch64")]
            Path::Dotprod => {
                crate::aarch64::dotprod_kernels(crate::aarch64::neon_kernels(Kernels::SCALAR))
            }
            #[cfg(target_arch = "aarch64")]
            Path::I8mm => crate::aarch64::i8mm_kernels(crate::aarch64::dotprod_kernels(
                crate::aarch64::neon_kernels(Kernels::SCALAR),
            )),
            #[allow(unreachable_patterns)]
            _ => Kernels::SCALAR,
        }
    }
}

struct Selection {
    path: Path,
    kernels: Kernels,
    error: Option<SimdError>,
}

static SELECTION: OnceLock<Selection> = OnceLock::new();

fn selection() -> &'static Selection {
    SELECTION.get_or_init(|| {
        let best = Path::best();
        let forced = std::env::var("OURO_SIMD")
            .ok()
            .filter(|v| !v.trim().is_empty());
        let chosen = match forced {
            None => Ok(best),
            Some(v) => match Path::from_name(v.trim()) {
                None => Err(SimdError::UnknownPath { value: v }),
                Some(p) => p.kernels().map(|_| p),
            },
        };
        match chosen {
            Ok(path) => Selection {
                path,
                kernels: path.build(),
                error: None,
            },
            Err(e) => Selection {
                path: best,
                kernels: best.build(),
                error: Some(e),
            },
        }
    })
}

/// The kernel table in use (chosen once; honours `OURO_SIMD`).
pub fn kernels() -> &'static Kernels {
    &selection().kernels
}

/// The name of the path in use. If `OURO_SIMD` names a path this CPU cannot run (or no path
/// at all), the best available path is used and [`init`] reports the error.
pub fn selected() -> &'static str {
    selection().path.name()
}

/// Choose the path now; an `OURO_SIMD` the CPU cannot honour is an error.
pub fn init() -> Result<&'static str, SimdError> {
    let s = selection();
    match &s.error {
        Some(e) => Err(e.clone()),
        None => Ok(s.path.name()),
    }
}
