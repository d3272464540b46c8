//! AVX2 panel kernels (`crate::panel` has the layout and the arithmetic; `gemm_scalar` is the
//! bit-identical twin): the 16 rows of a panel in two 256-bit registers of eight i32 lanes.
//! Without VNNI the four-byte sums are `vpmaddubsw` (u8·i8 pairs → i16) then `vpmaddwd` by 1.
//!
//! - Q4_0 / Q4_K / Q5_K / Q6_K store bytes ≤ 63, so two steps' `vpmaddubsw` results add in i16
//!   without overflow (|63·128·2·2| = 32256) before one widening: per 8 weights × 8 rows and
//!   vector, two `vpmaddubsw`, one i16 add, one `vpmaddwd`, one i32 add.
//! - Q8_0 stores `w + 128` (up to 255): `vpmaddubsw` of that could saturate, so the signed
//!   weights are recovered (`u ^ 0x80`) and multiplied as |w| · (a with w's sign), which is
//!   exact for Q8_0 activations (|a| ≤ 127, as `quantize_row_q8_0` makes them); the sum
//!   then starts from 0 instead of −128·Σa — the same integer.

use std::arch::x86_64::*;

use crate::panel::{check, Panel, PanelActs, PanelFormat, PANEL_ROWS};

/// Two registers: rows 0–7 and 8–15.
type Rows = [__m256i; 2];

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn load_rows(p: &Panel, wo: usize) -> Rows {
    let w = &p.q[wo..wo + PANEL_ROWS];
    // SAFETY: two 32-byte loads covering exactly the 16 words of `w`.
    unsafe {
        [
            _mm256_loadu_si256(w.as_ptr().cast()),
            _mm256_loadu_si256(w[8..].as_ptr().cast()),
        ]
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn act_word(a: &PanelActs, at: usize) -> __m256i {
    let q = &a.q[at..at + 4];
    // SAFETY: a 4-byte unaligned read of exactly `q`.
    _mm256_set1_epi32(unsafe { q.as_ptr().cast::<i32>().read_unaligned() })
}

/// Group sums (`corr + Σ u·a`, as exact i32 per row lane) of `NV` vectors for group `g`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn group_sums<const G: usize, const SIGNED: bool, const NV: usize>(
    p: &Panel,
    a: &PanelActs,
    v0: usize,
    g: usize,
    groups: usize,
) -> [Rows; NV] {
    let k = p.k;
    let ones = _mm256_set1_epi16(1);
    let mut ia: [Rows; NV] = std::array::from_fn(|j| {
        let c = if SIGNED {
            0
        } else {
            a.corr[(v0 + j) * groups + g]
        };
        [_mm256_set1_epi32(c); 2]
    });
    if SIGNED {
        let flip = _mm256_set1_epi8(-128);
        for st in 0..G / 4 {
            let w = load_rows(p, (g * G / 4 + st) * PANEL_ROWS).map(|u| _mm256_xor_si256(u, flip));
            let aw = w.map(|w| _mm256_abs_epi8(w));
            for (j, acc) in ia.iter_mut().enumerate() {
                let x = act_word(a, (v0 + j) * k + g * G + 4 * st);
                for h in 0..2 {
                    let prod = _mm256_maddubs_epi16(aw[h], _mm256_sign_epi8(x, w[h]));
                    acc[h] = _mm256_add_epi32(acc[h], _mm256_madd_epi16(prod, ones));
                }
            }
        }
    } else {
        for st in (0..G / 4).step_by(2) {
            let w0 = load_rows(p, (g * G / 4 + st) * PANEL_ROWS);
            let w1 = load_rows(p, (g * G / 4 + st + 1) * PANEL_ROWS);
            for (j, acc) in ia.iter_mut().enumerate() {
                let at = (v0 + j) * k + g * G + 4 * st;
                let (x0, x1) = (act_word(a, at), act_word(a, at + 4));
                for h in 0..2 {
                    let s16 = _mm256_add_epi16(
                        _mm256_maddubs_epi16(w0[h], x0),
                        _mm256_maddubs_epi16(w1[h], x1),
                    );
                    acc[h] = _mm256_add_epi32(acc[h], _mm256_madd_epi16(s16, ones));
                }
            }
        }
    }
    ia
}

/// The 16 lanes of `v` for group `g`, as two halves.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn lanes(v: &[f32], g: usize) -> [__m256; 2] {
    let s = &v[g * PANEL_ROWS..(g + 1) * PANEL_ROWS];
    // SAFETY: two 32-byte loads covering exactly the 16 floats of `s`.
    unsafe {
        [
            _mm256_loadu_ps(s.as_ptr()),
            _mm256_loadu_ps(s[8..].as_ptr()),
        ]
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn store<const NV: usize>(acc: [[__m256; 2]; NV], out: &mut [f32]) {
    for (j, a) in acc.into_iter().enumerate() {
        let o = &mut out[j * PANEL_ROWS..(j + 1) * PANEL_ROWS];
        // SAFETY: two 32-byte stores into exactly the 16 floats of `o`.
        unsafe {
            _mm256_storeu_ps(o.as_mut_ptr(), a[0]);
            _mm256_storeu_ps(o[8..].as_mut_ptr(), a[1]);
        }
    }
}

/// Q4_0 / Q8_0 weights (groups of 32) against Q8_0 activations.
#[target_feature(enable = "avx2,fma,f16c")]
fn q8_0_acts<const SIGNED: bool, const NV: usize>(
    p: &Panel,
    a: &PanelActs,
    v0: usize,
    out: &mut [f32],
) {
    let groups = p.k / 32;
    let mut acc = [[_mm256_setzero_ps(); 2]; NV];
    for g in 0..groups {
        let ia = group_sums::<32, SIGNED, NV>(p, a, v0, g, groups);
        let s = lanes(&p.scale, g);
        for (j, (acc, ia)) in acc.iter_mut().zip(ia).enumerate() {
            let d = _mm256_set1_ps(a.d[(v0 + j) * groups + g]);
            for h in 0..2 {
                let sc = _mm256_mul_ps(s[h], d);
                acc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[h]), sc, acc[h]);
            }
        }
    }
    store(acc, out)
}

/// K-quant weights (groups of `G`; `MINS` for Q4_K / Q5_K) against Q8_K activations.
#[target_feature(enable = "avx2,fma,f16c")]
fn q8_k_acts<const G: usize, const MINS: bool, const NV: usize>(
    p: &Panel,
    a: &PanelActs,
    v0: usize,
    out: &mut [f32],
) {
    let groups = p.k / G;
    let (per_sb, n_sb) = (256 / G, p.k / 256);
    let mut acc = [[_mm256_setzero_ps(); 2]; NV];
    for s in 0..n_sb {
        let mut sb = [[_mm256_setzero_ps(); 2]; NV];
        for g in s * per_sb..(s + 1) * per_sb {
            let ia = group_sums::<G, false, NV>(p, a, v0, g, groups);
            let sc = lanes(&p.scale, g);
            for (sb, ia) in sb.iter_mut().zip(ia) {
                for h in 0..2 {
                    sb[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[h]), sc[h], sb[h]);
                }
            }
        }
        for (j, (acc, mut sb)) in acc.iter_mut().zip(sb).enumerate() {
            let v = v0 + j;
            if MINS {
                let mut mn = [_mm256_setzero_ps(); 2];
                for g in s * per_sb..(s + 1) * per_sb {
                    let b = _mm256_set1_ps(a.bsum[v * groups + g]);
                    let m = lanes(&p.min, g);
                    for h in 0..2 {
                        mn[h] = _mm256_fmadd_ps(m[h], b, mn[h]);
                    }
                }
                for h in 0..2 {
                    sb[h] = _mm256_sub_ps(sb[h], mn[h]);
                }
            }
            let d = _mm256_set1_ps(a.d[v * n_sb + s]);
            for h in 0..2 {
                acc[h] = _mm256_fmadd_ps(sb[h], d, acc[h]);
            }
        }
    }
    store(acc, out)
}

#[target_feature(enable = "avx2,fma,f16c")]
fn run<const NV: usize>(p: &Panel, a: &PanelActs, v0: usize, out: &mut [f32]) {
    match p.format.expect("checked") {
        PanelFormat::Q4_0 => q8_0_acts::<false, NV>(p, a, v0, out),
        PanelFormat::Q8_0 => q8_0_acts::<true, NV>(p, a, v0, out),
        PanelFormat::Q4_K | PanelFormat::Q5_K => q8_k_acts::<32, true, NV>(p, a, v0, out),
        PanelFormat::Q6_K => q8_k_acts::<16, false, NV>(p, a, v0, out),
    }
}

/// The table entry: shapes checked once, then 4, 2 and 1 vectors at a time (eight i32 and
/// eight f32 accumulators of two registers each fill the sixteen ymm registers at four).
pub(crate) fn gemm(p: &Panel, a: &PanelActs, v0: usize, nv: usize, out: &mut [f32]) {
    check(p, a, v0, nv, out);
    let mut j = 0;
    while j < nv {
        let o = &mut out[j * PANEL_ROWS..];
        let step = match nv - j {
            4.. => 4,
            2..=3 => 2,
            _ => 1,
        };
        // SAFETY: this entry is only in tables built for CPUs with AVX2, FMA and F16C (the
        // avx2 and avx512 paths), the features `run` is compiled for.
        unsafe {
            match step {
                4 => run::<4>(p, a, v0 + j, o),
                2 => run::<2>(p, a, v0 + j, o),
                _ => run::<1>(p, a, v0 + j, o),
            }
        }
        j += step;
    }
}
