//! AMX int8 tiles for the resident Q4_0 / Q8_0 kernels at batch sizes of 16 vectors and more
//! (prefill, long verifications): the path `avx512-amx` (`OURO_SIMD=amx`) is the AVX-512 table
//! plus [`gemm`] as `Kernels::resident_tiles`.
//!
//! One tile product per block of 32 weights: C (tmm0, 16 vectors × the panel's 16 rows, i32)
//! = A (tmm4, 16 vectors × the block's 32 signed activations, rows `k` bytes apart in
//! `PanelActs::q`) · B (tmm6, the block's 8 resident lines: 16 rows × 4 unsigned weights each —
//! the resident line *is* AMX's B layout, so Q8_0 lines load as they are and Q4_0 lines only
//! split into their two nibbles). `tdpbsud` (signed × unsigned) gives each (vector, row) the
//! block's exact `Σ u·a`; the contract's epilogue follows on AVX-512 per vector row of C
//! (`isum = C + corr`, `acc = fma(f32(isum), d · da, acc)`), so the tiles give the bits of
//! [`crate::resident::gemm_scalar`] and of every other path: a token decoded alone equals it
//! inside a prefill. The epilogue (a tile store and 16 × load / add / convert / multiply / FMA
//! per block) is most of the work, not the tile product; two tile sets let the next block's
//! product run while this block's epilogue does.
//!
//! Linux hands out the tile registers' state only on request (`arch_prctl(ARCH_REQ_XCOMP_PERM,
//! XFEATURE_XTILEDATA)`, once per process; without it the first tile instruction is SIGILL):
//! [`missing_amx`] asks once and the path is unavailable when the kernel refuses. Each call
//! loads its tile configuration and releases the tiles when it returns.

use std::arch::asm;
use std::arch::x86_64::*;
use std::cell::RefCell;
use std::sync::OnceLock;

use crate::panel::{PanelActs, PanelFormat, PANEL_ROWS};
use crate::resident::{check_any, Line, Resident};

/// Vectors per tile product (the rows of A and C).
const TILE_VECS: usize = 16;

/// `ldtilecfg`'s 64-byte operand (palette 1).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

/// Two sets (the next block's product runs while this block's epilogue does): C in tmm0 / tmm1
/// (16 × 16 i32), A in tmm4 / tmm5 (16 × 32 bytes), B in tmm6 / tmm7 (8 × 64 bytes).
static CONFIG: TileConfig = {
    let mut colsb = [0u16; 16];
    let mut rows = [0u8; 16];
    (colsb[0], rows[0]) = (64, 16);
    (colsb[1], rows[1]) = (64, 16);
    (colsb[4], rows[4]) = (32, 16);
    (colsb[5], rows[5]) = (32, 16);
    (colsb[6], rows[6]) = (64, 8);
    (colsb[7], rows[7]) = (64, 8);
    TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb,
        rows,
    }
};

/// Why this machine cannot run the tiles (`None`: it can). Asks Linux for the tile state the
/// first time (the grant is for the whole process, threads started later included).
pub(crate) fn missing_amx() -> Option<&'static str> {
    static MISSING: OnceLock<Option<&'static str>> = OnceLock::new();
    *MISSING.get_or_init(|| {
        // SAFETY: CPUID leaf 7 exists on every CPU with the AVX-512 features this path also
        // requires (checked first by dispatch); reading it has no other effect.
        #[allow(unused_unsafe)]
        let edx = unsafe { __cpuid_count(7, 0) }.edx;
        if edx & (1 << 24) == 0 {
            Some("amx-tile")
        } else if edx & (1 << 25) == 0 {
            Some("amx-int8")
        } else if !request_tile_data() {
            Some("the AMX tile state (the OS refused it)")
        } else {
            None
        }
    })
}

/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0`.
#[cfg(target_os = "linux")]
fn request_tile_data() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: the arch_prctl system call with an integer request and no pointers; it only
    // changes which extended states this process may use. `syscall` clobbers rcx and r11.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret == 0
}

/// Elsewhere the tile state's permission is not ours to ask for.
#[cfg(not(target_os = "linux"))]
fn request_tile_data() -> bool {
    false
}

/// The tile registers, configured for one call and released when it ends (also on unwind).
struct Tiles;

impl Tiles {
    fn load() -> Tiles {
        // SAFETY: `missing_amx()` returned `None` before this path's table was built (the
        // only way here), so the CPU has AMX and the process holds the tile state; CONFIG is
        // a valid palette-1 configuration, 64-byte aligned.
        unsafe { asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly)) };
        Tiles
    }

    /// C = A · B for one block in tile set `SET` (0 or 1): `a` the first of 16 activation
    /// rows `stride` bytes apart (32 bytes each), `b` the block's 8 lines; C is stored to `c`.
    fn product<const SET: u8>(&self, a: &[i8], stride: usize, b: &[Line], c: &mut CTile) {
        assert!(b.len() >= 8 && a.len() >= 15 * stride + 32);
        let (a, b, c) = (a.as_ptr(), b.as_ptr(), c.0.as_mut_ptr());
        // SAFETY (both sets): the tiles are configured (`self`); A reads 16 rows of 32 bytes
        // from `a`, `stride` apart (inside `a`, asserted), B 8 lines of 64 bytes (asserted),
        // C writes exactly the 1 KiB of `c`.
        unsafe {
            if SET == 0 {
                asm!(
                    "tilezero tmm0",
                    "tileloadd tmm4, [{a} + {sa}*1]",
                    "tileloadd tmm6, [{b} + {sb}*1]",
                    "tdpbsud tmm0, tmm4, tmm6",
                    "tilestored [{c} + {sb}*1], tmm0",
                    a = in(reg) a, sa = in(reg) stride, b = in(reg) b, sb = in(reg) 64usize,
                    c = in(reg) c, options(nostack),
                );
            } else {
                asm!(
                    "tilezero tmm1",
                    "tileloadd tmm5, [{a} + {sa}*1]",
                    "tileloadd tmm7, [{b} + {sb}*1]",
                    "tdpbsud tmm1, tmm5, tmm7",
                    "tilestored [{c} + {sb}*1], tmm1",
                    a = in(reg) a, sa = in(reg) stride, b = in(reg) b, sb = in(reg) 64usize,
                    c = in(reg) c, options(nostack),
                );
            }
        }
    }
}

/// One C tile in memory: 16 vectors × 16 rows of i32.
#[repr(C, align(64))]
struct CTile([[i32; 16]; 16]);

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: the tiles were configured by `load`; releasing returns them to the init
        // state (no memory access).
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}

thread_local! {
    /// A Q4_0 panel's lines with the nibbles split: 8 lines per block, as Q8_0's.
    static SPLIT: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// Q4_0 lines (4 per block, `lo | hi << 4`) into 8 lines of bytes (`lo` lines then `hi`).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn split_nibbles(q: &[Line], out: &mut Vec<Line>) {
    out.clear();
    out.resize(2 * q.len(), Line([0; 64]));
    let low = _mm512_set1_epi8(0x0F);
    for (src, dst) in q.chunks_exact(4).zip(out.chunks_exact_mut(8)) {
        for c in 0..4 {
            // SAFETY: aligned 64-byte loads and stores of whole `Line`s.
            unsafe {
                let x = _mm512_load_si512(src[c].0.as_ptr().cast());
                _mm512_store_si512(dst[c].0.as_mut_ptr().cast(), _mm512_and_si512(x, low));
                let hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), low);
                _mm512_store_si512(dst[4 + c].0.as_mut_ptr().cast(), hi);
            }
        }
    }
}

/// Vectors `v0 .. v0 + 16·tiles` of a Q4_0 / Q8_0 panel (`lines`: 8 per block) in tiles,
/// `out[j·16 + r]` as the resident kernels write it.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn run_tiles(lines: &[Line], meta: &[u8], a: &PanelActs, v0: usize, tiles: usize, out: &mut [f32]) {
    let k = a.k;
    let blocks = k / 32;
    let v1 = v0 + TILE_VECS * tiles;
    assert!(lines.len() == 8 * blocks && meta.len() == 32 * blocks);
    assert!(v1 * k <= a.q.len() && v1 * blocks <= a.corr.len().min(a.d.len()));
    assert!(out.len() >= TILE_VECS * tiles * PANEL_ROWS);
    let tmm = Tiles::load();
    let mut c = [CTile([[0; 16]; 16]), CTile([[0; 16]; 16])];
    for (t, o) in out
        .chunks_exact_mut(TILE_VECS * PANEL_ROWS)
        .take(tiles)
        .enumerate()
    {
        let v = v0 + TILE_VECS * t;
        let rows = |s: usize| &a.q[v * k + 32 * s..v1 * k];
        let mut acc = [_mm512_setzero_ps(); TILE_VECS];
        // Block s + 1's product is issued before block s's epilogue, in the other tile set.
        tmm.product::<0>(rows(0), k, &lines[..8], &mut c[0]);
        for s in 0..blocks {
            let (now, next) = if s % 2 == 0 {
                let [c0, c1] = &mut c;
                (&*c0, c1)
            } else {
                let [c0, c1] = &mut c;
                (&*c1, c0)
            };
            if s + 1 < blocks {
                let b = &lines[8 * (s + 1)..8 * (s + 2)];
                if s % 2 == 0 {
                    tmm.product::<1>(rows(s + 1), k, b, next);
                } else {
                    tmm.product::<0>(rows(s + 1), k, b, next);
                }
            }
            let m = &meta[32 * s..32 * s + 32];
            // SAFETY: a 32-byte load of exactly `m` (the block's 16 f16 row scales).
            let d = _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(m.as_ptr().cast()) });
            for (j, (acc, c)) in acc.iter_mut().zip(&now.0).enumerate() {
                let g = (v + j) * blocks + s;
                // SAFETY: an aligned 64-byte load of exactly the 16 i32 of `c`.
                let sum = unsafe { _mm512_load_si512(c.as_ptr().cast()) };
                let isum = _mm512_add_epi32(sum, _mm512_set1_epi32(a.corr[g]));
                let sc = _mm512_mul_ps(d, _mm512_set1_ps(a.d[g]));
                *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), sc, *acc);
            }
        }
        for (acc, o) in acc.into_iter().zip(o.chunks_exact_mut(PANEL_ROWS)) {
            // SAFETY: a 64-byte store into exactly the 16 floats of `o`.
            unsafe { _mm512_storeu_ps(o.as_mut_ptr(), acc) }
        }
    }
}

/// The table entry (a [`crate::resident::ResidentTilesFn`]): Q4_0 and Q8_0 panels take 16
/// vectors at a time in tiles, the rest of the vectors and the other formats go to the AVX-512
/// resident kernel, 8 at a time.
pub(crate) fn gemm(w: &Resident, p: usize, a: &PanelActs, v0: usize, nv: usize, out: &mut [f32]) {
    check_any(w, p, a, v0, nv, out);
    let tiled = match w.format() {
        PanelFormat::Q4_0 | PanelFormat::Q8_0 => nv / TILE_VECS * TILE_VECS,
        _ => 0,
    };
    if tiled > 0 {
        let (q, meta) = w.panel(p);
        let tiles = tiled / TILE_VECS;
        // SAFETY (both calls): this entry is only in the table `amx_kernels` builds, which
        // its caller guarantees runs on a CPU with AVX-512 F/BW/VL/VNNI, F16C, FMA and AMX.
        if w.format() == PanelFormat::Q8_0 {
            unsafe { run_tiles(q, meta, a, v0, tiles, out) }
        } else {
            SPLIT.with(|s| match s.try_borrow_mut() {
                Ok(mut split) => unsafe {
                    split_nibbles(q, &mut split);
                    run_tiles(&split, meta, a, v0, tiles, out)
                },
                Err(_) => unsafe {
                    let mut split = Vec::new();
                    split_nibbles(q, &mut split);
                    run_tiles(&split, meta, a, v0, tiles, out)
                },
            })
        }
    }
    for j in (tiled..nv).step_by(8) {
        let n = 8.min(nv - j);
        super::resident512::gemm(w, p, a, v0 + j, n, &mut out[j * PANEL_ROWS..]);
    }
}
