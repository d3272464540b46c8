//! The scalar reference: always compiled, the spec every SIMD path is tested against.
//!
//! Quantizers follow ggml's `quantize_row_*_ref` (ggml-quants.c) operation for operation, so
//! their bytes equal ggml's and gguf-py's; dequantizers follow `dequantize_row_*`; dot products
//! follow `ggml_vec_dot_*_generic` (integer sums per block, scaled and accumulated in f32).
//! Every function takes whole blocks; callers check that the lengths agree.

use crate::blocks::{
    as_blocks, as_blocks_mut, get_scale_min_k4, BlockQ4_0, BlockQ4_1, BlockQ4_K, BlockQ5_0,
    BlockQ5_1, BlockQ5_K, BlockQ6_K, BlockQ8_0, BlockQ8_1, BlockQ8_K, Half, QK, QK_K,
};

// ---------------------------------------------------------------- float rows

pub fn quantize_row_f32(src: &[f32], dst: &mut [u8]) {
    debug_assert_eq!(dst.len(), src.len() * 4);
    for (d, x) in dst.chunks_exact_mut(4).zip(src) {
        d.copy_from_slice(&x.to_le_bytes());
    }
}

pub fn quantize_row_f16(src: &[f32], dst: &mut [u8]) {
    debug_assert_eq!(dst.len(), src.len() * 2);
    for (d, x) in dst.chunks_exact_mut(2).zip(src) {
        d.copy_from_slice(&Half::from_f32(*x).0);
    }
}

/// ggml's `ggml_compute_fp32_to_bf16`: NaN forced quiet, otherwise round to nearest even.
pub fn f32_to_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    ((u + (0x7fff + ((u >> 16) & 1))) >> 16) as u16
}

pub fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

pub fn quantize_row_bf16(src: &[f32], dst: &mut [u8]) {
    debug_assert_eq!(dst.len(), src.len() * 2);
    for (d, x) in dst.chunks_exact_mut(2).zip(src) {
        d.copy_from_slice(&f32_to_bf16(*x).to_le_bytes());
    }
}

pub fn dequantize_row_f32(src: &[u8], dst: &mut [f32]) {
    debug_assert_eq!(src.len(), dst.len() * 4);
    for (y, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
        *y = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}

pub fn dequantize_row_f16(src: &[u8], dst: &mut [f32]) {
    debug_assert_eq!(src.len(), dst.len() * 2);
    for (y, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *y = Half([b[0], b[1]]).to_f32();
    }
}

pub fn dequantize_row_bf16(src: &[u8], dst: &mut [f32]) {
    debug_assert_eq!(src.len(), dst.len() * 2);
    for (y, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *y = bf16_to_f32(u16::from_le_bytes([b[0], b[1]]));
    }
}

/// Σ w·x with f32 weights and f32 activations (both as little-endian bytes), summed in f64.
pub fn vec_dot_f32(w: &[u8], a: &[u8]) -> f32 {
    debug_assert_eq!(w.len(), a.len());
    let mut sum = 0f64;
    for (wb, ab) in w.chunks_exact(4).zip(a.chunks_exact(4)) {
        let wv = f32::from_le_bytes([wb[0], wb[1], wb[2], wb[3]]);
        let av = f32::from_le_bytes([ab[0], ab[1], ab[2], ab[3]]);
        sum += wv as f64 * av as f64;
    }
    sum as f32
}

/// Σ w·x with f16 weights and f32 activations, summed in f64.
pub fn vec_dot_f16_f32(w: &[u8], a: &[u8]) -> f32 {
    debug_assert_eq!(w.len() * 2, a.len());
    let mut sum = 0f64;
    for (wb, ab) in w.chunks_exact(2).zip(a.chunks_exact(4)) {
        let wv = Half([wb[0], wb[1]]).to_f32();
        let av = f32::from_le_bytes([ab[0], ab[1], ab[2], ab[3]]);
        sum += wv as f64 * av as f64;
    }
    sum as f32
}

/// Σ x·y of an f16 row (a cached key) and an f32 row (a query), accumulated in f32 in order:
/// attention's q·k. SIMD paths sum in a different order (tolerance, not bit-identity).
pub fn dot_f16_f32(x: &[half::f16], y: &[f32]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot_f16_f32: row lengths differ");
    x.iter().zip(y).fold(0f32, |s, (a, b)| s + a.to_f32() * b)
}

/// y += a·x for an f16 row `x` (a cached value): attention's weighted sum of values.
pub fn mad_f16_f32(y: &mut [f32], a: f32, x: &[half::f16]) {
    assert_eq!(x.len(), y.len(), "mad_f16_f32: row lengths differ");
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x.to_f32();
    }
}

/// The rows `r < n` of `x`, `stride` values apart and `len` long, checked to fit (the rows
/// kernels of every path call this before reading).
pub(crate) fn check_rows(x_len: usize, stride: usize, n: usize, len: usize, what: &str) {
    let need = n.checked_sub(1).map_or(0, |last| last * stride + len);
    assert!(
        need <= x_len,
        "{what}: {n} rows of {len} values {stride} apart need {need} values, got {x_len}"
    );
}

/// `dot` (a path's single-row f16 kernel) of each of `out.len()` rows of `x`, `stride` values
/// apart, after `ahead(at)` is told where row `r` begins (a path's prefetch, or nothing): the
/// f16 rows kernels that are this loop get their single-row kernel's bits.
#[inline(always)]
pub(crate) fn f16_dot_rows_by(
    x: &[half::f16],
    stride: usize,
    y: &[f32],
    out: &mut [f32],
    ahead: impl Fn(usize),
    dot: impl Fn(&[half::f16], &[f32]) -> f32,
) {
    check_rows(x.len(), stride, out.len(), y.len(), "dot_f16_f32_rows");
    for (r, o) in out.iter_mut().enumerate() {
        ahead(r * stride);
        *o = dot(&x[r * stride..][..y.len()], y);
    }
}

/// `mad` (a path's single-row f16 kernel) with `a[r]` and each row of `x`, `stride` values
/// apart, in order.
#[inline(always)]
pub(crate) fn f16_mad_rows_by(
    y: &mut [f32],
    a: &[f32],
    x: &[half::f16],
    stride: usize,
    mad: impl Fn(&mut [f32], f32, &[half::f16]),
) {
    check_rows(x.len(), stride, a.len(), y.len(), "mad_f16_f32_rows");
    for (r, &ar) in a.iter().enumerate() {
        mad(y, ar, &x[r * stride..][..y.len()]);
    }
}

/// [`dot_f16_f32`] of each of `out.len()` rows of `x`, `stride` values apart.
pub fn dot_f16_f32_rows(x: &[half::f16], stride: usize, y: &[f32], out: &mut [f32]) {
    f16_dot_rows_by(x, stride, y, out, |_| {}, dot_f16_f32);
}

/// [`mad_f16_f32`] with each of `a.len()` rows of `x`, `stride` values apart, in order.
pub fn mad_f16_f32_rows(y: &mut [f32], a: &[f32], x: &[half::f16], stride: usize) {
    f16_mad_rows_by(y, a, x, stride, mad_f16_f32);
}

/// Σ w·x with bf16 weights and f32 activations, summed in f64.
pub fn vec_dot_bf16_f32(w: &[u8], a: &[u8]) -> f32 {
    debug_assert_eq!(w.len() * 2, a.len());
    let mut sum = 0f64;
    for (wb, ab) in w.chunks_exact(2).zip(a.chunks_exact(4)) {
        let wv = bf16_to_f32(u16::from_le_bytes([wb[0], wb[1]]));
        let av = f32::from_le_bytes([ab[0], ab[1], ab[2], ab[3]]);
        sum += wv as f64 * av as f64;
    }
    sum as f32
}

// ---------------------------------------------------------------- quantizers

/// The element of largest magnitude (the first one on ties) and its magnitude.
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let mut amax = 0f32;
    let mut max = 0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (max, amax)
}

fn min_max(x: &[f32]) -> (f32, f32) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

fn inverse(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

pub fn quantize_row_q8_0(src: &[f32], dst: &mut [u8]) {
    let blocks = as_blocks_mut::<BlockQ8_0>(dst);
    debug_assert_eq!(blocks.len() * QK, src.len());
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK)) {
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = inverse(d);
        b.d = Half::from_f32(d);
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = (v * id).round() as i8;
        }
    }
}

pub fn quantize_row_q8_1(src: &[f32], dst: &mut [u8]) {
    let blocks = as_blocks_mut::<BlockQ8_1>(dst);
    debug_assert_eq!(blocks.len() * QK, src.len());
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK)) {
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = inverse(d);
        let mut sum = 0i32;
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = (v * id).round() as i8;
            sum += *q as i32;
        }
        b.d = Half::from_f32(d);
        b.s = Half::from_f32(sum as f32 * d);
    }
}

/// ggml's `nearest_int`: round half to even (exact for |x| < 2^22).
fn nearest_int(x: f32) -> i32 {
    x.round_ties_even() as i32
}

pub fn quantize_row_q8_K(src: &[f32], dst: &mut [u8]) {
    let blocks = as_blocks_mut::<BlockQ8_K>(dst);
    debug_assert_eq!(blocks.len() * QK_K, src.len());
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK_K)) {
        let (max, amax) = signed_absmax(x);
        if amax == 0.0 {
            b.d = 0f32.to_le_bytes();
            b.qs = [0; QK_K];
            b.bsums = [[0; 2]; 16];
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for j in 0..QK_K / 16 {
            let s: i32 = b.qs[j * 16..(j + 1) * 16].iter().map(|&q| q as i32).sum();
            b.bsums[j] = (s as i16).to_le_bytes();
        }
        b.d = (1.0 / iscale).to_le_bytes();
    }
}

pub fn quantize_row_q4_0(src: &[f32], dst: &mut [u8]) {
    let blocks = as_blocks_mut::<BlockQ4_0>(dst);
    debug_assert_eq!(blocks.len() * QK, src.len());
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK)) {
        let (max, _) = signed_absmax(x);
        let d = max / -8.0;
        let id = inverse(d);
        b.d = Half::from_f32(d);
        for j in 0..QK / 2 {
            let q0 = ((x[j] * id + 8.5) as u8).min(15);
            let q1 = ((x[j + QK / 2] * id + 8.5) as u8).min(15);
            b.qs[j] = q0 | (q1 << 4);
        }
    }
}

pub fn quantize_row_q4_1(src: &[f32], dst: &mut [u8]) {
    let blocks = as_blocks_mut::<BlockQ4_1>(dst);
    debug_assert_eq!(blocks.len() * QK, src.len());
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = inverse(d);
        b.d = Half::from_f32(d);
        b.m = Half::from_f32(min);
        for j in 0..QK / 2 {
            let q0 = (((x[j] - min) * id + 0.5) as u8).min(15);
            let q1 = (((x[j + QK / 2] - min) * id + 0.5) as u8).min(15);
            b.qs[j] = q0 | (q1 << 4);
        }
    }
}

pub fn quantize_row_q5_0(src: &[f32], dst: &mut [u8]) {
    let blocks = as_blocks_mut::<BlockQ5_0>(dst);
    debug_assert_eq!(blocks.len() * QK, src.len());
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK)) {
        let (max, _) = signed_absmax(x);
        let d = max / -16.0;
        let id = inverse(d);
        b.d = Half::from_f32(d);
        let mut qh = 0u32;
        for j in 0..QK / 2 {
            let q0 = ((x[j] * id + 16.5) as u8).min(31);
            let q1 = ((x[j + QK / 2] * id + 16.5) as u8).min(31);
            b.qs[j] = (q0 & 0x0F) | ((q1 & 0x0F) << 4);
            qh |= ((q0 as u32 & 0x10) >> 4) << j;
            qh |= ((q1 as u32 & 0x10) >> 4) << (j + QK / 2);
        }
        b.qh = qh.to_le_bytes();
    }
}

pub fn quantize_row_q5_1(src: &[f32], dst: &mut [u8]) {
    let blocks = as_blocks_mut::<BlockQ5_1>(dst);
    debug_assert_eq!(blocks.len() * QK, src.len());
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = inverse(d);
        b.d = Half::from_f32(d);
        b.m = Half::from_f32(min);
        let mut qh = 0u32;
        for j in 0..QK / 2 {
            let q0 = (((x[j] - min) * id + 0.5) as u8).min(31);
            let q1 = (((x[j + QK / 2] - min) * id + 0.5) as u8).min(31);
            b.qs[j] = (q0 & 0x0F) | ((q1 & 0x0F) << 4);
            qh |= ((q0 as u32 & 0x10) >> 4) << j;
            qh |= ((q1 as u32 & 0x10) >> 4) << (j + QK / 2);
        }
        b.qh = qh.to_le_bytes();
    }
}

// ---------------------------------------------------------------- dequantizers

pub fn dequantize_row_q4_0(src: &[u8], dst: &mut [f32]) {
    let blocks = as_blocks::<BlockQ4_0>(src);
    debug_assert_eq!(blocks.len() * QK, dst.len());
    for (b, y) in blocks.iter().zip(dst.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for j in 0..QK / 2 {
            y[j] = ((b.qs[j] & 0x0F) as i32 - 8) as f32 * d;
            y[j + QK / 2] = ((b.qs[j] >> 4) as i32 - 8) as f32 * d;
        }
    }
}

pub fn dequantize_row_q4_1(src: &[u8], dst: &mut [f32]) {
    let blocks = as_blocks::<BlockQ4_1>(src);
    debug_assert_eq!(blocks.len() * QK, dst.len());
    for (b, y) in blocks.iter().zip(dst.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        let m = b.m.to_f32();
        for j in 0..QK / 2 {
            y[j] = (b.qs[j] & 0x0F) as f32 * d + m;
            y[j + QK / 2] = (b.qs[j] >> 4) as f32 * d + m;
        }
    }
}

/// The 5-bit values of a Q5_0 / Q5_1 block, in element order.
fn q5_values(qh: [u8; 4], qs: &[u8; 16]) -> [u8; 32] {
    let qh = u32::from_le_bytes(qh);
    let mut q = [0u8; 32];
    for j in 0..16 {
        q[j] = (qs[j] & 0x0F) | ((((qh >> j) & 1) as u8) << 4);
        q[j + 16] = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
    }
    q
}

pub fn dequantize_row_q5_0(src: &[u8], dst: &mut [f32]) {
    let blocks = as_blocks::<BlockQ5_0>(src);
    debug_assert_eq!(blocks.len() * QK, dst.len());
    for (b, y) in blocks.iter().zip(dst.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for (y, q) in y.iter_mut().zip(q5_values(b.qh, &b.qs)) {
            *y = (q as i32 - 16) as f32 * d;
        }
    }
}

pub fn dequantize_row_q5_1(src: &[u8], dst: &mut [f32]) {
    let blocks = as_blocks::<BlockQ5_1>(src);
    debug_assert_eq!(blocks.len() * QK, dst.len());
    for (b, y) in blocks.iter().zip(dst.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        let m = b.m.to_f32();
        for (y, q) in y.iter_mut().zip(q5_values(b.qh, &b.qs)) {
            *y = q as f32 * d + m;
        }
    }
}

pub fn dequantize_row_q8_0(src: &[u8], dst: &mut [f32]) {
    let blocks = as_blocks::<BlockQ8_0>(src);
    debug_assert_eq!(blocks.len() * QK, dst.len());
    for (b, y) in blocks.iter().zip(dst.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for (y, &q) in y.iter_mut().zip(&b.qs) {
            *y = q as f32 * d;
        }
    }
}

pub fn dequantize_row_q8_1(src: &[u8], dst: &mut [f32]) {
    let blocks = as_blocks::<BlockQ8_1>(src);
    debug_assert_eq!(blocks.len() * QK, dst.len());
    for (b, y) in blocks.iter().zip(dst.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for (y, &q) in y.iter_mut().zip(&b.qs) {
            *y = q as f32 * d;
        }
    }
}

pub fn dequantize_row_q8_K(src: &[u8], dst: &mut [f32]) {
    let blocks = as_blocks::<BlockQ8_K>(src);
    debug_assert_eq!(blocks.len() * QK_K, dst.len());
    for (b, y) in blocks.iter().zip(dst.chunks_exact_mut(QK_K)) {
        let d = b.d();
        for (y, &q) in y.iter_mut().zip(&b.qs) {
            *y = q as f32 * d;
        }
    }
}

pub fn dequantize_row_q4_K(src: &[u8], dst: &mut [f32]) {
    let blocks = as_blocks::<BlockQ4_K>(src);
    debug_assert_eq!(blocks.len() * QK_K, dst.len());
    for (b, y) in blocks.iter().zip(dst.chunks_exact_mut(QK_K)) {
        let d = b.d.to_f32();
        let dmin = b.dmin.to_f32();
        for (j, (y, q)) in y
            .chunks_exact_mut(64)
            .zip(b.qs.chunks_exact(32))
            .enumerate()
        {
            let (sc0, m0) = get_scale_min_k4(2 * j, &b.scales);
            let (sc1, m1) = get_scale_min_k4(2 * j + 1, &b.scales);
            let (d0, m0) = (d * sc0 as f32, dmin * m0 as f32);
            let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
            for l in 0..32 {
                y[l] = d0 * (q[l] & 0x0F) as f32 - m0;
                y[l + 32] = d1 * (q[l] >> 4) as f32 - m1;
            }
        }
    }
}

pub fn dequantize_row_q5_K(src: &[u8], dst: &mut [f32]) {
    let blocks = as_blocks::<BlockQ5_K>(src);
    debug_assert_eq!(blocks.len() * QK_K, dst.len());
    for (b, y) in blocks.iter().zip(dst.chunks_exact_mut(QK_K)) {
        let d = b.d.to_f32();
        let dmin = b.dmin.to_f32();
        for (j, (y, q)) in y
            .chunks_exact_mut(64)
            .zip(b.qs.chunks_exact(32))
            .enumerate()
        {
            let (sc0, m0) = get_scale_min_k4(2 * j, &b.scales);
            let (sc1, m1) = get_scale_min_k4(2 * j + 1, &b.scales);
            let (d0, m0) = (d * sc0 as f32, dmin * m0 as f32);
            let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
            let (u0, u1) = (1u8 << (2 * j), 2u8 << (2 * j));
            for l in 0..32 {
                let h0 = if b.qh[l] & u0 != 0 { 16 } else { 0 };
                let h1 = if b.qh[l] & u1 != 0 { 16 } else { 0 };
                y[l] = d0 * ((q[l] & 0x0F) + h0) as f32 - m0;
                y[l + 32] = d1 * ((q[l] >> 4) + h1) as f32 - m1;
            }
        }
    }
}

/// The 6-bit values of a Q6_K block minus 32, in element order.
fn q6_values(b: &BlockQ6_K) -> [i8; QK_K] {
    let mut q = [0i8; QK_K];
    for n in 0..2 {
        let ql = &b.ql[64 * n..64 * n + 64];
        let qh = &b.qh[32 * n..32 * n + 32];
        let out = &mut q[128 * n..128 * n + 128];
        for l in 0..32 {
            out[l] = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i8 - 32;
            out[l + 32] = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
            out[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
            out[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
        }
    }
    q
}

pub fn dequantize_row_q6_K(src: &[u8], dst: &mut [f32]) {
    let blocks = as_blocks::<BlockQ6_K>(src);
    debug_assert_eq!(blocks.len() * QK_K, dst.len());
    for (b, y) in blocks.iter().zip(dst.chunks_exact_mut(QK_K)) {
        let d = b.d.to_f32();
        let q = q6_values(b);
        for (i, y) in y.iter_mut().enumerate() {
            *y = d * b.scales[i / 16] as f32 * q[i] as f32;
        }
    }
}

// ---------------------------------------------------------------- dot products

fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
}

pub fn vec_dot_q4_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    let (x, y) = (as_blocks::<BlockQ4_0>(w), as_blocks::<BlockQ8_0>(a));
    debug_assert_eq!(x.len(), y.len());
    let mut sumf = 0f32;
    for (x, y) in x.iter().zip(y) {
        let mut sumi = 0i32;
        for j in 0..QK / 2 {
            sumi += ((x.qs[j] & 0x0F) as i32 - 8) * y.qs[j] as i32;
            sumi += ((x.qs[j] >> 4) as i32 - 8) * y.qs[j + QK / 2] as i32;
        }
        sumf += sumi as f32 * x.d.to_f32() * y.d.to_f32();
    }
    sumf
}

pub fn vec_dot_q4_1_q8_1(w: &[u8], a: &[u8]) -> f32 {
    let (x, y) = (as_blocks::<BlockQ4_1>(w), as_blocks::<BlockQ8_1>(a));
    debug_assert_eq!(x.len(), y.len());
    let mut sumf = 0f32;
    for (x, y) in x.iter().zip(y) {
        let mut sumi = 0i32;
        for j in 0..QK / 2 {
            sumi += (x.qs[j] & 0x0F) as i32 * y.qs[j] as i32;
            sumi += (x.qs[j] >> 4) as i32 * y.qs[j + QK / 2] as i32;
        }
        sumf += (x.d.to_f32() * y.d.to_f32()) * sumi as f32 + x.m.to_f32() * y.s.to_f32();
    }
    sumf
}

pub fn vec_dot_q5_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    let (x, y) = (as_blocks::<BlockQ5_0>(w), as_blocks::<BlockQ8_0>(a));
    debug_assert_eq!(x.len(), y.len());
    let mut sumf = 0f32;
    for (x, y) in x.iter().zip(y) {
        let q = q5_values(x.qh, &x.qs);
        let sumi: i32 = q
            .iter()
            .zip(&y.qs)
            .map(|(&q, &v)| (q as i32 - 16) * v as i32)
            .sum();
        sumf += (x.d.to_f32() * y.d.to_f32()) * sumi as f32;
    }
    sumf
}

pub fn vec_dot_q5_1_q8_1(w: &[u8], a: &[u8]) -> f32 {
    let (x, y) = (as_blocks::<BlockQ5_1>(w), as_blocks::<BlockQ8_1>(a));
    debug_assert_eq!(x.len(), y.len());
    let mut sumf = 0f32;
    for (x, y) in x.iter().zip(y) {
        let q = q5_values(x.qh, &x.qs);
        let sumi: i32 = q
            .iter()
            .zip(&y.qs)
            .map(|(&q, &v)| q as i32 * v as i32)
            .sum();
        sumf += (x.d.to_f32() * y.d.to_f32()) * sumi as f32 + x.m.to_f32() * y.s.to_f32();
    }
    sumf
}

pub fn vec_dot_q8_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    let (x, y) = (as_blocks::<BlockQ8_0>(w), as_blocks::<BlockQ8_0>(a));
    debug_assert_eq!(x.len(), y.len());
    let mut sumf = 0f32;
    for (x, y) in x.iter().zip(y) {
        sumf += dot_i8(&x.qs, &y.qs) as f32 * (x.d.to_f32() * y.d.to_f32());
    }
    sumf
}

/// Σ over the 16-element groups of Q8_K's bsums times the matching Q4_K/Q5_K sub-block min.
fn mins_dot(scales: &[u8; 12], y: &BlockQ8_K) -> i32 {
    (0..QK_K / 16)
        .map(|j| y.bsum(j) as i32 * get_scale_min_k4(j / 2, scales).1 as i32)
        .sum()
}

pub fn vec_dot_q4_K_q8_K(w: &[u8], a: &[u8]) -> f32 {
    let (x, y) = (as_blocks::<BlockQ4_K>(w), as_blocks::<BlockQ8_K>(a));
    debug_assert_eq!(x.len(), y.len());
    let mut sumf = 0f32;
    for (x, y) in x.iter().zip(y) {
        let mut sumi = 0i32;
        for (j, q) in x.qs.chunks_exact(32).enumerate() {
            let (sc0, _) = get_scale_min_k4(2 * j, &x.scales);
            let (sc1, _) = get_scale_min_k4(2 * j + 1, &x.scales);
            let a0 = &y.qs[64 * j..64 * j + 32];
            let a1 = &y.qs[64 * j + 32..64 * j + 64];
            let mut s0 = 0i32;
            let mut s1 = 0i32;
            for l in 0..32 {
                s0 += (q[l] & 0x0F) as i32 * a0[l] as i32;
                s1 += (q[l] >> 4) as i32 * a1[l] as i32;
            }
            sumi += sc0 as i32 * s0 + sc1 as i32 * s1;
        }
        let d = x.d.to_f32() * y.d();
        let dmin = x.dmin.to_f32() * y.d();
        sumf += d * sumi as f32 - dmin * mins_dot(&x.scales, y) as f32;
    }
    sumf
}

pub fn vec_dot_q5_K_q8_K(w: &[u8], a: &[u8]) -> f32 {
    let (x, y) = (as_blocks::<BlockQ5_K>(w), as_blocks::<BlockQ8_K>(a));
    debug_assert_eq!(x.len(), y.len());
    let mut sumf = 0f32;
    for (x, y) in x.iter().zip(y) {
        let mut sumi = 0i32;
        for (j, q) in x.qs.chunks_exact(32).enumerate() {
            let (sc0, _) = get_scale_min_k4(2 * j, &x.scales);
            let (sc1, _) = get_scale_min_k4(2 * j + 1, &x.scales);
            let (u0, u1) = (1u8 << (2 * j), 2u8 << (2 * j));
            let a0 = &y.qs[64 * j..64 * j + 32];
            let a1 = &y.qs[64 * j + 32..64 * j + 64];
            let mut s0 = 0i32;
            let mut s1 = 0i32;
            for l in 0..32 {
                let h0 = if x.qh[l] & u0 != 0 { 16 } else { 0 };
                let h1 = if x.qh[l] & u1 != 0 { 16 } else { 0 };
                s0 += ((q[l] & 0x0F) as i32 + h0) * a0[l] as i32;
                s1 += ((q[l] >> 4) as i32 + h1) * a1[l] as i32;
            }
            sumi += sc0 as i32 * s0 + sc1 as i32 * s1;
        }
        let d = x.d.to_f32() * y.d();
        let dmin = x.dmin.to_f32() * y.d();
        sumf += d * sumi as f32 - dmin * mins_dot(&x.scales, y) as f32;
    }
    sumf
}

pub fn vec_dot_q6_K_q8_K(w: &[u8], a: &[u8]) -> f32 {
    let (x, y) = (as_blocks::<BlockQ6_K>(w), as_blocks::<BlockQ8_K>(a));
    debug_assert_eq!(x.len(), y.len());
    let mut sumf = 0f32;
    for (x, y) in x.iter().zip(y) {
        let q = q6_values(x);
        let sumi: i32 = (0..QK_K / 16)
            .map(|j| {
                x.scales[j] as i32 * dot_i8(&q[16 * j..16 * j + 16], &y.qs[16 * j..16 * j + 16])
            })
            .sum();
        sumf += x.d.to_f32() * y.d() * sumi as f32;
    }
    sumf
}

// ---------------------------------------------------------------- Q8_0 KV-cache rows

/// Calls `f(d, quants, at)` for the Q8_0 blocks covering values `off..off + n` of the block
/// row `x` (34-byte blocks), each clipped to that range: a head's values need not start or
/// end on a block boundary. `at` is the segment's first index relative to `off`.
#[inline]
pub fn q8_0_segments(x: &[u8], off: usize, n: usize, mut f: impl FnMut(f32, &[i8], usize)) {
    let (mut e, end) = (off, off + n);
    assert!(
        end.div_ceil(QK) * 34 <= x.len(),
        "q8_0 KV row: values {off}..{end} past the end of {} bytes",
        x.len()
    );
    while e < end {
        let (b, i) = (e / QK, e % QK);
        let take = (QK - i).min(end - e);
        let block = &x[b * 34..b * 34 + 34];
        let d = Half([block[0], block[1]]).to_f32();
        let qs: &[i8] = bytemuck::cast_slice(&block[2 + i..2 + i + take]);
        f(d, qs, e - off);
        e += take;
    }
}

/// Σ x·y over values `off..off + y.len()` of a row of Q8_0 blocks `x` (a cached key, stored
/// as ggml Q8_0) with an f32 query `y`: per block segment Σ q·y in f32 in order, scaled by
/// the block's d and accumulated in f32. SIMD paths sum in a different order (tolerance).
pub fn dot_q8_0_f32(x: &[u8], off: usize, y: &[f32]) -> f32 {
    let mut sum = 0f32;
    q8_0_segments(x, off, y.len(), |d, qs, at| {
        let part = qs
            .iter()
            .zip(&y[at..])
            .fold(0f32, |s, (&q, &y)| s + q as f32 * y);
        sum += d * part;
    });
    sum
}

/// y += a·x over values `off..off + y.len()` of a row of Q8_0 blocks `x` (a cached value):
/// per block, y_i += (a·d)·q_i.
pub fn mad_q8_0_f32(y: &mut [f32], a: f32, x: &[u8], off: usize) {
    let n = y.len();
    q8_0_segments(x, off, n, |d, qs, at| {
        let ad = a * d;
        for (y, &q) in y[at..].iter_mut().zip(qs) {
            *y += ad * q as f32;
        }
    });
}

/// The q8_0 rows `r < n` at values `off + r·stride`, `len` long, checked to fit in the blocks
/// `x` (the q8_0 rows kernels of every path call this before reading).
pub(crate) fn check_q8_0_rows(
    x_len: usize,
    off: usize,
    stride: usize,
    n: usize,
    len: usize,
    what: &str,
) {
    let need = n
        .checked_sub(1)
        .map_or(0, |last| (off + last * stride + len).div_ceil(QK) * 34);
    assert!(
        need <= x_len,
        "{what}: {n} rows of {len} values {stride} apart from {off} need {need} bytes, got {x_len}"
    );
}

/// `dot` (a path's single-row q8_0 kernel) of each of `out.len()` rows at values
/// `off + r·stride` of `x`, after `ahead(at)` is told where the row `r` begins (a path's
/// prefetch, or nothing): every path's q8_0 rows kernel is this loop, so its bits are its
/// single-row kernel's.
#[inline(always)]
pub(crate) fn q8_0_dot_rows_by(
    x: &[u8],
    off: usize,
    stride: usize,
    y: &[f32],
    out: &mut [f32],
    ahead: impl Fn(usize),
    dot: impl Fn(&[u8], usize, &[f32]) -> f32,
) {
    check_q8_0_rows(
        x.len(),
        off,
        stride,
        out.len(),
        y.len(),
        "dot_q8_0_f32_rows",
    );
    for (r, o) in out.iter_mut().enumerate() {
        ahead(off + r * stride);
        *o = dot(x, off + r * stride, y);
    }
}

/// `mad` (a path's single-row q8_0 kernel) with `a[r]` and each row at values `off + r·stride`
/// of `x`, in order, `ahead` as in [`q8_0_dot_rows_by`].
#[inline(always)]
pub(crate) fn q8_0_mad_rows_by(
    y: &mut [f32],
    a: &[f32],
    x: &[u8],
    off: usize,
    stride: usize,
    ahead: impl Fn(usize),
    mad: impl Fn(&mut [f32], f32, &[u8], usize),
) {
    check_q8_0_rows(x.len(), off, stride, a.len(), y.len(), "mad_q8_0_f32_rows");
    for (r, &ar) in a.iter().enumerate() {
        ahead(off + r * stride);
        mad(y, ar, x, off + r * stride);
    }
}

/// [`dot_q8_0_f32`] of each of `out.len()` rows at values `off + r·stride` of `x`.
pub fn dot_q8_0_f32_rows(x: &[u8], off: usize, stride: usize, y: &[f32], out: &mut [f32]) {
    q8_0_dot_rows_by(x, off, stride, y, out, |_| {}, dot_q8_0_f32);
}

/// [`mad_q8_0_f32`] with each of `a.len()` rows at values `off + r·stride` of `x`, in order.
pub fn mad_q8_0_f32_rows(y: &mut [f32], a: &[f32], x: &[u8], off: usize, stride: usize) {
    q8_0_mad_rows_by(y, a, x, off, stride, |_| {}, mad_q8_0_f32);
}
