//! AVX-512-VNNI 4×4 prefill tiles for the K-quants (Q4_K, Q5_K, Q6_K weights · Q8_K
//! activations), bit-identical to the single-row dots of the same table (`k4_dot` /
//! `q6_K_dot` of the 256-bit kernels).
//!
//! What must be reproduced exactly: per super-block, eight i32 lanes per (row, vector), lane l
//! summing scale_i · Σ q·y over elements 4l..4l+3 of every 32-element group i (an integer, so
//! any exact way of computing it will do); then one convert and one FMA per lane with
//! d = d_x·d_y (and, for Q4_K / Q5_K, a second accumulator with dmin·Σ mins·bsums), and at the
//! end the 256-bit kernels' horizontal sum.
//!
//! Layout: a zmm holds two weight rows (a row pair) × 32 bytes, the activation's 32 bytes are
//! broadcast into both halves, so one `vpmaddubsw` + one `vpdpwssd` (with the row pair's
//! scales as i16 lanes) add a 32-element group to the eight lanes of two (row, vector) pairs:
//! 32 multiply-adds per instruction, the sub-block scales included, and the two halves are
//! already the two rows' lanes (no horizontal fold). `prepare_w` unpacks each super-block of
//! four rows once per group (nibbles and high bits → u8, scales → i16 lanes, d / dmin / mins →
//! f32 lanes); `prepare` rearranges each Q8_K activation row once per product.

use std::arch::x86_64::*;

use super::prefetch_next_group_l2;
use crate::blocks::{as_blocks, unpack_scales_mins_k4, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K};
use crate::dispatch::Tile4x4;

/// Bytes of one prepared Q8_K super-block: 256 quants, the 16 bsums (i16), the 8 pair sums
/// bsum[2l] + bsum[2l+1] as f32, d (f32), padding.
const A_SB: usize = 352;
const A_BSUMS: usize = 256;
const A_BSF: usize = 288;
const A_D: usize = 320;

/// Bytes of one super-block of a Q4_K / Q5_K row pair: 8 × 64 quants (u8; row 0 in the low
/// 32 bytes, row 1 in the high), the scales as i16 (row h's 8 in words 16h..16h + 8, spread
/// over the lanes by one `vpermw` per group and row pair in the tile), then d, dmin and the
/// 8 mins as f32 ×8 per row.
const K4_PAIR: usize = 768;
const K4_SC: usize = 512;
const K4_D: usize = 576;
const K4_DMIN: usize = 640;
const K4_MIN: usize = 704;

/// Bytes of one super-block of a Q6_K row pair: 8 × 64 quants (u8, q + 32), the 16 scales of
/// row h as i16 in words 16h..16h + 16, −32 · the 16 scales as i16 per row, d as f32 ×8.
const Q6_PAIR: usize = 704;
const Q6_SC: usize = 512;
const Q6_NEG: usize = 576;
const Q6_D: usize = 640;

/// `vpermw` indices: group i's scale for every i16 lane of a row pair (Q4_K / Q5_K: one
/// scale per 32-element group and row).
static K4_IDX: [[u16; 32]; 8] = {
    let mut t = [[0u16; 32]; 8];
    let mut i = 0;
    while i < 8 {
        let mut w = 0;
        while w < 32 {
            t[i][w] = if w < 16 { i as u16 } else { 16 + i as u16 };
            w += 1;
        }
        i += 1;
    }
    t
};

/// `vpermw` indices for Q6_K: the first 16 elements of group i (i32 lanes 0..4 of a row's
/// half) take scale 2i, the next 16 scale 2i + 1.
static Q6_IDX: [[u16; 32]; 8] = {
    let mut t = [[0u16; 32]; 8];
    let mut i = 0;
    while i < 8 {
        let mut w = 0;
        while w < 32 {
            t[i][w] = (16 * (w / 16) + 2 * i + (w % 16) / 8) as u16;
            w += 1;
        }
        i += 1;
    }
    t
};

/// Index table row `i` as a vector.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn idx(t: &[[u16; 32]; 8], i: usize) -> __m512i {
    // SAFETY: an unaligned 64-byte load of the 32 u16 of row `i`.
    unsafe { _mm512_loadu_si512(t[i].as_ptr().cast()) }
}

/// Prepared bytes for a Q8_K activation row of `a_row` bytes (at least one super-block).
fn a_bytes(a_row: usize) -> Option<usize> {
    let sb = size_of::<BlockQ8_K>();
    (a_row.is_multiple_of(sb) && a_row > 0).then_some(a_row / sb * A_SB)
}

/// A Q8_K activation row → the tiles' layout (plain code: once per row and product).
fn prepare_a(a: &[u8], out: &mut [u8]) {
    let y = as_blocks::<BlockQ8_K>(a);
    assert_eq!(Some(out.len()), a_bytes(a.len()));
    for (b, o) in y.iter().zip(out.chunks_exact_mut(A_SB)) {
        for (o, &q) in o.iter_mut().zip(&b.qs) {
            *o = q as u8;
        }
        o[A_BSUMS..A_BSF].copy_from_slice(b.bsums.as_flattened());
        for l in 0..8 {
            let s = b.bsum(2 * l) as i32 + b.bsum(2 * l + 1) as i32;
            o[A_BSF + 4 * l..][..4].copy_from_slice(&(s as f32).to_le_bytes());
        }
        o[A_D..A_D + 4].copy_from_slice(&b.d);
        o[A_D + 4..].fill(0);
    }
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn load256(b: &[u8]) -> __m256i {
    let b = &b[..32];
    // SAFETY: an unaligned 32-byte load of the checked 32-byte subslice.
    unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn store256(o: &mut [u8], v: __m256i) {
    let o = &mut o[..32];
    // SAFETY: an unaligned 32-byte store into the checked 32-byte subslice.
    unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast(), v) }
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn store256_ps(o: &mut [u8], v: __m256) {
    store256(o, _mm256_castps_si256(v));
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn load512(b: &[u8]) -> __m512i {
    let b = &b[..64];
    // SAFETY: an unaligned 64-byte load of the checked 64-byte subslice.
    unsafe { _mm512_loadu_si512(b.as_ptr().cast()) }
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn load512_ps(b: &[u8]) -> __m512 {
    _mm512_castsi512_ps(load512(b))
}

/// 32 bytes broadcast to both halves of a zmm.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn bcast256(b: &[u8]) -> __m512i {
    _mm512_broadcast_i64x4(load256(b))
}

/// acc + Σ pairs t·s (`vpdpwssd`). Written as `asm!`: LLVM otherwise splits the intrinsic into
/// `vpmaddwd` + `vpaddd` (one more instruction per 32 multiply-adds on the hot path).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn dpwssd(acc: __m512i, t: __m512i, s: __m512i) -> __m512i {
    let mut acc = acc;
    // SAFETY: a register-only VNNI instruction; the enclosing function requires avx512vnni.
    unsafe {
        std::arch::asm!(
            "vpdpwssd {acc}, {t}, {s}",
            acc = inout(zmm_reg) acc,
            t = in(zmm_reg) t,
            s = in(zmm_reg) s,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// The 256-bit kernels' horizontal sum of eight lanes, in their order.
fn hsum8(a: &[f32]) -> f32 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

/// Per row and vector: the 256-bit kernels' final `hsum(acc)` (minus `hsum(acc_m)`).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn finish(acc: [[__m512; 4]; 2], acc_m: Option<[[__m512; 4]; 2]>) -> [[f32; 4]; 4] {
    let lanes = |v: __m512| {
        let mut t = [0f32; 16];
        // SAFETY: a 64-byte store into the 16-f32 array.
        unsafe { _mm512_storeu_ps(t.as_mut_ptr(), v) };
        t
    };
    let mut out = [[0f32; 4]; 4];
    for rp in 0..2 {
        for v in 0..4 {
            let a = lanes(acc[rp][v]);
            let m = acc_m.map(|m| lanes(m[rp][v]));
            for h in 0..2 {
                let s = hsum8(&a[8 * h..]);
                out[2 * rp + h][v] = match &m {
                    Some(m) => s - hsum8(&m[8 * h..]),
                    None => s,
                };
            }
        }
    }
    out
}

/// Rows → row pairs → super-blocks: `f(sb, h, row, pair_bytes)` for each row `h` of each pair.
fn for_each_row<B>(
    w: [&[u8]; 4],
    out: &mut [u8],
    pair: usize,
    mut f: impl FnMut(&B, usize, &mut [u8]),
) where
    B: crate::blocks::Block,
{
    let x = w.map(as_blocks::<B>);
    let nsb = x[0].len();
    assert!(x.iter().all(|r| r.len() == nsb));
    assert_eq!(out.len(), nsb * 2 * pair);
    for (i, o) in out.chunks_exact_mut(pair).enumerate() {
        let (sb, rp) = (i / 2, i % 2);
        for h in 0..2 {
            f(&x[2 * rp + h][sb], h, o);
        }
    }
}

/// d, dmin, mins and scales of a Q4_K / Q5_K super-block into row `h` of a pair.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn k4_prepare_scales(scales: &[u8; 12], d: f32, dmin: f32, h: usize, o: &mut [u8]) {
    let (sc, mins) = unpack_scales_mins_k4(scales);
    let sc16 = _mm256_cvtepu8_epi16(_mm_cvtsi64_si128(i64::from_le_bytes(sc)));
    store256(&mut o[K4_SC + 32 * h..], sc16);
    store256_ps(&mut o[K4_D + 32 * h..], _mm256_set1_ps(d));
    store256_ps(&mut o[K4_DMIN + 32 * h..], _mm256_set1_ps(dmin));
    let m = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(i64::from_le_bytes(mins)));
    store256_ps(&mut o[K4_MIN + 32 * h..], _mm256_cvtepi32_ps(m));
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q4_K_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    prefetch_next_group_l2(w);
    let m4 = _mm256_set1_epi8(0x0F);
    for_each_row::<BlockQ4_K>(w, out, K4_PAIR, |x, h, o| {
        for j in 0..4 {
            let b = load256(&x.qs[32 * j..]);
            store256(&mut o[128 * j + 32 * h..], _mm256_and_si256(b, m4));
            let hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
            store256(&mut o[128 * j + 64 + 32 * h..], hi);
        }
        k4_prepare_scales(&x.scales, x.d.to_f32(), x.dmin.to_f32(), h, o);
    });
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q5_K_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    prefetch_next_group_l2(w);
    let m4 = _mm256_set1_epi8(0x0F);
    let one = _mm256_set1_epi8(1);
    let two = _mm256_set1_epi8(2);
    for_each_row::<BlockQ5_K>(w, out, K4_PAIR, |x, h, o| {
        let mut hb = load256(&x.qh);
        for j in 0..4 {
            let b = load256(&x.qs[32 * j..]);
            let h0 = _mm256_slli_epi16(_mm256_and_si256(hb, one), 4);
            let h1 = _mm256_slli_epi16(_mm256_and_si256(hb, two), 3);
            hb = _mm256_srli_epi16(hb, 2);
            let lo = _mm256_or_si256(_mm256_and_si256(b, m4), h0);
            let hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4), h1);
            store256(&mut o[128 * j + 32 * h..], lo);
            store256(&mut o[128 * j + 64 + 32 * h..], hi);
        }
        k4_prepare_scales(&x.scales, x.d.to_f32(), x.dmin.to_f32(), h, o);
    });
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q6_K_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    prefetch_next_group_l2(w);
    let m4 = _mm256_set1_epi8(0x0F);
    let m2 = _mm256_set1_epi8(0x03);
    let mc = _mm256_set1_epi8(0x0C);
    let m30 = _mm256_set1_epi8(0x30);
    for_each_row::<BlockQ6_K>(w, out, Q6_PAIR, |x, h, o| {
        for n in 0..2 {
            let ql0 = load256(&x.ql[64 * n..]);
            let ql1 = load256(&x.ql[64 * n + 32..]);
            let qh = load256(&x.qh[32 * n..]);
            let q = [
                _mm256_or_si256(
                    _mm256_and_si256(ql0, m4),
                    _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(ql1, m4),
                    _mm256_slli_epi16(_mm256_and_si256(qh, mc), 2),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                    _mm256_and_si256(qh, m30),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                    _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30),
                ),
            ];
            for (k, q) in q.into_iter().enumerate() {
                store256(&mut o[64 * (4 * n + k) + 32 * h..], q);
            }
        }
        // SAFETY: reads exactly the 16 scale bytes.
        let s16 = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(x.scales.as_ptr().cast()) });
        store256(&mut o[Q6_SC + 32 * h..], s16);
        let neg = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(s16, 5));
        store256(&mut o[Q6_NEG + 32 * h..], neg);
        store256_ps(&mut o[Q6_D + 32 * h..], _mm256_set1_ps(x.d.to_f32()));
    });
}

/// Super-blocks of a prepared group and the activations' super-block views, checked.
/// Super-block `sb` of each prepared activation row, as fixed-size arrays (so the constant
/// offsets inside need no bounds checks).
fn a_sb(a: [&[u8]; 4], sb: usize) -> [&[u8; A_SB]; 4] {
    a.map(|a| a[sb * A_SB..(sb + 1) * A_SB].try_into().unwrap())
}

/// The activation's d broadcast.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn a_d(b: &[u8; A_SB]) -> __m512 {
    _mm512_set1_ps(f32::from_le_bytes([
        b[A_D],
        b[A_D + 1],
        b[A_D + 2],
        b[A_D + 3],
    ]))
}

fn split<'a>(w: &[u8], a: [&'a [u8]; 4], pair: usize) -> (usize, [&'a [u8]; 4]) {
    let nsb = w.len() / (2 * pair);
    assert_eq!(w.len(), nsb * 2 * pair);
    assert!(a.iter().all(|a| a.len() == nsb * A_SB));
    (nsb, a)
}

/// Four prepared Q4_K / Q5_K rows × four prepared Q8_K vectors.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn k4_tile(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    let (nsb, a) = split(w, a, K4_PAIR);
    let mut acc = [[_mm512_setzero_ps(); 4]; 2];
    let mut acc_m = [[_mm512_setzero_ps(); 4]; 2];
    for sb in 0..nsb {
        let ab = a_sb(a, sb);
        for rp in 0..2 {
            let p: &[u8; K4_PAIR] = w[(2 * sb + rp) * K4_PAIR..][..K4_PAIR].try_into().unwrap();
            let mut sumi = [_mm512_setzero_si512(); 4];
            let sc = load512(&p[K4_SC..]);
            for i in 0..8 {
                let q = load512(&p[64 * i..]);
                let s = _mm512_permutexvar_epi16(idx(&K4_IDX, i), sc);
                for v in 0..4 {
                    let t = _mm512_maddubs_epi16(q, bcast256(&ab[v][32 * i..]));
                    sumi[v] = dpwssd(sumi[v], t, s);
                }
            }
            let dx = load512_ps(&p[K4_D..]);
            let mx = load512_ps(&p[K4_DMIN..]);
            let mn = load512_ps(&p[K4_MIN..]);
            for v in 0..4 {
                let yd = a_d(ab[v]);
                let bsf = _mm512_castsi512_ps(bcast256(&ab[v][A_BSF..]));
                let d = _mm512_mul_ps(dx, yd);
                acc[rp][v] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sumi[v]), acc[rp][v]);
                let dmin = _mm512_mul_ps(mx, yd);
                acc_m[rp][v] = _mm512_fmadd_ps(dmin, _mm512_mul_ps(mn, bsf), acc_m[rp][v]);
            }
        }
    }
    finish(acc, Some(acc_m))
}

/// Four prepared Q6_K rows × four prepared Q8_K vectors.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q6_tile(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    let (nsb, a) = split(w, a, Q6_PAIR);
    let mut acc = [[_mm512_setzero_ps(); 4]; 2];
    for sb in 0..nsb {
        let ab = a_sb(a, sb);
        for rp in 0..2 {
            let p: &[u8; Q6_PAIR] = w[(2 * sb + rp) * Q6_PAIR..][..Q6_PAIR].try_into().unwrap();
            // The values are stored + 32: start from −32 · Σ_j scale_j · bsum_j.
            let neg = load512(&p[Q6_NEG..]);
            let mut sumi = ab.map(|b| _mm512_madd_epi16(bcast256(&b[A_BSUMS..]), neg));
            let sc = load512(&p[Q6_SC..]);
            for i in 0..8 {
                let q = load512(&p[64 * i..]);
                let s = _mm512_permutexvar_epi16(idx(&Q6_IDX, i), sc);
                for v in 0..4 {
                    let t = _mm512_maddubs_epi16(q, bcast256(&ab[v][32 * i..]));
                    sumi[v] = dpwssd(sumi[v], t, s);
                }
            }
            let dx = load512_ps(&p[Q6_D..]);
            for v in 0..4 {
                let yd = a_d(ab[v]);
                let d = _mm512_mul_ps(dx, yd);
                acc[rp][v] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sumi[v]), acc[rp][v]);
            }
        }
    }
    finish(acc, None)
}

fn q4_K_w_bytes(w_row: usize) -> usize {
    w_row / size_of::<BlockQ4_K>() * 2 * K4_PAIR
}

fn q5_K_w_bytes(w_row: usize) -> usize {
    w_row / size_of::<BlockQ5_K>() * 2 * K4_PAIR
}

fn q6_K_w_bytes(w_row: usize) -> usize {
    w_row / size_of::<BlockQ6_K>() * 2 * Q6_PAIR
}

fn gemm_q4_K_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    // SAFETY: only reachable through the `*_tile()` tables, whose caller guarantees the
    // AVX-512 features.
    unsafe { q4_K_prepare_w(w, out) }
}

fn gemm_q5_K_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    // SAFETY: as `gemm_q4_K_prepare_w`.
    unsafe { q5_K_prepare_w(w, out) }
}

fn gemm_q6_K_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    // SAFETY: as `gemm_q4_K_prepare_w`.
    unsafe { q6_K_prepare_w(w, out) }
}

fn gemm_k4_tile(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: as `gemm_q4_K_prepare_w`.
    unsafe { k4_tile(w, a) }
}

fn gemm_q6_tile(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: as `gemm_q4_K_prepare_w`.
    unsafe { q6_tile(w, a) }
}

/// The Q4_K tile.
///
/// # Safety
/// The CPU must have AVX2, FMA, F16C, AVX-512 F/BW/VL and VNNI.
pub(crate) unsafe fn q4_K_tile() -> Tile4x4 {
    Tile4x4 {
        prepared_bytes: a_bytes,
        prepare: prepare_a,
        prepared_w_bytes: q4_K_w_bytes,
        prepare_w: gemm_q4_K_prepare_w,
        tile: gemm_k4_tile,
    }
}

/// The Q5_K tile (the Q4_K tile on five-bit values).
///
/// # Safety
/// As [`q4_K_tile`].
pub(crate) unsafe fn q5_K_tile() -> Tile4x4 {
    Tile4x4 {
        prepared_bytes: a_bytes,
        prepare: prepare_a,
        prepared_w_bytes: q5_K_w_bytes,
        prepare_w: gemm_q5_K_prepare_w,
        tile: gemm_k4_tile,
    }
}

/// The Q6_K tile.
///
/// # Safety
/// As [`q4_K_tile`].
pub(crate) unsafe fn q6_K_tile() -> Tile4x4 {
    Tile4x4 {
        prepared_bytes: a_bytes,
        prepare: prepare_a,
        prepared_w_bytes: q6_K_w_bytes,
        prepare_w: gemm_q6_K_prepare_w,
        tile: gemm_q6_tile,
    }
}
