//! AVX-512 VL + VNNI: the 256-bit kernels with `vpdpbusd` doing the u8·i8 sums in one
//! instruction, and 512-bit Q4_0 / Q8_0 dots that take two blocks per step.
//!
//! The 512-bit dots keep the even blocks in the low eight lanes and the odd blocks in the high
//! eight, which is exactly the two accumulators of the 256-bit kernels: the results are
//! bit-identical to them (and so to the four-vector tiles).

use std::arch::x86_64::*;

use super::avx2::F16_TO_F32;
use super::{prefetch_next_group_l2, prefetch_rows_ahead};
use crate::blocks::{as_blocks, BlockQ4_0, BlockQ8_0, Half};
use crate::dispatch::{Kernels, Tile4x4};

/// Four adjacent u8·i8 products summed into i32 lanes (`vpdpbusd`, no intermediate i16).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
pub(crate) fn dot_u8i8_vnni(u: __m256i, s: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
}

super::avx2::kernels_256!(
    k,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    super::dot_u8i8_vnni
);

fn f16(h: Half) -> f32 {
    F16_TO_F32[h.bits() as usize]
}

/// [d_x0·d_y0 × 8 | d_x1·d_y1 × 8].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn scales(x0: Half, y0: Half, x1: Half, y1: Half) -> __m512 {
    let d0 = f16(x0) * f16(y0);
    let d1 = f16(x1) * f16(y1);
    _mm512_mask_broadcastss_ps(_mm512_set1_ps(d0), 0xFF00, _mm_set_ss(d1))
}

/// Two 32-byte arrays as one 512-bit vector.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn load_pair(a: &[i8; 32], b: &[i8; 32]) -> __m512i {
    // SAFETY: two unaligned 32-byte loads, each exactly one of the arrays.
    unsafe {
        let lo = _mm256_loadu_si256(a.as_ptr().cast());
        let hi = _mm256_loadu_si256(b.as_ptr().cast());
        _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1)
    }
}

/// 16 bytes of nibbles → 32 bytes (low nibbles, then high), as in the 256-bit kernels.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn nibbles256(b: &[u8; 16]) -> __m256i {
    // SAFETY: reads exactly the 16 bytes of `b`.
    let x = _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(b.as_ptr().cast()) });
    let x = _mm256_srlv_epi64(x, _mm256_set_epi64x(4, 4, 0, 0));
    _mm256_and_si256(x, _mm256_set1_epi8(0x0F))
}

/// Σ x·y of signed bytes as i32 lanes, 256-bit (for the odd last block).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn dot_i8_256(x: __m256i, y: __m256i) -> __m256i {
    dot_u8i8_vnni(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

/// The final reduction of the 256-bit kernels: low half (even blocks, plus the odd last
/// block `tail`) + high half (odd blocks), then a horizontal sum.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn finish(acc: __m512, tail: Option<(__m256i, f32)>) -> f32 {
    let mut a0 = _mm512_castps512_ps256(acc);
    let a1 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
    if let Some((sumi, d)) = tail {
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), a0);
    }
    let v = _mm256_add_ps(a0, a1);
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Two Q4_0 blocks' nibbles as unsigned bytes: [x0 low | x0 high | x1 low | x1 high].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn nibbles_pair(x0: &BlockQ4_0, x1: &BlockQ4_0) -> __m512i {
    // SAFETY: two 16-byte loads, each exactly one block's nibbles.
    let q = unsafe {
        let lo = _mm256_broadcastsi128_si256(_mm_loadu_si128(x0.qs.as_ptr().cast()));
        let hi = _mm256_broadcastsi128_si256(_mm_loadu_si128(x1.qs.as_ptr().cast()));
        _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1)
    };
    let shift = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
    _mm512_and_si512(_mm512_srlv_epi64(q, shift), _mm512_set1_epi8(0x0F))
}

/// Σ x·y of two Q8_0 block pairs as i32 lanes: |x| · (y with x's sign), as the 256-bit kernels.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn dot_q8_pair(qx: __m512i, qy: __m512i) -> __m512i {
    let zero = _mm512_setzero_si512();
    let sy = _mm512_mask_sub_epi8(qy, _mm512_movepi8_mask(qx), zero, qy);
    _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(qx), sy)
}

/// The odd last block of a Q4_0 row (256-bit): its integer sums and scale.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn tail_q4_0(xl: &BlockQ4_0, yl: &BlockQ8_0) -> (__m256i, f32) {
    let qx = _mm256_sub_epi8(nibbles256(&xl.qs), _mm256_set1_epi8(8));
    // SAFETY: reads exactly the 32 bytes of the block's quants.
    let qy = unsafe { _mm256_loadu_si256(yl.qs.as_ptr().cast()) };
    (dot_i8_256(qx, qy), f16(xl.d) * f16(yl.d))
}

/// The odd last block of a Q8_0 row (256-bit): its integer sums and scale.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn tail_q8_0(xl: &BlockQ8_0, yl: &BlockQ8_0) -> (__m256i, f32) {
    // SAFETY: reads exactly the 32 bytes of each block's quants.
    let (qx, qy) = unsafe {
        (
            _mm256_loadu_si256(xl.qs.as_ptr().cast()),
            _mm256_loadu_si256(yl.qs.as_ptr().cast()),
        )
    };
    (dot_i8_256(qx, qy), f16(xl.d) * f16(yl.d))
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q4_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    let (x, y) = (as_blocks::<BlockQ4_0>(w), as_blocks::<BlockQ8_0>(a));
    assert_eq!(x.len(), y.len());
    let eight = _mm512_set1_epi8(8);
    let zero = _mm512_setzero_si512();
    let mut acc = _mm512_setzero_ps();
    for p in 0..x.len() / 2 {
        let (x0, x1, y0, y1) = (&x[2 * p], &x[2 * p + 1], &y[2 * p], &y[2 * p + 1]);
        let q = nibbles_pair(x0, x1);
        let yv = load_pair(&y0.qs, &y1.qs);
        // Σ (q − 8)·y = Σ q·y − Σ 8·y, both with unsigned q.
        let s = _mm512_sub_epi32(
            _mm512_dpbusd_epi32(zero, q, yv),
            _mm512_dpbusd_epi32(zero, eight, yv),
        );
        acc = _mm512_fmadd_ps(scales(x0.d, y0.d, x1.d, y1.d), _mm512_cvtepi32_ps(s), acc);
    }
    let tail = (x.len() % 2 == 1).then(|| tail_q4_0(&x[x.len() - 1], &y[y.len() - 1]));
    finish(acc, tail)
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q8_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    let (x, y) = (as_blocks::<BlockQ8_0>(w), as_blocks::<BlockQ8_0>(a));
    assert_eq!(x.len(), y.len());
    let mut acc = _mm512_setzero_ps();
    for p in 0..x.len() / 2 {
        let (x0, x1, y0, y1) = (&x[2 * p], &x[2 * p + 1], &y[2 * p], &y[2 * p + 1]);
        let s = dot_q8_pair(load_pair(&x0.qs, &x1.qs), load_pair(&y0.qs, &y1.qs));
        acc = _mm512_fmadd_ps(scales(x0.d, y0.d, x1.d, y1.d), _mm512_cvtepi32_ps(s), acc);
    }
    let tail = (x.len() % 2 == 1).then(|| tail_q8_0(&x[x.len() - 1], &y[y.len() - 1]));
    finish(acc, tail)
}

/// Four Q4_0 rows · one Q8_0 vector: per row exactly the operations of `q4_0_q8_0` in the same
/// order (so bit-identical to it); the activation loads and the Σ 8·y term are shared.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q4_0_q8_0_r4(w: [&[u8]; 4], a: &[u8]) -> [f32; 4] {
    let y = as_blocks::<BlockQ8_0>(a);
    let x = w.map(as_blocks::<BlockQ4_0>);
    assert!(x.iter().all(|r| r.len() == y.len()));
    let eight = _mm512_set1_epi8(8);
    let zero = _mm512_setzero_si512();
    let mut acc = [_mm512_setzero_ps(); 4];
    for p in 0..y.len() / 2 {
        for r in &x {
            prefetch_rows_ahead(r, 2 * p, 2);
        }
        let (y0, y1) = (&y[2 * p], &y[2 * p + 1]);
        let yv = load_pair(&y0.qs, &y1.qs);
        let y8 = _mm512_dpbusd_epi32(zero, eight, yv);
        for (acc, x) in acc.iter_mut().zip(&x) {
            let (x0, x1) = (&x[2 * p], &x[2 * p + 1]);
            let s = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, nibbles_pair(x0, x1), yv), y8);
            *acc = _mm512_fmadd_ps(scales(x0.d, y0.d, x1.d, y1.d), _mm512_cvtepi32_ps(s), *acc);
        }
    }
    // Only an odd number of blocks has a tail (and then `y` is not empty).
    let tail = |r: usize| tail_q4_0(&x[r][y.len() - 1], &y[y.len() - 1]);
    std::array::from_fn(|r| finish(acc[r], (y.len() % 2 == 1).then(|| tail(r))))
}

/// Four Q8_0 rows · one Q8_0 vector, bit-identical to four `q8_0_q8_0` calls.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q8_0_q8_0_r4(w: [&[u8]; 4], a: &[u8]) -> [f32; 4] {
    let y = as_blocks::<BlockQ8_0>(a);
    let x = w.map(as_blocks::<BlockQ8_0>);
    assert!(x.iter().all(|r| r.len() == y.len()));
    let mut acc = [_mm512_setzero_ps(); 4];
    for p in 0..y.len() / 2 {
        for r in &x {
            prefetch_rows_ahead(r, 2 * p, 2);
        }
        let (y0, y1) = (&y[2 * p], &y[2 * p + 1]);
        let qy = load_pair(&y0.qs, &y1.qs);
        for (acc, x) in acc.iter_mut().zip(&x) {
            let (x0, x1) = (&x[2 * p], &x[2 * p + 1]);
            let s = dot_q8_pair(load_pair(&x0.qs, &x1.qs), qy);
            *acc = _mm512_fmadd_ps(scales(x0.d, y0.d, x1.d, y1.d), _mm512_cvtepi32_ps(s), *acc);
        }
    }
    // Only an odd number of blocks has a tail (and then `y` is not empty).
    let tail = |r: usize| tail_q8_0(&x[r][y.len() - 1], &y[y.len() - 1]);
    std::array::from_fn(|r| finish(acc[r], (y.len() % 2 == 1).then(|| tail(r))))
}

/// Bytes of one block pair in the prefill tiles' activation layout: 64 quants, the two scales
/// as f32 ×8 each, and −8·Σ of each group of four quants as i32 (Q4_0's offset, folded into
/// the accumulator `vpdpbusd` starts from).
const TILE_PAIR_BYTES: usize = 192;

/// Prepared bytes for a Q8_0 activation row of `a_row` bytes (an even number of blocks).
fn tile_prepared_bytes(a_row: usize) -> Option<usize> {
    let nb = a_row / size_of::<BlockQ8_0>();
    (nb.is_multiple_of(2) && nb > 0).then_some(nb / 2 * TILE_PAIR_BYTES)
}

/// A Q8_0 activation row → the tile layout (plain code: once per row and product).
fn tile_prepare(a: &[u8], out: &mut [u8]) {
    let y = as_blocks::<BlockQ8_0>(a);
    assert_eq!(Some(out.len()), tile_prepared_bytes(a.len()));
    for (yp, o) in y.chunks_exact(2).zip(out.chunks_exact_mut(TILE_PAIR_BYTES)) {
        for (h, yb) in yp.iter().enumerate() {
            for (j, &q) in yb.qs.iter().enumerate() {
                o[32 * h + j] = q as u8;
            }
            let d = f16(yb.d).to_le_bytes();
            for l in 0..8 {
                o[64 + 32 * h + 4 * l..][..4].copy_from_slice(&d);
                let sum: i32 = yb.qs[4 * l..4 * l + 4].iter().map(|&q| q as i32).sum();
                o[128 + 32 * h + 4 * l..][..4].copy_from_slice(&(-8 * sum).to_le_bytes());
            }
        }
    }
}

/// [a ×8 | b ×8].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn pair_ps(a: f32, b: f32) -> __m512 {
    _mm512_mask_broadcastss_ps(_mm512_set1_ps(a), 0xFF00, _mm_set_ss(b))
}

/// One prepared block pair: (quants, scales, −8·Σ quads).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn load_prepared(a: &[u8], p: usize) -> (__m512i, __m512, __m512i) {
    let b = &a[p * TILE_PAIR_BYTES..(p + 1) * TILE_PAIR_BYTES];
    // SAFETY: three unaligned 64-byte loads inside the checked 192-byte subslice.
    unsafe {
        (
            _mm512_loadu_si512(b.as_ptr().cast()),
            _mm512_loadu_ps(b[64..].as_ptr().cast()),
            _mm512_loadu_si512(b[128..].as_ptr().cast()),
        )
    }
}

/// Bytes of one block pair of four rows in the Q4_0 tile's weight layout: per row the 64
/// unpacked (unsigned) nibbles and the two scales as f32 ×8 each.
const Q4_0_W_PAIR_BYTES: usize = 4 * 128;

/// Prepared bytes for four Q4_0 rows of `w_row` bytes each.
fn q4_0_tile_w_bytes(w_row: usize) -> usize {
    w_row / size_of::<BlockQ4_0>() / 2 * Q4_0_W_PAIR_BYTES
}

/// Four Q4_0 rows → the tile's weight layout: unpacked once per four-row group and product,
/// then read by every four-vector tile of the group (the unpacking was half the tile's work).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q4_0_tile_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    let x = w.map(as_blocks::<BlockQ4_0>);
    let np = x[0].len() / 2;
    assert!(x.iter().all(|r| r.len() == 2 * np));
    assert_eq!(out.len(), np * Q4_0_W_PAIR_BYTES);
    prefetch_next_group_l2(w);
    for (p, o) in out.chunks_exact_mut(Q4_0_W_PAIR_BYTES).enumerate() {
        for (x, o) in x.iter().zip(o.chunks_exact_mut(128)) {
            let q = nibbles_pair(&x[2 * p], &x[2 * p + 1]);
            let d = pair_ps(f16(x[2 * p].d), f16(x[2 * p + 1].d));
            // SAFETY: two 64-byte stores into the 128-byte chunk `o`.
            unsafe {
                _mm512_storeu_si512(o.as_mut_ptr().cast(), q);
                _mm512_storeu_ps(o[64..].as_mut_ptr().cast(), d);
            }
        }
    }
}

/// Prefill tile: four prepared Q4_0 rows × four prepared Q8_0 vectors, sixteen 512-bit
/// accumulators. Per row and vector exactly the operations of `q4_0_q8_0` (the −8·Σy term
/// enters as the accumulator `vpdpbusd` adds to: the same integer), so bit-identical to it;
/// per row, vector and block pair: one `vpdpbusd`, one convert, one multiply, one FMA.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q4_0_q8_0_4x4(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    let np = w.len() / Q4_0_W_PAIR_BYTES;
    assert_eq!(w.len(), np * Q4_0_W_PAIR_BYTES);
    assert!(a.iter().all(|a| a.len() == np * TILE_PAIR_BYTES));
    let mut acc = [[_mm512_setzero_ps(); 4]; 4];
    for (p, wp) in w.chunks_exact(Q4_0_W_PAIR_BYTES).enumerate() {
        // SAFETY: 64-byte loads at 128·r inside the checked 512-byte chunk.
        let q: [__m512i; 4] =
            std::array::from_fn(|r| unsafe { _mm512_loadu_si512(wp[128 * r..].as_ptr().cast()) });
        for (v, a) in a.iter().enumerate() {
            let (yv, dy, n8) = load_prepared(a, p);
            for r in 0..4 {
                let s = _mm512_dpbusd_epi32(n8, q[r], yv);
                // SAFETY: a 64-byte load at 128·r + 64 inside the 512-byte chunk.
                let dw = unsafe { _mm512_loadu_ps(wp[128 * r + 64..].as_ptr().cast()) };
                acc[r][v] =
                    _mm512_fmadd_ps(_mm512_mul_ps(dw, dy), _mm512_cvtepi32_ps(s), acc[r][v]);
            }
        }
    }
    acc.map(|row| row.map(|a| finish(a, None)))
}

/// Prefill tile: four Q8_0 rows × four prepared Q8_0 vectors (|x| and x's sign mask once per
/// row, then per vector as `q8_0_q8_0`: bit-identical to it).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q8_0_q8_0_4x4(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    let w_row = w.len() / 4;
    let w: [&[u8]; 4] = std::array::from_fn(|r| &w[r * w_row..(r + 1) * w_row]);
    let x = w.map(as_blocks::<BlockQ8_0>);
    let np = x[0].len() / 2;
    assert!(x.iter().all(|r| r.len() == 2 * np));
    assert!(a.iter().all(|a| a.len() == np * TILE_PAIR_BYTES));
    let zero = _mm512_setzero_si512();
    let mut acc = [[_mm512_setzero_ps(); 4]; 4];
    for p in 0..np {
        let qx: [__m512i; 4] =
            std::array::from_fn(|r| load_pair(&x[r][2 * p].qs, &x[r][2 * p + 1].qs));
        let neg = qx.map(|q| _mm512_movepi8_mask(q));
        let ax = qx.map(|q| _mm512_abs_epi8(q));
        let dw: [__m512; 4] =
            std::array::from_fn(|r| pair_ps(f16(x[r][2 * p].d), f16(x[r][2 * p + 1].d)));
        for (v, a) in a.iter().enumerate() {
            let (yv, dy, _) = load_prepared(a, p);
            for r in 0..4 {
                let sy = _mm512_mask_sub_epi8(yv, neg[r], zero, yv);
                let s = _mm512_dpbusd_epi32(zero, ax[r], sy);
                acc[r][v] =
                    _mm512_fmadd_ps(_mm512_mul_ps(dw[r], dy), _mm512_cvtepi32_ps(s), acc[r][v]);
            }
        }
    }
    acc.map(|row| row.map(|a| finish(a, None)))
}

fn gemm_q4_0_q8_0_4x4(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: only reachable through `kernels()`, whose caller guarantees the AVX-512 features.
    unsafe { q4_0_q8_0_4x4(w, a) }
}

fn gemm_q4_0_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    // SAFETY: only reachable through `kernels()`, whose caller guarantees the AVX-512 features.
    unsafe { q4_0_tile_prepare_w(w, out) }
}

/// Q8_0 tile weights: the four rows copied next to each other (the tile reads them raw).
fn q8_0_tile_w_bytes(w_row: usize) -> usize {
    4 * w_row
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q8_0_tile_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    prefetch_next_group_l2(w);
    for (o, r) in out.chunks_exact_mut(w[0].len()).zip(w) {
        o.copy_from_slice(r);
    }
}

fn gemm_q8_0_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    // SAFETY: only reachable through `kernels()`, whose caller guarantees the AVX-512 features.
    unsafe { q8_0_tile_prepare_w(w, out) }
}

fn gemm_q8_0_q8_0_4x4(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: only reachable through `kernels()`, whose caller guarantees the AVX-512 features.
    unsafe { q8_0_q8_0_4x4(w, a) }
}

fn vec_dot_q4_0_q8_0_r4(w: [&[u8]; 4], a: &[u8]) -> [f32; 4] {
    // SAFETY: only reachable through `kernels()`, whose caller guarantees the AVX-512 features.
    unsafe { q4_0_q8_0_r4(w, a) }
}

fn vec_dot_q8_0_q8_0_r4(w: [&[u8]; 4], a: &[u8]) -> [f32; 4] {
    // SAFETY: only reachable through `kernels()`, whose caller guarantees the AVX-512 features.
    unsafe { q8_0_q8_0_r4(w, a) }
}

fn vec_dot_q4_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: only reachable through `kernels()`, whose caller guarantees the AVX-512 features.
    unsafe { q4_0_q8_0(w, a) }
}

fn vec_dot_q8_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: only reachable through `kernels()`, whose caller guarantees the AVX-512 features.
    unsafe { q8_0_q8_0(w, a) }
}

/// The 256-bit VNNI table with the 512-bit Q4_0 / Q8_0 dots.
///
/// # Safety
/// The CPU must have AVX2, FMA, F16C, AVX-512 F/BW/VL and VNNI: every entry calls a
/// `#[target_feature]` function for (a subset of) those features without checking.
pub(crate) unsafe fn kernels() -> Kernels {
    Kernels {
        vec_dot_q4_0_q8_0,
        vec_dot_q8_0_q8_0,
        vec_dot_q4_0_q8_0_r4: Some(vec_dot_q4_0_q8_0_r4),
        vec_dot_q8_0_q8_0_r4: Some(vec_dot_q8_0_q8_0_r4),
        panel_gemm: Some(crate::panel::PanelKernels {
            pack: super::panel512::pack,
            gemm: super::panel512::gemm,
        }),
        resident: Some(super::resident512::gemm),
        gemm_q4_0_q8_0_4x4: Some(Tile4x4 {
            prepared_bytes: tile_prepared_bytes,
            prepare: tile_prepare,
            prepared_w_bytes: q4_0_tile_w_bytes,
            prepare_w: gemm_q4_0_prepare_w,
            tile: gemm_q4_0_q8_0_4x4,
        }),
        gemm_q8_0_q8_0_4x4: Some(Tile4x4 {
            prepared_bytes: tile_prepared_bytes,
            prepare: tile_prepare,
            prepared_w_bytes: q8_0_tile_w_bytes,
            prepare_w: gemm_q8_0_prepare_w,
            tile: gemm_q8_0_q8_0_4x4,
        }),
        // SAFETY: our caller guarantees the AVX-512 features the K-quant tiles need.
        gemm_q4_K_q8_K_4x4: Some(unsafe { super::gemm_k::q4_K_tile() }),
        // SAFETY: as above.
        gemm_q5_K_q8_K_4x4: Some(unsafe { super::gemm_k::q5_K_tile() }),
        // SAFETY: as above.
        gemm_q6_K_q8_K_4x4: Some(unsafe { super::gemm_k::q6_K_tile() }),
        // SAFETY: `k` is compiled for avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni, the
        // features our caller guarantees.
        ..unsafe { k::kernels() }
    }
}
