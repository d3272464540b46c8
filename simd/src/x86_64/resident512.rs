//! AVX-512-VNNI resident-panel kernels (`crate::resident` has the layout and the arithmetic;
//! its `gemm_scalar` is the bit-identical twin).
//!
//! Per block of 32 weights and 16 rows: 4 (Q4_0) or 8 (Q8_0) aligned 64-byte loads, the Q4_0
//! nibbles split with one AND and one shift + AND per line, then per vector 8 `vpdpbusd` with a
//! broadcast activation dword, and one convert, one multiply and one FMA — 512 multiply-adds
//! for about 25 instructions at one vector, where the row-at-a-time GEMV needs about 110.

use std::arch::x86_64::*;

use crate::panel::{PanelActs, PanelFormat, PANEL_ROWS};
use crate::resident::{check, lines_per_block, Line, Resident};

/// Blocks ahead to prefetch: 4 KiB of Q4_0 (the distance the row GEMV found best, see
/// `prefetch_rows_ahead`), 8 KiB of Q8_0.
const AHEAD: usize = 16;

/// The activation dword `a.q[at..at + 4]` broadcast to every lane.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn bcast(a: &PanelActs, at: usize) -> __m512i {
    debug_assert!(at + 4 <= a.q.len());
    // SAFETY: callers pass at = v·k + 32·g + 4·s with v < a.n, g < k/32, s < 8 (`check`
    // asserted a.q.len() == a.n·k), so the 4 bytes are inside `a.q` (read unaligned).
    _mm512_set1_epi32(unsafe { a.q.as_ptr().add(at).cast::<i32>().read_unaligned() })
}

/// One call for `NV` vectors.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn run<const Q4: bool, const NV: usize>(
    w: &Resident,
    p: usize,
    a: &PanelActs,
    v0: usize,
    out: &mut [f32],
) {
    let k = w.k();
    let blocks = k / 32;
    let (q, scale) = w.panel(p);
    let lpb = if Q4 { 4 } else { 8 };
    debug_assert_eq!(q.len(), blocks * lpb);
    let low = _mm512_set1_epi8(0x0F);
    let mut acc = [_mm512_setzero_ps(); NV];
    for g in 0..blocks {
        let line = |i: usize| -> __m512i {
            let l: &Line = &q[g * lpb + i];
            // SAFETY: an aligned 64-byte load of exactly one line (`Line` is 64-aligned).
            unsafe { _mm512_load_si512(l.0.as_ptr().cast()) }
        };
        let pre = q.as_ptr().wrapping_add((g + AHEAD) * lpb).cast::<i8>();
        for i in 0..lpb {
            // A prefetch never faults; past the panel it reads the next one, which this
            // thread usually takes next.
            _mm_prefetch::<_MM_HINT_T0>(pre.wrapping_add(64 * i));
        }
        // SAFETY: a 32-byte load of the 16 f16 scales of block g (`check`: scale.len() ==
        // blocks·16 for this panel).
        let s = _mm512_cvtph_ps(unsafe {
            _mm256_loadu_si256(scale[g * PANEL_ROWS..][..PANEL_ROWS].as_ptr().cast())
        });
        let mut u = [_mm512_setzero_si512(); 8];
        if Q4 {
            for c in 0..4 {
                let x = line(c);
                u[c] = _mm512_and_si512(x, low);
                u[c + 4] = _mm512_and_si512(_mm512_srli_epi16(x, 4), low);
            }
        } else {
            for (st, u) in u.iter_mut().enumerate() {
                *u = line(st);
            }
        }
        for (j, acc) in acc.iter_mut().enumerate() {
            let v = v0 + j;
            let base = v * k + 32 * g;
            let mut ia = _mm512_set1_epi32(a.corr[v * blocks + g]);
            for (st, &u) in u.iter().enumerate() {
                ia = _mm512_dpbusd_epi32(ia, u, bcast(a, base + 4 * st));
            }
            let sc = _mm512_mul_ps(s, _mm512_set1_ps(a.d[v * blocks + g]));
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), sc, *acc);
        }
    }
    for (j, acc) in acc.into_iter().enumerate() {
        let o = &mut out[j * PANEL_ROWS..(j + 1) * PANEL_ROWS];
        // SAFETY: a 64-byte store into exactly the 16 floats of `o`.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), acc) }
    }
}

/// The table entry: shapes checked once, then 8, 4, 2 and 1 vectors at a time.
pub(crate) fn gemm(w: &Resident, p: usize, a: &PanelActs, v0: usize, nv: usize, out: &mut [f32]) {
    check(w, p, a, v0, nv, out);
    debug_assert_eq!(lines_per_block(w.format()), if w.format() == PanelFormat::Q4_0 { 4 } else { 8 });
    let q4 = w.format() == PanelFormat::Q4_0;
    let mut j = 0;
    while j < nv {
        let o = &mut out[j * PANEL_ROWS..];
        let step = match nv - j {
            8.. => 8,
            4..=7 => 4,
            2..=3 => 2,
            _ => 1,
        };
        let v = v0 + j;
        // SAFETY: this entry is only in the table `avx512::kernels` builds, which its caller
        // guarantees runs on a CPU with every feature `run` is compiled for.
        unsafe {
            match (q4, step) {
                (true, 8) => run::<true, 8>(w, p, a, v, o),
                (true, 4) => run::<true, 4>(w, p, a, v, o),
                (true, 2) => run::<true, 2>(w, p, a, v, o),
                (true, _) => run::<true, 1>(w, p, a, v, o),
                (false, 8) => run::<false, 8>(w, p, a, v, o),
                (false, 4) => run::<false, 4>(w, p, a, v, o),
                (false, 2) => run::<false, 2>(w, p, a, v, o),
                (false, _) => run::<false, 1>(w, p, a, v, o),
            }
        }
        j += step;
    }
}
