//! AVX-512-VNNI panel kernels: sixteen weight rows in the lanes of one register, up to eight
//! activation rows per call (`crate::panel` has the layout and the arithmetic; its
//! `gemm_scalar` is the bit-identical twin).
//!
//! Per group of 32 weights, 16 rows and 8 vectors: 8 weight loads, 64 `vpdpbusd` with a
//! broadcast activation dword each, then per vector one convert, one multiply and one FMA
//! (Q8_0 activations) or one convert and one FMA (Q8_K): 4096 multiply-adds for about 88
//! vector instructions, against 256 for the 4×4 tile.

use std::arch::x86_64::*;

use crate::panel::{check, Panel, PanelActs, PANEL_ROWS};

/// Group sums of `NV` vectors for one group `g` of `G` weights: `corr + Σ u·a` per row lane.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn group_sums<const G: usize, const NV: usize>(
    p: &Panel,
    a: &PanelActs,
    v0: usize,
    g: usize,
    groups: usize,
) -> [__m512i; NV] {
    let k = p.k;
    let mut ia: [__m512i; NV] =
        std::array::from_fn(|j| _mm512_set1_epi32(a.corr[(v0 + j) * groups + g]));
    for st in 0..G / 4 {
        let wo = (g * G / 4 + st) * PANEL_ROWS;
        // SAFETY: `check` asserted `p.q.len() == groups · G/4 · 16` and g < groups, st < G/4,
        // so the 16 words at `wo` are inside `p.q`.
        let w = unsafe { _mm512_loadu_si512(p.q.as_ptr().add(wo).cast()) };
        for (j, acc) in ia.iter_mut().enumerate() {
            let ao = (v0 + j) * k + g * G + 4 * st;
            // SAFETY: `check` asserted `a.q.len() == a.n · k` and v0 + j < a.n; g·G + 4·st + 4
            // ≤ k, so the 4 bytes at `ao` are inside `a.q` (read unaligned).
            let x = unsafe { a.q.as_ptr().add(ao).cast::<i32>().read_unaligned() };
            *acc = _mm512_dpbusd_epi32(*acc, w, _mm512_set1_epi32(x));
        }
    }
    ia
}

/// The 16 lanes of `p.scale` / `p.min` for group `g`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn lanes(v: &[f32], g: usize) -> __m512 {
    let s = &v[g * PANEL_ROWS..(g + 1) * PANEL_ROWS];
    // SAFETY: a 64-byte load of exactly the 16 floats of `s`.
    unsafe { _mm512_loadu_ps(s.as_ptr()) }
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn store<const NV: usize>(acc: [__m512; NV], out: &mut [f32]) {
    for (j, a) in acc.into_iter().enumerate() {
        let o = &mut out[j * PANEL_ROWS..(j + 1) * PANEL_ROWS];
        // SAFETY: a 64-byte store into exactly the 16 floats of `o`.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), a) }
    }
}

/// Q4_0 / Q8_0 weights (groups of 32) against Q8_0 activations.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q8_0_acts<const NV: usize>(p: &Panel, a: &PanelActs, v0: usize, out: &mut [f32]) {
    let groups = p.k / 32;
    let mut acc = [_mm512_setzero_ps(); NV];
    for g in 0..groups {
        let ia = group_sums::<32, NV>(p, a, v0, g, groups);
        let s = lanes(&p.scale, g);
        for (j, (acc, ia)) in acc.iter_mut().zip(ia).enumerate() {
            let sc = _mm512_mul_ps(s, _mm512_set1_ps(a.d[(v0 + j) * groups + g]));
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), sc, *acc);
        }
    }
    store(acc, out)
}

/// K-quant weights (groups of `G`; `MINS` for Q4_K / Q5_K) against Q8_K activations.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q8_k_acts<const G: usize, const MINS: bool, const NV: usize>(
    p: &Panel,
    a: &PanelActs,
    v0: usize,
    out: &mut [f32],
) {
    let groups = p.k / G;
    let (per_sb, n_sb) = (256 / G, p.k / 256);
    let mut acc = [_mm512_setzero_ps(); NV];
    for s in 0..n_sb {
        let mut sb = [_mm512_setzero_ps(); NV];
        for g in s * per_sb..(s + 1) * per_sb {
            let ia = group_sums::<G, NV>(p, a, v0, g, groups);
            let sc = lanes(&p.scale, g);
            for (sb, ia) in sb.iter_mut().zip(ia) {
                *sb = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), sc, *sb);
            }
        }
        for (j, (acc, sb)) in acc.iter_mut().zip(sb).enumerate() {
            let v = v0 + j;
            let mut sb = sb;
            if MINS {
                let mut mn = _mm512_setzero_ps();
                for g in s * per_sb..(s + 1) * per_sb {
                    let b = _mm512_set1_ps(a.bsum[v * groups + g]);
                    mn = _mm512_fmadd_ps(lanes(&p.min, g), b, mn);
                }
                sb = _mm512_sub_ps(sb, mn);
            }
            *acc = _mm512_fmadd_ps(sb, _mm512_set1_ps(a.d[v * n_sb + s]), *acc);
        }
    }
    store(acc, out)
}

/// One call for `NV` vectors, by format.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn run<const NV: usize>(p: &Panel, a: &PanelActs, v0: usize, out: &mut [f32]) {
    use crate::panel::PanelFormat::*;
    match p.format.expect("checked") {
        Q4_0 | Q8_0 => q8_0_acts::<NV>(p, a, v0, out),
        Q4_K | Q5_K => q8_k_acts::<32, true, NV>(p, a, v0, out),
        Q6_K => q8_k_acts::<16, false, NV>(p, a, v0, out),
    }
}

/// The table entry: shapes checked once, then 8, 4, 2 and 1 vectors at a time.
pub(crate) fn gemm(p: &Panel, a: &PanelActs, v0: usize, nv: usize, out: &mut [f32]) {
    check(p, a, v0, nv, out);
    let mut j = 0;
    while j < nv {
        let o = &mut out[j * PANEL_ROWS..];
        let step = match nv - j {
            8.. => 8,
            4..=7 => 4,
            2..=3 => 2,
            _ => 1,
        };
        // SAFETY: this entry is only in the table `avx512::kernels` builds, which its caller
        // guarantees runs on a CPU with every feature `run` is compiled for.
        unsafe {
            match step {
                8 => run::<8>(p, a, v0 + j, o),
                4 => run::<4>(p, a, v0 + j, o),
                2 => run::<2>(p, a, v0 + j, o),
                _ => run::<1>(p, a, v0 + j, o),
            }
        }
        j += step;
    }
}
