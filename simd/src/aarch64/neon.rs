//! NEON kernels (every AArch64 CPU: Raspberry Pi 4's Cortex-A72 and up).
//!
//! Each dot product computes every block's integer sum with NEON and then accumulates in f32
//! exactly as the scalar reference writes it (same operations, same order), so the results
//! are bit-identical to `scalar::vec_dot_*`; integer sums are exact in any order. The int8
//! dot bodies are generic over `SDOT`: `false` multiplies with `vmull_s8` and adds pairs with
//! `vpadalq_s16` (plain NEON), `true` uses the dotprod extension's SDOT (see `dotprod.rs`,
//! which instantiates them inside `#[target_feature(enable = "dotprod")]` functions).
//! The quantizers are bit-identical to the scalar ones; the float dots sum exact f64
//! products like the scalar ones, in a different order (differences of one f32 ulp, rarely).

use core::arch::aarch64::*;

use crate::blocks::{
    as_blocks, as_blocks_mut, get_scale_min_k4, BlockQ4_0, BlockQ4_1, BlockQ4_K, BlockQ5_0,
    BlockQ5_1, BlockQ5_K, BlockQ6_K, BlockQ8_0, BlockQ8_1, BlockQ8_K, Half, QK, QK_K,
};

// ---------------------------------------------------------------- int8 building blocks

/// `acc` plus the products `a[i]·b[i]` of 16 int8 lanes. The lanes of the result hold
/// partial sums in a path-dependent arrangement; only their total is meaningful.
///
/// # Safety
/// With `SDOT = true` the CPU must support dotprod (callers are `#[target_feature]` functions).
#[inline(always)]
pub(super) unsafe fn dot16<const SDOT: bool>(
    acc: int32x4_t,
    a: int8x16_t,
    b: int8x16_t,
) -> int32x4_t {
    if SDOT {
        // SAFETY: `sdot` needs dotprod, which our caller guarantees when SDOT is true
        // (# Safety); it only reads and writes registers.
        unsafe { super::dotprod::sdot(acc, a, b) }
    } else {
        // SAFETY: register-only NEON arithmetic; NEON is enabled on every aarch64 target.
        // int8·int8 fits int16 (|−128·−128| = 16384); each product is widened separately.
        unsafe {
            let lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
            let hi = vmull_high_s8(a, b);
            vpadalq_s16(vpadalq_s16(acc, lo), hi)
        }
    }
}

/// `acc` plus the dot product of 32 int8 (`a0:a1`) with 32 int8 at `b` (`b[0..32]`).
///
/// # Safety
/// As [`dot16`].
#[inline(always)]
unsafe fn dot32<const SDOT: bool>(
    acc: int32x4_t,
    a0: int8x16_t,
    a1: int8x16_t,
    b: &[i8; 32],
) -> int32x4_t {
    // SAFETY: `b` is a `&[i8; 32]`, so the two 16-byte loads (no alignment needed) read
    // exactly b[0..16] and b[16..32]; vld1q_s8 is NEON, enabled on every aarch64 target; dot16
    // needs dotprod when SDOT is true, which our caller guarantees (# Safety).
    unsafe {
        let b0 = vld1q_s8(b.as_ptr());
        let b1 = vld1q_s8(b.as_ptr().add(16));
        dot16::<SDOT>(dot16::<SDOT>(acc, a0, b0), a1, b1)
    }
}

/// 16 bytes of `bytes` from `offset` (bounds-checked).
#[inline(always)]
fn load_u8(bytes: &[u8], offset: usize) -> uint8x16_t {
    let s = &bytes[offset..offset + 16];
    // SAFETY: `s` is exactly 16 bytes (the slicing above panics otherwise) and vld1q_u8 reads
    // those 16 bytes with no alignment requirement; NEON is enabled on every aarch64 target.
    unsafe { vld1q_u8(s.as_ptr()) }
}

/// 16 int8 of `v` from `offset` (bounds-checked).
#[inline(always)]
fn load_i8(v: &[i8], offset: usize) -> int8x16_t {
    let s = &v[offset..offset + 16];
    // SAFETY: `s` is exactly 16 int8 (the slicing above panics otherwise) and vld1q_s8 reads
    // those 16 bytes with no alignment requirement; NEON is enabled on every aarch64 target.
    unsafe { vld1q_s8(s.as_ptr()) }
}

/// The 32 4-bit values of a Q4_0/Q4_1 block as int8: elements 0..16 (low nibbles), 16..32.
#[inline(always)]
fn nibbles(qs: &[u8; 16]) -> (uint8x16_t, uint8x16_t) {
    // SAFETY: register-only NEON (AND, shift) on the 16 bytes `load_u8` read, bounds-checked,
    // from the `[u8; 16]`; NEON is enabled on every aarch64 target.
    unsafe {
        let v = load_u8(qs, 0);
        (vandq_u8(v, vdupq_n_u8(0x0F)), vshrq_n_u8::<4>(v))
    }
}

/// Per element of a Q5_0/Q5_1 block, 0x10 if its fifth bit (bit j of the little-endian
/// `qh`) is set, else 0: elements 0..16, 16..32.
#[inline(always)]
fn q5_high_bits(qh: [u8; 4]) -> (uint8x16_t, uint8x16_t) {
    // SAFETY: register-only NEON (dup, table lookup, test); the three 16-byte loads go through
    // the bounds-checked `load_u8` of 16-byte constant arrays; NEON is enabled on every aarch64
    // target.
    unsafe {
        const LO: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
        const HI: [u8; 16] = [2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3];
        const BIT: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
        let bytes = vreinterpretq_u8_u32(vdupq_n_u32(u32::from_le_bytes(qh)));
        let bit = load_u8(&BIT, 0);
        let h = vdupq_n_u8(0x10);
        let lo = vqtbl1q_u8(bytes, load_u8(&LO, 0));
        let hi = vqtbl1q_u8(bytes, load_u8(&HI, 0));
        (
            vandq_u8(vtstq_u8(lo, bit), h),
            vandq_u8(vtstq_u8(hi, bit), h),
        )
    }
}

/// An f16 scale as f32 with one FCVT (baseline AArch64 FP; exact, as `Half::to_f32`, which
/// without the fp16 extension takes a software path).
#[inline(always)]
pub(super) fn fp16(h: Half) -> f32 {
    let out: f32;
    // SAFETY: FCVT (half to single) is base AArch64 floating point, present on every AArch64
    // CPU; it reads one register and writes one, no memory, no flags.
    unsafe {
        core::arch::asm!(
            "fcvt {o:s}, {i:h}",
            i = in(vreg) h.bits(),
            o = lateout(vreg) out,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    out
}

// ---------------------------------------------------------------- dot products (bodies)

/// Q4_0 · Q8_0.
///
/// # Safety
/// As [`dot16`].
#[inline(always)]
pub(super) unsafe fn vec_dot_q4_0_q8_0_body<const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: register-only NEON (enabled on every aarch64 target) on blocks viewed by the safe
    // `as_blocks`; the weight nibbles are read by the bounds-checked `load_u8`, and dot32 reads the
    // 32 bytes of the `[i8; 32]` `y.qs` and needs dotprod when SDOT is true, which our caller
    // guarantees (# Safety).
    unsafe {
        let (x, y) = (as_blocks::<BlockQ4_0>(w), as_blocks::<BlockQ8_0>(a));
        debug_assert_eq!(x.len(), y.len());
        let eight = vdupq_n_s8(8);
        let mut sumf = 0f32;
        for (x, y) in x.iter().zip(y) {
            let (lo, hi) = nibbles(&x.qs);
            let lo = vsubq_s8(vreinterpretq_s8_u8(lo), eight);
            let hi = vsubq_s8(vreinterpretq_s8_u8(hi), eight);
            let sumi = vaddvq_s32(dot32::<SDOT>(vdupq_n_s32(0), lo, hi, &y.qs));
            sumf += sumi as f32 * fp16(x.d) * fp16(y.d);
        }
        sumf
    }
}

/// Q4_1 · Q8_1.
///
/// # Safety
/// As [`dot16`].
#[inline(always)]
pub(super) unsafe fn vec_dot_q4_1_q8_1_body<const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: register-only NEON (enabled on every aarch64 target) on blocks viewed by the safe
    // `as_blocks`; the weight nibbles are read by the bounds-checked `load_u8`, and dot32 reads the
    // 32 bytes of the `[i8; 32]` `y.qs` and needs dotprod when SDOT is true, which our caller
    // guarantees (# Safety).
    unsafe {
        let (x, y) = (as_blocks::<BlockQ4_1>(w), as_blocks::<BlockQ8_1>(a));
        debug_assert_eq!(x.len(), y.len());
        let mut sumf = 0f32;
        for (x, y) in x.iter().zip(y) {
            let (lo, hi) = nibbles(&x.qs);
            let (lo, hi) = (vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi));
            let sumi = vaddvq_s32(dot32::<SDOT>(vdupq_n_s32(0), lo, hi, &y.qs));
            sumf += (fp16(x.d) * fp16(y.d)) * sumi as f32 + fp16(x.m) * fp16(y.s);
        }
        sumf
    }
}

/// Q5_0 · Q8_0.
///
/// # Safety
/// As [`dot16`].
#[inline(always)]
pub(super) unsafe fn vec_dot_q5_0_q8_0_body<const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: register-only NEON (enabled on every aarch64 target) on blocks viewed by the safe
    // `as_blocks`; the weight nibbles (and `qh`, a value) are read by the bounds-checked `load_u8`,
    // and dot32 reads the 32 bytes of the `[i8; 32]` `y.qs` and needs dotprod when SDOT is true,
    // which our caller guarantees (# Safety).
    unsafe {
        let (x, y) = (as_blocks::<BlockQ5_0>(w), as_blocks::<BlockQ8_0>(a));
        debug_assert_eq!(x.len(), y.len());
        let sixteen = vdupq_n_s8(16);
        let mut sumf = 0f32;
        for (x, y) in x.iter().zip(y) {
            let (lo, hi) = nibbles(&x.qs);
            let (hlo, hhi) = q5_high_bits(x.qh);
            let lo = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, hlo)), sixteen);
            let hi = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(hi, hhi)), sixteen);
            let sumi = vaddvq_s32(dot32::<SDOT>(vdupq_n_s32(0), lo, hi, &y.qs));
            sumf += (fp16(x.d) * fp16(y.d)) * sumi as f32;
        }
        sumf
    }
}

/// Q5_1 · Q8_1.
///
/// # Safety
/// As [`dot16`].
#[inline(always)]
pub(super) unsafe fn vec_dot_q5_1_q8_1_body<const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: register-only NEON (enabled on every aarch64 target) on blocks viewed by the safe
    // `as_blocks`; the weight nibbles (and `qh`, a value) are read by the bounds-checked `load_u8`,
    // and dot32 reads the 32 bytes of the `[i8; 32]` `y.qs` and needs dotprod when SDOT is true,
    // which our caller guarantees (# Safety).
    unsafe {
        let (x, y) = (as_blocks::<BlockQ5_1>(w), as_blocks::<BlockQ8_1>(a));
        debug_assert_eq!(x.len(), y.len());
        let mut sumf = 0f32;
        for (x, y) in x.iter().zip(y) {
            let (lo, hi) = nibbles(&x.qs);
            let (hlo, hhi) = q5_high_bits(x.qh);
            let lo = vreinterpretq_s8_u8(vorrq_u8(lo, hlo));
            let hi = vreinterpretq_s8_u8(vorrq_u8(hi, hhi));
            let sumi = vaddvq_s32(dot32::<SDOT>(vdupq_n_s32(0), lo, hi, &y.qs));
            sumf += (fp16(x.d) * fp16(y.d)) * sumi as f32 + fp16(x.m) * fp16(y.s);
        }
        sumf
    }
}

/// Q8_0 · Q8_0.
///
/// # Safety
/// As [`dot16`].
#[inline(always)]
pub(super) unsafe fn vec_dot_q8_0_q8_0_body<const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: register-only NEON (enabled on every aarch64 target) on blocks viewed by the safe
    // `as_blocks`; the weight quants are read by the bounds-checked `load_i8` (offsets 0 and 16 of
    // 32), and dot32 reads the 32 bytes of the `[i8; 32]` `y.qs` and needs dotprod when SDOT is
    // true, which our caller guarantees (# Safety).
    unsafe {
        let (x, y) = (as_blocks::<BlockQ8_0>(w), as_blocks::<BlockQ8_0>(a));
        debug_assert_eq!(x.len(), y.len());
        let mut sumf = 0f32;
        for (x, y) in x.iter().zip(y) {
            let (x0, x1) = (load_i8(&x.qs, 0), load_i8(&x.qs, 16));
            let sumi = vaddvq_s32(dot32::<SDOT>(vdupq_n_s32(0), x0, x1, &y.qs));
            sumf += sumi as f32 * (fp16(x.d) * fp16(y.d));
        }
        sumf
    }
}

/// Q4_0 · four Q8_0 rows (a prefill tile): each weight block is unpacked once for the four;
/// bit-identical to four [`vec_dot_q4_0_q8_0_body`] calls.
///
/// # Safety
/// As [`dot16`].
#[inline(always)]
pub(super) unsafe fn vec_dot_q4_0_q8_0_x4_body<const SDOT: bool>(
    w: &[u8],
    a: [&[u8]; 4],
) -> [f32; 4] {
    // SAFETY: as in `vec_dot_q4_0_q8_0_body`: register-only NEON (every aarch64 target),
    // the bounds-checked `load_u8` of each weight block's nibbles, `y[i]` indexed with bounds
    // checks, dot32 reading a `[i8; 32]` with the dotprod our caller guarantees when SDOT is true.
    unsafe {
        let x = as_blocks::<BlockQ4_0>(w);
        let y = a.map(as_blocks::<BlockQ8_0>);
        debug_assert!(y.iter().all(|y| y.len() == x.len()));
        let eight = vdupq_n_s8(8);
        let mut sumf = [0f32; 4];
        for (i, x) in x.iter().enumerate() {
            let (lo, hi) = nibbles(&x.qs);
            let lo = vsubq_s8(vreinterpretq_s8_u8(lo), eight);
            let hi = vsubq_s8(vreinterpretq_s8_u8(hi), eight);
            let dx = fp16(x.d);
            for (s, y) in sumf.iter_mut().zip(&y) {
                let y = &y[i];
                let sumi = vaddvq_s32(dot32::<SDOT>(vdupq_n_s32(0), lo, hi, &y.qs));
                *s += sumi as f32 * dx * fp16(y.d);
            }
        }
        sumf
    }
}

/// Q8_0 · four Q8_0 rows; bit-identical to four [`vec_dot_q8_0_q8_0_body`] calls.
///
/// # Safety
/// As [`dot16`].
#[inline(always)]
pub(super) unsafe fn vec_dot_q8_0_q8_0_x4_body<const SDOT: bool>(
    w: &[u8],
    a: [&[u8]; 4],
) -> [f32; 4] {
    // SAFETY: as in `vec_dot_q8_0_q8_0_body`: register-only NEON (every aarch64 target), the
    // bounds-checked `load_i8` of each weight block's quants, `y[i]` indexed with bounds checks,
    // dot32 reading a `[i8; 32]` with the dotprod our caller guarantees when SDOT is true.
    unsafe {
        let x = as_blocks::<BlockQ8_0>(w);
        let y = a.map(as_blocks::<BlockQ8_0>);
        debug_assert!(y.iter().all(|y| y.len() == x.len()));
        let mut sumf = [0f32; 4];
        for (i, x) in x.iter().enumerate() {
            let (x0, x1) = (load_i8(&x.qs, 0), load_i8(&x.qs, 16));
            let dx = fp16(x.d);
            for (s, y) in sumf.iter_mut().zip(&y) {
                let y = &y[i];
                let sumi = vaddvq_s32(dot32::<SDOT>(vdupq_n_s32(0), x0, x1, &y.qs));
                *s += sumi as f32 * (dx * fp16(y.d));
            }
        }
        sumf
    }
}

/// Σ_j bsum(j) · min(j / 2) for a Q4_K/Q5_K block against a Q8_K block (exact in i32).
#[inline(always)]
fn mins_dot(mins: [u8; 8], y: &BlockQ8_K) -> i32 {
    // SAFETY: `mins` is a `[u8; 8]`, so vld1_u8 reads exactly its 8 bytes (any alignment);
    // the 32 bsum bytes go through the bounds-checked `load_u8` (offsets 0 and 16 of 32); the rest
    // is register-only NEON, enabled on every aarch64 target.
    unsafe {
        let flat = y.bsums.as_flattened();
        // Pairs of 16-sums widened to i32: the sums of sub-blocks 0..4 and 4..8.
        let s0 = vpaddlq_s16(vreinterpretq_s16_u8(load_u8(flat, 0)));
        let s1 = vpaddlq_s16(vreinterpretq_s16_u8(load_u8(flat, 16)));
        let m = vmovl_u8(vld1_u8(mins.as_ptr()));
        let m0 = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(m)));
        let m1 = vreinterpretq_s32_u32(vmovl_high_u16(m));
        vaddvq_s32(vmlaq_s32(vmulq_s32(s0, m0), s1, m1))
    }
}

/// The eight (scale, min) pairs of a Q4_K/Q5_K block.
#[inline(always)]
fn scales_mins(scales: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    for j in 0..8 {
        (sc[j], m[j]) = get_scale_min_k4(j, scales);
    }
    (sc, m)
}

/// Q4_K · Q8_K.
///
/// # Safety
/// As [`dot16`].
#[inline(always)]
pub(super) unsafe fn vec_dot_q4_K_q8_K_body<const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: register-only NEON (enabled on every aarch64 target) on blocks viewed by the safe
    // `as_blocks`; every load is a bounds-checked 16-byte `load_u8`/`load_i8` (x.qs at 32j and
    // 32j + 16, j < 4, so within 128; y.qs at 64j..64j + 64, within 256); dot16 needs dotprod
    // when SDOT is true, which our caller guarantees (# Safety).
    unsafe {
        let (x, y) = (as_blocks::<BlockQ4_K>(w), as_blocks::<BlockQ8_K>(a));
        debug_assert_eq!(x.len(), y.len());
        let mask = vdupq_n_u8(0x0F);
        let zero = vdupq_n_s32(0);
        let mut sumf = 0f32;
        for (x, y) in x.iter().zip(y) {
            let (sc, mins) = scales_mins(&x.scales);
            let mut acc = zero;
            for j in 0..4 {
                let q0 = load_u8(&x.qs, 32 * j);
                let q1 = load_u8(&x.qs, 32 * j + 16);
                let lo0 = vreinterpretq_s8_u8(vandq_u8(q0, mask));
                let lo1 = vreinterpretq_s8_u8(vandq_u8(q1, mask));
                let hi0 = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q0));
                let hi1 = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q1));
                let (s0, s1) = {
                    (
                        dot16::<SDOT>(
                            dot16::<SDOT>(zero, lo0, load_i8(&y.qs, 64 * j)),
                            lo1,
                            load_i8(&y.qs, 64 * j + 16),
                        ),
                        dot16::<SDOT>(
                            dot16::<SDOT>(zero, hi0, load_i8(&y.qs, 64 * j + 32)),
                            hi1,
                            load_i8(&y.qs, 64 * j + 48),
                        ),
                    )
                };
                acc = vmlaq_n_s32(acc, s0, sc[2 * j] as i32);
                acc = vmlaq_n_s32(acc, s1, sc[2 * j + 1] as i32);
            }
            let sumi = vaddvq_s32(acc);
            let d = fp16(x.d) * y.d();
            let dmin = fp16(x.dmin) * y.d();
            sumf += d * sumi as f32 - dmin * mins_dot(mins, y) as f32;
        }
        sumf
    }
}

/// Q5_K · Q8_K.
///
/// # Safety
/// As [`dot16`].
#[inline(always)]
pub(super) unsafe fn vec_dot_q5_K_q8_K_body<const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: register-only NEON (enabled on every aarch64 target) on blocks viewed by the safe
    // `as_blocks`; every load is a bounds-checked 16-byte `load_u8`/`load_i8` (x.qs at 32j and
    // 32j + 16, j < 4, so within 128; x.qh at 0 and 16 of 32; y.qs at 64j..64j + 64, within
    // 256); dot16 needs dotprod when SDOT is true, which our caller guarantees (# Safety).
    unsafe {
        let (x, y) = (as_blocks::<BlockQ5_K>(w), as_blocks::<BlockQ8_K>(a));
        debug_assert_eq!(x.len(), y.len());
        let mask = vdupq_n_u8(0x0F);
        let h = vdupq_n_u8(0x10);
        let zero = vdupq_n_s32(0);
        let mut sumf = 0f32;
        for (x, y) in x.iter().zip(y) {
            let (sc, mins) = scales_mins(&x.scales);
            let qh0 = load_u8(&x.qh, 0);
            let qh1 = load_u8(&x.qh, 16);
            let mut acc = zero;
            for j in 0..4 {
                let (u0, u1) = (vdupq_n_u8(1 << (2 * j)), vdupq_n_u8(2 << (2 * j)));
                let q0 = load_u8(&x.qs, 32 * j);
                let q1 = load_u8(&x.qs, 32 * j + 16);
                let lo0 = vorrq_u8(vandq_u8(q0, mask), vandq_u8(vtstq_u8(qh0, u0), h));
                let lo1 = vorrq_u8(vandq_u8(q1, mask), vandq_u8(vtstq_u8(qh1, u0), h));
                let hi0 = vorrq_u8(vshrq_n_u8::<4>(q0), vandq_u8(vtstq_u8(qh0, u1), h));
                let hi1 = vorrq_u8(vshrq_n_u8::<4>(q1), vandq_u8(vtstq_u8(qh1, u1), h));
                let (lo0, lo1) = (vreinterpretq_s8_u8(lo0), vreinterpretq_s8_u8(lo1));
                let (hi0, hi1) = (vreinterpretq_s8_u8(hi0), vreinterpretq_s8_u8(hi1));
                let (s0, s1) = {
                    (
                        dot16::<SDOT>(
                            dot16::<SDOT>(zero, lo0, load_i8(&y.qs, 64 * j)),
                            lo1,
                            load_i8(&y.qs, 64 * j + 16),
                        ),
                        dot16::<SDOT>(
                            dot16::<SDOT>(zero, hi0, load_i8(&y.qs, 64 * j + 32)),
                            hi1,
                            load_i8(&y.qs, 64 * j + 48),
                        ),
                    )
                };
                acc = vmlaq_n_s32(acc, s0, sc[2 * j] as i32);
                acc = vmlaq_n_s32(acc, s1, sc[2 * j + 1] as i32);
            }
            let sumi = vaddvq_s32(acc);
            let d = fp16(x.d) * y.d();
            let dmin = fp16(x.dmin) * y.d();
            sumf += d * sumi as f32 - dmin * mins_dot(mins, y) as f32;
        }
        sumf
    }
}

/// Q6_K · Q8_K.
///
/// # Safety
/// As [`dot16`].
#[inline(always)]
pub(super) unsafe fn vec_dot_q6_K_q8_K_body<const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: register-only NEON (enabled on every aarch64 target) on blocks viewed by the safe
    // `as_blocks`; every load is a bounds-checked 16-byte `load_u8`/`load_i8` (x.ql at
    // 64n + 32 + l + 16 ≤ 128, x.qh at 32n + l + 16 ≤ 64, y.qs at e + 16 ≤ 256), and
    // `x.scales[e / 16]` is indexed with a bounds check; dot16 needs dotprod when SDOT is true,
    // which our caller guarantees (# Safety).
    unsafe {
        let (x, y) = (as_blocks::<BlockQ6_K>(w), as_blocks::<BlockQ8_K>(a));
        debug_assert_eq!(x.len(), y.len());
        let zero = vdupq_n_s32(0);
        let mut sumf = 0f32;
        for (x, y) in x.iter().zip(y) {
            let mut acc = zero;
            for n in 0..2 {
                for half in 0..2 {
                    // Elements 128n + 16·half + {0, 32, 64, 96} + (0..16).
                    let l = 16 * half;
                    let ql0 = load_u8(&x.ql, 64 * n + l);
                    let ql1 = load_u8(&x.ql, 64 * n + 32 + l);
                    let qh = load_u8(&x.qh, 32 * n + l);
                    let q = q6_k_quarters(ql0, ql1, qh);
                    for (g, q) in q.into_iter().enumerate() {
                        let e = 128 * n + 32 * g + l;
                        let s = dot16::<SDOT>(zero, q, load_i8(&y.qs, e));
                        acc = vmlaq_n_s32(acc, s, x.scales[e / 16] as i32);
                    }
                }
            }
            let sumi = vaddvq_s32(acc);
            sumf += fp16(x.d) * y.d() * sumi as f32;
        }
        sumf
    }
}

/// The 6-bit quants of a Q6_K half-block `n` at offset `l` (0 or 16) as q − 32, sixteen from
/// each quarter: element 128n + 32g + l + (0..16) in lane group g, from the low-nibble bytes
/// `ql0` (at 64n + l) and `ql1` (at 64n + 32 + l) and the high-bit bytes `qh` (at 32n + l).
#[inline(always)]
pub(super) fn q6_k_quarters(ql0: uint8x16_t, ql1: uint8x16_t, qh: uint8x16_t) -> [int8x16_t; 4] {
    // SAFETY: register-only NEON, which every aarch64 target has.
    unsafe {
        let (mask4, mask2, off) = (vdupq_n_u8(0x0F), vdupq_n_u8(0x03), vdupq_n_s8(32));
        [
            vorrq_u8(vandq_u8(ql0, mask4), vshlq_n_u8::<4>(vandq_u8(qh, mask2))),
            vorrq_u8(
                vandq_u8(ql1, mask4),
                vshlq_n_u8::<4>(vandq_u8(vshrq_n_u8::<2>(qh), mask2)),
            ),
            vorrq_u8(
                vshrq_n_u8::<4>(ql0),
                vshlq_n_u8::<4>(vandq_u8(vshrq_n_u8::<4>(qh), mask2)),
            ),
            vorrq_u8(vshrq_n_u8::<4>(ql1), vshlq_n_u8::<4>(vshrq_n_u8::<6>(qh))),
        ]
        .map(|q| vsubq_s8(vreinterpretq_s8_u8(q), off))
    }
}

// ---------------------------------------------------------------- NEON table entries

macro_rules! neon_dot {
    ($($name:ident => $body:ident),* $(,)?) => {$(
        pub(super) fn $name(w: &[u8], a: &[u8]) -> f32 {
            // SAFETY: the body's only requirement is dotprod when SDOT is true; SDOT is
            // false here, and the NEON it uses is enabled on every aarch64 target.
            unsafe { $body::<false>(w, a) }
        }
    )*};
}

neon_dot!(
    vec_dot_q4_0_q8_0 => vec_dot_q4_0_q8_0_body,
    vec_dot_q4_1_q8_1 => vec_dot_q4_1_q8_1_body,
    vec_dot_q5_0_q8_0 => vec_dot_q5_0_q8_0_body,
    vec_dot_q5_1_q8_1 => vec_dot_q5_1_q8_1_body,
    vec_dot_q8_0_q8_0 => vec_dot_q8_0_q8_0_body,
    vec_dot_q4_K_q8_K => vec_dot_q4_K_q8_K_body,
    vec_dot_q5_K_q8_K => vec_dot_q5_K_q8_K_body,
    vec_dot_q6_K_q8_K => vec_dot_q6_K_q8_K_body,
);

pub(super) fn vec_dot_q4_0_q8_0_x4(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    // SAFETY: the body's only requirement is dotprod when SDOT is true; SDOT is false here,
    // and the NEON it uses is enabled on every aarch64 target.
    unsafe { vec_dot_q4_0_q8_0_x4_body::<false>(w, a) }
}

pub(super) fn vec_dot_q8_0_q8_0_x4(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    // SAFETY: the body's only requirement is dotprod when SDOT is true; SDOT is false here,
    // and the NEON it uses is enabled on every aarch64 target.
    unsafe { vec_dot_q8_0_q8_0_x4_body::<false>(w, a) }
}

// ---------------------------------------------------------------- quantizers

/// The first 32 f32 of `x` as eight vectors (bounds-checked).
#[inline(always)]
fn load_f32x32(x: &[f32]) -> [float32x4_t; 8] {
    let x = &x[..32];
    // SAFETY: `x` is exactly 32 f32 (the slicing above panics otherwise); load i < 8 reads
    // x[4i..4i + 4], inside it, at f32 alignment; NEON is enabled on every aarch64 target.
    std::array::from_fn(|i| unsafe { vld1q_f32(x.as_ptr().add(4 * i)) })
}

/// max(0, |v|) over the lanes, ignoring NaN like `f32::max` (maxNum), as the scalar fold.
#[inline(always)]
fn abs_max(v: &[float32x4_t]) -> f32 {
    // SAFETY: register-only NEON (abs, maxnm) on vectors passed by value; NEON is enabled on
    // every aarch64 target.
    unsafe {
        let m = v
            .iter()
            .fold(vdupq_n_f32(0.0), |m, &x| vmaxnmq_f32(m, vabsq_f32(x)));
        vmaxnmvq_f32(m)
    }
}

/// Narrow 16 i32 lanes to 16 int8: saturating (`f32 as i8` after rounding saturates too) or
/// wrapping (`i32 as i8`, which the Q8_K reference applies after `min(127)`).
#[inline(always)]
fn narrow_i32x16<const SATURATE: bool>(q: &[int32x4_t]) -> int8x16_t {
    // SAFETY: register-only NEON (narrowing moves) on `q[0..4]`, indexed with bounds checks;
    // NEON is enabled on every aarch64 target.
    unsafe {
        if SATURATE {
            let a = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
            let b = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
            vcombine_s8(vqmovn_s16(a), vqmovn_s16(b))
        } else {
            let a = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
            let b = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
            vcombine_s8(vmovn_s16(a), vmovn_s16(b))
        }
    }
}

/// `1 / d`, or 0 for `d == 0` (the scalar `inverse`).
#[inline(always)]
fn inverse(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// Round `v · id` half away from zero (`f32::round`) and saturate to int8, 32 at a time.
#[inline(always)]
fn round_q8(v: &[float32x4_t; 8], id: f32) -> [int8x16_t; 2] {
    // SAFETY: register-only NEON (multiply, convert, narrow) on the eight vectors of `v`;
    // NEON is enabled on every aarch64 target.
    unsafe {
        let idv = vdupq_n_f32(id);
        let q: [int32x4_t; 8] = std::array::from_fn(|i| vcvtaq_s32_f32(vmulq_f32(v[i], idv)));
        [
            narrow_i32x16::<true>(&q[..4]),
            narrow_i32x16::<true>(&q[4..]),
        ]
    }
}

/// Store 32 int8 into `dst[..32]` (bounds-checked).
#[inline(always)]
fn store_i8x32(dst: &mut [i8], q: [int8x16_t; 2]) {
    let dst = &mut dst[..32];
    // SAFETY: `dst` is exactly 32 int8, borrowed exclusively (the slicing above panics
    // otherwise); the two 16-byte stores write dst[0..16] and dst[16..32], any alignment;
    // NEON is enabled on every aarch64 target.
    unsafe {
        vst1q_s8(dst.as_mut_ptr(), q[0]);
        vst1q_s8(dst.as_mut_ptr().add(16), q[1]);
    }
}

pub(super) fn quantize_row_q8_0(src: &[f32], dst: &mut [u8]) {
    let blocks = as_blocks_mut::<BlockQ8_0>(dst);
    debug_assert_eq!(blocks.len() * QK, src.len());
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK)) {
        let v = load_f32x32(x);
        let d = abs_max(&v) / 127.0;
        b.d = Half::from_f32(d);
        store_i8x32(&mut b.qs, round_q8(&v, inverse(d)));
    }
}

pub(super) fn quantize_row_q8_1(src: &[f32], dst: &mut [u8]) {
    // SAFETY: register-only NEON (vaddlvq_s8), enabled on every aarch64 target; memory is
    // touched only by the bounds-checked `load_f32x32` / `store_i8x32` and safe field writes of
    // blocks viewed by the safe `as_blocks_mut`.
    unsafe {
        let blocks = as_blocks_mut::<BlockQ8_1>(dst);
        debug_assert_eq!(blocks.len() * QK, src.len());
        for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK)) {
            let v = load_f32x32(x);
            let d = abs_max(&v) / 127.0;
            let q = round_q8(&v, inverse(d));
            let sum = vaddlvq_s8(q[0]) as i32 + vaddlvq_s8(q[1]) as i32;
            store_i8x32(&mut b.qs, q);
            b.d = Half::from_f32(d);
            b.s = Half::from_f32(sum as f32 * d);
        }
    }
}

pub(super) fn quantize_row_q8_K(src: &[f32], dst: &mut [u8]) {
    // SAFETY: register-only NEON (dup, multiply, convert, min, add-across), enabled on every
    // aarch64 target; memory is touched only by the bounds-checked `load_f32x32` of x[32i..],
    // i < 8, of the 256-f32 chunk, `store_i8x32` into 32-byte chunks of `b.qs`, and safe field
    // writes of blocks viewed by the safe `as_blocks_mut`.
    unsafe {
        let blocks = as_blocks_mut::<BlockQ8_K>(dst);
        debug_assert_eq!(blocks.len() * QK_K, src.len());
        for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK_K)) {
            let v: [[float32x4_t; 8]; 8] = std::array::from_fn(|i| load_f32x32(&x[32 * i..]));
            let amax = abs_max(v.as_flattened());
            // The scalar picks the first element of largest magnitude, keeping its sign.
            let Some(&max) = x.iter().find(|v| v.abs() == amax).filter(|_| amax != 0.0) else {
                b.d = 0f32.to_le_bytes();
                b.qs = [0; QK_K];
                b.bsums = [[0; 2]; 16];
                continue;
            };
            let iscale = -127.0 / max;
            let is = vdupq_n_f32(iscale);
            let top = vdupq_n_s32(127);
            for (i, (v, dst)) in v.iter().zip(b.qs.chunks_exact_mut(32)).enumerate() {
                // Round half to even (the scalar's nearest_int), then min(127).
                let q: [int32x4_t; 8] =
                    std::array::from_fn(|k| vminq_s32(vcvtnq_s32_f32(vmulq_f32(is, v[k])), top));
                let q = [
                    narrow_i32x16::<false>(&q[..4]),
                    narrow_i32x16::<false>(&q[4..]),
                ];
                b.bsums[2 * i] = vaddlvq_s8(q[0]).to_le_bytes();
                b.bsums[2 * i + 1] = vaddlvq_s8(q[1]).to_le_bytes();
                store_i8x32(dst, q);
            }
            b.d = (1.0 / iscale).to_le_bytes();
        }
    }
}

// ---------------------------------------------------------------- float dots

/// Widen 4 f32 to two f64 pairs and add `w·a` (exact products, as the scalar's f64 sums).
#[inline(always)]
fn fma_f64(acc: [float64x2_t; 2], w: float32x4_t, a: float32x4_t) -> [float64x2_t; 2] {
    // SAFETY: register-only NEON (widen, f64 FMA) on vectors passed by value; NEON is
    // enabled on every aarch64 target.
    unsafe {
        [
            vfmaq_f64(
                acc[0],
                vcvt_f64_f32(vget_low_f32(w)),
                vcvt_f64_f32(vget_low_f32(a)),
            ),
            vfmaq_f64(acc[1], vcvt_high_f64_f32(w), vcvt_high_f64_f32(a)),
        ]
    }
}

/// 4 f32 from little-endian bytes at `offset` (bounds-checked).
#[inline(always)]
fn load_f32_le(bytes: &[u8], offset: usize) -> float32x4_t {
    // SAFETY: a register-only NEON reinterpretation (enabled on every aarch64 target) of
    // the 16 bytes the bounds-checked `load_u8` read.
    unsafe { vreinterpretq_f32_u8(load_u8(bytes, offset)) }
}

/// Σ w·a with `WB`-byte weights and f32 activations (little-endian bytes), 8 elements at a
/// time: `widen` turns 8 weights into two f32x4, `scalar` one weight (for the tail). The
/// products are exact in f64 and summed there in four accumulators.
#[inline(always)]
fn dot_f64<const WB: usize>(
    w: &[u8],
    a: &[u8],
    widen: impl Fn(&[u8]) -> (float32x4_t, float32x4_t),
    scalar: impl Fn(&[u8]) -> f32,
) -> f32 {
    // SAFETY: register-only NEON (f64 add, add-across), enabled on every aarch64 target; the
    // activations are read by the bounds-checked `load_f32_le` at 0 and 16 of each 32-byte chunk,
    // the weights by `widen` on 8·WB-byte chunks, and the tails through safe slices.
    unsafe {
        let zero = vdupq_n_f64(0.0);
        let mut acc = [[zero; 2]; 2];
        let (wc, ac) = (w.chunks_exact(8 * WB), a.chunks_exact(32));
        let (wt, at) = (wc.remainder(), ac.remainder());
        for (wc, ac) in wc.zip(ac) {
            let (w0, w1) = widen(wc);
            acc[0] = fma_f64(acc[0], w0, load_f32_le(ac, 0));
            acc[1] = fma_f64(acc[1], w1, load_f32_le(ac, 16));
        }
        let s = vaddq_f64(
            vaddq_f64(acc[0][0], acc[0][1]),
            vaddq_f64(acc[1][0], acc[1][1]),
        );
        let mut sum = vaddvq_f64(s);
        for (wb, ab) in wt.chunks_exact(WB).zip(at.chunks_exact(4)) {
            let av = f32::from_le_bytes([ab[0], ab[1], ab[2], ab[3]]);
            sum += scalar(wb) as f64 * av as f64;
        }
        sum as f32
    }
}

/// f16 → f32 of 8 halves (FCVTL/FCVTL2: baseline AArch64 NEON, exact).
#[inline(always)]
pub(super) fn f16x8_to_f32(h: uint8x16_t) -> (float32x4_t, float32x4_t) {
    let lo: float32x4_t;
    let hi: float32x4_t;
    // SAFETY: FCVTL/FCVTL2 (half to single) are base AArch64 SIMD, present on every AArch64
    // CPU; they read `h` and write two registers, no memory, no flags.
    unsafe {
        core::arch::asm!(
            "fcvtl {lo:v}.4s, {h:v}.4h",
            "fcvtl2 {hi:v}.4s, {h:v}.8h",
            h = in(vreg) h,
            lo = out(vreg) lo,
            hi = out(vreg) hi,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    (lo, hi)
}

pub(super) fn vec_dot_f32(w: &[u8], a: &[u8]) -> f32 {
    debug_assert_eq!(w.len(), a.len());
    dot_f64::<4>(
        w,
        a,
        |c| (load_f32_le(c, 0), load_f32_le(c, 16)),
        |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
    )
}

pub(super) fn vec_dot_f16_f32(w: &[u8], a: &[u8]) -> f32 {
    debug_assert_eq!(w.len() * 2, a.len());
    dot_f64::<2>(
        w,
        a,
        |c| f16x8_to_f32(load_u8(c, 0)),
        |b| fp16(Half([b[0], b[1]])),
    )
}

pub(super) fn vec_dot_bf16_f32(w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: register-only NEON (reinterpret, shift-left-long), enabled on every aarch64
    // target, on the 16 bytes the bounds-checked `load_u8` read from each 16-byte chunk.
    unsafe {
        debug_assert_eq!(w.len() * 2, a.len());
        dot_f64::<2>(
            w,
            a,
            |c| {
                let h = vreinterpretq_u16_u8(load_u8(c, 0));
                (
                    vreinterpretq_f32_u32(vshll_n_u16::<16>(vget_low_u16(h))),
                    vreinterpretq_f32_u32(vshll_high_n_u16::<16>(h)),
                )
            },
            |b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16),
        )
    }
}

/// Attention q·k: f16 row · f32 row, four 4-lane FMA chains over 16 elements per step.
pub(super) fn dot_f16_f32(x: &[half::f16], y: &[f32]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot_f16_f32: row lengths differ");
    let n = x.len();
    let body = n / 16 * 16;
    // SAFETY: `xs` and `ys` are bounds-checked slices of exactly 8 f16 (16 bytes: one
    // vld1q_u8, any alignment) and 8 f32 (two vld1q_f32 of ys[0..4] and ys[4..8], at f32
    // alignment); the rest is register-only NEON, enabled on every aarch64 target.
    let mut sum = unsafe {
        let mut acc = [vdupq_n_f32(0.0); 4];
        for i in (0..body).step_by(16) {
            for h in 0..2 {
                let e = i + 8 * h;
                let xs = &x[e..e + 8];
                let (lo, hi) = f16x8_to_f32(vld1q_u8(xs.as_ptr().cast()));
                let ys = &y[e..e + 8];
                acc[2 * h] = vfmaq_f32(acc[2 * h], lo, vld1q_f32(ys.as_ptr()));
                acc[2 * h + 1] = vfmaq_f32(acc[2 * h + 1], hi, vld1q_f32(ys[4..].as_ptr()));
            }
        }
        vaddvq_f32(vaddq_f32(
            vaddq_f32(acc[0], acc[1]),
            vaddq_f32(acc[2], acc[3]),
        ))
    };
    for e in body..n {
        sum += x[e].to_f32() * y[e];
    }
    sum
}

/// [`dot_f16_f32`] of each of `out.len()` rows of `x`, `stride` values apart.
pub(super) fn dot_f16_f32_rows(x: &[half::f16], stride: usize, y: &[f32], out: &mut [f32]) {
    crate::scalar::f16_dot_rows_by(x, stride, y, out, |_| {}, dot_f16_f32);
}

/// [`mad_f16_f32`] with each of `a.len()` rows of `x`, `stride` values apart, in order.
pub(super) fn mad_f16_f32_rows(y: &mut [f32], a: &[f32], x: &[half::f16], stride: usize) {
    crate::scalar::f16_mad_rows_by(y, a, x, stride, mad_f16_f32);
}

/// Attention's value sum: y += a·x for an f16 row, eight lanes per step.
pub(super) fn mad_f16_f32(y: &mut [f32], a: f32, x: &[half::f16]) {
    assert_eq!(x.len(), y.len(), "mad_f16_f32: row lengths differ");
    let n = x.len();
    let body = n / 8 * 8;
    // SAFETY: `xs` is a bounds-checked slice of exactly 8 f16 (one 16-byte vld1q_u8, any
    // alignment) and `ys` one of exactly 8 f32, borrowed exclusively (vld1q_f32 / vst1q_f32
    // of ys[0..4] and ys[4..8], at f32 alignment); NEON is enabled on every aarch64 target.
    unsafe {
        let av = vdupq_n_f32(a);
        for e in (0..body).step_by(8) {
            let xs = &x[e..e + 8];
            let (lo, hi) = f16x8_to_f32(vld1q_u8(xs.as_ptr().cast()));
            let ys = &mut y[e..e + 8];
            let r0 = vfmaq_f32(vld1q_f32(ys.as_ptr()), lo, av);
            let r1 = vfmaq_f32(vld1q_f32(ys[4..].as_ptr()), hi, av);
            vst1q_f32(ys.as_mut_ptr(), r0);
            vst1q_f32(ys[4..].as_mut_ptr(), r1);
        }
    }
    for e in body..n {
        y[e] += a * x[e].to_f32();
    }
}
