//! The K-quant quantizers of [`crate::quantize_k`] compiled for AVX2: the same lane code, wider
//! vectors, and the Q4_K/Q5_K scale search ([`make_qkx2_quants_x8_avx2`]) written with AVX2
//! intrinsics, one 256-bit register per row of the 8 sub-blocks. No FMA is used and every lane
//! performs exactly the scalar twin's operations in the same order, so every byte stays ggml's
//! (the tests below compare the search with its scalar twin, and the `quantize_k` unit test the
//! whole AVX2 build with the baseline one).

use std::arch::x86_64::*;

use crate::quantize_k::{q4_K_rows, q5_K_rows, q6_K_rows};

/// Quantizes with the AVX2 build and returns true, or returns false when the CPU lacks AVX2.
pub(crate) fn q4_K(src: &[f32], dst: &mut [u8]) -> bool {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return false;
    }
    // SAFETY: the CPU has AVX2 (checked above).
    unsafe { q4_K_avx2(src, dst) };
    true
}

/// As [`q4_K`], for Q5_K.
pub(crate) fn q5_K(src: &[f32], dst: &mut [u8]) -> bool {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return false;
    }
    // SAFETY: the CPU has AVX2 (checked above).
    unsafe { q5_K_avx2(src, dst) };
    true
}

/// As [`q4_K`], for Q6_K.
pub(crate) fn q6_K(src: &[f32], dst: &mut [u8]) -> bool {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return false;
    }
    // SAFETY: the CPU has AVX2 (checked above).
    unsafe { q6_K_avx2(src, dst) };
    true
}

/// [`make_qkx2_quants_x8_avx2`] behind the plain `fn` type the quantizers take; only passed
/// from the `#[target_feature(enable = "avx2")]` builds below.
#[allow(clippy::type_complexity)]
fn search_avx2(
    nmax: i32,
    x: &[[f32; 8]; 32],
    w: &[[f32; 8]; 32],
    l_out: &mut [[u8; 8]; 32],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> ([f32; 8], [f32; 8]) {
    // SAFETY: only reachable from q4_K_avx2 / q5_K_avx2, which run only when the CPU has AVX2.
    unsafe { make_qkx2_quants_x8_avx2(nmax, x, w, l_out, rmin, rdelta, nstep) }
}

#[target_feature(enable = "avx2")]
fn q4_K_avx2(src: &[f32], dst: &mut [u8]) {
    q4_K_rows(src, dst, search_avx2);
}

#[target_feature(enable = "avx2")]
fn q5_K_avx2(src: &[f32], dst: &mut [u8]) {
    q5_K_rows(src, dst, search_avx2);
}

/// [`make_qx_quants_x16_avx2`] behind the plain `fn` type the quantizer takes; only passed from
/// `q6_K_avx2`.
fn qx_search_avx2(x: &[[f32; 16]; 16], l_out: &mut [[u8; 16]; 16]) -> [f32; 16] {
    // SAFETY: only reachable from q6_K_avx2, which runs only when the CPU has AVX2.
    unsafe { make_qx_quants_x16_avx2(x, l_out) }
}

#[target_feature(enable = "avx2")]
fn q6_K_avx2(src: &[f32], dst: &mut [u8]) {
    q6_K_rows(src, dst, qx_search_avx2);
}

/// The AVX2 twin of [`crate::quantize_k::make_qx_quants_x16`] (its documentation describes the
/// search): lanes 0..8 and 8..16 in two registers per row, each lane doing the scalar code's f32
/// operations in the same order. The weight x² and the product x²·x of each element do not depend
/// on the candidate scale and are computed once (the same two multiplications the scalar code
/// repeats per candidate, so the same values).
#[target_feature(enable = "avx2")]
pub(crate) fn make_qx_quants_x16_avx2(
    x: &[[f32; 16]; 16],
    l_out: &mut [[u8; 16]; 16],
) -> [f32; 16] {
    const NMAX: i32 = 32;
    let zero = _mm256_setzero_ps();
    let sign = _mm256_set1_ps(-0.0);
    let lo = _mm256_set1_epi32(-NMAX);
    let hi = _mm256_set1_epi32(NMAX - 1);
    let mut out_scale = [0.0f32; 16];
    for h in 0..2 {
        let mut xs = [zero; 16];
        let mut w = [zero; 16];
        let mut wv = [zero; 16];
        for i in 0..16 {
            let half: &[f32; 8] = x[i][8 * h..8 * h + 8].try_into().unwrap();
            xs[i] = load8(half);
            w[i] = _mm256_mul_ps(xs[i], xs[i]);
            wv[i] = _mm256_mul_ps(w[i], xs[i]);
        }
        // max: the element of largest |x| (the first one on ties), amax its |x|.
        let mut max = zero;
        let mut amax = zero;
        for &v in &xs {
            let ax = _mm256_andnot_ps(sign, v);
            let gt = _mm256_cmp_ps::<_CMP_GT_OQ>(ax, amax);
            amax = _mm256_blendv_ps(amax, ax, gt);
            max = _mm256_blendv_ps(max, v, gt);
        }
        let is_zero = _mm256_cmp_ps::<_CMP_LT_OQ>(amax, _mm256_set1_ps(1e-15));
        let levels = |iscale: __m256| -> [__m256i; 16] {
            let mut l = [_mm256_setzero_si256(); 16];
            for i in 0..16 {
                let q = nearest_int8(_mm256_mul_ps(iscale, xs[i]));
                l[i] = _mm256_min_epi32(_mm256_max_epi32(q, lo), hi);
            }
            l
        };
        let fit = |l: &[__m256i; 16]| -> (__m256, __m256) {
            let (mut sumlx, mut suml2) = (zero, zero);
            for i in 0..16 {
                let lf = _mm256_cvtepi32_ps(l[i]);
                sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(wv[i], lf));
                suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(w[i], lf), lf));
            }
            (sumlx, suml2)
        };
        let iscale = _mm256_div_ps(_mm256_set1_ps(-(NMAX as f32)), max);
        let mut best_l = levels(iscale);
        let (sumlx, suml2) = fit(&best_l);
        let nonzero = _mm256_cmp_ps::<_CMP_NEQ_UQ>(suml2, zero);
        let mut scale = _mm256_and_ps(nonzero, _mm256_div_ps(sumlx, suml2));
        let mut best = _mm256_mul_ps(scale, sumlx);
        for is in -9..=9 {
            if is == 0 {
                continue;
            }
            let num = _mm256_set1_ps(-(NMAX as f32 + 0.1f32 * is as f32));
            let iscale = _mm256_div_ps(num, max);
            let l = levels(iscale);
            let (sumlx, suml2) = fit(&l);
            let better = _mm256_andnot_ps(
                is_zero,
                _mm256_and_ps(
                    _mm256_cmp_ps::<_CMP_GT_OQ>(suml2, zero),
                    _mm256_cmp_ps::<_CMP_GT_OQ>(
                        _mm256_mul_ps(sumlx, sumlx),
                        _mm256_mul_ps(best, suml2),
                    ),
                ),
            );
            if _mm256_movemask_ps(better) == 0 {
                continue;
            }
            let bi = _mm256_castps_si256(better);
            for i in 0..16 {
                best_l[i] = _mm256_blendv_epi8(best_l[i], l[i], bi);
            }
            let new_scale = _mm256_div_ps(sumlx, suml2);
            scale = _mm256_blendv_ps(scale, new_scale, better);
            best = _mm256_blendv_ps(best, _mm256_mul_ps(new_scale, sumlx), better);
        }
        let keep = _mm256_castps_si256(_mm256_xor_ps(
            is_zero,
            _mm256_castsi256_ps(_mm256_set1_epi32(-1)),
        ));
        for i in 0..16 {
            // Levels + NMAX, zero for all-zero groups.
            let q = _mm256_and_si256(_mm256_add_epi32(best_l[i], _mm256_set1_epi32(NMAX)), keep);
            let mut lanes = [0i32; 8];
            // SAFETY: `lanes` is 8 writable i32.
            unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), q) };
            for k in 0..8 {
                l_out[i][8 * h + k] = lanes[k] as u8;
            }
        }
        let s = store8(_mm256_andnot_ps(is_zero, scale));
        out_scale[8 * h..8 * h + 8].copy_from_slice(&s);
    }
    out_scale
}

/// ggml's `nearest_int` on 8 lanes: add 1.5·2^23, keep the low mantissa bits.
#[target_feature(enable = "avx2")]
#[inline]
fn nearest_int8(v: __m256) -> __m256i {
    let bits = _mm256_castps_si256(_mm256_add_ps(v, _mm256_set1_ps(12_582_912.0)));
    _mm256_sub_epi32(
        _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
        _mm256_set1_epi32(0x0040_0000),
    )
}

#[target_feature(enable = "avx2")]
#[inline]
fn load8(a: &[f32; 8]) -> __m256 {
    // SAFETY: `a` is 8 readable f32.
    unsafe { _mm256_loadu_ps(a.as_ptr()) }
}

#[target_feature(enable = "avx2")]
#[inline]
fn store8(v: __m256) -> [f32; 8] {
    let mut a = [0.0f32; 8];
    // SAFETY: `a` is 8 writable f32.
    unsafe { _mm256_storeu_ps(a.as_mut_ptr(), v) };
    a
}

/// The AVX2 twin of [`crate::quantize_k::make_qkx2_quants_x8`] (its documentation describes the
/// search): lane k of every register is sub-block k, and each lane does the scalar code's f32
/// operations in the same order (`a * b + c` as a multiply then an add, comparisons ordered
/// and false on NaN as Rust's `<` / `>`). Levels are kept as f32 between the passes.
#[target_feature(enable = "avx2")]
pub(crate) fn make_qkx2_quants_x8_avx2(
    nmax: i32,
    x: &[[f32; 8]; 32],
    w: &[[f32; 8]; 32],
    l_out: &mut [[u8; 8]; 32],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> ([f32; 8], [f32; 8]) {
    let zero = _mm256_setzero_ps();
    let mut xs = [zero; 32];
    let mut ws = [zero; 32];
    for i in 0..32 {
        xs[i] = load8(&x[i]);
        ws[i] = load8(&w[i]);
    }
    let mut min = xs[0];
    let mut max = xs[0];
    let mut sum_w = ws[0];
    let mut sum_x = _mm256_mul_ps(sum_w, xs[0]);
    for i in 1..32 {
        // `if x < min { min = x }`: minps(a, b) is `a < b ? a : b`.
        min = _mm256_min_ps(xs[i], min);
        max = _mm256_max_ps(xs[i], max);
        sum_w = _mm256_add_ps(sum_w, ws[i]);
        sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(ws[i], xs[i]));
    }
    // `if min > 0 { min = 0 }`.
    min = _mm256_min_ps(zero, min);
    let flat = _mm256_cmp_ps::<_CMP_EQ_OQ>(max, min);
    let nmax_f = _mm256_set1_ps(nmax as f32);
    let lo = _mm256_setzero_si256();
    let hi = _mm256_set1_epi32(nmax);
    let iscale = _mm256_div_ps(nmax_f, _mm256_sub_ps(max, min));
    let mut scale = _mm256_div_ps(_mm256_set1_ps(1.0), iscale);
    let mut best_error = zero;
    let mut l_best = [zero; 32];
    for i in 0..32 {
        let l = nearest_int8(_mm256_mul_ps(iscale, _mm256_sub_ps(xs[i], min)));
        let lf = _mm256_cvtepi32_ps(_mm256_min_epi32(_mm256_max_epi32(l, lo), hi));
        l_best[i] = lf;
        let diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, lf), min), xs[i]);
        best_error = _mm256_add_ps(best_error, _mm256_mul_ps(ws[i], _mm256_mul_ps(diff, diff)));
    }
    let mut laux = [zero; 32];
    for is in 0..=nstep {
        let num = _mm256_set1_ps(rmin + rdelta * is as f32 + nmax as f32);
        let iscale = _mm256_div_ps(num, _mm256_sub_ps(max, min));
        let (mut sum_l, mut sum_l2, mut sum_xl) = (zero, zero, zero);
        for i in 0..32 {
            let l = nearest_int8(_mm256_mul_ps(iscale, _mm256_sub_ps(xs[i], min)));
            let lf = _mm256_cvtepi32_ps(_mm256_min_epi32(_mm256_max_epi32(l, lo), hi));
            laux[i] = lf;
            let wl = _mm256_mul_ps(ws[i], lf);
            sum_l = _mm256_add_ps(sum_l, wl);
            sum_l2 = _mm256_add_ps(sum_l2, _mm256_mul_ps(wl, lf));
            sum_xl = _mm256_add_ps(sum_xl, _mm256_mul_ps(wl, xs[i]));
        }
        let d = _mm256_sub_ps(_mm256_mul_ps(sum_w, sum_l2), _mm256_mul_ps(sum_l, sum_l));
        let valid = _mm256_andnot_ps(flat, _mm256_cmp_ps::<_CMP_GT_OQ>(d, zero));
        if _mm256_movemask_ps(valid) == 0 {
            continue;
        }
        let mut this_scale = _mm256_div_ps(
            _mm256_sub_ps(_mm256_mul_ps(sum_w, sum_xl), _mm256_mul_ps(sum_x, sum_l)),
            d,
        );
        let mut this_min = _mm256_div_ps(
            _mm256_sub_ps(_mm256_mul_ps(sum_l2, sum_x), _mm256_mul_ps(sum_l, sum_xl)),
            d,
        );
        let pos = _mm256_cmp_ps::<_CMP_GT_OQ>(this_min, zero);
        this_min = _mm256_blendv_ps(this_min, zero, pos);
        this_scale = _mm256_blendv_ps(this_scale, _mm256_div_ps(sum_xl, sum_l2), pos);
        let mut cur_error = zero;
        for i in 0..32 {
            let diff = _mm256_sub_ps(
                _mm256_add_ps(_mm256_mul_ps(this_scale, laux[i]), this_min),
                xs[i],
            );
            cur_error = _mm256_add_ps(cur_error, _mm256_mul_ps(ws[i], _mm256_mul_ps(diff, diff)));
        }
        let better = _mm256_and_ps(valid, _mm256_cmp_ps::<_CMP_LT_OQ>(cur_error, best_error));
        if _mm256_movemask_ps(better) == 0 {
            continue;
        }
        for i in 0..32 {
            l_best[i] = _mm256_blendv_ps(l_best[i], laux[i], better);
        }
        best_error = _mm256_blendv_ps(best_error, cur_error, better);
        scale = _mm256_blendv_ps(scale, this_scale, better);
        min = _mm256_blendv_ps(min, this_min, better);
    }
    // Flat lanes: all levels 0, scale 0.
    for (out, &lf) in l_out.iter_mut().zip(&l_best) {
        let lf = store8(_mm256_blendv_ps(lf, zero, flat));
        for k in 0..8 {
            out[k] = lf[k] as u8;
        }
    }
    scale = _mm256_blendv_ps(scale, zero, flat);
    // Stored mins are −min (the scalar code's `min.map(|m| -m)`).
    let neg_min = _mm256_xor_ps(min, _mm256_set1_ps(-0.0));
    (store8(scale), store8(neg_min))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantize_k::{make_qkx2_quants_x8, make_qx_quants_x16};

    fn lanes(seed: u64, f: impl Fn(usize, usize, f32) -> f32) -> [[f32; 8]; 32] {
        let mut state = seed | 1;
        std::array::from_fn(|i| {
            std::array::from_fn(|k| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                f(i, k, u)
            })
        })
    }

    /// The AVX2 search gives the scalar twin's levels, scales and mins bit for bit, for Q4_K's
    /// and Q5_K's parameters, on random, skewed, all-positive, flat and zero sub-blocks.
    #[test]
    fn avx2_search_matches_scalar_twin() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("skipping: no AVX2");
            return;
        }
        let mut cases = Vec::new();
        for seed in 1..200u64 {
            let x = lanes(seed, |i, k, u| match (seed % 5, k) {
                (0, 3) => 0.0,                       // a zero lane
                (1, 5) => 0.25,                      // a flat lane
                (2, _) => u.abs() + 0.01 * k as f32, // all positive: min clamps to 0
                (3, _) => u * u * u * 100.0,         // heavy tails
                _ => u * (1 + i % 7) as f32,
            });
            cases.push(x);
        }
        for x in &cases {
            let av: [f32; 8] = std::array::from_fn(|k| {
                let s: f32 = x.iter().map(|r| r[k] * r[k]).sum();
                (s / 32.0).sqrt()
            });
            let w: [[f32; 8]; 32] =
                std::array::from_fn(|i| std::array::from_fn(|k| av[k] + x[i][k].abs()));
            for (nmax, rmin, nstep) in [(15, -1.0f32, 20), (31, -0.5f32, 15)] {
                let (mut la, mut lb) = ([[0u8; 8]; 32], [[0u8; 8]; 32]);
                let a = make_qkx2_quants_x8(nmax, x, &w, &mut la, rmin, 0.1, nstep);
                let b = search_avx2(nmax, x, &w, &mut lb, rmin, 0.1, nstep);
                assert_eq!(la, lb);
                assert_eq!(a.0.map(f32::to_bits), b.0.map(f32::to_bits));
                assert_eq!(a.1.map(f32::to_bits), b.1.map(f32::to_bits));
            }
        }
    }

    /// The AVX2 Q6_K search gives the scalar twin's levels and scales bit for bit, on random,
    /// heavy-tailed, zero, tiny and tied-extremum groups.
    #[test]
    fn avx2_qx_search_matches_scalar_twin() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("skipping: no AVX2");
            return;
        }
        for seed in 1..300u64 {
            let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let x: [[f32; 16]; 16] = std::array::from_fn(|i| {
                std::array::from_fn(|k| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let u = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                    match (seed % 6, k) {
                        (0, 2) => 0.0,       // all-zero group
                        (1, 7) => u * 1e-16, // below GROUP_MAX_EPS
                        (2, 9) => {
                            if i % 2 == 0 {
                                0.5
                            } else {
                                -0.5
                            }
                        } // tied |max|
                        (3, _) => u * u * u * 50.0, // heavy tails
                        _ => u * (1 + i % 5) as f32,
                    }
                })
            });
            let (mut la, mut lb) = ([[0u8; 16]; 16], [[0u8; 16]; 16]);
            let a = make_qx_quants_x16(&x, &mut la);
            let b = qx_search_avx2(&x, &mut lb);
            assert_eq!(la, lb, "seed {seed}");
            assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits), "seed {seed}");
        }
    }
}
