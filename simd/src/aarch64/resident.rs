//! NEON + dotprod resident-panel kernels (`crate::resident` has the layout and the arithmetic;
//! its `gemm_scalar` is the bit-identical twin, checked on every path by `simd/tests/panel.rs`,
//! under QEMU by scripts/neon-ci.sh). The i8mm table inherits this entry.
//!
//! A 64-byte line is four 128-bit registers of four rows each; one SDOT by element
//! (`sdot vd.4s, vn.16b, vm.4b[L]`) multiplies a register's four rows by the activation word in
//! lane `L` of a 16-byte activation register and adds to one i32 lane per row, so per group and
//! vector the 16 rows' sums are four registers.
//!
//! Signedness: SDOT is signed × signed. Q4_0 / Q4_K / Q6_K store `u = w + c < 128`, the same
//! byte signed, so the sums start from the contract's `corr = −c·Σa`. Q8_0 stores `w + 128`:
//! flipped back to `w = u ^ 0x80` (one EOR per register), its sums start from 0 — `Σ w·a` is the
//! integer `corr + Σ u·a` (as `panel.rs` does).
//!
//! Float steps as in the contract, lane by lane: `vcvtq_f32_s32` (round to nearest, as
//! `as f32`), `vmulq_f32` for d·da and d·sc, `vfmaq_f32` (fused, as `f32::mul_add`), `vsubq_f32`.

use core::arch::aarch64::*;

use super::neon::f16x8_to_f32;
use super::panel::sdot_lane;
use crate::panel::{PanelActs, PanelFormat, PANEL_ROWS};
use crate::resident::{check, Geometry, Line, Resident};

/// Format tags for the const generic.
const Q4_0: u8 = 0;
const Q8_0: u8 = 1;
const Q4_K: u8 = 2;
const Q6_K: u8 = 3;

/// Four registers of four rows: the 16 rows of a panel.
type Rows = [int32x4_t; 4];
type RowsF = [float32x4_t; 4];
type Words = [int8x16_t; 4];

/// Line `i` of `l` as four registers (rows 0–3, 4–7, 8–11, 12–15).
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn line(l: &[Line], i: usize) -> Words {
    let p = l[i].0.as_ptr().cast::<i8>();
    // SAFETY: four 16-byte loads covering exactly one 64-byte line.
    unsafe {
        [
            vld1q_s8(p),
            vld1q_s8(p.add(16)),
            vld1q_s8(p.add(32)),
            vld1q_s8(p.add(48)),
        ]
    }
}

/// The 16 activation bytes `a.q[at..at + 16]` (four words).
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn acts16(a: &PanelActs, at: usize) -> int8x16_t {
    debug_assert!(at + 16 <= a.q.len());
    // SAFETY: callers pass at = v·k + (offset of 16 bytes inside the row's group) with v < a.n
    // (`check` asserted a.q.len() == a.n·k), so the 16 bytes are inside `a.q`. Not a checked
    // slice: its bounds tests would cost more than the load.
    unsafe { vld1q_s8(a.q.as_ptr().add(at)) }
}

/// The 16 f16 at `slot` of a unit's meta as f32 lanes.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn f16x16(m: &[u8], slot: usize) -> RowsF {
    let s = &m[32 * slot..32 * slot + 32];
    // SAFETY: two 16-byte loads covering exactly `s`.
    let (x0, x1) = unsafe { (vld1q_u8(s.as_ptr()), vld1q_u8(s[16..].as_ptr())) };
    let (a, b) = f16x8_to_f32(x0);
    let (c, d) = f16x8_to_f32(x1);
    [a, b, c, d]
}

/// 16 bytes of `m` from `at` (signed for Q6_K's scales) as f32 lanes (exact: |x| < 256).
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn bytes16<const SIGNED: bool>(m: &[u8], at: usize) -> RowsF {
    let s = &m[at..at + 16];
    // SAFETY: a 16-byte load of exactly `s`.
    let x = unsafe { vld1q_u8(s.as_ptr()) };
    if SIGNED {
        let x = vreinterpretq_s8_u8(x);
        let (lo, hi) = (vmovl_s8(vget_low_s8(x)), vmovl_high_s8(x));
        [
            vmovl_s16(vget_low_s16(lo)),
            vmovl_high_s16(lo),
            vmovl_s16(vget_low_s16(hi)),
            vmovl_high_s16(hi),
        ]
        .map(|v| vcvtq_f32_s32(v))
    } else {
        let (lo, hi) = (vmovl_u8(vget_low_u8(x)), vmovl_high_u8(x));
        [
            vmovl_u16(vget_low_u16(lo)),
            vmovl_high_u16(lo),
            vmovl_u16(vget_low_u16(hi)),
            vmovl_high_u16(hi),
        ]
        .map(|v| vcvtq_f32_u32(v))
    }
}

/// `acc[j] += w · (word L of x[j])` for every vector `j`: 4 SDOT per vector.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn dots<const L: i32, const NV: usize>(acc: &mut [Rows; NV], w: &Words, x: &[int8x16_t; NV]) {
    for (acc, &x) in acc.iter_mut().zip(x) {
        for q in 0..4 {
            // SAFETY: this function is compiled with dotprod, which its callers guarantee.
            acc[q] = unsafe { sdot_lane::<L>(acc[q], w[q], x) };
        }
    }
}

/// `w & 0x0F` and `w >> 4` (bytes as unsigned).
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn nibbles(w: Words) -> (Words, Words) {
    let low = vdupq_n_u8(0x0F);
    let u = w.map(|w| vreinterpretq_u8_s8(w));
    (
        u.map(|u| vreinterpretq_s8_u8(vandq_u8(u, low))),
        u.map(|u| vreinterpretq_s8_u8(vshrq_n_u8::<4>(u))),
    )
}

/// `corr + Σ u·a` of one group (lines `l`) for `NV` vectors; vector `j`'s group starts at
/// `a.q[base[j]]` and its sum at `start[j]`.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn group_sums<const F: u8, const NV: usize>(
    l: &[Line],
    a: &PanelActs,
    base: [usize; NV],
    start: [i32; NV],
) -> [Rows; NV] {
    let mut acc: [Rows; NV] = std::array::from_fn(|j| [vdupq_n_s32(start[j]); 4]);
    match F {
        Q4_0 | Q4_K => {
            // Line c: weights 4c..4c + 4 (low nibbles, x0's word c) and 16 + 4c.. (high, x1's).
            let x0: [int8x16_t; NV] = std::array::from_fn(|j| acts16(a, base[j]));
            let x1: [int8x16_t; NV] = std::array::from_fn(|j| acts16(a, base[j] + 16));
            let (lo, hi) = nibbles(line(l, 0));
            dots::<0, NV>(&mut acc, &lo, &x0);
            dots::<0, NV>(&mut acc, &hi, &x1);
            let (lo, hi) = nibbles(line(l, 1));
            dots::<1, NV>(&mut acc, &lo, &x0);
            dots::<1, NV>(&mut acc, &hi, &x1);
            let (lo, hi) = nibbles(line(l, 2));
            dots::<2, NV>(&mut acc, &lo, &x0);
            dots::<2, NV>(&mut acc, &hi, &x1);
            let (lo, hi) = nibbles(line(l, 3));
            dots::<3, NV>(&mut acc, &lo, &x0);
            dots::<3, NV>(&mut acc, &hi, &x1);
        }
        Q8_0 => {
            let flip = vdupq_n_s8(-128);
            let w = |s: usize| line(l, s).map(|u| veorq_s8(u, flip));
            for half in 0..2 {
                let x: [int8x16_t; NV] = std::array::from_fn(|j| acts16(a, base[j] + 16 * half));
                dots::<0, NV>(&mut acc, &w(4 * half), &x);
                dots::<1, NV>(&mut acc, &w(4 * half + 1), &x);
                dots::<2, NV>(&mut acc, &w(4 * half + 2), &x);
                dots::<3, NV>(&mut acc, &w(4 * half + 3), &x);
            }
        }
        _ => {
            // Q6_K: words 0, 1 from line 0's nibbles, 2, 3 from line 1's, 2-bit tops in line 2.
            let x: [int8x16_t; NV] = std::array::from_fn(|j| acts16(a, base[j]));
            let (l0, h0) = nibbles(line(l, 0));
            let (l1, h1) = nibbles(line(l, 1));
            let t = line(l, 2).map(|t| vreinterpretq_u8_s8(t));
            let top = |q: usize, mask: u8| vandq_u8(t[q], vdupq_n_u8(mask));
            let or = |a: int8x16_t, b: uint8x16_t| {
                vreinterpretq_s8_u8(vorrq_u8(vreinterpretq_u8_s8(a), b))
            };
            let u0: Words = std::array::from_fn(|q| or(l0[q], vshlq_n_u8::<4>(top(q, 0x03))));
            let u1: Words = std::array::from_fn(|q| or(h0[q], vshlq_n_u8::<2>(top(q, 0x0C))));
            let u2: Words = std::array::from_fn(|q| or(l1[q], top(q, 0x30)));
            let u3: Words = std::array::from_fn(|q| or(h1[q], vshrq_n_u8::<2>(top(q, 0xC0))));
            dots::<0, NV>(&mut acc, &u0, &x);
            dots::<1, NV>(&mut acc, &u1, &x);
            dots::<2, NV>(&mut acc, &u2, &x);
            dots::<3, NV>(&mut acc, &u3, &x);
        }
    }
    acc
}

/// `fma(f32(ia), sc, acc)` lane by lane.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn fma_i(ia: Rows, sc: RowsF, acc: &mut RowsF) {
    for q in 0..4 {
        acc[q] = vfmaq_f32(acc[q], vcvtq_f32_s32(ia[q]), sc[q]);
    }
}

/// One call for `NV` vectors of format `F`.
#[target_feature(enable = "neon,dotprod")]
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
    let mut acc = [[vdupq_n_f32(0.0); 4]; NV];
    for (s, m) in meta.chunks_exact(geo.meta).enumerate() {
        let lines = &q[s * ul..(s + 1) * ul];
        let d = f16x16(m, 0);
        if F == Q4_0 || F == Q8_0 {
            let base = std::array::from_fn(|j| (v0 + j) * k + 32 * s);
            let start = std::array::from_fn(|j| {
                if F == Q8_0 {
                    0
                } else {
                    a.corr[(v0 + j) * groups + s]
                }
            });
            let ia = group_sums::<F, NV>(lines, a, base, start);
            for (j, (acc, ia)) in acc.iter_mut().zip(ia).enumerate() {
                let da = vdupq_n_f32(a.d[(v0 + j) * groups + s]);
                fma_i(ia, d.map(|d| vmulq_f32(d, da)), acc);
            }
            continue;
        }
        let gs = geo.groups();
        let mut sb = [[vdupq_n_f32(0.0); 4]; NV];
        for gl in 0..gs {
            let g = s * gs + gl;
            let sc = if F == Q4_K {
                bytes16::<false>(m, 64 + 16 * gl)
            } else {
                bytes16::<true>(m, 32 + 16 * gl)
            };
            let sc: RowsF = std::array::from_fn(|q| vmulq_f32(d[q], sc[q]));
            let base = std::array::from_fn(|j| (v0 + j) * k + g * geo.group);
            let start = std::array::from_fn(|j| a.corr[(v0 + j) * groups + g]);
            let l = &lines[gl * gl_lines..(gl + 1) * gl_lines];
            let ia = group_sums::<F, NV>(l, a, base, start);
            for (sb, ia) in sb.iter_mut().zip(ia) {
                fma_i(ia, sc, sb);
            }
        }
        if F == Q4_K {
            let dmin = f16x16(m, 1);
            let mut mn = [[vdupq_n_f32(0.0); 4]; NV];
            for gl in 0..gs {
                let mb = bytes16::<false>(m, 192 + 16 * gl);
                let min: RowsF = std::array::from_fn(|q| vmulq_f32(dmin[q], mb[q]));
                for (j, mn) in mn.iter_mut().enumerate() {
                    let b = vdupq_n_f32(a.bsum[(v0 + j) * groups + s * gs + gl]);
                    for q in 0..4 {
                        mn[q] = vfmaq_f32(mn[q], min[q], b);
                    }
                }
            }
            for (sb, mn) in sb.iter_mut().zip(mn) {
                for q in 0..4 {
                    sb[q] = vsubq_f32(sb[q], mn[q]);
                }
            }
        }
        for (j, (acc, sb)) in acc.iter_mut().zip(sb).enumerate() {
            let da = vdupq_n_f32(a.d[(v0 + j) * (k / 256) + s]);
            for q in 0..4 {
                acc[q] = vfmaq_f32(acc[q], sb[q], da);
            }
        }
    }
    for (j, acc) in acc.into_iter().enumerate() {
        let o = &mut out[j * PANEL_ROWS..(j + 1) * PANEL_ROWS];
        for (q, acc) in acc.into_iter().enumerate() {
            let o = &mut o[4 * q..4 * q + 4];
            // SAFETY: a 16-byte store into exactly the 4 floats of `o`.
            unsafe { vst1q_f32(o.as_mut_ptr(), acc) }
        }
    }
}

/// `run` for `nv` ∈ {1, 2} vectors of format `F`.
#[target_feature(enable = "neon,dotprod")]
fn run_nv<const F: u8>(w: &Resident, p: usize, a: &PanelActs, v0: usize, nv: usize, o: &mut [f32]) {
    match nv {
        2 => run::<F, 2>(w, p, a, v0, o),
        _ => run::<F, 1>(w, p, a, v0, o),
    }
}

/// The dotprod table entry: shapes checked once, then two vectors at a time (the 16 rows'
/// i32 sums, f32 accumulators and, for the K-quants, super-block sums of two vectors are 24
/// of the 32 NEON registers).
pub(crate) fn gemm(w: &Resident, p: usize, a: &PanelActs, v0: usize, nv: usize, out: &mut [f32]) {
    check(w, p, a, v0, nv, out);
    assert!(
        std::arch::is_aarch64_feature_detected!("dotprod"),
        "resident gemm on a CPU without dotprod"
    );
    let f = w.format();
    let mut j = 0;
    while j < nv {
        let step = if nv - j >= 2 { 2 } else { 1 };
        let o = &mut out[j * PANEL_ROWS..];
        // SAFETY: dotprod was asserted above, the feature `run` is compiled for.
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
