//! Attention over a q8_0 KV cache (NEON): a key row · f32 query and y += a · value row, over
//! a range of a row of ggml Q8_0 blocks that may start and end inside a block.
//!
//! Same arithmetic as the x86_64 versions (`x86_64/kv.rs`): int8 quants widened to f32
//! (exact), FMA with the f32 query per block segment, scaled by the block's d; the scalar
//! twin's operations in another summation order.

use core::arch::aarch64::*;

use crate::blocks::Half;

/// The block covering value `e` of `x`: (its d, the quants `e % 32 .. 32` of it).
#[inline(always)]
fn block_at(x: &[u8], e: usize) -> (f32, &[u8]) {
    let b = &x[e / 32 * 34..e / 32 * 34 + 34];
    (Half([b[0], b[1]]).to_f32(), &b[2 + e % 32..])
}

/// Eight int8 of `q` (at least 8 bytes) widened to two f32x4 (exact).
///
/// # Safety
/// NEON only (baseline on aarch64); `q` is bounds-checked to 8 bytes here.
#[inline(always)]
unsafe fn load8_i8(q: &[u8]) -> (float32x4_t, float32x4_t) {
    let q = &q[..8];
    // SAFETY: exactly the 8 bytes of the checked subslice (vld1_s8, any alignment).
    unsafe {
        let w = vmovl_s8(vld1_s8(q.as_ptr().cast()));
        (
            vcvtq_f32_s32(vmovl_s16(vget_low_s16(w))),
            vcvtq_f32_s32(vmovl_high_s16(w)),
        )
    }
}

/// Q8_0 key row range · f32 query (see `scalar::dot_q8_0_f32`).
pub(super) fn dot_q8_0_f32(x: &[u8], off: usize, y: &[f32]) -> f32 {
    let n = y.len();
    assert!(
        (off + n).div_ceil(32) * 34 <= x.len(),
        "dot_q8_0_f32: values past the row"
    );
    let mut tail = 0f32;
    // SAFETY: every load goes through `load8_i8` (8 checked bytes) or reads `ys`, a checked
    // subslice of exactly 8 f32 (two vld1q_f32 of ys[0..4] and ys[4..8]); the rest is
    // register-only NEON, enabled on every aarch64 target.
    let total = unsafe {
        let mut acc = [vdupq_n_f32(0.0); 2];
        let mut at = 0;
        while at < n {
            let (d, q) = block_at(x, off + at);
            let take = q.len().min(n - at);
            let body = take / 8 * 8;
            let mut s = [vdupq_n_f32(0.0); 2];
            for j in (0..body).step_by(8) {
                let (lo, hi) = load8_i8(&q[j..]);
                let ys = &y[at + j..at + j + 8];
                s[0] = vfmaq_f32(s[0], lo, vld1q_f32(ys.as_ptr()));
                s[1] = vfmaq_f32(s[1], hi, vld1q_f32(ys[4..].as_ptr()));
            }
            let dv = vdupq_n_f32(d);
            acc[0] = vfmaq_f32(acc[0], dv, s[0]);
            acc[1] = vfmaq_f32(acc[1], dv, s[1]);
            let mut part = 0f32;
            for j in body..take {
                part += q[j] as i8 as f32 * y[at + j];
            }
            tail += d * part;
            at += take;
        }
        vaddvq_f32(vaddq_f32(acc[0], acc[1]))
    };
    total + tail
}

/// y += a · (Q8_0 value row range) (see `scalar::mad_q8_0_f32`).
pub(super) fn mad_q8_0_f32(y: &mut [f32], a: f32, x: &[u8], off: usize) {
    let n = y.len();
    assert!(
        (off + n).div_ceil(32) * 34 <= x.len(),
        "mad_q8_0_f32: values past the row"
    );
    let mut at = 0;
    while at < n {
        let (d, q) = block_at(x, off + at);
        let take = q.len().min(n - at);
        let ad = a * d;
        let body = take / 8 * 8;
        // SAFETY: loads through `load8_i8` (8 checked bytes) and of `ys`, a checked,
        // exclusively borrowed subslice of exactly 8 f32 (vld1q_f32 / vst1q_f32 of ys[0..4]
        // and ys[4..8]); NEON is enabled on every aarch64 target.
        unsafe {
            let adv = vdupq_n_f32(ad);
            for j in (0..body).step_by(8) {
                let (lo, hi) = load8_i8(&q[j..]);
                let ys = &mut y[at + j..at + j + 8];
                let r0 = vfmaq_f32(vld1q_f32(ys.as_ptr()), lo, adv);
                let r1 = vfmaq_f32(vld1q_f32(ys[4..].as_ptr()), hi, adv);
                vst1q_f32(ys.as_mut_ptr(), r0);
                vst1q_f32(ys[4..].as_mut_ptr(), r1);
            }
        }
        for j in body..take {
            y[at + j] += ad * q[j] as i8 as f32;
        }
        at += take;
    }
}

/// [`dot_q8_0_f32`] of each of `out.len()` rows at values `off + r·stride` of `x`.
pub(super) fn dot_q8_0_f32_rows(x: &[u8], off: usize, stride: usize, y: &[f32], out: &mut [f32]) {
    crate::scalar::q8_0_dot_rows_by(x, off, stride, y, out, |_| {}, dot_q8_0_f32);
}

/// [`mad_q8_0_f32`] with each of `a.len()` rows at values `off + r·stride` of `x`, in order.
pub(super) fn mad_q8_0_f32_rows(y: &mut [f32], a: &[f32], x: &[u8], off: usize, stride: usize) {
    crate::scalar::q8_0_mad_rows_by(y, a, x, off, stride, |_| {}, mad_q8_0_f32);
}
