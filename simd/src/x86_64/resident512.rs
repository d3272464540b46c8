//! AVX-512-VNNI resident-panel kernels (`crate::resident` has the layout and the arithmetic;
//! its `gemm_scalar` is the bit-identical twin).
//!
//! Per group of 32 weights and 16 rows: 4 (Q4_0, Q4_K) or 8 (Q8_0) aligned 64-byte loads, the
//! nibbles split with one AND and one shift + AND per line (Q6_K: 3 lines per 16 weights, the
//! 2-bit tops merged in), then per vector one `vpdpbusd` per four weights with a broadcast
//! activation dword, and one convert + FMA (plus the scale product) — 512 multiply-adds for
//! about 25 instructions at one vector, where the row-at-a-time Q4_0 GEMV needs about 110.

use std::arch::x86_64::*;

use crate::panel::{PanelActs, PanelFormat, PANEL_ROWS};
use crate::resident::{check, Geometry, Line, Resident};

/// Format tags for the const generic.
const Q4_0: u8 = 0;
const Q8_0: u8 = 1;
const Q4_K: u8 = 2;
const Q6_K: u8 = 3;

/// Bytes ahead to prefetch: 4 KiB (the distance the row GEMV found best, see
/// `prefetch_rows_ahead`). Issued per group as it is read: a K-quant unit's 32–48 prefetches
/// in one burst made its decode slower than the row kernels (out-of-cache A/B, 5632 × 2048,
/// n = 1: Q4_K 0.7× → 1.0–1.2×, Q6_K 0.6× → 1.0–1.1×, load 9).
const AHEAD_BYTES: usize = 4096;

/// The activation dword `a.q[at..at + 4]` broadcast to every lane.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn bcast(a: &PanelActs, at: usize) -> __m512i {
    debug_assert!(at + 4 <= a.q.len());
    // SAFETY: callers pass at = v·k + (offset of a word inside the row) with v < a.n (`check`
    // asserted a.q.len() == a.n·k), so the 4 bytes are inside `a.q` (read unaligned).
    _mm512_set1_epi32(unsafe { a.q.as_ptr().add(at).cast::<i32>().read_unaligned() })
}

/// Line `i` of `l` as a vector.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn line(l: &[Line], i: usize) -> __m512i {
    let l: &Line = &l[i];
    // SAFETY: an aligned 64-byte load of exactly one line (`Line` is 64-aligned).
    unsafe { _mm512_load_si512(l.0.as_ptr().cast()) }
}

/// 16 bytes of `m` from `at`, widened to i32 lanes (signed for Q6_K's scales) and to f32.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn bytes16<const SIGNED: bool>(m: &[u8], at: usize) -> __m512 {
    let s = &m[at..at + 16];
    // SAFETY: a 16-byte load of exactly `s`.
    let x = unsafe { _mm_loadu_si128(s.as_ptr().cast()) };
    _mm512_cvtepi32_ps(if SIGNED {
        _mm512_cvtepi8_epi32(x)
    } else {
        _mm512_cvtepu8_epi32(x)
    })
}

/// The 16 f16 at `slot` of a unit's meta as f32 lanes.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn f16x16(m: &[u8], slot: usize) -> __m512 {
    let s = &m[32 * slot..32 * slot + 32];
    // SAFETY: a 32-byte load of exactly `s`.
    _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(s.as_ptr().cast()) })
}

/// The unsigned weight words of one group (lines `l`): `u[st]` = weights 4·st .. 4·st + 4 of
/// every row (8 words; Q6_K fills 4).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn group_words<const F: u8>(l: &[Line]) -> [__m512i; 8] {
    let low = _mm512_set1_epi8(0x0F);
    let mut u = [_mm512_setzero_si512(); 8];
    match F {
        Q4_0 | Q4_K => {
            for c in 0..4 {
                let x = line(l, c);
                u[c] = _mm512_and_si512(x, low);
                u[c + 4] = _mm512_and_si512(_mm512_srli_epi16(x, 4), low);
            }
        }
        Q8_0 => {
            for (st, u) in u.iter_mut().enumerate() {
                *u = line(l, st);
            }
        }
        _ => {
            let (x0, x1, h) = (line(l, 0), line(l, 1), line(l, 2));
            let top = |mask: i8| _mm512_and_si512(h, _mm512_set1_epi8(mask));
            u[0] = _mm512_or_si512(_mm512_and_si512(x0, low), _mm512_slli_epi16(top(0x03), 4));
            u[1] = _mm512_or_si512(
                _mm512_and_si512(_mm512_srli_epi16(x0, 4), low),
                _mm512_slli_epi16(top(0x0C), 2),
            );
            u[2] = _mm512_or_si512(_mm512_and_si512(x1, low), top(0x30));
            u[3] = _mm512_or_si512(
                _mm512_and_si512(_mm512_srli_epi16(x1, 4), low),
                _mm512_srli_epi16(top(-0x40), 2),
            );
        }
    }
    u
}

/// `corr + Σ u·a` of one group for the vector whose group starts at `a.q[base]`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn group_sum<const WORDS: usize>(
    u: &[__m512i; 8],
    a: &PanelActs,
    base: usize,
    corr: i32,
) -> __m512i {
    let mut ia = _mm512_set1_epi32(corr);
    for (st, &u) in u.iter().take(WORDS).enumerate() {
        ia = _mm512_dpbusd_epi32(ia, u, bcast(a, base + 4 * st));
    }
    ia
}

/// Q4_0 / Q8_0 (one block per unit; [`run`] hands them here): the same arithmetic, with the
/// scale and activation addressing done on raw pointers — a block is only 256 or 512 bytes,
/// and the slice bounds checks per scale and activation were a visible share of the work.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn run_blocks<const F: u8, const NV: usize>(
    w: &Resident,
    p: usize,
    a: &PanelActs,
    v0: usize,
    out: &mut [f32],
) {
    let k = w.k();
    let blocks = k / 32;
    let (q, meta) = w.panel(p);
    let lpb = if F == Q4_0 { 4 } else { 8 };
    assert!(q.len() == blocks * lpb && meta.len() == blocks * 32);
    assert!((v0 + NV) * k <= a.q.len() && (v0 + NV) * blocks <= a.corr.len().min(a.d.len()));
    let (qp, mp) = (q.as_ptr(), meta.as_ptr());
    let (ap, cp, dp) = (a.q.as_ptr(), a.corr.as_ptr(), a.d.as_ptr());
    let mut acc = [_mm512_setzero_ps(); NV];
    for s in 0..blocks {
        let lines = qp.wrapping_add(s * lpb);
        let pre = lines.cast::<i8>().wrapping_add(AHEAD_BYTES);
        for i in 0..lpb {
            // A prefetch never faults; past the panel it reads the next one.
            _mm_prefetch::<_MM_HINT_T0>(pre.wrapping_add(64 * i));
        }
        // SAFETY: the asserts above bound s < blocks lines / meta bytes of this panel and
        // activation rows v0..v0 + NV; this reads block s's 32 bytes of f16 scales unaligned.
        let d = _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(mp.add(32 * s).cast()) });
        let u = group_words::<F>(&q[s * lpb..(s + 1) * lpb]);
        for (j, acc) in acc.iter_mut().enumerate() {
            let v = v0 + j;
            // SAFETY: v < v0 + NV and s < blocks: inside a.q / a.corr (asserted).
            let act = unsafe { ap.add(v * k + 32 * s) };
            // SAFETY: as above.
            let mut ia = _mm512_set1_epi32(unsafe { *cp.add(v * blocks + s) });
            for (st, &u) in u.iter().enumerate() {
                // SAFETY: 4 of the block's 32 quants at `act` (read unaligned).
                let x = unsafe { act.add(4 * st).cast::<i32>().read_unaligned() };
                ia = _mm512_dpbusd_epi32(ia, u, _mm512_set1_epi32(x));
            }
            // SAFETY: v·blocks + s < a.d.len() (asserted).
            let sc = _mm512_mul_ps(d, _mm512_set1_ps(unsafe { *dp.add(v * blocks + s) }));
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), sc, *acc);
        }
    }
    for (j, acc) in acc.into_iter().enumerate() {
        let o = &mut out[j * PANEL_ROWS..(j + 1) * PANEL_ROWS];
        // SAFETY: a 64-byte store into exactly the 16 floats of `o`.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), acc) }
    }
}

/// One call for `NV` vectors of format `F`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn run<const F: u8, const NV: usize>(
    w: &Resident,
    p: usize,
    a: &PanelActs,
    v0: usize,
    out: &mut [f32],
) {
    if F == Q4_0 || F == Q8_0 {
        return run_blocks::<F, NV>(w, p, a, v0, out);
    }
    let geo = Geometry::of(w.format());
    let k = w.k();
    let groups = k / geo.group;
    let (q, meta) = w.panel(p);
    let (ul, gl_lines) = (geo.unit_lines(), geo.lines);
    let mut acc = [_mm512_setzero_ps(); NV];
    for (s, m) in meta.chunks_exact(geo.meta).enumerate() {
        let lines = &q[s * ul..(s + 1) * ul];
        let d = f16x16(m, 0);
        // Software prefetch `ahead` bytes past each group as it is read (spread like the
        // loads, not in bursts). A prefetch never faults; past the panel it reads the next
        // one, which this thread usually takes next.
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
        let gs = geo.groups();
        let mut sb = [_mm512_setzero_ps(); NV];
        for gl in 0..gs {
            prefetch(gl);
            let g = s * gs + gl;
            let u = group_words::<F>(&lines[gl * gl_lines..(gl + 1) * gl_lines]);
            let sc = if F == Q4_K {
                _mm512_mul_ps(d, bytes16::<false>(m, 64 + 16 * gl))
            } else {
                _mm512_mul_ps(d, bytes16::<true>(m, 32 + 16 * gl))
            };
            for (j, sb) in sb.iter_mut().enumerate() {
                let v = v0 + j;
                let base = v * k + g * geo.group;
                let ia = if F == Q4_K {
                    group_sum::<8>(&u, a, base, a.corr[v * groups + g])
                } else {
                    group_sum::<4>(&u, a, base, a.corr[v * groups + g])
                };
                *sb = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), sc, *sb);
            }
        }
        if F == Q4_K {
            let dmin = f16x16(m, 1);
            let mut mn = [_mm512_setzero_ps(); NV];
            for gl in 0..gs {
                let min = _mm512_mul_ps(dmin, bytes16::<false>(m, 192 + 16 * gl));
                for (j, mn) in mn.iter_mut().enumerate() {
                    let b = _mm512_set1_ps(a.bsum[(v0 + j) * groups + s * gs + gl]);
                    *mn = _mm512_fmadd_ps(min, b, *mn);
                }
            }
            for (sb, mn) in sb.iter_mut().zip(mn) {
                *sb = _mm512_sub_ps(*sb, mn);
            }
        }
        for (j, (acc, sb)) in acc.iter_mut().zip(sb).enumerate() {
            let da = _mm512_set1_ps(a.d[(v0 + j) * (k / 256) + s]);
            *acc = _mm512_fmadd_ps(sb, da, *acc);
        }
    }
    for (j, acc) in acc.into_iter().enumerate() {
        let o = &mut out[j * PANEL_ROWS..(j + 1) * PANEL_ROWS];
        // SAFETY: a 64-byte store into exactly the 16 floats of `o`.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), acc) }
    }
}

/// `run` for `nv` ∈ {1, 2, 4, 8} vectors of format `F`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn run_nv<const F: u8>(w: &Resident, p: usize, a: &PanelActs, v0: usize, nv: usize, o: &mut [f32]) {
    match nv {
        8 => run::<F, 8>(w, p, a, v0, o),
        4 => run::<F, 4>(w, p, a, v0, o),
        2 => run::<F, 2>(w, p, a, v0, o),
        _ => run::<F, 1>(w, p, a, v0, o),
    }
}

/// The table entry: shapes checked once, then 8 (4 for the K-quants), 4, 2 and 1 vectors at a
/// time.
pub(crate) fn gemm(w: &Resident, p: usize, a: &PanelActs, v0: usize, nv: usize, out: &mut [f32]) {
    check(w, p, a, v0, nv, out);
    let f = w.format();
    let max = if f.q8k() { 4 } else { 8 };
    let mut j = 0;
    while j < nv {
        let step = match nv - j {
            n if n >= 8 && max == 8 => 8,
            4.. => 4,
            2..=3 => 2,
            _ => 1,
        };
        let o = &mut out[j * PANEL_ROWS..];
        // SAFETY: this entry is only in the table `avx512::kernels` builds, which its caller
        // guarantees runs on a CPU with every feature `run` is compiled for.
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
