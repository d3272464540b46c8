//! Attention over a q8_0 KV cache (AVX2 + FMA, AVX-512 F): a key row · f32 query and
//! y += a · value row, over a range of a row of ggml Q8_0 blocks that may start and end inside
//! a block.
//!
//! Arithmetic: the f32 query times the int8 quants widened to f32 (exact), summed per block
//! segment in f32 FMA chains, then scaled by the block's d — the scalar twin's arithmetic
//! (`scalar::dot_q8_0_f32`) in another summation order, so no quantization of the query
//! and no error beyond f32 rounding. (llama.cpp instead quantizes q to Q8_0 for a q8_0 K
//! cache and runs int8 dots; here the score row is ≤ a few thousand dots of 64–128 values
//! per head, the widening costs about what f16's `vcvtph2ps` costs, and the cache is read at
//! half the bytes of f16.)

use std::arch::x86_64::*;

use super::KV_ROWS_AHEAD;
use crate::dispatch::Kernels;
use crate::scalar::{q8_0_dot_rows_by, q8_0_mad_rows_by};

/// The block covering value `e` of `x`: (its d, the quants `e % 32 .. 32` of it). d is
/// converted by F16C (exact, as the table the weight kernels use, without its 256 KiB in the
/// cache next to the streamed KV rows).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn block_at(x: &[u8], e: usize) -> (f32, &[u8]) {
    let b = &x[e / 32 * 34..e / 32 * 34 + 34];
    (
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(
            u16::from_le_bytes([b[0], b[1]]),
        )))),
        &b[2 + e % 32..],
    )
}

/// Eight int8 → eight f32 (exact).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn load8_i8(q: &[u8]) -> __m256 {
    let q = &q[..8];
    // SAFETY: exactly the 8 bytes of the checked subslice (an unaligned 64-bit load).
    let v = unsafe { _mm_loadl_epi64(q.as_ptr().cast()) };
    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v))
}

/// Eight f32 of `y` from `at`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn load8(y: &[f32], at: usize) -> __m256 {
    let y = &y[at..at + 8];
    // SAFETY: exactly the 8 f32 of the checked subslice.
    unsafe { _mm256_loadu_ps(y.as_ptr()) }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_avx2(x: &[u8], off: usize, y: &[f32]) -> f32 {
    let n = y.len();
    assert!(
        (off + n).div_ceil(32) * 34 <= x.len(),
        "dot_q8_0_f32: values past the row"
    );
    // Blocks alternate between two accumulators: `cur` takes this block, then the two swap
    // (named values, not an indexed array, so they stay in registers).
    let (mut cur, mut other) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut tail = 0f32;
    let mut at = 0;
    let mut blk = 0;
    while at < n {
        let (d, q) = block_at(x, off + at);
        let take = q.len().min(n - at);
        let body = take / 8 * 8;
        let s = if take == 32 {
            // SAFETY: `block_at` sliced the whole block (`q` is its 32 quants) and
            // `at + 32 <= n = y.len()`: every load below is inside `q` or `y[at..at + 32]`.
            unsafe {
                let (q, y) = (q.as_ptr(), y.as_ptr().add(at));
                let mut s = _mm256_setzero_ps();
                for j in (0..32).step_by(8) {
                    let w = _mm256_cvtepi8_epi32(_mm_loadl_epi64(q.add(j).cast()));
                    s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(w), _mm256_loadu_ps(y.add(j)), s);
                }
                s
            }
        } else {
            let mut s = _mm256_setzero_ps();
            for j in (0..body).step_by(8) {
                s = _mm256_fmadd_ps(load8_i8(&q[j..]), load8(y, at + j), s);
            }
            s
        };
        cur = _mm256_fmadd_ps(_mm256_set1_ps(d), s, cur);
        std::mem::swap(&mut cur, &mut other);
        if take < 32 {
            let mut part = 0f32;
            for j in body..take {
                part += q[j] as i8 as f32 * y[at + j];
            }
            tail += d * part;
        }
        at += take;
        blk += 1;
    }
    // Block 0's accumulator first, as ever: after an even number of blocks it is `cur`.
    let (a0, a1) = if blk % 2 == 0 {
        (cur, other)
    } else {
        (other, cur)
    };
    hsum(_mm256_add_ps(a0, a1)) + tail
}

#[target_feature(enable = "avx2,fma,f16c")]
fn mad_avx2(y: &mut [f32], a: f32, x: &[u8], off: usize) {
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
        let adv = _mm256_set1_ps(ad);
        if take == 32 {
            // SAFETY: `block_at` sliced the whole block (`q` is its 32 quants) and
            // `at + 32 <= n = y.len()`: every access below is inside `q` or `y[at..at + 32]`,
            // which is borrowed exclusively.
            unsafe {
                let (q, y) = (q.as_ptr(), y.as_mut_ptr().add(at));
                for j in (0..32).step_by(8) {
                    let w = _mm256_cvtepi8_epi32(_mm_loadl_epi64(q.add(j).cast()));
                    let r = _mm256_fmadd_ps(_mm256_cvtepi32_ps(w), adv, _mm256_loadu_ps(y.add(j)));
                    _mm256_storeu_ps(y.add(j), r);
                }
            }
        } else {
            let body = take / 8 * 8;
            for j in (0..body).step_by(8) {
                let r = _mm256_fmadd_ps(load8_i8(&q[j..]), adv, load8(y, at + j));
                let out = &mut y[at + j..at + j + 8];
                // SAFETY: exactly the 8 f32 of the checked subslice.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), r) };
            }
            for j in body..take {
                y[at + j] += ad * q[j] as i8 as f32;
            }
        }
        at += take;
    }
}

/// Sixteen int8 → sixteen f32 (exact).
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
#[inline]
fn load16_i8(q: &[u8]) -> __m512 {
    let q = &q[..16];
    // SAFETY: exactly the 16 bytes of the checked subslice (unaligned load).
    let v = unsafe { _mm_loadu_si128(q.as_ptr().cast()) };
    _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v))
}

/// Sixteen f32 of `y` from `at`.
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
#[inline]
fn load16(y: &[f32], at: usize) -> __m512 {
    let y = &y[at..at + 16];
    // SAFETY: exactly the 16 f32 of the checked subslice.
    unsafe { _mm512_loadu_ps(y.as_ptr()) }
}

#[target_feature(enable = "avx2,fma,f16c,avx512f")]
fn dot_avx512(x: &[u8], off: usize, y: &[f32]) -> f32 {
    let n = y.len();
    assert!(
        (off + n).div_ceil(32) * 34 <= x.len(),
        "dot_q8_0_f32: values past the row"
    );
    // Blocks alternate between two accumulators: `cur` takes this block, then the two swap
    // (named values, not an indexed array, so they stay in registers).
    let (mut cur, mut other) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut tail = 0f32;
    let mut at = 0;
    let mut blk = 0;
    while at < n {
        let (d, q) = block_at(x, off + at);
        let take = q.len().min(n - at);
        let body = take / 16 * 16;
        let s = if take == 32 {
            // SAFETY: `block_at` sliced the whole block (`q` is its 32 quants) and
            // `at + 32 <= n = y.len()`: every load below is inside `q` or `y[at..at + 32]`.
            unsafe {
                let (q, y) = (q.as_ptr(), y.as_ptr().add(at));
                let w0 = _mm512_cvtepi8_epi32(_mm_loadu_si128(q.cast()));
                let w1 = _mm512_cvtepi8_epi32(_mm_loadu_si128(q.add(16).cast()));
                let s = _mm512_fmadd_ps(
                    _mm512_cvtepi32_ps(w0),
                    _mm512_loadu_ps(y),
                    _mm512_setzero_ps(),
                );
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(w1), _mm512_loadu_ps(y.add(16)), s)
            }
        } else {
            let mut s = _mm512_setzero_ps();
            for j in (0..body).step_by(16) {
                s = _mm512_fmadd_ps(load16_i8(&q[j..]), load16(y, at + j), s);
            }
            s
        };
        cur = _mm512_fmadd_ps(_mm512_set1_ps(d), s, cur);
        std::mem::swap(&mut cur, &mut other);
        if take < 32 {
            let mut part = 0f32;
            for j in body..take {
                part += q[j] as i8 as f32 * y[at + j];
            }
            tail += d * part;
        }
        at += take;
        blk += 1;
    }
    let (a0, a1) = if blk % 2 == 0 {
        (cur, other)
    } else {
        (other, cur)
    };
    _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) + tail
}

#[target_feature(enable = "avx2,fma,f16c,avx512f")]
fn mad_avx512(y: &mut [f32], a: f32, x: &[u8], off: usize) {
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
        let adv = _mm512_set1_ps(ad);
        if take == 32 {
            // SAFETY: `block_at` sliced the whole block (`q` is its 32 quants) and
            // `at + 32 <= n = y.len()`: every access below is inside `q` or `y[at..at + 32]`,
            // which is borrowed exclusively.
            unsafe {
                let (q, y) = (q.as_ptr(), y.as_mut_ptr().add(at));
                for j in [0, 16] {
                    let w = _mm512_cvtepi8_epi32(_mm_loadu_si128(q.add(j).cast()));
                    let r = _mm512_fmadd_ps(_mm512_cvtepi32_ps(w), adv, _mm512_loadu_ps(y.add(j)));
                    _mm512_storeu_ps(y.add(j), r);
                }
            }
        } else {
            let body = take / 16 * 16;
            for j in (0..body).step_by(16) {
                let r = _mm512_fmadd_ps(load16_i8(&q[j..]), adv, load16(y, at + j));
                let out = &mut y[at + j..at + j + 16];
                // SAFETY: exactly the 16 f32 of the checked subslice.
                unsafe { _mm512_storeu_ps(out.as_mut_ptr(), r) };
            }
            for j in body..take {
                y[at + j] += ad * q[j] as i8 as f32;
            }
        }
        at += take;
    }
}

/// The bytes of the blocks holding values `at..at + n` of a Q8_0 row buffer, prefetched into L2.
#[target_feature(enable = "sse")]
#[inline]
fn prefetch_values(x: &[u8], at: usize, n: usize) {
    super::prefetch_l2(x, at / 32 * 34, (at + n).div_ceil(32) * 34);
}

// The rows kernels: the single-row kernel of the path row after row (so its bits), the blocks
// of the row `KV_ROWS_AHEAD` later prefetched into L2.

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows_avx2(x: &[u8], off: usize, stride: usize, y: &[f32], out: &mut [f32]) {
    let ahead = |at: usize| prefetch_values(x, at + KV_ROWS_AHEAD * stride, y.len());
    q8_0_dot_rows_by(x, off, stride, y, out, ahead, |x, off, y| {
        dot_avx2(x, off, y)
    });
}

#[target_feature(enable = "avx2,fma,f16c")]
fn mad_rows_avx2(y: &mut [f32], a: &[f32], x: &[u8], off: usize, stride: usize) {
    let n = y.len();
    let ahead = |at: usize| prefetch_values(x, at + KV_ROWS_AHEAD * stride, n);
    q8_0_mad_rows_by(y, a, x, off, stride, ahead, |y, a, x, off| {
        mad_avx2(y, a, x, off)
    });
}

#[target_feature(enable = "avx2,fma,f16c,avx512f")]
fn dot_rows_avx512(x: &[u8], off: usize, stride: usize, y: &[f32], out: &mut [f32]) {
    let ahead = |at: usize| prefetch_values(x, at + KV_ROWS_AHEAD * stride, y.len());
    q8_0_dot_rows_by(x, off, stride, y, out, ahead, |x, off, y| {
        dot_avx512(x, off, y)
    });
}

#[target_feature(enable = "avx2,fma,f16c,avx512f")]
fn mad_rows_avx512(y: &mut [f32], a: &[f32], x: &[u8], off: usize, stride: usize) {
    let n = y.len();
    let ahead = |at: usize| prefetch_values(x, at + KV_ROWS_AHEAD * stride, n);
    q8_0_mad_rows_by(y, a, x, off, stride, ahead, |y, a, x, off| {
        mad_avx512(y, a, x, off)
    });
}

fn dot_q8_0_f32_avx2(x: &[u8], off: usize, y: &[f32]) -> f32 {
    // SAFETY: only installed by `with_avx2`, whose caller guarantees AVX2 + FMA + F16C.
    unsafe { dot_avx2(x, off, y) }
}

fn mad_q8_0_f32_avx2(y: &mut [f32], a: f32, x: &[u8], off: usize) {
    // SAFETY: only installed by `with_avx2`, whose caller guarantees AVX2 + FMA + F16C.
    unsafe { mad_avx2(y, a, x, off) }
}

fn dot_q8_0_f32_avx512(x: &[u8], off: usize, y: &[f32]) -> f32 {
    // SAFETY: only installed by `with_avx512`, whose caller guarantees AVX2 and AVX-512 F.
    unsafe { dot_avx512(x, off, y) }
}

fn mad_q8_0_f32_avx512(y: &mut [f32], a: f32, x: &[u8], off: usize) {
    // SAFETY: only installed by `with_avx512`, whose caller guarantees AVX2 and AVX-512 F.
    unsafe { mad_avx512(y, a, x, off) }
}

fn dot_q8_0_f32_rows_avx2(x: &[u8], off: usize, stride: usize, y: &[f32], out: &mut [f32]) {
    // SAFETY: only installed by `with_avx2`, whose caller guarantees AVX2 + FMA + F16C.
    unsafe { dot_rows_avx2(x, off, stride, y, out) }
}

fn mad_q8_0_f32_rows_avx2(y: &mut [f32], a: &[f32], x: &[u8], off: usize, stride: usize) {
    // SAFETY: only installed by `with_avx2`, whose caller guarantees AVX2 + FMA + F16C.
    unsafe { mad_rows_avx2(y, a, x, off, stride) }
}

fn dot_q8_0_f32_rows_avx512(x: &[u8], off: usize, stride: usize, y: &[f32], out: &mut [f32]) {
    // SAFETY: only installed by `with_avx512`, whose caller guarantees AVX2 and AVX-512 F.
    unsafe { dot_rows_avx512(x, off, stride, y, out) }
}

fn mad_q8_0_f32_rows_avx512(y: &mut [f32], a: &[f32], x: &[u8], off: usize, stride: usize) {
    // SAFETY: only installed by `with_avx512`, whose caller guarantees AVX2 and AVX-512 F.
    unsafe { mad_rows_avx512(y, a, x, off, stride) }
}

/// `k` with the AVX2 q8_0 KV kernels.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C.
pub(crate) unsafe fn with_avx2(k: Kernels) -> Kernels {
    Kernels {
        dot_q8_0_f32: dot_q8_0_f32_avx2,
        mad_q8_0_f32: mad_q8_0_f32_avx2,
        dot_q8_0_f32_rows: dot_q8_0_f32_rows_avx2,
        mad_q8_0_f32_rows: mad_q8_0_f32_rows_avx2,
        ..k
    }
}

/// `k` with the AVX-512 q8_0 KV kernels.
///
/// # Safety
/// The CPU must have AVX2, FMA, F16C and AVX-512 F.
pub(crate) unsafe fn with_avx512(k: Kernels) -> Kernels {
    Kernels {
        dot_q8_0_f32: dot_q8_0_f32_avx512,
        mad_q8_0_f32: mad_q8_0_f32_avx512,
        dot_q8_0_f32_rows: dot_q8_0_f32_rows_avx512,
        mad_q8_0_f32_rows: mad_q8_0_f32_rows_avx512,
        ..k
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scalar;

    /// The AVX2 and AVX-512 kernels against the scalar twins on a CPU that has the features
    /// but not the whole AVX-512 path (e.g. AVX-512 F without VNNI: then no dispatch path
    /// installs `with_avx512`, and tests/kv_q8_0.rs cannot reach it). Tolerances as there.
    #[test]
    fn kernels_match_scalar_where_the_cpu_has_the_features() {
        let mut k = Kernels::SCALAR;
        let mut seen = Vec::new();
        if super::super::missing_avx2().is_none() {
            // SAFETY: AVX2, FMA and F16C were just detected.
            seen.push(("avx2", unsafe { with_avx2(k) }));
            if is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX2, FMA, F16C and AVX-512 F were just detected.
                k = unsafe { with_avx512(k) };
                seen.push(("avx512f", k));
            }
        }
        let nb = 6;
        let mut row = vec![0u8; nb * 34];
        let mut state = 7u32;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            state >> 8
        };
        for b in row.chunks_exact_mut(34) {
            let d = half::f16::from_f32((next() % 1000) as f32 * 1e-3 + 0.01);
            b[..2].copy_from_slice(&d.to_le_bytes());
            for q in &mut b[2..] {
                *q = next() as u8;
            }
        }
        for (off, n) in [
            (0, 192),
            (0, 64),
            (32, 128),
            (7, 57),
            (16, 16),
            (31, 1),
            (40, 80),
        ] {
            let y: Vec<f32> = (0..n)
                .map(|_| (next() % 2001) as f32 * 1e-3 - 1.0)
                .collect();
            let want = scalar::dot_q8_0_f32(&row, off, &y);
            let mut scale = 0f32;
            scalar::q8_0_segments(&row, off, n, |d, qs, at| {
                scale += qs
                    .iter()
                    .zip(&y[at..])
                    .map(|(&q, y)| (d * q as f32 * y).abs())
                    .sum::<f32>();
            });
            let mut want_y = y.clone();
            scalar::mad_q8_0_f32(&mut want_y, 0.37, &row, off);
            for (name, k) in &seen {
                let got = (k.dot_q8_0_f32)(&row, off, &y);
                assert!(
                    (got - want).abs() <= 1e-5 * scale + 1e-30,
                    "{name} dot {off}+{n}"
                );
                let mut got_y = y.clone();
                (k.mad_q8_0_f32)(&mut got_y, 0.37, &row, off);
                for (i, (g, w)) in got_y.iter().zip(&want_y).enumerate() {
                    assert!(
                        (g - w).abs() <= 2.0 * f32::EPSILON * (y[i].abs() + w.abs() + 1.0),
                        "{name} mad {off}+{n} at {i}"
                    );
                }
            }
        }
    }
}
