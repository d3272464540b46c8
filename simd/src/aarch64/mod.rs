//! aarch64 kernels: NEON (every AArch64 CPU; Raspberry Pi 4), NEON + dotprod (SDOT;
//! Raspberry Pi 5) and NEON + dotprod + i8mm (SMMLA prefill tiles; Armv8.6+). Tested on x86_64
//! under QEMU user mode by scripts/neon-ci.sh.

// An ISA module: the intrinsics need `unsafe` (the crate root denies it elsewhere).
#![allow(unsafe_code)]

mod dotprod;
mod gemm;
mod kv;
mod neon;
mod panel;
mod resident;

use crate::dispatch::Kernels;

/// The NEON table: `base` (the scalar table) with the kernels NEON speeds up replaced
/// (today all of them; a kernel added to the table later keeps its scalar version).
pub(crate) fn neon_kernels(base: Kernels) -> Kernels {
    let mut k = base;
    k.quantize_row_q8_0 = neon::quantize_row_q8_0;
    k.quantize_row_q8_1 = neon::quantize_row_q8_1;
    k.quantize_row_q8_K = neon::quantize_row_q8_K;
    k.vec_dot_q4_0_q8_0 = neon::vec_dot_q4_0_q8_0;
    k.vec_dot_q4_1_q8_1 = neon::vec_dot_q4_1_q8_1;
    k.vec_dot_q5_0_q8_0 = neon::vec_dot_q5_0_q8_0;
    k.vec_dot_q5_1_q8_1 = neon::vec_dot_q5_1_q8_1;
    k.vec_dot_q8_0_q8_0 = neon::vec_dot_q8_0_q8_0;
    k.vec_dot_q4_K_q8_K = neon::vec_dot_q4_K_q8_K;
    k.vec_dot_q5_K_q8_K = neon::vec_dot_q5_K_q8_K;
    k.vec_dot_q6_K_q8_K = neon::vec_dot_q6_K_q8_K;
    k.vec_dot_f32 = neon::vec_dot_f32;
    k.vec_dot_f16_f32 = neon::vec_dot_f16_f32;
    k.vec_dot_bf16_f32 = neon::vec_dot_bf16_f32;
    k.vec_dot_q4_0_q8_0_x4 = Some(neon::vec_dot_q4_0_q8_0_x4);
    k.vec_dot_q8_0_q8_0_x4 = Some(neon::vec_dot_q8_0_q8_0_x4);
    k.dot_f16_f32 = neon::dot_f16_f32;
    k.mad_f16_f32 = neon::mad_f16_f32;
    k.dot_f16_f32_rows = neon::dot_f16_f32_rows;
    k.mad_f16_f32_rows = neon::mad_f16_f32_rows;
    k.dot_q8_0_f32 = kv::dot_q8_0_f32;
    k.mad_q8_0_f32 = kv::mad_q8_0_f32;
    k.dot_q8_0_f32_rows = kv::dot_q8_0_f32_rows;
    k.mad_q8_0_f32_rows = kv::mad_q8_0_f32_rows;
    k
}

/// The NEON + dotprod table: `base` (the NEON table) with the SDOT kernels replaced.
/// Only for a CPU with dotprod: the functions it installs execute SDOT.
pub(crate) fn dotprod_kernels(base: Kernels) -> Kernels {
    assert!(
        std::arch::is_aarch64_feature_detected!("dotprod"),
        "dotprod_kernels on a CPU without dotprod"
    );
    let (q4_0, q8_0) = gemm::dotprod_tiles();
    let (q4_k, q5_k, q6_k) = gemm::dotprod_k_tiles();
    Kernels {
        gemm_q4_0_q8_0_4x4: Some(q4_0),
        gemm_q8_0_q8_0_4x4: Some(q8_0),
        gemm_q4_K_q8_K_4x4: Some(q4_k),
        gemm_q5_K_q8_K_4x4: Some(q5_k),
        gemm_q6_K_q8_K_4x4: Some(q6_k),
        vec_dot_q4_0_q8_0: dotprod::vec_dot_q4_0_q8_0,
        vec_dot_q4_1_q8_1: dotprod::vec_dot_q4_1_q8_1,
        vec_dot_q5_0_q8_0: dotprod::vec_dot_q5_0_q8_0,
        vec_dot_q5_1_q8_1: dotprod::vec_dot_q5_1_q8_1,
        vec_dot_q8_0_q8_0: dotprod::vec_dot_q8_0_q8_0,
        vec_dot_q4_K_q8_K: dotprod::vec_dot_q4_K_q8_K,
        vec_dot_q5_K_q8_K: dotprod::vec_dot_q5_K_q8_K,
        vec_dot_q6_K_q8_K: dotprod::vec_dot_q6_K_q8_K,
        vec_dot_q4_0_q8_0_x4: Some(dotprod::vec_dot_q4_0_q8_0_x4),
        vec_dot_q8_0_q8_0_x4: Some(dotprod::vec_dot_q8_0_q8_0_x4),
        panel_gemm: Some(crate::panel::PanelKernels {
            pack: panel::pack,
            gemm: panel::gemm,
        }),
        resident: Some(resident::gemm),
        ..base
    }
}

/// The NEON + dotprod + i8mm table: `base` (the dotprod table) with the SMMLA prefill tiles.
/// Only for a CPU with i8mm.
pub(crate) fn i8mm_kernels(base: Kernels) -> Kernels {
    let (q4_0, q8_0) = gemm::i8mm_tiles();
    Kernels {
        gemm_q4_0_q8_0_4x4: Some(q4_0),
        gemm_q8_0_q8_0_4x4: Some(q8_0),
        panel_gemm: Some(crate::panel::PanelKernels {
            pack: base
                .panel_gemm
                .map_or(crate::panel::pack_scalar, |p| p.pack),
            gemm: panel::gemm_i8mm,
        }),
        ..base
    }
}

#[cfg(test)]
mod tests {
    //! The aarch64 kernels against the scalar reference on random and adversarial blocks:
    //! quantizers and int8 dot products must be bit-identical (same f32 operations in the
    //! same order, exact integer sums); float dots may differ only by f64 summation order.

    use super::*;
    use crate::dispatch::{QuantizeFn, VecDotFn};
    use crate::{blocks::Half, scalar, GgmlType};

    /// Float dots sum exact products in f64 in another order than the scalar reference, then
    /// round to f32: allowed difference relative to Σ|w·a|.
    const FLOAT_DOT_REL_TOL: f64 = 1e-6;
    /// Block counts tried for every kernel.
    const BLOCK_COUNTS: [usize; 6] = [1, 2, 3, 7, 64, 257];

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
        /// Uniform in [-r, r).
        fn f32(&mut self, r: f32) -> f32 {
            ((self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * r
        }
    }

    /// The tables under test: NEON, and NEON + dotprod where this CPU has it.
    fn tables() -> Vec<(&'static str, Kernels)> {
        let neon = neon_kernels(Kernels::SCALAR);
        let mut t = vec![("neon", neon)];
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            t.push(("neon-dotprod", dotprod_kernels(neon)));
        }
        t
    }

    /// Byte offsets of the f16 scale fields in a block of `ty`.
    fn half_fields(ty: GgmlType) -> &'static [usize] {
        match ty {
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
            GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q8_1 => &[0, 2],
            GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
            GgmlType::Q6_K => &[208],
            _ => &[],
        }
    }

    /// `n` random blocks of `ty` whose scales are finite, of magnitude below `range` (65504:
    /// up to the f16 limit; 6e-5: f16 subnormals).
    fn random_blocks(rng: &mut Rng, ty: GgmlType, n: usize, range: f32) -> Vec<u8> {
        let size = ty.type_size();
        let mut v = rng.bytes(n * size);
        for b in v.chunks_exact_mut(size) {
            for &o in half_fields(ty) {
                b[o..o + 2].copy_from_slice(&Half::from_f32(rng.f32(range)).0);
            }
            if ty == GgmlType::Q8_K {
                b[..4].copy_from_slice(&rng.f32(1.0).to_le_bytes());
            }
        }
        v
    }

    /// Blocks of `ty` with every quant byte set to `fill` (all −128 activations, all-max
    /// nibbles and high bits) and scales `d`.
    fn filled_blocks(ty: GgmlType, n: usize, fill: u8, d: f32) -> Vec<u8> {
        let size = ty.type_size();
        let mut v = vec![fill; n * size];
        for b in v.chunks_exact_mut(size) {
            for &o in half_fields(ty) {
                b[o..o + 2].copy_from_slice(&Half::from_f32(d).0);
            }
            if ty == GgmlType::Q8_K {
                b[..4].copy_from_slice(&d.to_le_bytes());
            }
        }
        v
    }

    fn int_dots(k: &Kernels) -> [(GgmlType, GgmlType, VecDotFn); 8] {
        use GgmlType::*;
        [
            (Q4_0, Q8_0, k.vec_dot_q4_0_q8_0),
            (Q4_1, Q8_1, k.vec_dot_q4_1_q8_1),
            (Q5_0, Q8_0, k.vec_dot_q5_0_q8_0),
            (Q5_1, Q8_1, k.vec_dot_q5_1_q8_1),
            (Q8_0, Q8_0, k.vec_dot_q8_0_q8_0),
            (Q4_K, Q8_K, k.vec_dot_q4_K_q8_K),
            (Q5_K, Q8_K, k.vec_dot_q5_K_q8_K),
            (Q6_K, Q8_K, k.vec_dot_q6_K_q8_K),
        ]
    }

    #[test]
    fn int8_dots_are_bit_identical_to_scalar() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let reference = int_dots(&Kernels::SCALAR);
        for (path, k) in tables() {
            for ((wt, at, dot), (_, _, want)) in int_dots(&k).into_iter().zip(reference) {
                for n in BLOCK_COUNTS {
                    let cases = [
                        (
                            random_blocks(&mut rng, wt, n, 2.0),
                            random_blocks(&mut rng, at, n, 2.0),
                        ),
                        (
                            random_blocks(&mut rng, wt, n, 65504.0),
                            random_blocks(&mut rng, at, n, 65504.0),
                        ),
                        (
                            random_blocks(&mut rng, wt, n, 6e-5),
                            random_blocks(&mut rng, at, n, 6e-5),
                        ),
                        (
                            filled_blocks(wt, n, 0xFF, 1.5),
                            filled_blocks(at, n, 0x80, -0.75),
                        ),
                        (
                            filled_blocks(wt, n, 0x00, 65504.0),
                            filled_blocks(at, n, 0x7F, 65504.0),
                        ),
                    ];
                    for (case, (w, a)) in cases.iter().enumerate() {
                        let (got, exp) = (dot(w, a), want(w, a));
                        assert_eq!(
                            got.to_bits(),
                            exp.to_bits(),
                            "{path} vec_dot {wt}·{at}, {n} blocks, case {case}: {got} vs scalar {exp}"
                        );
                    }
                }
            }
        }
    }

    struct FloatCase {
        name: &'static str,
        bytes: usize,
        quantize: QuantizeFn,
        dequantize: fn(&[u8], &mut [f32]),
        dot: VecDotFn,
        want: VecDotFn,
    }

    #[test]
    fn float_dots_match_scalar() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        for (path, k) in tables() {
            for n in [1, 7, 8, 9, 33, 256, 1027] {
                let x: Vec<f32> = (0..n).map(|_| rng.f32(3.0)).collect();
                let wf: Vec<f32> = (0..n).map(|_| rng.f32(100.0)).collect();
                let mut a = vec![0u8; 4 * n];
                scalar::quantize_row_f32(&x, &mut a);
                let cases: [FloatCase; 3] = [
                    FloatCase {
                        name: "f32",
                        bytes: 4,
                        quantize: scalar::quantize_row_f32,
                        dequantize: scalar::dequantize_row_f32,
                        dot: k.vec_dot_f32,
                        want: scalar::vec_dot_f32,
                    },
                    FloatCase {
                        name: "f16",
                        bytes: 2,
                        quantize: scalar::quantize_row_f16,
                        dequantize: scalar::dequantize_row_f16,
                        dot: k.vec_dot_f16_f32,
                        want: scalar::vec_dot_f16_f32,
                    },
                    FloatCase {
                        name: "bf16",
                        bytes: 2,
                        quantize: scalar::quantize_row_bf16,
                        dequantize: scalar::dequantize_row_bf16,
                        dot: k.vec_dot_bf16_f32,
                        want: scalar::vec_dot_bf16_f32,
                    },
                ];
                for c in cases {
                    let name = c.name;
                    let mut w = vec![0u8; c.bytes * n];
                    (c.quantize)(&wf, &mut w);
                    let mut wd = vec![0f32; n];
                    (c.dequantize)(&w, &mut wd);
                    let (dot, want) = (c.dot, c.want);
                    let scale: f64 = wd
                        .iter()
                        .zip(&x)
                        .map(|(w, x)| (*w as f64 * *x as f64).abs())
                        .sum();
                    let (got, exp) = (dot(&w, &a), want(&w, &a));
                    assert!(
                        ((got - exp) as f64).abs() <= FLOAT_DOT_REL_TOL * scale,
                        "{path} vec_dot_{name}, n = {n}: {got} vs scalar {exp}"
                    );
                }
            }
        }
    }

    #[test]
    fn quantizers_are_bit_identical_to_scalar() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let k = neon_kernels(Kernels::SCALAR);
        let n = 512;
        let mut rows: Vec<Vec<f32>> = vec![
            (0..n).map(|_| rng.f32(1.0)).collect(),
            (0..n).map(|_| rng.f32(1e30)).collect(),
            vec![0.0; n],
            // Halves that round differently under ties-away (Q8_0/Q8_1) and ties-even (Q8_K).
            (0..n).map(|i| (i % 64) as f32 * 0.5 - 16.0).collect(),
            // Equal magnitudes of both signs: Q8_K keeps the sign of the first.
            (0..n)
                .map(|i| if i % 3 == 0 { -2.0 } else { 2.0 })
                .collect(),
        ];
        rows.push(rows[0].iter().map(|v| v * 1e-40).collect());
        let cases: [(GgmlType, QuantizeFn, QuantizeFn); 3] = [
            (
                GgmlType::Q8_0,
                k.quantize_row_q8_0,
                scalar::quantize_row_q8_0,
            ),
            (
                GgmlType::Q8_1,
                k.quantize_row_q8_1,
                scalar::quantize_row_q8_1,
            ),
            (
                GgmlType::Q8_K,
                k.quantize_row_q8_K,
                scalar::quantize_row_q8_K,
            ),
        ];
        for (ty, quantize, want) in cases {
            let bytes = n / ty.block_size() * ty.type_size();
            for (r, x) in rows.iter().enumerate() {
                let (mut got, mut exp) = (vec![0u8; bytes], vec![0u8; bytes]);
                quantize(x, &mut got);
                want(x, &mut exp);
                assert_eq!(got, exp, "neon quantize_row {ty}, row {r}");
            }
        }
    }
}
