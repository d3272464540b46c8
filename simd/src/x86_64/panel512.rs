//! AVX-512-VNNI panel kernels: sixteen weight rows in the lanes of one register, up to eight
//! activation rows per call (`crate::panel` has the layout and the arithmetic; its
//! `gemm_scalar` is the bit-identical twin).
//!
//! Per group of 32 weights, 16 rows and 8 vectors: 8 weight loads, 64 `vpdpbusd` with a
//! broadcast activation dword each, then per vector one convert, one multiply and one FMA
//! (Q8_0 activations) or one convert and one FMA (Q8_K): 4096 multiply-adds for about 88
//! vector instructions, against 256 for the 4×4 tile.

use std::arch::x86_64::*;

use crate::panel::{check, Panel, PanelActs, PanelFormat, PANEL_ROWS};

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

// ---------------------------------------------------------------- packing
//
// The 16 rows of a panel are `w_row` bytes apart, so one masked `vpgatherdd` with offsets
// `r · w_row + o` reads the same four bytes of every row: the interleaved word of one step
// for all rows at once (rows past `rows` are masked off and stay zero). The f16 block scales
// are gathered the same way and converted with `vcvtph2ps`; the K-quants' 6-bit sub-block
// scales are decoded per row with the scalar code (one per 32 weights).

/// Lane r = r · w_row, and the mask of the panel's rows.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn row_offsets(w_row: usize, rows: usize) -> (__m512i, __mmask16) {
    let r = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let off = _mm512_mullo_epi32(r, _mm512_set1_epi32(w_row as i32));
    (off, ((1u32 << rows) - 1) as __mmask16)
}

/// Bytes `o..o + 4` of each row as one word per lane.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn gather(w: &[u8], off: __m512i, mask: __mmask16, o: usize) -> __m512i {
    let idx = _mm512_add_epi32(off, _mm512_set1_epi32(o as i32));
    // SAFETY: `Panel::reset` asserted `w.len() == rows · w_row` and 16 · w_row < 2³¹; the
    // callers pass `o + 4 ≤ w_row`, so every unmasked lane (r < rows) reads 4 bytes at
    // r · w_row + o, inside `w`.
    unsafe {
        _mm512_mask_i32gather_epi32::<1>(_mm512_setzero_si512(), mask, idx, w.as_ptr().cast())
    }
}

/// The f16 at byte `o` of each row as f32 lanes.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn gather_f16(w: &[u8], off: __m512i, mask: __mmask16, o: usize) -> __m512 {
    // The 4 bytes from o hold the f16 in their low half (o + 4 ≤ w_row for every format:
    // the scale is followed by the quants).
    _mm512_cvtph_ps(_mm512_cvtepi32_epi16(gather(w, off, mask, o)))
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn put(q: &mut [u32], word: usize, v: __m512i) {
    let d = &mut q[word * PANEL_ROWS..(word + 1) * PANEL_ROWS];
    // SAFETY: a 64-byte store into exactly the 16 words of `d`.
    unsafe { _mm512_storeu_si512(d.as_mut_ptr().cast(), v) }
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn put_ps(v: &mut [f32], g: usize, x: __m512) {
    let d = &mut v[g * PANEL_ROWS..(g + 1) * PANEL_ROWS];
    // SAFETY: a 64-byte store into exactly the 16 floats of `d`.
    unsafe { _mm512_storeu_ps(d.as_mut_ptr(), x) }
}

/// How far ahead in each row the pack prefetches: the 16 rows are 16 streams, more than the
/// hardware prefetchers follow, and the gathers stalled on DRAM (a fifth of a 1.4B prefill).
const PACK_AHEAD: usize = 1024;

/// Prefetches every row's next cache lines up to byte `upto` of the row (`next`: the first
/// byte not yet prefetched).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn prefetch_rows(w: &[u8], w_row: usize, rows: usize, next: &mut usize, upto: usize) {
    let upto = upto.min(w_row);
    while *next < upto {
        for r in 0..rows {
            // A prefetch never faults; `wrapping_add` keeps the address arithmetic defined.
            let at = w.as_ptr().wrapping_add(r * w_row + *next);
            _mm_prefetch::<_MM_HINT_T0>(at.cast());
        }
        *next += 64;
    }
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn pack_avx512(p: &mut Panel, format: PanelFormat, k: usize, w: &[u8], w_row: usize, rows: usize) {
    p.reset(format, k, w, w_row, rows);
    let (off, mask) = row_offsets(w_row, rows);
    let low = _mm512_set1_epi32(0x0F0F_0F0F);
    let nib = |x: __m512i| _mm512_and_si512(x, low);
    let hi = |x: __m512i| _mm512_and_si512(_mm512_srli_epi32::<4>(x), low);
    let mut next = 0;
    let mut pf = |b: usize| prefetch_rows(w, w_row, rows, &mut next, b + PACK_AHEAD);
    match format {
        PanelFormat::Q4_0 => {
            for g in 0..k / 32 {
                let b = g * 18;
                pf(b);
                put_ps(&mut p.scale, g, gather_f16(w, off, mask, b));
                for s in 0..4 {
                    let x = gather(w, off, mask, b + 2 + 4 * s);
                    put(&mut p.q, 8 * g + s, nib(x));
                    put(&mut p.q, 8 * g + 4 + s, hi(x));
                }
            }
        }
        PanelFormat::Q8_0 => {
            let flip = _mm512_set1_epi32(0x8080_8080u32 as i32);
            for g in 0..k / 32 {
                let b = g * 34;
                pf(b);
                put_ps(&mut p.scale, g, gather_f16(w, off, mask, b));
                for s in 0..8 {
                    let x = gather(w, off, mask, b + 2 + 4 * s);
                    put(&mut p.q, 8 * g + s, _mm512_maskz_xor_epi32(mask, x, flip));
                }
            }
        }
        PanelFormat::Q4_K | PanelFormat::Q5_K => {
            let q5 = format == PanelFormat::Q5_K;
            let (size, qs_at) = if q5 { (176, 48) } else { (144, 16) };
            let bit = _mm512_set1_epi32(0x0101_0101);
            for s in 0..k / 256 {
                let b = s * size;
                pf(b);
                let qh: [__m512i; 8] = std::array::from_fn(|t| {
                    if q5 {
                        gather(w, off, mask, b + 16 + 4 * t)
                    } else {
                        _mm512_setzero_si512()
                    }
                });
                for i in 0..4 {
                    for (t, &h) in qh.iter().enumerate() {
                        let x = gather(w, off, mask, b + qs_at + 32 * i + 4 * t);
                        let (mut lo, mut up) = (nib(x), hi(x));
                        if q5 {
                            let h0 = _mm512_and_si512(
                                _mm512_srlv_epi32(h, _mm512_set1_epi32(2 * i as i32)),
                                bit,
                            );
                            let h1 = _mm512_and_si512(
                                _mm512_srlv_epi32(h, _mm512_set1_epi32(2 * i as i32 + 1)),
                                bit,
                            );
                            lo = _mm512_or_si512(lo, _mm512_slli_epi32::<4>(h0));
                            up = _mm512_or_si512(up, _mm512_slli_epi32::<4>(h1));
                        }
                        // Sub-blocks 2i (low nibbles) and 2i + 1 (high): words 8·j + t.
                        put(&mut p.q, 64 * s + 8 * (2 * i) + t, lo);
                        put(&mut p.q, 64 * s + 8 * (2 * i + 1) + t, up);
                    }
                }
            }
            p.k_scales(w, w_row);
        }
        PanelFormat::Q6_K => {
            let m2 = _mm512_set1_epi32(0x0303_0303);
            for s in 0..k / 256 {
                let b = s * 210;
                pf(b);
                for n in 0..2 {
                    let (ql, qh) = (b + 64 * n, b + 128 + 32 * n);
                    for t in 0..8 {
                        let a = gather(w, off, mask, ql + 4 * t);
                        let c = gather(w, off, mask, ql + 32 + 4 * t);
                        let h = gather(w, off, mask, qh + 4 * t);
                        let hb = |sh: u32| {
                            let x = _mm512_srlv_epi32(h, _mm512_set1_epi32(sh as i32));
                            _mm512_slli_epi32::<4>(_mm512_and_si512(x, m2))
                        };
                        // Elements 128n + 4t + {0, 32, 64, 96}: words (128n + 4t)/4 + {0, 8, 16, 24}.
                        let wd = 64 * s + 32 * n + t;
                        put(&mut p.q, wd, _mm512_or_si512(nib(a), hb(0)));
                        put(&mut p.q, wd + 8, _mm512_or_si512(nib(c), hb(2)));
                        put(&mut p.q, wd + 16, _mm512_or_si512(hi(a), hb(4)));
                        put(&mut p.q, wd + 24, _mm512_or_si512(hi(c), hb(6)));
                    }
                }
            }
            p.k_scales(w, w_row);
        }
    }
}

/// The table's pack entry.
pub(crate) fn pack(
    p: &mut Panel,
    format: PanelFormat,
    k: usize,
    w: &[u8],
    w_row: usize,
    rows: usize,
) {
    // SAFETY: this entry is only in the table `avx512::kernels` builds, which its caller
    // guarantees runs on a CPU with every feature `pack_avx512` is compiled for.
    unsafe { pack_avx512(p, format, k, w, w_row, rows) }
}
