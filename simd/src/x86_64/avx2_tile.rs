//! AVX2 (+ FMA + F16C, no VNNI) 4×4 prefill tiles for Q4_0 and Q8_0, bit-identical to the
//! AVX2 path's single-row dots (`q4_0_q8_0` / `q8_0_q8_0` of the 256-bit kernels).
//!
//! What must be reproduced: per block, eight i32 lanes (lane k = Σ x·y over bytes 4k..4k+3),
//! converted, multiplied by d_x·d_y and added with one FMA into the even-block or odd-block
//! accumulator; at the end the two accumulators added lane-wise and summed horizontally.
//! The integer lanes are exact whatever the route: Q4_0 uses the unsigned nibble times y
//! (`vpmaddubsw` + `vpmaddwd`) plus −8·Σy of the four bytes, prepared with the activation
//! (so no unpacking and no sign trick per product); Q8_0 uses |x| · (y with x's sign), with
//! |x| prepared once per four-row group. Activations must be in [−127, 127], as every
//! quantizer of this crate produces (the single dots' sign trick assumes it too).
//!
//! Two accumulators per (row, vector) make 32 for a 4×4 tile, twice the AVX2 register file:
//! the tile runs as four 2×2 passes over the row (8 accumulators each), the prepared blocks
//! coming from L1/L2 twice.

use std::arch::x86_64::*;

use super::prefetch_next_group_l2;
use crate::blocks::{as_blocks, BlockQ4_0, BlockQ8_0};
use crate::dispatch::Tile4x4;

/// Bytes of one prepared Q8_0 activation block: 32 quants, −8·Σ of each four quants as i32 ×8
/// (Q4_0's offset), d as f32, padding.
const A_BLK: usize = 72;
const A_N8: usize = 32;
const A_D: usize = 64;

/// Bytes of one prepared Q4_0 block of one row: 32 nibbles as u8 (element order), d as f32.
const Q4_BLK: usize = 36;
/// Bytes of one prepared Q8_0 block of one row: |x|, x, d as f32.
const Q8_BLK: usize = 68;

fn a_bytes(a_row: usize) -> Option<usize> {
    let b = size_of::<BlockQ8_0>();
    (a_row.is_multiple_of(b) && a_row > 0).then_some(a_row / b * A_BLK)
}

/// A Q8_0 activation row → the tiles' layout (plain code: once per row and product).
fn prepare_a(a: &[u8], out: &mut [u8]) {
    let y = as_blocks::<BlockQ8_0>(a);
    assert_eq!(Some(out.len()), a_bytes(a.len()));
    for (b, o) in y.iter().zip(out.chunks_exact_mut(A_BLK)) {
        for (o, &q) in o.iter_mut().zip(&b.qs) {
            *o = q as u8;
        }
        for l in 0..8 {
            let sum: i32 = b.qs[4 * l..4 * l + 4].iter().map(|&q| q as i32).sum();
            o[A_N8 + 4 * l..][..4].copy_from_slice(&(-8 * sum).to_le_bytes());
        }
        o[A_D..A_D + 4].copy_from_slice(&b.d.to_f32().to_le_bytes());
        o[A_D + 4..].fill(0);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn load(b: &[u8]) -> __m256i {
    let b = &b[..32];
    // SAFETY: an unaligned 32-byte load of the checked 32-byte subslice.
    unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

/// An f32 broadcast to eight lanes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn bcast_ps(b: &[u8]) -> __m256 {
    _mm256_set1_ps(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn store(o: &mut [u8], v: __m256i) {
    let o = &mut o[..32];
    // SAFETY: an unaligned 32-byte store into the checked 32-byte subslice.
    unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast(), v) }
}

/// Four rows' blocks → `[block][row]` of `blk` bytes each, `f` writing one.
fn prepare_rows<B: crate::blocks::Block>(
    w: [&[u8]; 4],
    out: &mut [u8],
    blk: usize,
    mut f: impl FnMut(&B, &mut [u8]),
) {
    let x = w.map(as_blocks::<B>);
    let nb = x[0].len();
    assert!(x.iter().all(|r| r.len() == nb));
    assert_eq!(out.len(), nb * 4 * blk);
    for (i, o) in out.chunks_exact_mut(blk).enumerate() {
        f(&x[i % 4][i / 4], o);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    prefetch_next_group_l2(w);
    let m4 = _mm256_set1_epi8(0x0F);
    prepare_rows::<BlockQ4_0>(w, out, Q4_BLK, |x, o| {
        // SAFETY: reads exactly the 16 bytes of nibbles.
        let b = unsafe { _mm_loadu_si128(x.qs.as_ptr().cast()) };
        let b = _mm256_broadcastsi128_si256(b);
        let q = _mm256_and_si256(_mm256_srlv_epi64(b, _mm256_set_epi64x(4, 4, 0, 0)), m4);
        store(o, q);
        o[32..36].copy_from_slice(&x.d.to_f32().to_le_bytes());
    });
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q8_0_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    prefetch_next_group_l2(w);
    prepare_rows::<BlockQ8_0>(w, out, Q8_BLK, |x, o| {
        // SAFETY: reads exactly the 32 quant bytes.
        let q = unsafe { _mm256_loadu_si256(x.qs.as_ptr().cast()) };
        store(o, _mm256_sign_epi8(q, q));
        store(&mut o[32..], q);
        o[64..68].copy_from_slice(&x.d.to_f32().to_le_bytes());
    });
}

/// The 256-bit kernels' final sum: hsum(a0 + a1) in their order.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn finish(a0: __m256, a1: __m256) -> f32 {
    // SAFETY: two 32-byte stores into 8-f32 arrays.
    let (x, y) = unsafe {
        let mut x = [0f32; 8];
        let mut y = [0f32; 8];
        _mm256_storeu_ps(x.as_mut_ptr(), a0);
        _mm256_storeu_ps(y.as_mut_ptr(), a1);
        (x, y)
    };
    let v: [f32; 8] = std::array::from_fn(|k| x[k] + y[k]);
    ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]))
}

/// One block of rows `r0`, `r0 + 1` (`wb`: the block's four prepared rows) × the blocks
/// `y` of two vectors into `acc` ([row][vector]). A macro, so that it is inlined into the
/// pass (LLVM did not inline the function, costing 10×).
macro_rules! block_2x2 {
    ($acc:expr, $wb:expr, $r0:expr, $w_d:expr, $y:expr, $sums:expr, $blk:expr) => {{
        let (wb, y): (&[u8], [&[u8]; 2]) = ($wb, $y);
        let wr: [&[u8]; 2] = [&wb[$r0 * $blk..][..$blk], &wb[($r0 + 1) * $blk..][..$blk]];
        let dy = [bcast_ps(&y[0][A_D..]), bcast_ps(&y[1][A_D..])];
        for r in 0..2 {
            let dx = bcast_ps(&wr[r][$w_d..]);
            for v in 0..2 {
                let s = _mm256_cvtepi32_ps($sums(wr[r], y[v]));
                $acc[r][v] = _mm256_fmadd_ps(_mm256_mul_ps(dx, dy[v]), s, $acc[r][v]);
            }
        }
    }};
}

/// One 2×2 pass (rows `r0`, `r0 + 1`; vectors `a[0]`, `a[1]`) over every block: `sums(w, a)`
/// gives a block's eight i32 lanes from a prepared weight block and activation block. Even
/// blocks go to `acc0`, odd ones to `acc1` (as the single dot's two chains).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn pass_2x2<const BLK: usize>(
    w: &[u8],
    w_d: usize,
    r0: usize,
    a: [&[u8]; 2],
    sums: &impl Fn(&[u8], &[u8]) -> __m256i,
) -> [[f32; 2]; 2] {
    let mut acc0 = [[_mm256_setzero_ps(); 2]; 2];
    let mut acc1 = [[_mm256_setzero_ps(); 2]; 2];
    let wp = w.chunks_exact(8 * BLK);
    let (wt, y0t, y1t) = (
        wp.remainder(),
        a[0].chunks_exact(2 * A_BLK).remainder(),
        a[1].chunks_exact(2 * A_BLK).remainder(),
    );
    let pairs = wp
        .zip(a[0].chunks_exact(2 * A_BLK))
        .zip(a[1].chunks_exact(2 * A_BLK));
    for ((wp, y0), y1) in pairs {
        block_2x2!(acc0, wp, r0, w_d, [y0, y1], sums, BLK);
        let (y0, y1) = (&y0[A_BLK..], &y1[A_BLK..]);
        block_2x2!(acc1, &wp[4 * BLK..], r0, w_d, [y0, y1], sums, BLK);
    }
    if !wt.is_empty() {
        block_2x2!(acc0, wt, r0, w_d, [y0t, y1t], sums, BLK);
    }
    std::array::from_fn(|r| std::array::from_fn(|v| finish(acc0[r][v], acc1[r][v])))
}

/// Blocks in a prepared group, checked against the activations.
fn blocks(w: &[u8], a: &[&[u8]; 4], blk: usize) -> usize {
    let nb = w.len() / (4 * blk);
    assert_eq!(w.len(), nb * 4 * blk);
    assert!(a.iter().all(|a| a.len() == nb * A_BLK));
    nb
}

/// The four 2×2 passes of a tile.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn tile<const BLK: usize>(
    w: &[u8],
    a: [&[u8]; 4],
    w_d: usize,
    sums: impl Fn(&[u8], &[u8]) -> __m256i,
) -> [[f32; 4]; 4] {
    blocks(w, &a, BLK);
    let mut out = [[0f32; 4]; 4];
    for r0 in [0, 2] {
        for v0 in [0, 2] {
            let res = pass_2x2::<BLK>(w, w_d, r0, [a[v0], a[v0 + 1]], &sums);
            for r in 0..2 {
                for v in 0..2 {
                    out[r0 + r][v0 + v] = res[r][v];
                }
            }
        }
    }
    out
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0_tile(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    let one = _mm256_set1_epi16(1);
    tile::<Q4_BLK>(w, a, 32, |wr, ab| {
        // Σ (q − 8)·y = Σ q·y + (−8·Σy), q unsigned (pairs ≤ 2·15·127: no saturation).
        let p = _mm256_madd_epi16(_mm256_maddubs_epi16(load(wr), load(ab)), one);
        _mm256_add_epi32(p, load(&ab[A_N8..]))
    })
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q8_0_tile(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    let one = _mm256_set1_epi16(1);
    tile::<Q8_BLK>(w, a, 64, |wr, ab| {
        // As the single dot: |x| · (y with x's sign).
        let sy = _mm256_sign_epi8(load(ab), load(&wr[32..]));
        _mm256_madd_epi16(_mm256_maddubs_epi16(load(wr), sy), one)
    })
}

fn q4_0_w_bytes(w_row: usize) -> usize {
    w_row / size_of::<BlockQ4_0>() * 4 * Q4_BLK
}

fn q8_0_w_bytes(w_row: usize) -> usize {
    w_row / size_of::<BlockQ8_0>() * 4 * Q8_BLK
}

fn gemm_q4_0_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    // SAFETY: only reachable through the `*_tile()` tables, whose caller guarantees AVX2,
    // FMA and F16C.
    unsafe { q4_0_prepare_w(w, out) }
}

fn gemm_q8_0_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    // SAFETY: as `gemm_q4_0_prepare_w`.
    unsafe { q8_0_prepare_w(w, out) }
}

fn gemm_q4_0_tile(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: as `gemm_q4_0_prepare_w`.
    unsafe { q4_0_tile(w, a) }
}

fn gemm_q8_0_tile(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: as `gemm_q4_0_prepare_w`.
    unsafe { q8_0_tile(w, a) }
}

/// The AVX2 Q4_0 tile.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C.
pub(crate) unsafe fn q4_0_tile_table() -> Tile4x4 {
    Tile4x4 {
        prepared_bytes: a_bytes,
        prepare: prepare_a,
        prepared_w_bytes: q4_0_w_bytes,
        prepare_w: gemm_q4_0_prepare_w,
        tile: gemm_q4_0_tile,
    }
}

/// The AVX2 Q8_0 tile.
///
/// # Safety
/// As [`q4_0_tile_table`].
pub(crate) unsafe fn q8_0_tile_table() -> Tile4x4 {
    Tile4x4 {
        prepared_bytes: a_bytes,
        prepare: prepare_a,
        prepared_w_bytes: q8_0_w_bytes,
        prepare_w: gemm_q8_0_prepare_w,
        tile: gemm_q8_0_tile,
    }
}
