//! NEON panel kernels: dotprod (SDOT) and i8mm (USDOT), with a NEON pack for every format
//! (`crate::panel` has the layout and the arithmetic contract; its `gemm_scalar` is the
//! bit-identical twin and `Panel::pack` the word-for-word one, both checked by
//! `simd/tests/panel.rs` on every path, under QEMU by scripts/neon-ci.sh).
//!
//! One step of the panel (4 weights × 16 rows, 64 bytes) is four 128-bit registers of four rows
//! each; one SDOT by element (`sdot vd.4s, vn.16b, vm.4b[L]`) multiplies a register's four rows
//! by the activation word in lane `L` of a 16-byte activation register (four consecutive steps)
//! and adds to one i32 lane per row.
//!
//! Blocking: a call works on **8 rows × 4 vectors** at a time (the two halves of the panel one
//! after the other; 3, 2 or 1 vectors for the rest of a call): 8 i32 group sums + 8 f32
//! accumulators + 4 activation registers (16 bytes = 4 steps of each vector) + 2 weight
//! registers + 2 scale registers = 24 of the 32 NEON registers. Per step, one LDP of two
//! weight registers feeds 8 SDOT; each activation register feeds 8 (4 steps × 2 registers).
//! (16 rows × 2 vectors needs as many registers and twice the weight loads per SDOT; 16 × 4
//! does not fit.) Each step of the
//! four-vector pass is one asm block (LDP + 8 dots): as separate instructions LLVM hoisted a
//! group's 16 weight registers and spilled. For the K-quants the super-block accumulator lives
//! in `out` (a load and a store per 256 weights) so that the super-block sums `sb` fit.
//!
//! Signedness: SDOT is signed × signed. Q4_0 / Q4_K / Q5_K / Q6_K store `u = w + c < 128`, the
//! same byte signed, so the sums start from the contract's `corr = −c·Σa`. Q8_0 stores
//! `w ^ 0x80`: the dotprod kernel flips it back (one EOR per weight register) and starts from
//! 0 — `Σ w·a` is the same integer as `−128·Σa + Σ u·a`. The i8mm kernel uses USDOT (unsigned
//! weights × signed activations, `vpdpbusd`'s arithmetic) for every format: no flip.
//!
//! Float steps as in the contract, lane by lane: `vcvtq_f32_s32` (round to nearest, as `as f32`),
//! `vmulq_n_f32` for scale·d, `vfmaq_f32` / `vfmaq_n_f32` (fused, as `f32::mul_add`).
//!
//! Instructions per 64 multiply-adds in the four-vector pass, counted in the release build's
//! disassembly (`aarch64-linux-gnu-objdump -d`, rustc 1.95), per group of 32 weights × 8 rows
//! × 4 vectors = 1024 multiply-adds:
//! - Q4_0 (SDOT), and Q4_0 / Q8_0 on i8mm (USDOT): 126 = 64 dots + 8 LDP (weights) + 8 LDR
//!   (activations) + 1 LDP (scales) + 4 LDR (activation scales) + 4 LD1R + 4 MOV (corr) +
//!   8 SCVTF + 8 FMUL + 8 FMLA + 9 address/loop → **7.9 per 64** (4 of them dots), against
//!   9.1 for the dotprod 4×4 tile and 8.6 for the i8mm one;
//! - Q8_0 on dotprod: 138 (+16 EOR; 8 MOVI for the zero start instead of LD1R + MOV) → **8.6**;
//! - Q4_K / Q5_K: 119 per group + 177 per super-block (mins · bsums: 64 FMLA, the FSUB, the
//!   accumulator in `out`) → **8.8** (the dotprod Q4_K 4×4 tile: 8.9);
//! - Q6_K (groups of 16): 76 per 512 + 37 per super-block → **9.8** (the Q6_K 4×4 tile: 9.9): the
//!   per-group epilogue (8 SCVTF + 8 FMLA + corr) weighs twice as much at 16 weights.
//!
//! The NEON pack, every format: Q4_0 / Q8_0 about 50 instructions per block of 32 weights and
//! 4 rows (4 loads, 4 AND + 4 USHR or 8 EOR, 16 TRN/ZIP, 8 stores, loop) plus 12 per row and
//! block for the f16 scale (FCVT), i.e. about 0.8 per weight and row; the K-quants' quants
//! about 630 per super-block and 4 rows (≈ 0.6 per weight and row; counted on one of their
//! loops only) with the scales from the shared scalar `Panel::k_scales`. The GEMM costs
//! ≈ 0.12 instructions per weight, row and vector (7.9 / 64), so the pack is still ≈ 25 % of a
//! 16-vector product and ≈ 4 % of a 128-vector one.

use core::arch::aarch64::*;

use crate::blocks::Half;
use crate::panel::{check, Panel, PanelActs, PanelFormat, PANEL_ROWS};

/// Rows per pass: half a panel.
const HALF: usize = PANEL_ROWS / 2;

/// Vectors per pass (at most).
const NV_MAX: usize = 4;

/// Two registers: four rows each.
type Rows = [int32x4_t; 2];
type RowsF = [float32x4_t; 2];

/// How the group sums are formed (a const parameter of the helpers below).
/// - `SDOT`: signed × signed; the stored `u < 128` is the same byte signed (Q4_0, Q4_K, Q5_K,
///   Q6_K); the sum starts from `corr`.
/// - `SDOT_FLIP`: Q8_0 on dotprod: the weights are flipped back to `w = u ^ 0x80` (one EOR per
///   weight register) and the sum starts from 0 — `Σ w·a` is the integer `corr + Σ u·a`.
/// - `USDOT`: i8mm's unsigned × signed dot (`vpdpbusd`'s arithmetic): `u` as stored, from `corr`.
const SDOT: u8 = 0;
const SDOT_FLIP: u8 = 1;
const USDOT: u8 = 2;

/// `acc` plus, per i32 lane i, the dot product of bytes 4i..4i+4 of `w` (signed) with bytes
/// 4L..4L+4 of `a` (signed): SDOT by element.
///
/// # Safety
/// The CPU must support dotprod.
#[inline]
#[target_feature(enable = "neon,dotprod")]
pub(super) unsafe fn sdot_lane<const L: i32>(
    mut acc: int32x4_t,
    w: int8x16_t,
    a: int8x16_t,
) -> int32x4_t {
    // SAFETY: SDOT needs dotprod, which our caller guarantees (# Safety); the instruction only
    // reads and writes these three registers. (`vdotq_laneq_s32` is unstable, rust#117224.)
    unsafe {
        core::arch::asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[{l}]",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            a = in(vreg) a,
            l = const L,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// As [`sdot_lane`] with the bytes of `w` unsigned: USDOT by element.
///
/// # Safety
/// The CPU must support i8mm.
#[inline]
#[target_feature(enable = "neon,dotprod,i8mm")]
unsafe fn usdot_lane<const L: i32>(mut acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
    // SAFETY: USDOT needs i8mm, which our caller guarantees (# Safety); the instruction only
    // reads and writes these three registers. (`vusdotq_laneq_s32` is unstable.)
    unsafe {
        core::arch::asm!(
            "usdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[{l}]",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            a = in(vreg) a,
            l = const L,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// The eight dots of one step for four vectors: `{w0}` (rows 0–3 of the half) and `{w1}`
/// (rows 4–7) against lane `{l}` of `{x0}`..`{x3}`, into `{a0}`/`{b0}`..`{a3}`/`{b3}`.
macro_rules! dots4 {
    ($dot:literal) => {
        concat!(
            $dot,
            " {a0:v}.4s, {w0:v}.16b, {x0:v}.4b[{l}]\n",
            $dot,
            " {b0:v}.4s, {w1:v}.16b, {x0:v}.4b[{l}]\n",
            $dot,
            " {a1:v}.4s, {w0:v}.16b, {x1:v}.4b[{l}]\n",
            $dot,
            " {b1:v}.4s, {w1:v}.16b, {x1:v}.4b[{l}]\n",
            $dot,
            " {a2:v}.4s, {w0:v}.16b, {x2:v}.4b[{l}]\n",
            $dot,
            " {b2:v}.4s, {w1:v}.16b, {x2:v}.4b[{l}]\n",
            $dot,
            " {a3:v}.4s, {w0:v}.16b, {x3:v}.4b[{l}]\n",
            $dot,
            " {b3:v}.4s, {w1:v}.16b, {x3:v}.4b[{l}]",
        )
    };
}

/// One step of 8 rows × 4 vectors as one asm block: LDP of the step's two weight registers,
/// then eight SDOT / USDOT by element (with `flip`: two EOR with `m` = 0x80 first). As
/// separate instructions, LLVM hoisted all 16 weight loads of a group to reuse them across
/// vectors and spilled accumulators (140 instructions per group instead of 115); a block per
/// step keeps the weights in two registers.
macro_rules! step4 {
    ($(#[$doc:meta])* $name:ident, $feat:literal, $dot:literal $(, $m:ident, $flip:literal)?) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU features in the attribute; 32 readable bytes at `w + 256·B + 64·L`.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn $name<const L: i32, const B: usize>(
            acc: &mut [Rows; 4],
            w: *const u8,
            x: &[int8x16_t; 4],
            $($m: int8x16_t,)?
        ) {
            // SAFETY: the block reads the 32 bytes at `w` (caller's # Safety) and writes only
            // its register operands; the dot instruction's feature is enabled here and
            // guaranteed by the caller.
            unsafe {
                core::arch::asm!(
                    "ldp {w0:q}, {w1:q}, [{p}, #{off}]",
                    $($flip,)?
                    dots4!($dot),
                    p = in(reg) w,
                    w0 = out(vreg) _,
                    w1 = out(vreg) _,
                    $($m = in(vreg) $m,)?
                    x0 = in(vreg) x[0],
                    x1 = in(vreg) x[1],
                    x2 = in(vreg) x[2],
                    x3 = in(vreg) x[3],
                    a0 = inout(vreg) acc[0][0],
                    b0 = inout(vreg) acc[0][1],
                    a1 = inout(vreg) acc[1][0],
                    b1 = inout(vreg) acc[1][1],
                    a2 = inout(vreg) acc[2][0],
                    b2 = inout(vreg) acc[2][1],
                    a3 = inout(vreg) acc[3][0],
                    b3 = inout(vreg) acc[3][1],
                    l = const L,
                    off = const 256 * B + 64 * L as usize,
                    options(pure, readonly, nostack, preserves_flags),
                );
            }
        }
    };
}

step4!(
    /// Mode `SDOT`.
    step4_sdot, "neon,dotprod", "sdot"
);
step4!(
    /// Mode `SDOT_FLIP`: the weights `^ m` (m = 0x80 in every byte) before the dots.
    step4_sdot_flip, "neon,dotprod", "sdot", m,
    "eor {w0:v}.16b, {w0:v}.16b, {m:v}.16b\neor {w1:v}.16b, {w1:v}.16b, {m:v}.16b"
);
step4!(
    /// Mode `USDOT`.
    step4_usdot, "neon,dotprod,i8mm", "usdot"
);

// The helpers below have no target features of their own and are always inlined: into the
// `run_*` functions compiled with dotprod (and i8mm), where the dot instructions then inline
// too. (A helper compiled with a target feature is not inlined into a caller without it —
// a closure, `array::from_fn` — which is also why there are no closures in them.)

/// Step `4B + L` (4 weights) of the group at `w`, 8 rows, `NV` vectors: lane `L` of each `x[j]`.
///
/// # Safety
/// dotprod (and i8mm for `USDOT`), and 32 readable bytes at `w + 256·B + 64·L`.
#[inline(always)]
unsafe fn step<const L: i32, const B: usize, const M: u8, const NV: usize>(
    acc: &mut [Rows; NV],
    w: *const u8,
    x: &[int8x16_t; NV],
) {
    if NV == 4 {
        // Four vectors: one asm block per step (see `step4_sdot`).
        let acc: &mut [Rows; 4] = (&mut acc[..]).try_into().expect("NV = 4");
        let x: &[int8x16_t; 4] = x[..].try_into().expect("NV = 4");
        // SAFETY: forwarded (# Safety): 32 bytes at `w`, the features of mode M.
        unsafe {
            match M {
                SDOT => step4_sdot::<L, B>(acc, w, x),
                SDOT_FLIP => step4_sdot_flip::<L, B>(acc, w, x, vdupq_n_s8(-128)),
                _ => step4_usdot::<L, B>(acc, w, x),
            }
        }
        return;
    }
    // SAFETY: the caller guarantees 32 readable bytes at `w` (two unaligned 16-byte loads) and
    // the CPU features of the dot instruction of mode M.
    unsafe {
        let w = w.add(256 * B + 64 * L as usize);
        let mut wr = [vld1q_s8(w.cast()), vld1q_s8(w.add(16).cast())];
        if M == SDOT_FLIP {
            let m = vdupq_n_s8(-128);
            wr = [veorq_s8(wr[0], m), veorq_s8(wr[1], m)];
        }
        for (acc, &x) in acc.iter_mut().zip(x) {
            for q in 0..2 {
                acc[q] = if M == USDOT {
                    usdot_lane::<L>(acc[q], wr[q], x)
                } else {
                    sdot_lane::<L>(acc[q], wr[q], x)
                };
            }
        }
    }
}

/// Steps 4B..4B + 4 (16 weights) of the group at `w` against the 16 activations at each `a[j]`.
///
/// # Safety
/// As [`step`], with 4 steps of 64 bytes at `w + 256·B` and 16 bytes at each `a[j]`.
#[inline(always)]
unsafe fn four_steps<const B: usize, const M: u8, const NV: usize>(
    acc: &mut [Rows; NV],
    w: *const u8,
    a: &[*const i8; NV],
) {
    // SAFETY: the caller's # Safety covers every load.
    unsafe {
        let mut x = [vdupq_n_s8(0); NV];
        for (x, &a) in x.iter_mut().zip(a) {
            *x = vld1q_s8(a);
        }
        step::<0, B, M, NV>(acc, w, &x);
        step::<1, B, M, NV>(acc, w, &x);
        step::<2, B, M, NV>(acc, w, &x);
        step::<3, B, M, NV>(acc, w, &x);
    }
}

/// Exact group sums (`corr + Σ u·a`, as i32 per row lane) of 8 rows and `NV` vectors over
/// one group of `G` (16 or 32) weights; `corr` is ignored for `SDOT_FLIP`.
///
/// # Safety
/// dotprod (and i8mm for `USDOT`); `w` = the group's first step at the half's rows in
/// `Panel::q` (G/4 steps of 64 bytes readable, 32 used each); `a[j]` = the group's first
/// activation of vector j (G bytes readable).
#[inline(always)]
unsafe fn group_sums<const G: usize, const M: u8, const NV: usize>(
    w: *const u8,
    a: [*const i8; NV],
    corr: [i32; NV],
) -> [Rows; NV] {
    // SAFETY: per block of four steps (16 weights): 16 activation bytes of each vector and
    // four steps of 64 bytes of the panel, inside the group (caller's # Safety).
    unsafe {
        let mut acc = [[vdupq_n_s32(0); 2]; NV];
        if M != SDOT_FLIP {
            for (acc, &c) in acc.iter_mut().zip(&corr) {
                *acc = [vdupq_n_s32(c); 2];
            }
        }
        four_steps::<0, M, NV>(&mut acc, w, &a);
        if G == 32 {
            // Unrolled by hand: LLVM keeps a two-trip loop for the EOR variant otherwise.
            let mut a1 = a;
            for a in a1.iter_mut() {
                *a = a.add(16);
            }
            four_steps::<1, M, NV>(&mut acc, w, &a1);
        }
        acc
    }
}

/// The 8 lanes of `v` (a `[group][16]` table) for group `g` and half `h`.
///
/// # Safety
/// `(g + 1) · 16 ≤ v.len()`, h < 2.
#[inline(always)]
unsafe fn lanes(v: &[f32], g: usize, h: usize) -> RowsF {
    // SAFETY: 8 floats at g·16 + 8h, inside `v` (caller's # Safety).
    unsafe {
        let p = v.as_ptr().add(g * PANEL_ROWS + h * HALF);
        [vld1q_f32(p), vld1q_f32(p.add(4))]
    }
}

/// The panel's weight bytes of group `g` (groups of `G`) at half `h`.
///
/// # Safety
/// g < the panel's groups (checked by `check`), h < 2.
#[inline(always)]
unsafe fn w_at<const G: usize>(p: &Panel, g: usize, h: usize) -> *const u8 {
    // SAFETY: inside `p.q` for g < groups (len = groups · G/4 · 16 words).
    unsafe {
        p.q.as_ptr()
            .cast::<u8>()
            .add(g * (G / 4) * 64 + h * HALF * 4)
    }
}

/// The activation quants of vectors `v0..v0 + NV` at element `e`.
///
/// # Safety
/// v0 + NV ≤ a.n, e < a.k.
#[inline(always)]
unsafe fn a_at<const NV: usize>(a: &PanelActs, v0: usize, e: usize) -> [*const i8; NV] {
    let mut p = [a.q.as_ptr(); NV];
    for (j, p) in p.iter_mut().enumerate() {
        // SAFETY: inside `a.q` (len = n · k, checked by `check`).
        *p = unsafe { p.add((v0 + j) * a.k + e) };
    }
    p
}

/// Q4_0 / Q8_0 weights (groups of 32) against Q8_0 activations, rows 8h..8h+8, writing
/// `out[j·16 + 8h ..][..8]`.
///
/// # Safety
/// The features of mode `M`; `check` passed for vectors v0..v0 + NV; `out.len() ≥ NV · 16`.
#[inline(always)]
unsafe fn q8_0_acts<const M: u8, const NV: usize>(
    p: &Panel,
    a: &PanelActs,
    v0: usize,
    h: usize,
    out: &mut [f32],
) {
    let groups = p.k / 32;
    // SAFETY: g < groups and the vectors are those `check` passed (caller's # Safety), so every
    // panel, activation, corr and d index is in bounds; stores into out[j·16 + 8h..+8] for
    // j < NV ≤ out.len() / 16.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); 2]; NV];
        let corr = a.corr.as_ptr();
        let d = a.d.as_ptr();
        for g in 0..groups {
            let mut c = [0i32; NV];
            if M != SDOT_FLIP {
                for (j, c) in c.iter_mut().enumerate() {
                    *c = *corr.add((v0 + j) * groups + g);
                }
            }
            let ia = group_sums::<32, M, NV>(w_at::<32>(p, g, h), a_at::<NV>(a, v0, 32 * g), c);
            let s = lanes(&p.scale, g, h);
            for (j, (acc, ia)) in acc.iter_mut().zip(ia).enumerate() {
                let dv = *d.add((v0 + j) * groups + g);
                for q in 0..2 {
                    let sc = vmulq_n_f32(s[q], dv);
                    acc[q] = vfmaq_f32(acc[q], vcvtq_f32_s32(ia[q]), sc);
                }
            }
        }
        for (j, acc) in acc.iter().enumerate() {
            let o = out.as_mut_ptr().add(j * PANEL_ROWS + h * HALF);
            vst1q_f32(o, acc[0]);
            vst1q_f32(o.add(4), acc[1]);
        }
    }
}

/// K-quant weights (groups of `G`; `MINS` for Q4_K / Q5_K) against Q8_K activations, rows
/// 8h..8h+8, writing `out[j·16 + 8h ..][..8]` (also its accumulator, per super-block).
///
/// # Safety
/// As [`q8_0_acts`].
#[inline(always)]
unsafe fn q8_k_acts<const G: usize, const MINS: bool, const M: u8, const NV: usize>(
    p: &Panel,
    a: &PanelActs,
    v0: usize,
    h: usize,
    out: &mut [f32],
) {
    let groups = p.k / G;
    let (per_sb, n_sb) = (256 / G, p.k / 256);
    // SAFETY: as in `q8_0_acts`: every index is below the sizes `check` asserted (s < n_sb,
    // g < groups, vectors v0..v0 + NV), and `out` holds NV · 16 floats.
    unsafe {
        let mut o = [out.as_mut_ptr(); NV];
        for (j, o) in o.iter_mut().enumerate() {
            *o = o.add(j * PANEL_ROWS + h * HALF);
        }
        let zero = vdupq_n_f32(0.0);
        for &o in &o {
            vst1q_f32(o, zero);
            vst1q_f32(o.add(4), zero);
        }
        for s in 0..n_sb {
            let mut sb = [[zero; 2]; NV];
            for g in s * per_sb..(s + 1) * per_sb {
                let mut c = [0i32; NV];
                for (j, c) in c.iter_mut().enumerate() {
                    *c = *a.corr.as_ptr().add((v0 + j) * groups + g);
                }
                let ia = group_sums::<G, M, NV>(w_at::<G>(p, g, h), a_at::<NV>(a, v0, G * g), c);
                let sc = lanes(&p.scale, g, h);
                for (sb, ia) in sb.iter_mut().zip(ia) {
                    for q in 0..2 {
                        sb[q] = vfmaq_f32(sb[q], vcvtq_f32_s32(ia[q]), sc[q]);
                    }
                }
            }
            for (j, mut sb) in sb.into_iter().enumerate() {
                let v = v0 + j;
                if MINS {
                    let mut mn = [zero; 2];
                    for g in s * per_sb..(s + 1) * per_sb {
                        let b = *a.bsum.as_ptr().add(v * groups + g);
                        let m = lanes(&p.min, g, h);
                        for q in 0..2 {
                            mn[q] = vfmaq_n_f32(mn[q], m[q], b);
                        }
                    }
                    for q in 0..2 {
                        sb[q] = vsubq_f32(sb[q], mn[q]);
                    }
                }
                let d = *a.d.as_ptr().add(v * n_sb + s);
                for (q, sb) in sb.into_iter().enumerate() {
                    let at = o[j].add(4 * q);
                    vst1q_f32(at, vfmaq_n_f32(vld1q_f32(at), sb, d));
                }
            }
        }
    }
}

/// One pass: `NV` vectors, half `h`, by format: Q8_0 with dot mode `M8`, the others with `M`.
///
/// # Safety
/// As [`q8_0_acts`] for both modes.
#[inline(always)]
unsafe fn run<const M: u8, const M8: u8, const NV: usize>(
    p: &Panel,
    a: &PanelActs,
    v0: usize,
    h: usize,
    out: &mut [f32],
) {
    // SAFETY: forwarded (# Safety).
    unsafe {
        match p.format.expect("checked") {
            PanelFormat::Q4_0 => q8_0_acts::<M, NV>(p, a, v0, h, out),
            PanelFormat::Q8_0 => q8_0_acts::<M8, NV>(p, a, v0, h, out),
            PanelFormat::Q4_K | PanelFormat::Q5_K => q8_k_acts::<32, true, M, NV>(p, a, v0, h, out),
            PanelFormat::Q6_K => q8_k_acts::<16, false, M, NV>(p, a, v0, h, out),
        }
    }
}

/// [`run`] compiled with dotprod.
///
/// # Safety
/// As [`q8_0_acts`]; the CPU must support dotprod.
#[target_feature(enable = "neon,dotprod")]
unsafe fn run_dot<const NV: usize>(p: &Panel, a: &PanelActs, v0: usize, h: usize, o: &mut [f32]) {
    // SAFETY: forwarded (# Safety).
    unsafe { run::<SDOT, SDOT_FLIP, NV>(p, a, v0, h, o) }
}

/// [`run`] with USDOT, compiled with dotprod and i8mm.
///
/// # Safety
/// As [`q8_0_acts`]; the CPU must support dotprod and i8mm.
#[target_feature(enable = "neon,dotprod,i8mm")]
unsafe fn run_mm<const NV: usize>(p: &Panel, a: &PanelActs, v0: usize, h: usize, o: &mut [f32]) {
    // SAFETY: forwarded (# Safety).
    unsafe { run::<USDOT, USDOT, NV>(p, a, v0, h, o) }
}

/// The dotprod table entry (SDOT): shapes checked once, then up to four vectors at a time,
/// each group of vectors against rows 0–7 then 8–15.
pub(crate) fn gemm(p: &Panel, a: &PanelActs, v0: usize, nv: usize, out: &mut [f32]) {
    check(p, a, v0, nv, out);
    assert!(
        std::arch::is_aarch64_feature_detected!("dotprod"),
        "panel gemm on a CPU without dotprod"
    );
    passes(nv, out, |step, j, h, o| {
        // SAFETY: dotprod was asserted above; `check` passed for v0..v0 + nv ⊇ the vectors
        // v0 + j..v0 + j + step, and `o` holds step · 16 floats.
        unsafe {
            match step {
                4 => run_dot::<4>(p, a, v0 + j, h, o),
                3 => run_dot::<3>(p, a, v0 + j, h, o),
                2 => run_dot::<2>(p, a, v0 + j, h, o),
                _ => run_dot::<1>(p, a, v0 + j, h, o),
            }
        }
    })
}

/// The i8mm table entry (USDOT: the stored unsigned bytes as they are, no flip for Q8_0).
pub(crate) fn gemm_i8mm(p: &Panel, a: &PanelActs, v0: usize, nv: usize, out: &mut [f32]) {
    check(p, a, v0, nv, out);
    assert!(
        std::arch::is_aarch64_feature_detected!("dotprod")
            && std::arch::is_aarch64_feature_detected!("i8mm"),
        "panel gemm_i8mm on a CPU without dotprod and i8mm"
    );
    passes(nv, out, |step, j, h, o| {
        // SAFETY: dotprod and i8mm were asserted above; `check` passed for v0..v0 + nv ⊇ the
        // vectors v0 + j..v0 + j + step, and `o` holds step · 16 floats.
        unsafe {
            match step {
                4 => run_mm::<4>(p, a, v0 + j, h, o),
                3 => run_mm::<3>(p, a, v0 + j, h, o),
                2 => run_mm::<2>(p, a, v0 + j, h, o),
                _ => run_mm::<1>(p, a, v0 + j, h, o),
            }
        }
    })
}

/// The passes of a call: `f(step, j, h, out)` for vectors j..j + step (step ≤ 4) and half h.
#[inline(always)]
fn passes(nv: usize, out: &mut [f32], mut f: impl FnMut(usize, usize, usize, &mut [f32])) {
    let mut j = 0;
    while j < nv {
        let step = (nv - j).min(NV_MAX);
        let o = &mut out[j * PANEL_ROWS..(j + step) * PANEL_ROWS];
        for h in 0..2 {
            f(step, j, h, o);
        }
        j += step;
    }
}

// ---------------------------------------------------------------- packing

/// Four rows' 16 bytes (as 4 × u32 words each) → four registers of word c of rows 0..4:
/// register c = [r0 c, r1 c, r2 c, r3 c] (a 4×4 transpose of u32).
#[inline(always)]
fn transpose4(r: [uint8x16_t; 4]) -> [uint8x16_t; 4] {
    // SAFETY: register-only NEON, which every aarch64 target has.
    unsafe {
        let [r0, r1, r2, r3] = [
            vreinterpretq_u32_u8(r[0]),
            vreinterpretq_u32_u8(r[1]),
            vreinterpretq_u32_u8(r[2]),
            vreinterpretq_u32_u8(r[3]),
        ];
        let t0 = vreinterpretq_u64_u32(vtrn1q_u32(r0, r1)); // r0c0 r1c0 r0c2 r1c2
        let t1 = vreinterpretq_u64_u32(vtrn2q_u32(r0, r1)); // r0c1 r1c1 r0c3 r1c3
        let t2 = vreinterpretq_u64_u32(vtrn1q_u32(r2, r3));
        let t3 = vreinterpretq_u64_u32(vtrn2q_u32(r2, r3));
        [
            vreinterpretq_u8_u64(vtrn1q_u64(t0, t2)),
            vreinterpretq_u8_u64(vtrn1q_u64(t1, t3)),
            vreinterpretq_u8_u64(vtrn2q_u64(t0, t2)),
            vreinterpretq_u8_u64(vtrn2q_u64(t1, t3)),
        ]
    }
}

/// The NEON pack: Q4_0, Q8_0, Q4_K, Q5_K and Q6_K decoded and interleaved in registers, four rows
/// at a time (per 32 weights and four rows: 4 loads, 4 AND + 4 USHR or 8 EOR, two 4×4
/// transposes of words, 8 stores of 16 bytes; Q5_K adds its fifth bits); the K-quant scales
/// are the shared `Panel::k_scales`. Word for word the
/// scalar pack's panel (`simd/tests/panel.rs`); the f16 block scales are converted with FCVT
/// (exact, as `Half::to_f32`).
pub(crate) fn pack(
    panel: &mut Panel,
    format: PanelFormat,
    k: usize,
    w: &[u8],
    w_row: usize,
    rows: usize,
) {
    if matches!(format, PanelFormat::Q4_K | PanelFormat::Q5_K) {
        let q5 = format == PanelFormat::Q5_K;
        panel.reset(format, k, w, w_row, rows);
        let nsb = k / 256;
        assert_eq!(
            nsb * if q5 { 176 } else { 144 },
            w_row,
            "{k} elements per row"
        );
        assert_eq!(panel.q.len(), nsb * 64 * PANEL_ROWS);
        let q = panel.q.as_mut_ptr();
        // SAFETY: `reset` asserted `w.len() == rows · w_row`, w_row = nsb · block size was
        // asserted above and `panel.q` holds nsb · 64 · 16 words.
        unsafe {
            if q5 {
                interleave_k::<true>(q, w, w_row, nsb, rows)
            } else {
                interleave_k::<false>(q, w, w_row, nsb, rows)
            }
        }
        panel.k_scales(w, w_row);
        return;
    }
    if format == PanelFormat::Q6_K {
        panel.reset(format, k, w, w_row, rows);
        let nsb = k / 256;
        assert_eq!(nsb * 210, w_row, "{k} elements per row");
        assert_eq!(panel.q.len(), nsb * 64 * PANEL_ROWS);
        // SAFETY: as for Q4_K above, with 210-byte super-blocks.
        unsafe { interleave_q6_k(panel.q.as_mut_ptr(), w, w_row, nsb, rows) }
        panel.k_scales(w, w_row);
        return;
    }
    panel.reset(format, k, w, w_row, rows);
    let nb = k / 32;
    let q8 = format == PanelFormat::Q8_0;
    let bsize = if q8 { 34 } else { 18 };
    assert_eq!(nb * bsize, w_row, "{k} elements per row");
    assert_eq!(panel.q.len(), nb * 8 * PANEL_ROWS);
    assert_eq!(panel.scale.len(), nb * PANEL_ROWS);
    for (r, row) in w.chunks_exact(w_row).enumerate() {
        for (b, blk) in row.chunks_exact(bsize).enumerate() {
            panel.scale[b * PANEL_ROWS + r] = super::neon::fp16(Half([blk[0], blk[1]]));
        }
    }
    let q = panel.q.as_mut_ptr();
    // SAFETY: `reset` asserted `w.len() == rows · w_row` and w_row = nb · bsize was asserted
    // above; `panel.q` holds nb · 8 · 16 words (asserted above).
    unsafe {
        if q8 {
            interleave::<true>(q, w, w_row, nb, rows)
        } else {
            interleave::<false>(q, w, w_row, nb, rows)
        }
    }
}

/// The quants of `rows` rows of `nb` Q4_0 (`Q8` false) or Q8_0 blocks into the panel words at
/// `q` (`[block][word 0..8][row 0..16]`).
///
/// # Safety
/// `w` holds `rows` rows of `w_row = nb · block size` bytes; `q` has nb · 8 · 16 writable words.
#[inline(always)]
unsafe fn interleave<const Q8: bool>(q: *mut u32, w: &[u8], w_row: usize, nb: usize, rows: usize) {
    let bsize = if Q8 { 34 } else { 18 };
    for r0 in (0..rows).step_by(4) {
        let n = (rows - r0).min(4);
        let src = w.as_ptr().wrapping_add(r0 * w_row + 2);
        for b in 0..nb {
            // SAFETY: row r0 + i < rows has block b's quants at (r0 + i) · w_row + b · bsize
            // + 2 .. + 16 (Q4_0) or + 32 (Q8_0), inside `w`; the stores write words
            // (8b + c) · 16 + r0 .. + 4 with c < 8, b < nb and r0 + 4 ≤ 16, inside `q`
            // (caller's # Safety). NEON is on every aarch64 target.
            unsafe {
                let mut lo = [vdupq_n_u8(0); 4];
                let mut hi = [vdupq_n_u8(0); 4];
                for i in 0..4 {
                    if i < n {
                        let p = src.add(i * w_row + b * bsize);
                        if Q8 {
                            let m = vdupq_n_u8(0x80);
                            lo[i] = veorq_u8(vld1q_u8(p), m);
                            hi[i] = veorq_u8(vld1q_u8(p.add(16)), m);
                        } else {
                            let v = vld1q_u8(p);
                            lo[i] = vandq_u8(v, vdupq_n_u8(0x0F));
                            hi[i] = vshrq_n_u8::<4>(v);
                        }
                    }
                }
                let dst = q.add(b * 8 * PANEL_ROWS + r0).cast::<u8>();
                let [l0, l1, l2, l3] = transpose4(lo);
                let [h0, h1, h2, h3] = transpose4(hi);
                for (c, v) in [l0, l1, l2, l3, h0, h1, h2, h3].into_iter().enumerate() {
                    vst1q_u8(dst.add(c * PANEL_ROWS * 4), v);
                }
            }
        }
    }
}

/// The quants of `rows` rows of `nsb` Q4_K (`Q5` false) or Q5_K super-blocks into the panel
/// words at `q` (`[super-block][word 0..64][row 0..16]`), as `k4_words` orders them: sub-block
/// j = the low (j even) or high (j odd) nibbles of qs bytes 32·(j/2)..+32, plus bit j of the qh
/// bytes as bit 4 (Q5_K). Per 16 qs bytes of four rows: 4 loads (+ 4 of qh), AND/USHR (+ the
/// fifth bits), two 4×4 transposes, 8 stores.
///
/// # Safety
/// `w` holds `rows` rows of `w_row = nsb · block size` bytes; `q` has nsb · 64 · 16 writable
/// words.
#[inline(always)]
unsafe fn interleave_k<const Q5: bool>(
    q: *mut u32,
    w: &[u8],
    w_row: usize,
    nsb: usize,
    rows: usize,
) {
    let (bsize, qs_at) = if Q5 { (176, 48) } else { (144, 16) };
    for r0 in (0..rows).step_by(4) {
        let n = (rows - r0).min(4);
        let row0 = w.as_ptr().wrapping_add(r0 * w_row);
        for s in 0..nsb {
            for i in 0..8 {
                // Chunk i: qs bytes 16i..16i + 16 = elements 64c + 16h.. (low nibbles, sub-block
                // 2c) and 64c + 32 + 16h.. (high nibbles, sub-block 2c + 1), c = i/2, h = i%2.
                let (c, h) = (i / 2, i % 2);
                // SAFETY: row r0 + t < rows has super-block s at (r0 + t) · w_row + s · bsize,
                // whose qs (16 bytes at qs_at + 16i ≤ bsize − 16) and qh (16 bytes at 16 + 16h,
                // Q5_K) are inside `w`; the stores write words (64s + e/4 + cc) · 16 + r0 .. + 4
                // with e/4 + cc < 64, s < nsb and r0 + 4 ≤ 16, inside `q` (caller's # Safety).
                // NEON is on every aarch64 target.
                unsafe {
                    let mut lo = [vdupq_n_u8(0); 4];
                    let mut hi = [vdupq_n_u8(0); 4];
                    for t in 0..4 {
                        if t < n {
                            let b = row0.add(t * w_row + s * bsize);
                            let v = vld1q_u8(b.add(qs_at + 16 * i));
                            lo[t] = vandq_u8(v, vdupq_n_u8(0x0F));
                            hi[t] = vshrq_n_u8::<4>(v);
                            if Q5 {
                                let x = vld1q_u8(b.add(16 + 16 * h));
                                let bit = vdupq_n_u8(0x10);
                                // ((x >> j) & 1) << 4 = (x shifted by 4 − j) & 0x10.
                                let j = (2 * c) as i8;
                                let l5 = vandq_u8(vshlq_u8(x, vdupq_n_s8(4 - j)), bit);
                                let h5 = vandq_u8(vshlq_u8(x, vdupq_n_s8(3 - j)), bit);
                                lo[t] = vorrq_u8(lo[t], l5);
                                hi[t] = vorrq_u8(hi[t], h5);
                            }
                        }
                    }
                    let base = q.add(s * 64 * PANEL_ROWS + r0).cast::<u8>();
                    for (e, v) in [(64 * c + 16 * h, lo), (64 * c + 32 + 16 * h, hi)] {
                        for (cc, x) in transpose4(v).into_iter().enumerate() {
                            vst1q_u8(base.add((e / 4 + cc) * PANEL_ROWS * 4), x);
                        }
                    }
                }
            }
        }
    }
}

/// The 6-bit quants of `rows` rows of `nsb` Q6_K super-blocks into the panel words at `q`, as
/// `q6_raw` orders them: per half n of 128 elements and 16 bytes l = 16h.. of it, with
/// A = ql[64n + l], B = ql[64n + 32 + l], H = qh[32n + l]: element 128n + l = A & 15 | (H & 3)
/// << 4, + 32: B & 15 | (H >> 2 & 3) << 4, + 64: A >> 4 | (H >> 4 & 3) << 4, + 96: B >> 4 |
/// (H >> 6) << 4.
///
/// # Safety
/// `w` holds `rows` rows of `w_row = nsb · 210` bytes; `q` has nsb · 64 · 16 writable words.
#[inline(always)]
unsafe fn interleave_q6_k(q: *mut u32, w: &[u8], w_row: usize, nsb: usize, rows: usize) {
    for r0 in (0..rows).step_by(4) {
        let n = (rows - r0).min(4);
        let row0 = w.as_ptr().wrapping_add(r0 * w_row);
        for s in 0..nsb {
            for i in 0..4 {
                let (half, h) = (i / 2, i % 2);
                // SAFETY: row r0 + t < rows has super-block s at (r0 + t) · w_row + 210s, whose
                // ql (16 bytes at 64·half + 16h and + 32, < 128) and qh (16 bytes at 128 + 32·half
                // + 16h, < 192) are inside `w`; the stores write words (64s + e/4 + cc) · 16 + r0
                // .. + 4 with e/4 + cc < 64, s < nsb and r0 + 4 ≤ 16, inside `q` (caller's
                // # Safety). NEON is on every aarch64 target.
                unsafe {
                    // rows[t] = row r0 + t's four outputs (elements + 0, 32, 64, 96).
                    let mut rows4 = [[vdupq_n_u8(0); 4]; 4];
                    for (t, o) in rows4.iter_mut().enumerate().take(n) {
                        let b = row0.add(t * w_row + s * 210);
                        let a = vld1q_u8(b.add(64 * half + 16 * h));
                        let bb = vld1q_u8(b.add(64 * half + 32 + 16 * h));
                        let x = vld1q_u8(b.add(128 + 32 * half + 16 * h));
                        let (low, top) = (vdupq_n_u8(0x0F), vdupq_n_u8(0x30));
                        *o = [
                            vorrq_u8(vandq_u8(a, low), vandq_u8(vshlq_n_u8::<4>(x), top)),
                            vorrq_u8(vandq_u8(bb, low), vandq_u8(vshlq_n_u8::<2>(x), top)),
                            vorrq_u8(vshrq_n_u8::<4>(a), vandq_u8(x, top)),
                            vorrq_u8(
                                vshrq_n_u8::<4>(bb),
                                vshrq_n_u8::<2>(vandq_u8(x, vdupq_n_u8(0xC0))),
                            ),
                        ];
                    }
                    let out: [[uint8x16_t; 4]; 4] =
                        [0, 1, 2, 3].map(|m| [rows4[0][m], rows4[1][m], rows4[2][m], rows4[3][m]]);
                    let base = q.add(s * 64 * PANEL_ROWS + r0).cast::<u8>();
                    for (m, v) in out.into_iter().enumerate() {
                        let e = 128 * half + 32 * m + 16 * h;
                        for (cc, x) in transpose4(v).into_iter().enumerate() {
                            vst1q_u8(base.add((e / 4 + cc) * PANEL_ROWS * 4), x);
                        }
                    }
                }
            }
        }
    }
}
