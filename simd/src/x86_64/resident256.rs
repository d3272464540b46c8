//! AVX2 resident-panel kernels (`crate::resident` has the layout and the arithmetic; its
//! `gemm_scalar` is the bit-identical twin): a 64-byte line is two 256-bit registers, rows 0–7
//! and 8–15, eight i32 lanes each. Without VNNI the four-byte sums are `vpmaddubsw` (u8·i8
//! pairs → i16) then `vpmaddwd` by 1, as in `panel256`; the i16 stage is kept free of overflow
//! (activations are in −128..=127):
//!
//! - Q4_0 / Q4_K (u ≤ 15): a pair is at most 2·15·128 = 3840 in magnitude, so all 8 steps of a
//!   group add in i16 (≤ 30720) before one widening per group, half and vector;
//! - Q6_K (u ≤ 63): a pair is at most 16128, two steps add in i16 (≤ 32256);
//! - Q8_0 stores `u = w + 128` (up to 255): the signed weights are recovered (`u ^ 0x80`) and
//!   multiplied as |w| · (a with w's sign), exact for Q8_0 activations (|a| ≤ 127, as
//!   `quantize_row_q8_0` makes them); the sum then starts from 0 instead of `corr` = −128·Σa —
//!   the same integer.
//!
//! The float operations are the contract's, in its order, lane by lane.

use std::arch::x86_64::*;

use crate::panel::{PanelActs, PanelFormat, PANEL_ROWS};
use crate::resident::{check, Geometry, Line, Resident};

/// Format tags for the const generic.
const Q4_0: u8 = 0;
const Q8_0: u8 = 1;
const Q4_K: u8 = 2;
const Q6_K: u8 = 3;

/// Bytes ahead to prefetch, issued per group as it is read (as in `resident512`).
const AHEAD_BYTES: usize = 4096;

/// Two registers: rows 0–7 and 8–15.
type Rows = [__m256i; 2];
type RowsF = [__m256; 2];

/// The activation dword `a.q[at..at + 4]` broadcast to every lane.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn bcast(a: &PanelActs, at: usize) -> __m256i {
    debug_assert!(at + 4 <= a.q.len());
    // SAFETY: callers pass at = v·k + (offset of a word inside the row) with v < a.n (`check`
    // asserted a.q.len() == a.n·k), so the 4 bytes are inside `a.q` (read unaligned). Not a
    // checked slice: its bounds tests were 4 compares and branches per broadcast.
    _mm256_set1_epi32(unsafe { a.q.as_ptr().add(at).cast::<i32>().read_unaligned() })
}

/// Line `i` of `l` as two registers.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn line(l: &[Line], i: usize) -> Rows {
    let p = l[i].0.as_ptr();
    // SAFETY: two aligned 32-byte loads covering exactly one line (`Line` is 64-aligned).
    unsafe {
        [
            _mm256_load_si256(p.cast()),
            _mm256_load_si256(p.add(32).cast()),
        ]
    }
}

/// 16 bytes of `m` from `at`, widened to i32 lanes (signed for Q6_K's scales) and to f32.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn bytes16<const SIGNED: bool>(m: &[u8], at: usize) -> RowsF {
    let s = &m[at..at + 16];
    // SAFETY: two 8-byte loads covering exactly `s`.
    let (x0, x1) = unsafe {
        (
            _mm_loadl_epi64(s.as_ptr().cast()),
            _mm_loadl_epi64(s[8..].as_ptr().cast()),
        )
    };
    [x0, x1].map(|x| {
        _mm256_cvtepi32_ps(if SIGNED {
            _mm256_cvtepi8_epi32(x)
        } else {
            _mm256_cvtepu8_epi32(x)
        })
    })
}

/// The 16 f16 at `slot` of a unit's meta as f32 lanes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn f16x16(m: &[u8], slot: usize) -> RowsF {
    let s = &m[32 * slot..32 * slot + 32];
    // SAFETY: two 16-byte loads covering exactly `s`.
    unsafe {
        [
            _mm256_cvtph_ps(_mm_loadu_si128(s.as_ptr().cast())),
            _mm256_cvtph_ps(_mm_loadu_si128(s[16..].as_ptr().cast())),
        ]
    }
}

/// `corr + Σ u·a` of one group (lines `l`) for `NV` vectors; vector `j`'s group starts at
/// `a.q[base[j]]` and its correction is `corr[j]`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn group_sums<const F: u8, const NV: usize>(
    l: &[Line],
    a: &PanelActs,
    base: [usize; NV],
    corr: [i32; NV],
) -> [Rows; NV] {
    let ones = _mm256_set1_epi16(1);
    let low = _mm256_set1_epi8(0x0F);
    let widen = |s16: __m256i| _mm256_madd_epi16(s16, ones);
    match F {
        Q4_0 | Q4_K => {
            // Line c: weights 4c..4c + 4 (low nibbles) and 16 + 4c.. (high nibbles).
            let mut s16 = [[_mm256_setzero_si256(); 2]; NV];
            for c in 0..4 {
                let x = line(l, c);
                let lo = x.map(|x| _mm256_and_si256(x, low));
                let hi = x.map(|x| _mm256_and_si256(_mm256_srli_epi16(x, 4), low));
                for (j, s) in s16.iter_mut().enumerate() {
                    let (a0, a1) = (bcast(a, base[j] + 4 * c), bcast(a, base[j] + 16 + 4 * c));
                    for h in 0..2 {
                        let p = _mm256_add_epi16(
                            _mm256_maddubs_epi16(lo[h], a0),
                            _mm256_maddubs_epi16(hi[h], a1),
                        );
                        s[h] = _mm256_add_epi16(s[h], p);
                    }
                }
            }
            let mut ia = [[_mm256_setzero_si256(); 2]; NV];
            for j in 0..NV {
                for h in 0..2 {
                    ia[j][h] = _mm256_add_epi32(_mm256_set1_epi32(corr[j]), widen(s16[j][h]));
                }
            }
            ia
        }
        Q8_0 => {
            let flip = _mm256_set1_epi8(-128);
            let mut ia = [[_mm256_setzero_si256(); 2]; NV];
            for st in 0..8 {
                let w = line(l, st).map(|u| _mm256_xor_si256(u, flip));
                let aw = w.map(|w| _mm256_abs_epi8(w));
                for (j, ia) in ia.iter_mut().enumerate() {
                    let x = bcast(a, base[j] + 4 * st);
                    for h in 0..2 {
                        let p = _mm256_maddubs_epi16(aw[h], _mm256_sign_epi8(x, w[h]));
                        ia[h] = _mm256_add_epi32(ia[h], widen(p));
                    }
                }
            }
            ia
        }
        _ => {
            // Q6_K: words 0, 1 from line 0's nibbles, 2, 3 from line 1's, 2-bit tops in line 2.
            let (x0, x1, t) = (line(l, 0), line(l, 1), line(l, 2));
            let mut u = [[_mm256_setzero_si256(); 2]; 4];
            for h in 0..2 {
                let top = |mask: i8| _mm256_and_si256(t[h], _mm256_set1_epi8(mask));
                u[0][h] = _mm256_or_si256(
                    _mm256_and_si256(x0[h], low),
                    _mm256_slli_epi16(top(0x03), 4),
                );
                u[1][h] = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(x0[h], 4), low),
                    _mm256_slli_epi16(top(0x0C), 2),
                );
                u[2][h] = _mm256_or_si256(_mm256_and_si256(x1[h], low), top(0x30));
                u[3][h] = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(x1[h], 4), low),
                    _mm256_srli_epi16(top(-0x40), 2),
                );
            }
            let mut ia = [[_mm256_setzero_si256(); 2]; NV];
            for (j, ia) in ia.iter_mut().enumerate() {
                let x = [0, 1, 2, 3].map(|st| bcast(a, base[j] + 4 * st));
                for h in 0..2 {
                    let p01 = _mm256_add_epi16(
                        _mm256_maddubs_epi16(u[0][h], x[0]),
                        _mm256_maddubs_epi16(u[1][h], x[1]),
                    );
                    let p23 = _mm256_add_epi16(
                        _mm256_maddubs_epi16(u[2][h], x[2]),
                        _mm256_maddubs_epi16(u[3][h], x[3]),
                    );
                    ia[h] = _mm256_add_epi32(
                        _mm256_add_epi32(_mm256_set1_epi32(corr[j]), widen(p01)),
                        widen(p23),
                    );
                }
            }
            ia
        }
    }
}

/// `fma(f32(ia), sc, acc)` on both halves.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn fma_i(ia: Rows, sc: RowsF, acc: &mut RowsF) {
    for h in 0..2 {
        acc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[h]), sc[h], acc[h]);
    }
}

/// One call for `NV` vectors of format `F`.
#[target_feature(enable = "avx2,fma,f16c")]
fn run<const F: u8, const NV: usize>(
    w: &Resident,
    p: usize,
    a: &PanelActs,
    v0: usize,
    out: &mut [f32],
) {
    let geo = Geometry::of(w.format());
    let k = w.k();
    let groups = k / geo.group;
    let (q, meta) = w.panel(p);
    let (ul, gl_lines) = (geo.unit_lines(), geo.lines);
    let mut acc = [[_mm256_setzero_ps(); 2]; NV];
    for (s, m) in meta.chunks_exact(geo.meta).enumerate() {
        let lines = &q[s * ul..(s + 1) * ul];
        let d = f16x16(m, 0);
        // Software prefetch `AHEAD_BYTES` past each group as it is read. A prefetch never
        // faults; past the panel it reads the next one, which this thread usually takes next.
        let prefetch = |gl: usize| {
            let pre = lines
                .as_ptr()
                .wrapping_add(gl * gl_lines)
                .cast::<i8>()
                .wrapping_add(AHEAD_BYTES);
            for i in 0..gl_lines {
                _mm_prefetch::<_MM_HINT_T0>(pre.wrapping_add(64 * i));
            }
        };
        if F == Q4_0 || F == Q8_0 {
            prefetch(0);
            let base = std::array::from_fn(|j| (v0 + j) * k + 32 * s);
            let corr = std::array::from_fn(|j| {
                if F == Q8_0 {
                    0
                } else {
                    a.corr[(v0 + j) * groups + s]
                }
            });
            let ia = group_sums::<F, NV>(lines, a, base, corr);
            for (j, (acc, ia)) in acc.iter_mut().zip(ia).enumerate() {
                let da = _mm256_set1_ps(a.d[(v0 + j) * groups + s]);
                fma_i(ia, d.map(|d| _mm256_mul_ps(d, da)), acc);
            }
            continue;
        }
        let gs = geo.groups();
        let mut sb = [[_mm256_setzero_ps(); 2]; NV];
        for gl in 0..gs {
            prefetch(gl);
            let g = s * gs + gl;
            let sc = if F == Q4_K {
                bytes16::<false>(m, 64 + 16 * gl)
            } else {
                bytes16::<true>(m, 32 + 16 * gl)
            };
            let sc = [_mm256_mul_ps(d[0], sc[0]), _mm256_mul_ps(d[1], sc[1])];
            let base = std::array::from_fn(|j| (v0 + j) * k + g * geo.group);
            let corr = std::array::from_fn(|j| a.corr[(v0 + j) * groups + g]);
            let l = &lines[gl * gl_lines..(gl + 1) * gl_lines];
            let ia = group_sums::<F, NV>(l, a, base, corr);
            for (sb, ia) in sb.iter_mut().zip(ia) {
                fma_i(ia, sc, sb);
            }
        }
        if F == Q4_K {
            let dmin = f16x16(m, 1);
            let mut mn = [[_mm256_setzero_ps(); 2]; NV];
            for gl in 0..gs {
                let mb = bytes16::<false>(m, 192 + 16 * gl);
                let min = [_mm256_mul_ps(dmin[0], mb[0]), _mm256_mul_ps(dmin[1], mb[1])];
                for (j, mn) in mn.iter_mut().enumerate() {
                    let b = _mm256_set1_ps(a.bsum[(v0 + j) * groups + s * gs + gl]);
                    for h in 0..2 {
                        mn[h] = _mm256_fmadd_ps(min[h], b, mn[h]);
                    }
                }
            }
            for (sb, mn) in sb.iter_mut().zip(mn) {
                for h in 0..2 {
                    sb[h] = _mm256_sub_ps(sb[h], mn[h]);
                }
            }
        }
        for (j, (acc, sb)) in acc.iter_mut().zip(sb).enumerate() {
            let da = _mm256_set1_ps(a.d[(v0 + j) * (k / 256) + s]);
            for h in 0..2 {
                acc[h] = _mm256_fmadd_ps(sb[h], da, acc[h]);
            }
        }
    }
    for (j, acc) in acc.into_iter().enumerate() {
        let o = &mut out[j * PANEL_ROWS..(j + 1) * PANEL_ROWS];
        // SAFETY: two 32-byte stores into exactly the 16 floats of `o`.
        unsafe {
            _mm256_storeu_ps(o.as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(o[8..].as_mut_ptr(), acc[1]);
        }
    }
}

/// `run` for `nv` ∈ {1, 2, 4} vectors of format `F`.
#[target_feature(enable = "avx2,fma,f16c")]
fn run_nv<const F: u8>(w: &Resident, p: usize, a: &PanelActs, v0: usize, nv: usize, o: &mut [f32]) {
    match nv {
        4 => run::<F, 4>(w, p, a, v0, o),
        2 => run::<F, 2>(w, p, a, v0, o),
        _ => run::<F, 1>(w, p, a, v0, o),
    }
}

/// The table entry: shapes checked once, then 4, 2 and 1 vectors at a time (four vectors'
/// accumulators of two registers each already fill most of the sixteen ymm registers).
pub(crate) fn gemm(w: &Resident, p: usize, a: &PanelActs, v0: usize, nv: usize, out: &mut [f32]) {
    check(w, p, a, v0, nv, out);
    let f = w.format();
    let mut j = 0;
    while j < nv {
        let step = match nv - j {
            4.. => 4,
            2..=3 => 2,
            _ => 1,
        };
        let o = &mut out[j * PANEL_ROWS..];
        // SAFETY: this entry is only in tables built for CPUs with AVX2, FMA and F16C (the
        // avx2 path), the features `run` is compiled for.
        unsafe {
            match f {
                PanelFormat::Q4_0 => run_nv::<Q4_0>(w, p, a, v0 + j, step, o),
                PanelFormat::Q8_0 => run_nv::<Q8_0>(w, p, a, v0 + j, step, o),
                PanelFormat::Q4_K => run_nv::<Q4_K>(w, p, a, v0 + j, step, o),
                PanelFormat::Q6_K => run_nv::<Q6_K>(w, p, a, v0 + j, step, o),
                PanelFormat::Q5_K => unreachable!("`check` refuses Q5_K"),
            }
        }
        j += step;
    }
}
