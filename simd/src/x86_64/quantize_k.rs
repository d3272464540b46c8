//! The K-quant quantizers of [`crate::quantize_k`] compiled for AVX-512 and for AVX2: the same
//! lane code, wider vectors, and the scale searches written with intrinsics — Q4_K/Q5_K
//! ([`make_qkx2_quants_x16_avx512`], [`make_qkx2_quants_x8_avx2`]: the 8 sub-blocks of
//! [`SEARCH_BLOCKS`] super-blocks, their dependency chains interleaved) and Q6_K
//! ([`make_qx_quants_x16_avx512`], [`make_qx_quants_x16_avx2`]: 16 groups). No FMA is used and
//! every lane performs exactly the scalar twin's operations in the same order, so every byte stays
//! ggml's (the tests below compare each search with its scalar twin, and the `quantize_k` unit test
//! the whole dispatched build with the baseline one).

use std::arch::x86_64::*;

use crate::quantize_k::{q4_K_rows, q5_K_rows, q6_K_rows, Lanes8, Levels8, SEARCH_BLOCKS};

/// Quantizes with the AVX-512 build, else the AVX2 build, and returns true; or returns false
/// when the CPU has neither.
pub(crate) fn q4_K(src: &[f32], dst: &mut [u8]) -> bool {
    best_build(src, dst, q4_K_avx512, q4_K_avx2)
}

/// As [`q4_K`], for Q5_K.
pub(crate) fn q5_K(src: &[f32], dst: &mut [u8]) -> bool {
    best_build(src, dst, q5_K_avx512, q5_K_avx2)
}

/// As [`q4_K`], for Q6_K.
pub(crate) fn q6_K(src: &[f32], dst: &mut [u8]) -> bool {
    best_build(src, dst, q6_K_avx512, q6_K_avx2)
}

/// A quantizer compiled for one feature set (`#[target_feature]`, hence unsafe to call).
type Build = unsafe fn(&[f32], &mut [u8]);

fn best_build(src: &[f32], dst: &mut [u8], avx512: Build, avx2: Build) -> bool {
    if has_avx512() {
        // SAFETY: `avx512` is one of the `avx2,avx512f,avx512vl,avx512dq` builds below, and the
        // CPU has those features (checked by has_avx512).
        unsafe { avx512(src, dst) };
    } else if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `avx2` is one of the `avx2` builds below, and the CPU has AVX2.
        unsafe { avx2(src, dst) };
    } else {
        return false;
    }
    true
}

/// AVX-512 F, VL and DQ (and AVX2): what the 16-lane Q4_K / Q5_K / Q6_K builds need.
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512dq")
}

/// [`make_qkx2_quants_x16_avx512`] behind the plain `fn` type the quantizers take; only passed
/// from the `#[target_feature(enable = "avx512f,...")]` builds below.
fn search_avx512(
    nmax: i32,
    x: &Lanes8,
    w: &Lanes8,
    l_out: &mut Levels8,
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> [([f32; 8], [f32; 8]); SEARCH_BLOCKS] {
    // SAFETY: only reachable from q4_K_avx512 / q5_K_avx512, which run only when the CPU has
    // AVX-512 F/VL/DQ.
    unsafe { make_qkx2_quants_x16_avx512(nmax, x, w, l_out, rmin, rdelta, nstep) }
}

#[target_feature(enable = "avx2,avx512f,avx512vl,avx512dq")]
fn q4_K_avx512(src: &[f32], dst: &mut [u8]) {
    q4_K_rows(src, dst, search_avx512);
}

#[target_feature(enable = "avx2,avx512f,avx512vl,avx512dq")]
fn q5_K_avx512(src: &[f32], dst: &mut [u8]) {
    q5_K_rows(src, dst, search_avx512);
}

/// [`make_qx_quants_x16_avx512`] behind the plain `fn` type the quantizer takes; only passed from
/// `q6_K_avx512`.
fn qx_search_avx512(x: &[[f32; 16]; 16], l_out: &mut [[u8; 16]; 16]) -> [f32; 16] {
    // SAFETY: only reachable from q6_K_avx512, which runs only when the CPU has AVX-512 F/VL/DQ.
    unsafe { make_qx_quants_x16_avx512(x, l_out) }
}

#[target_feature(enable = "avx2,avx512f,avx512vl,avx512dq")]
fn q6_K_avx512(src: &[f32], dst: &mut [u8]) {
    q6_K_rows(src, dst, qx_search_avx512);
}

/// [`make_qkx2_quants_x8_avx2`] behind the plain `fn` type the quantizers take; only passed
/// from the `#[target_feature(enable = "avx2")]` builds below.
fn search_avx2(
    nmax: i32,
    x: &Lanes8,
    w: &Lanes8,
    l_out: &mut Levels8,
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> [([f32; 8], [f32; 8]); SEARCH_BLOCKS] {
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

/// The Q4_K / Q5_K level `clamp(nearest_int(iscale · (x − min)), 0, nmax)`, ggml's way.
#[target_feature(enable = "avx2")]
#[inline]
fn level8(iscale: __m256, x: __m256, min: __m256, nmax: __m256i) -> __m256i {
    let l = nearest_int8(_mm256_mul_ps(iscale, _mm256_sub_ps(x, min)));
    _mm256_min_epi32(_mm256_max_epi32(l, _mm256_setzero_si256()), nmax)
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
/// search) on [`SEARCH_BLOCKS`] super-blocks at once: lane k of register `[i][b]` is element i of
/// sub-block k of super-block b, and the super-blocks' dependency chains are interleaved (every
/// loop runs over the blocks innermost). Each lane does the scalar code's f32 operations in the
/// same order (`a * b + c` as a multiply then an add, comparisons ordered and false on NaN as
/// Rust's `<` / `>`); a block whose lanes are all invalid or not better takes no update, which is
/// what the scalar code's `continue` does. Levels are kept as f32 between the passes.
#[target_feature(enable = "avx2")]
pub(crate) fn make_qkx2_quants_x8_avx2(
    nmax: i32,
    x: &Lanes8,
    w: &Lanes8,
    l_out: &mut Levels8,
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> [([f32; 8], [f32; 8]); SEARCH_BLOCKS] {
    const B: usize = SEARCH_BLOCKS;
    let zero = _mm256_setzero_ps();
    let mut xs = [[zero; B]; 32];
    let mut ws = [[zero; B]; 32];
    for i in 0..32 {
        for b in 0..B {
            xs[i][b] = load8(&x[b][i]);
            ws[i][b] = load8(&w[b][i]);
        }
    }
    let mut min = xs[0];
    let mut max = xs[0];
    let mut sum_w = ws[0];
    let mut sum_x = [zero; B];
    for b in 0..B {
        sum_x[b] = _mm256_mul_ps(sum_w[b], xs[0][b]);
    }
    for i in 1..32 {
        for b in 0..B {
            // `if x < min { min = x }`: minps(a, b) is `a < b ? a : b`.
            min[b] = _mm256_min_ps(xs[i][b], min[b]);
            max[b] = _mm256_max_ps(xs[i][b], max[b]);
            sum_w[b] = _mm256_add_ps(sum_w[b], ws[i][b]);
            sum_x[b] = _mm256_add_ps(sum_x[b], _mm256_mul_ps(ws[i][b], xs[i][b]));
        }
    }
    let nmax_f = _mm256_set1_ps(nmax as f32);
    let hi = _mm256_set1_epi32(nmax);
    let mut flat = [zero; B];
    let mut scale = [zero; B];
    let mut iscale = [zero; B];
    for b in 0..B {
        // `if min > 0 { min = 0 }`.
        min[b] = _mm256_min_ps(zero, min[b]);
        flat[b] = _mm256_cmp_ps::<_CMP_EQ_OQ>(max[b], min[b]);
        iscale[b] = _mm256_div_ps(nmax_f, _mm256_sub_ps(max[b], min[b]));
        scale[b] = _mm256_div_ps(_mm256_set1_ps(1.0), iscale[b]);
    }
    // The best levels are not kept: the (iscale, min) they were computed from are, and they
    // are recomputed once at the end (the same operations, so the same levels). Blending 32
    // registers per improvement compiled to masked stores, microcoded on AMD.
    let mut lev_iscale = iscale;
    let mut lev_min = min;
    let mut best_error = [zero; B];
    for i in 0..32 {
        for b in 0..B {
            let lf = _mm256_cvtepi32_ps(level8(iscale[b], xs[i][b], min[b], hi));
            let diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale[b], lf), min[b]), xs[i][b]);
            best_error[b] = _mm256_add_ps(
                best_error[b],
                _mm256_mul_ps(ws[i][b], _mm256_mul_ps(diff, diff)),
            );
        }
    }
    let mut laux = [[zero; B]; 32];
    for is in 0..=nstep {
        let num = _mm256_set1_ps(rmin + rdelta * is as f32 + nmax as f32);
        for b in 0..B {
            iscale[b] = _mm256_div_ps(num, _mm256_sub_ps(max[b], min[b]));
        }
        let (mut sum_l, mut sum_l2, mut sum_xl) = ([zero; B], [zero; B], [zero; B]);
        for i in 0..32 {
            for b in 0..B {
                let lf = _mm256_cvtepi32_ps(level8(iscale[b], xs[i][b], min[b], hi));
                laux[i][b] = lf;
                let wl = _mm256_mul_ps(ws[i][b], lf);
                sum_l[b] = _mm256_add_ps(sum_l[b], wl);
                sum_l2[b] = _mm256_add_ps(sum_l2[b], _mm256_mul_ps(wl, lf));
                sum_xl[b] = _mm256_add_ps(sum_xl[b], _mm256_mul_ps(wl, xs[i][b]));
            }
        }
        let mut valid = [zero; B];
        let mut this_scale = [zero; B];
        let mut this_min = [zero; B];
        let mut any = 0;
        for b in 0..B {
            let d = _mm256_sub_ps(
                _mm256_mul_ps(sum_w[b], sum_l2[b]),
                _mm256_mul_ps(sum_l[b], sum_l[b]),
            );
            valid[b] = _mm256_andnot_ps(flat[b], _mm256_cmp_ps::<_CMP_GT_OQ>(d, zero));
            any |= _mm256_movemask_ps(valid[b]);
            this_scale[b] = _mm256_div_ps(
                _mm256_sub_ps(
                    _mm256_mul_ps(sum_w[b], sum_xl[b]),
                    _mm256_mul_ps(sum_x[b], sum_l[b]),
                ),
                d,
            );
            this_min[b] = _mm256_div_ps(
                _mm256_sub_ps(
                    _mm256_mul_ps(sum_l2[b], sum_x[b]),
                    _mm256_mul_ps(sum_l[b], sum_xl[b]),
                ),
                d,
            );
            let pos = _mm256_cmp_ps::<_CMP_GT_OQ>(this_min[b], zero);
            this_min[b] = _mm256_blendv_ps(this_min[b], zero, pos);
            this_scale[b] =
                _mm256_blendv_ps(this_scale[b], _mm256_div_ps(sum_xl[b], sum_l2[b]), pos);
        }
        if any == 0 {
            continue;
        }
        let mut cur_error = [zero; B];
        for i in 0..32 {
            for b in 0..B {
                let diff = _mm256_sub_ps(
                    _mm256_add_ps(_mm256_mul_ps(this_scale[b], laux[i][b]), this_min[b]),
                    xs[i][b],
                );
                cur_error[b] = _mm256_add_ps(
                    cur_error[b],
                    _mm256_mul_ps(ws[i][b], _mm256_mul_ps(diff, diff)),
                );
            }
        }
        let mut better = [zero; B];
        let mut any = 0;
        for b in 0..B {
            better[b] = _mm256_and_ps(
                valid[b],
                _mm256_cmp_ps::<_CMP_LT_OQ>(cur_error[b], best_error[b]),
            );
            any |= _mm256_movemask_ps(better[b]);
        }
        if any == 0 {
            continue;
        }
        for b in 0..B {
            lev_iscale[b] = _mm256_blendv_ps(lev_iscale[b], iscale[b], better[b]);
            lev_min[b] = _mm256_blendv_ps(lev_min[b], min[b], better[b]);
            best_error[b] = _mm256_blendv_ps(best_error[b], cur_error[b], better[b]);
            scale[b] = _mm256_blendv_ps(scale[b], this_scale[b], better[b]);
            min[b] = _mm256_blendv_ps(min[b], this_min[b], better[b]);
        }
    }
    let mut out = [([0.0f32; 8], [0.0f32; 8]); B];
    for b in 0..B {
        // Flat lanes: all levels 0, scale 0.
        for (o, row) in l_out[b].iter_mut().zip(&xs) {
            let l = _mm256_andnot_si256(
                _mm256_castps_si256(flat[b]),
                level8(lev_iscale[b], row[b], lev_min[b], hi),
            );
            let mut li = [0i32; 8];
            // SAFETY: `li` is 8 writable i32.
            unsafe { _mm256_storeu_si256(li.as_mut_ptr().cast(), l) };
            for k in 0..8 {
                o[k] = li[k] as u8;
            }
        }
        // Stored mins are −min (the scalar code's `min.map(|m| -m)`).
        let neg_min = _mm256_xor_ps(min[b], _mm256_set1_ps(-0.0));
        out[b] = (
            store8(_mm256_blendv_ps(scale[b], zero, flat[b])),
            store8(neg_min),
        );
    }
    out
}

/// Registers of 16 lanes: super-blocks 2c and 2c + 1 of a group, 8 sub-blocks each.
const PAIRS: usize = SEARCH_BLOCKS / 2;

/// Below this magnitude ggml's `nearest_int` is round-half-to-even (the 1.5·2^23 trick adds an
/// even integer, and the sum's ulp is 1), so a rounding instruction and a float clamp give its
/// levels.
const EXACT_ROUNDING: f32 = 4_194_304.0;

#[target_feature(enable = "avx2,avx512f,avx512vl,avx512dq")]
#[inline]
fn load16(lo: &[f32; 8], hi: &[f32; 8]) -> __m512 {
    // SAFETY: `lo` and `hi` are 8 readable f32 each.
    let (lo, hi) = unsafe { (_mm256_loadu_ps(lo.as_ptr()), _mm256_loadu_ps(hi.as_ptr())) };
    _mm512_insertf32x8::<1>(_mm512_castps256_ps512(lo), hi)
}

/// The level `clamp(nearest_int(v), 0, nmax)` as f32, ggml's way (for any v).
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512dq")]
#[inline]
fn level_exact16(v: __m512, nmax: __m512i) -> __m512 {
    let bits = _mm512_castps_si512(_mm512_add_ps(v, _mm512_set1_ps(12_582_912.0)));
    let l = _mm512_sub_epi32(
        _mm512_and_si512(bits, _mm512_set1_epi32(0x007f_ffff)),
        _mm512_set1_epi32(0x0040_0000),
    );
    _mm512_cvtepi32_ps(_mm512_min_epi32(
        _mm512_max_epi32(l, _mm512_setzero_si512()),
        nmax,
    ))
}

/// The same level when |v| < [`EXACT_ROUNDING`] or v is NaN: round half to even, then clamp in
/// f32 (`max(NaN, 0)` and `max(-0, 0)` are the second operand, +0, as ggml's integer path gives).
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512dq")]
#[inline]
fn level_fast16(v: __m512, nmax: __m512) -> __m512 {
    let r = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
    _mm512_min_ps(_mm512_max_ps(r, _mm512_setzero_ps()), nmax)
}

/// The AVX-512 twin of [`crate::quantize_k::make_qkx2_quants_x8`] (its documentation describes
/// the search) on [`SEARCH_BLOCKS`] super-blocks, two per 16-lane register, the registers'
/// dependency chains interleaved. Each lane does the scalar code's f32 operations in the same
/// order (no FMA; comparisons ordered, false on NaN). Levels are computed by rounding in f32
/// whenever every value a candidate rounds lies within ±2^22 — checked per candidate from the
/// extremes, since `iscale * (x - min)` is monotonic in x — and by ggml's integer trick otherwise,
/// so the bytes are ggml's for any input. As in the AVX2 twin the best levels are recomputed at
/// the end from the (iscale, min) that produced them.
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512dq")]
pub(crate) fn make_qkx2_quants_x16_avx512(
    nmax: i32,
    x: &Lanes8,
    w: &Lanes8,
    l_out: &mut Levels8,
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> [([f32; 8], [f32; 8]); SEARCH_BLOCKS] {
    const P: usize = PAIRS;
    let zero = _mm512_setzero_ps();
    let mut xs = [[zero; P]; 32];
    let mut ws = [[zero; P]; 32];
    for i in 0..32 {
        for p in 0..P {
            xs[i][p] = load16(&x[2 * p][i], &x[2 * p + 1][i]);
            ws[i][p] = load16(&w[2 * p][i], &w[2 * p + 1][i]);
        }
    }
    let mut min = xs[0];
    let mut max = xs[0];
    let mut sum_w = ws[0];
    let mut sum_x = [zero; P];
    for p in 0..P {
        sum_x[p] = _mm512_mul_ps(sum_w[p], xs[0][p]);
    }
    for i in 1..32 {
        for p in 0..P {
            // `if x < min { min = x }`: minps(a, b) is `a < b ? a : b`.
            min[p] = _mm512_min_ps(xs[i][p], min[p]);
            max[p] = _mm512_max_ps(xs[i][p], max[p]);
            sum_w[p] = _mm512_add_ps(sum_w[p], ws[i][p]);
            sum_x[p] = _mm512_add_ps(sum_x[p], _mm512_mul_ps(ws[i][p], xs[i][p]));
        }
    }
    let data_min = min;
    let nmax_f = _mm512_set1_ps(nmax as f32);
    let nmax_i = _mm512_set1_epi32(nmax);
    let limit = _mm512_set1_ps(EXACT_ROUNDING);
    let mut flat = [0 as __mmask16; P];
    let mut scale = [zero; P];
    let mut iscale = [zero; P];
    for p in 0..P {
        // `if min > 0 { min = 0 }`.
        min[p] = _mm512_min_ps(zero, min[p]);
        flat[p] = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(max[p], min[p]);
        iscale[p] = _mm512_div_ps(nmax_f, _mm512_sub_ps(max[p], min[p]));
        scale[p] = _mm512_div_ps(_mm512_set1_ps(1.0), iscale[p]);
    }
    // True when every level of this (iscale, min) may be rounded in f32: the values rounded lie
    // between iscale·(data_min − min) and iscale·(max − min), both within ±2^22 (false on NaN;
    // flat lanes are never used).
    let fast = |iscale: &[__m512; P], min: &[__m512; P]| -> bool {
        let mut ok = true;
        for p in 0..P {
            let a = _mm512_abs_ps(_mm512_mul_ps(iscale[p], _mm512_sub_ps(data_min[p], min[p])));
            let b = _mm512_abs_ps(_mm512_mul_ps(iscale[p], _mm512_sub_ps(max[p], min[p])));
            let in_range = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, limit)
                & _mm512_cmp_ps_mask::<_CMP_LT_OQ>(b, limit);
            ok &= (in_range | flat[p]) == 0xffff;
        }
        ok
    };
    let mut lev_iscale = iscale;
    let mut lev_min = min;
    let mut best_error = [zero; P];
    let fast0 = fast(&iscale, &min);
    for i in 0..32 {
        for p in 0..P {
            let v = _mm512_mul_ps(iscale[p], _mm512_sub_ps(xs[i][p], min[p]));
            let lf = if fast0 {
                level_fast16(v, nmax_f)
            } else {
                level_exact16(v, nmax_i)
            };
            let diff = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(scale[p], lf), min[p]), xs[i][p]);
            best_error[p] = _mm512_add_ps(
                best_error[p],
                _mm512_mul_ps(ws[i][p], _mm512_mul_ps(diff, diff)),
            );
        }
    }
    let mut laux = [[zero; P]; 32];
    for is in 0..=nstep {
        let num = _mm512_set1_ps(rmin + rdelta * is as f32 + nmax as f32);
        for p in 0..P {
            iscale[p] = _mm512_div_ps(num, _mm512_sub_ps(max[p], min[p]));
        }
        let (mut sum_l, mut sum_l2, mut sum_xl) = ([zero; P], [zero; P], [zero; P]);
        let fast_is = fast(&iscale, &min);
        for i in 0..32 {
            for p in 0..P {
                let v = _mm512_mul_ps(iscale[p], _mm512_sub_ps(xs[i][p], min[p]));
                let lf = if fast_is {
                    level_fast16(v, nmax_f)
                } else {
                    level_exact16(v, nmax_i)
                };
                laux[i][p] = lf;
                let wl = _mm512_mul_ps(ws[i][p], lf);
                sum_l[p] = _mm512_add_ps(sum_l[p], wl);
                sum_l2[p] = _mm512_add_ps(sum_l2[p], _mm512_mul_ps(wl, lf));
                sum_xl[p] = _mm512_add_ps(sum_xl[p], _mm512_mul_ps(wl, xs[i][p]));
            }
        }
        let mut valid = [0 as __mmask16; P];
        let mut this_scale = [zero; P];
        let mut this_min = [zero; P];
        let mut any = 0;
        for p in 0..P {
            let d = _mm512_sub_ps(
                _mm512_mul_ps(sum_w[p], sum_l2[p]),
                _mm512_mul_ps(sum_l[p], sum_l[p]),
            );
            valid[p] = !flat[p] & _mm512_cmp_ps_mask::<_CMP_GT_OQ>(d, zero);
            any |= valid[p];
            this_scale[p] = _mm512_div_ps(
                _mm512_sub_ps(
                    _mm512_mul_ps(sum_w[p], sum_xl[p]),
                    _mm512_mul_ps(sum_x[p], sum_l[p]),
                ),
                d,
            );
            this_min[p] = _mm512_div_ps(
                _mm512_sub_ps(
                    _mm512_mul_ps(sum_l2[p], sum_x[p]),
                    _mm512_mul_ps(sum_l[p], sum_xl[p]),
                ),
                d,
            );
            let pos = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(this_min[p], zero);
            this_min[p] = _mm512_mask_blend_ps(pos, this_min[p], zero);
            this_scale[p] =
                _mm512_mask_blend_ps(pos, this_scale[p], _mm512_div_ps(sum_xl[p], sum_l2[p]));
        }
        if any == 0 {
            continue;
        }
        let mut cur_error = [zero; P];
        for i in 0..32 {
            for p in 0..P {
                let diff = _mm512_sub_ps(
                    _mm512_add_ps(_mm512_mul_ps(this_scale[p], laux[i][p]), this_min[p]),
                    xs[i][p],
                );
                cur_error[p] = _mm512_add_ps(
                    cur_error[p],
                    _mm512_mul_ps(ws[i][p], _mm512_mul_ps(diff, diff)),
                );
            }
        }
        for p in 0..P {
            let better = valid[p] & _mm512_cmp_ps_mask::<_CMP_LT_OQ>(cur_error[p], best_error[p]);
            lev_iscale[p] = _mm512_mask_blend_ps(better, lev_iscale[p], iscale[p]);
            lev_min[p] = _mm512_mask_blend_ps(better, lev_min[p], min[p]);
            best_error[p] = _mm512_mask_blend_ps(better, best_error[p], cur_error[p]);
            scale[p] = _mm512_mask_blend_ps(better, scale[p], this_scale[p]);
            min[p] = _mm512_mask_blend_ps(better, min[p], this_min[p]);
        }
    }
    let mut out = [([0.0f32; 8], [0.0f32; 8]); SEARCH_BLOCKS];
    let fast_end = fast(&lev_iscale, &lev_min);
    for p in 0..P {
        for (i, row) in xs.iter().enumerate() {
            let v = _mm512_mul_ps(lev_iscale[p], _mm512_sub_ps(row[p], lev_min[p]));
            let lf = if fast_end {
                level_fast16(v, nmax_f)
            } else {
                level_exact16(v, nmax_i)
            };
            // Flat lanes: all levels 0.
            let l = _mm512_maskz_cvttps_epi32(!flat[p], lf);
            let mut li = [0i32; 16];
            // SAFETY: `li` is 16 writable i32.
            unsafe { _mm512_storeu_si512(li.as_mut_ptr().cast(), l) };
            for k in 0..8 {
                l_out[2 * p][i][k] = li[k] as u8;
                l_out[2 * p + 1][i][k] = li[8 + k] as u8;
            }
        }
        // Flat lanes: scale 0. Stored mins are −min (the scalar code's `min.map(|m| -m)`).
        let sc = _mm512_maskz_mov_ps(!flat[p], scale[p]);
        let neg_min = _mm512_xor_ps(min[p], _mm512_set1_ps(-0.0));
        let (mut sa, mut ma) = ([0.0f32; 16], [0.0f32; 16]);
        // SAFETY: `sa` and `ma` are 16 writable f32 each.
        unsafe {
            _mm512_storeu_ps(sa.as_mut_ptr(), sc);
            _mm512_storeu_ps(ma.as_mut_ptr(), neg_min);
        }
        for h in 0..2 {
            out[2 * p + h] = (
                std::array::from_fn(|k| sa[8 * h + k]),
                std::array::from_fn(|k| ma[8 * h + k]),
            );
        }
    }
    out
}

/// The AVX-512 twin of [`crate::quantize_k::make_qx_quants_x16`] (its documentation describes
/// the search): the 16 groups in the 16 lanes of one register per row, each lane doing the scalar
/// code's f32 operations in the same order. Levels are rounded in f32 when every lane's
/// `|iscale · max|` (the largest value rounded, `max` being the element of largest |x|) is within
/// ±2^22 — always, for finite input: a group with |max| < 1e-15 is all zeros and never used — and
/// by ggml's integer trick otherwise. The best levels are recomputed at the end from the iscale
/// that produced them.
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512dq")]
pub(crate) fn make_qx_quants_x16_avx512(
    x: &[[f32; 16]; 16],
    l_out: &mut [[u8; 16]; 16],
) -> [f32; 16] {
    const NMAX: i32 = 32;
    let zero = _mm512_setzero_ps();
    let lo_f = _mm512_set1_ps(-(NMAX as f32));
    let hi_f = _mm512_set1_ps((NMAX - 1) as f32);
    let limit = _mm512_set1_ps(EXACT_ROUNDING);
    let mut xs = [zero; 16];
    let mut w = [zero; 16];
    let mut wv = [zero; 16];
    for i in 0..16 {
        // SAFETY: `x[i]` is 16 readable f32.
        xs[i] = unsafe { _mm512_loadu_ps(x[i].as_ptr()) };
        w[i] = _mm512_mul_ps(xs[i], xs[i]);
        wv[i] = _mm512_mul_ps(w[i], xs[i]);
    }
    // max: the element of largest |x| (the first one on ties), amax its |x|.
    let mut max = zero;
    let mut amax = zero;
    for &v in &xs {
        let ax = _mm512_abs_ps(v);
        let gt = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(ax, amax);
        amax = _mm512_mask_blend_ps(gt, amax, ax);
        max = _mm512_mask_blend_ps(gt, max, v);
    }
    let is_zero = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(amax, _mm512_set1_ps(1e-15));
    // clamp(nearest_int(iscale · x), −32, 31) as f32, in f32 when that is exact (see above).
    let levels = |iscale: __m512, out: &mut [__m512; 16]| {
        let big = _mm512_abs_ps(_mm512_mul_ps(iscale, max));
        let fast = (_mm512_cmp_ps_mask::<_CMP_LT_OQ>(big, limit) | is_zero) == 0xffff;
        for i in 0..16 {
            let v = _mm512_mul_ps(iscale, xs[i]);
            out[i] = if fast {
                let r =
                    _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
                _mm512_min_ps(_mm512_max_ps(r, lo_f), hi_f)
            } else {
                let bits = _mm512_castps_si512(_mm512_add_ps(v, _mm512_set1_ps(12_582_912.0)));
                let q = _mm512_sub_epi32(
                    _mm512_and_si512(bits, _mm512_set1_epi32(0x007f_ffff)),
                    _mm512_set1_epi32(0x0040_0000),
                );
                let q = _mm512_min_epi32(
                    _mm512_max_epi32(q, _mm512_set1_epi32(-NMAX)),
                    _mm512_set1_epi32(NMAX - 1),
                );
                _mm512_cvtepi32_ps(q)
            };
        }
    };
    let fit = |l: &[__m512; 16]| -> (__m512, __m512) {
        let (mut sumlx, mut suml2) = (zero, zero);
        for i in 0..16 {
            sumlx = _mm512_add_ps(sumlx, _mm512_mul_ps(wv[i], l[i]));
            suml2 = _mm512_add_ps(suml2, _mm512_mul_ps(_mm512_mul_ps(w[i], l[i]), l[i]));
        }
        (sumlx, suml2)
    };
    let mut l = [zero; 16];
    let iscale0 = _mm512_div_ps(_mm512_set1_ps(-(NMAX as f32)), max);
    levels(iscale0, &mut l);
    let (sumlx, suml2) = fit(&l);
    let nonzero = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(suml2, zero);
    let mut scale = _mm512_maskz_div_ps(nonzero, sumlx, suml2);
    let mut best = _mm512_mul_ps(scale, sumlx);
    let mut best_iscale = iscale0;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        let num = _mm512_set1_ps(-(NMAX as f32 + 0.1f32 * is as f32));
        let iscale = _mm512_div_ps(num, max);
        levels(iscale, &mut l);
        let (sumlx, suml2) = fit(&l);
        let better = !is_zero
            & _mm512_cmp_ps_mask::<_CMP_GT_OQ>(suml2, zero)
            & _mm512_cmp_ps_mask::<_CMP_GT_OQ>(
                _mm512_mul_ps(sumlx, sumlx),
                _mm512_mul_ps(best, suml2),
            );
        if better == 0 {
            continue;
        }
        best_iscale = _mm512_mask_blend_ps(better, best_iscale, iscale);
        let new_scale = _mm512_div_ps(sumlx, suml2);
        scale = _mm512_mask_blend_ps(better, scale, new_scale);
        best = _mm512_mask_blend_ps(better, best, _mm512_mul_ps(new_scale, sumlx));
    }
    levels(best_iscale, &mut l);
    for i in 0..16 {
        // Levels + NMAX, zero for all-zero groups.
        let q =
            _mm512_maskz_cvttps_epi32(!is_zero, _mm512_add_ps(l[i], _mm512_set1_ps(NMAX as f32)));
        let mut lanes = [0i32; 16];
        // SAFETY: `lanes` is 16 writable i32.
        unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), q) };
        for k in 0..16 {
            l_out[i][k] = lanes[k] as u8;
        }
    }
    let mut out = [0.0f32; 16];
    // SAFETY: `out` is 16 writable f32.
    unsafe { _mm512_storeu_ps(out.as_mut_ptr(), _mm512_maskz_mov_ps(!is_zero, scale)) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantize_k::{make_qkx2_quants_x8, make_qx_quants_x16, Qkx2Search, QxSearch};

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

    /// The AVX2 and AVX-512 searches give the scalar twin's levels, scales and mins bit for bit,
    /// for Q4_K's and Q5_K's parameters, on random, skewed, all-positive, flat, zero, subnormal
    /// and near-overflow sub-blocks.
    #[test]
    fn simd_searches_match_scalar_twin() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("skipping: no AVX2");
            return;
        }
        let mut cases = Vec::new();
        for seed in 1..201u64 {
            let x = lanes(seed, |i, k, u| match (seed % 6, k) {
                (0, 3) => 0.0,                       // a zero lane
                (1, 5) => 0.25,                      // a flat lane
                (2, _) => u.abs() + 0.01 * k as f32, // all positive: min clamps to 0
                (3, _) => u * u * u * 100.0,         // heavy tails
                // Subnormal spread (iscale overflows) and values near f32::MAX (max - min
                // overflows): levels beyond ±2^22, where only ggml's integer trick is exact.
                (4, 6) => 1e-39 * (i % 3) as f32,
                (4, 1) => 3e38 * u,
                _ => u * (1 + i % 7) as f32,
            });
            cases.push(x);
        }
        let mut twins: Vec<(&str, Qkx2Search)> = vec![("avx2", search_avx2)];
        if has_avx512() {
            twins.push(("avx512", search_avx512));
        } else {
            eprintln!("no AVX-512: checking the AVX2 twin only");
        }
        // Consecutive cases share a batch: a zero or flat lane next to ordinary blocks.
        for group in cases.chunks_exact(SEARCH_BLOCKS) {
            let x: Lanes8 = std::array::from_fn(|b| group[b]);
            let w: Lanes8 = std::array::from_fn(|b| {
                let av: [f32; 8] = std::array::from_fn(|k| {
                    let s: f32 = x[b].iter().map(|r| r[k] * r[k]).sum();
                    (s / 32.0).sqrt()
                });
                std::array::from_fn(|i| std::array::from_fn(|k| av[k] + x[b][i][k].abs()))
            });
            for (nmax, rmin, nstep) in [(15, -1.0f32, 20), (31, -0.5f32, 15)] {
                let (mut la, mut lb) = (
                    [[[0u8; 8]; 32]; SEARCH_BLOCKS],
                    [[[0u8; 8]; 32]; SEARCH_BLOCKS],
                );
                for k in 0..SEARCH_BLOCKS {
                    let a = make_qkx2_quants_x8(nmax, &x[k], &w[k], &mut la[k], rmin, 0.1, nstep);
                    for &(name, search) in &twins {
                        let b = search(nmax, &x, &w, &mut lb, rmin, 0.1, nstep);
                        assert_eq!(la[k], lb[k], "{name}");
                        assert_eq!(a.0.map(f32::to_bits), b[k].0.map(f32::to_bits), "{name}");
                        assert_eq!(a.1.map(f32::to_bits), b[k].1.map(f32::to_bits), "{name}");
                    }
                }
            }
        }
    }

    /// The AVX2 and AVX-512 Q6_K searches give the scalar twin's levels and scales bit for bit,
    /// on random, heavy-tailed, zero, tiny, tied-extremum and infinite groups.
    #[test]
    fn simd_qx_searches_match_scalar_twin() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("skipping: no AVX2");
            return;
        }
        let mut twins: Vec<(&str, QxSearch)> = vec![("avx2", qx_search_avx2)];
        if has_avx512() {
            twins.push(("avx512", qx_search_avx512));
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
                        // An infinity: iscale · max is NaN, only ggml's integer trick is exact.
                        (4, 11) if i == 3 => f32::INFINITY,
                        _ => u * (1 + i % 5) as f32,
                    }
                })
            });
            let (mut la, mut lb) = ([[0u8; 16]; 16], [[0u8; 16]; 16]);
            let a = make_qx_quants_x16(&x, &mut la);
            for &(name, search) in &twins {
                let b = search(&x, &mut lb);
                assert_eq!(la, lb, "{name} seed {seed}");
                assert_eq!(
                    a.map(f32::to_bits),
                    b.map(f32::to_bits),
                    "{name} seed {seed}"
                );
            }
        }
    }
}
