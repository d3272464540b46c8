//! 4×4 prefill tiles (four weight rows × four activation rows, see [`Tile4x4`]) on aarch64:
//! Q4_0 and Q8_0 with SDOT by element (dotprod, Pi 5) and with SMMLA (i8mm, Armv8.6+); Q4_K,
//! Q5_K and Q6_K with SDOT (not yet installed, see the K-quant section).
//!
//! Every tile is bit-identical to sixteen calls of the dotprod single dots
//! (`neon::vec_dot_*_body`): each block's integer sum is exact in any order, and the
//! f32 accumulation over blocks is the single dot's, lane by lane — Q4_0 `sumf += (s·dx)·dy`,
//! Q8_0 `sumf += s·(dx·dy)` — as separate vector multiplies and adds (no FMA), from 0.0.
//!
//! Q4_0 / Q8_0 layouts (prepared once; the tile reads nothing else):
//! - activations (dotprod and i8mm): per Q8_0 block its 32 quants, then its scale as f32 (36 bytes);
//! - dotprod weights: per block eight 16-byte chunks, chunk `c` = elements 4c..4c+4 of rows
//!   0, 1, 2, 3 as int8 (Q4_0 as q − 8), then the four row scales as f32 (144 bytes);
//! - i8mm weights: per block, per group of 8 elements `o` and row pair `p`, 16 bytes =
//!   elements 8o..8o+8 of row 2p then row 2p+1, then the row pairs' scales as
//!   [d0, d0, d1, d1], [d2, d2, d3, d3] (160 bytes).
//!
//! Inner loop per block (4 rows × 4 vectors × 32 elements = 512 multiply-adds), counted in the
//! release build's disassembly (`aarch64-linux-gnu-objdump -d`, rustc 1.95; the Q4_0 and Q8_0
//! instances differ only in the order of the two scale multiplies; the K-quant tiles, see
//! their section below, counted with them made reachable):
//! - dotprod: 73 instructions = 32 SDOT (by element) + 8 LDP q (8 weight, 8 activation
//!   registers) + 5 LDR (weight scales, 4 activation scales) + 4 MOVI (zero the sums) + 4 SCVTF
//!   + 8 FMUL + 4 FADD + 8 address/loop → **9.1 per 64 multiply-adds** (4 of them SDOT);
//! - i8mm: 69 instructions = 16 SMMLA + 9 LDP + 4 LDR + 8 ZIP1/ZIP2 (pair the vectors' 8-byte
//!   groups) + 4 UZP1 (pair the vectors' scales) + 4 MOVI + 4 SCVTF + 8 FMUL + 4 FADD
//!   + 8 address/loop → **8.6 per 64 multiply-adds** (2 of them SMMLA);
//! - Q4_K (dotprod): per 32-element sub-block 57 instructions = 32 SDOT + 8 LDP + 1 LDR
//!   (scales) + 4 MOVI + 4 MLA (× sub-block scale) + 8 address/loop, plus 116 per super-block
//!   (mins · sums, 8 SCVTF, 16 FMUL, 4 FSUB, 4 FADD, loads) → **8.9 per 64 multiply-adds**;
//! - Q6_K (dotprod): per 16-element group 37 = 16 SDOT + 2 LDP + 5 LDR + 4 MOVI + 4 MLA
//!   + 6 address/loop, plus 41 per super-block → **9.9 per 64 multiply-adds**.
//!
//! Weight preparation, once per four-row group and product: 60 instructions per Q4_0 block of
//! four rows (51 for Q8_0, 56 / 43 in the i8mm layout; 421 / 360 / 368 per Q4_K / Q5_K / Q6_K
//! super-block), i.e. about 0.8 of one tile's block at four vectors and 3 % at 128.
//!
//! For comparison, the dotprod single dot spends 23 instructions per 32 multiply-adds (46 per
//! 64) and the one-row × four-vector kernel 70 per 128 (35 per 64), each with a serial f32 sum.
//! The per-block f32 epilogue (a third of the instructions) is the price of bit identity with
//! the single dots, which scale every block's integer sum separately.

use core::arch::aarch64::*;

use super::panel::sdot_lane;
use crate::blocks::{
    as_blocks, get_scale_min_k4, Block, BlockQ4_0, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_0,
    BlockQ8_K, Half, QK, QK_K,
};
use crate::dispatch::Tile4x4;

/// Bytes of one prepared activation block: 32 int8 quants, then the scale as f32.
const A_BLOCK: usize = QK + 4;
/// Bytes of one prepared block of four weight rows (both layouts): 128 int8, then scales.
const W_DOT_BLOCK: usize = 4 * QK + 16;
const W_MM_BLOCK: usize = 4 * QK + 32;

/// An f16 scale as f32 with the single dots' FCVT (`Half::to_f32` is a software conversion
/// without the fp16 extension; both are exact).
fn f16(h: Half) -> f32 {
    super::neon::fp16(h)
}

// ---------------------------------------------------------------- instructions

/// `acc` plus the 2×2 int32 matrix `w · aᵀ` of two rows of 8 int8 each (SMMLA):
/// lane 2i + j += Σ_k w[8i + k]·a[8j + k].
///
/// # Safety
/// The CPU must support i8mm.
#[inline]
#[target_feature(enable = "neon,i8mm")]
unsafe fn smmla(mut acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
    // SAFETY: SMMLA needs i8mm, which our caller guarantees (# Safety); the instruction only
    // reads and writes these three registers. (`vmmlaq_s32` is unstable.)
    unsafe {
        core::arch::asm!(
            "smmla {acc:v}.4s, {w:v}.16b, {a:v}.16b",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            a = in(vreg) a,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// 16 int8 at `p`.
///
/// # Safety
/// `p..p + 16` must be readable.
#[inline(always)]
unsafe fn ld(p: *const u8) -> int8x16_t {
    // SAFETY: the caller guarantees 16 readable bytes, read without alignment.
    unsafe { p.cast::<int8x16_t>().read_unaligned() }
}

/// Four f32 at `p`.
///
/// # Safety
/// `p..p + 16` must be readable.
#[inline(always)]
unsafe fn ldf(p: *const u8) -> float32x4_t {
    // SAFETY: the caller guarantees 16 readable bytes, read without alignment.
    unsafe { p.cast::<float32x4_t>().read_unaligned() }
}

/// One f32 at `p`.
///
/// # Safety
/// `p..p + 4` must be readable.
#[inline(always)]
unsafe fn ld1f(p: *const u8) -> f32 {
    // SAFETY: the caller guarantees 4 readable bytes; an unaligned read.
    unsafe { p.cast::<f32>().read_unaligned() }
}

// ---------------------------------------------------------------- activations

/// Prepared bytes of a Q8_0 activation row of `a_row` bytes (any number of blocks but none:
/// an empty row has nothing to prepare, and `matmul` chunks the prepared rows by this size).
fn prepared_bytes(a_row: usize) -> Option<usize> {
    let nb = a_row / size_of::<BlockQ8_0>();
    (nb > 0 && nb * size_of::<BlockQ8_0>() == a_row).then_some(nb * A_BLOCK)
}

/// A Q8_0 row → per block the 32 quants and the scale as f32 (plain code: once per row).
fn prepare(a: &[u8], out: &mut [u8]) {
    let y = as_blocks::<BlockQ8_0>(a);
    assert_eq!(out.len(), y.len() * A_BLOCK, "prepared activation size");
    for (y, o) in y.iter().zip(out.chunks_exact_mut(A_BLOCK)) {
        for (o, &q) in o[..QK].iter_mut().zip(&y.qs) {
            *o = q as u8;
        }
        o[QK..].copy_from_slice(&f16(y.d).to_le_bytes());
    }
}

// ---------------------------------------------------------------- weights

/// The 32 elements of a block as int8, elements 0..16 and 16..32.
type Quants = (int8x16_t, int8x16_t);

/// A Q4_0 block's elements as int8 q − 8.
#[inline(always)]
fn q4_0_quants(x: &BlockQ4_0) -> Quants {
    // SAFETY: vld1q_u8 reads exactly the 16 bytes of `x.qs`; the rest is register-only NEON,
    // which every aarch64 target has.
    unsafe {
        let v = vld1q_u8(x.qs.as_ptr());
        let eight = vdupq_n_s8(8);
        (
            vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F))), eight),
            vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(v)), eight),
        )
    }
}

/// A Q8_0 block's quants.
#[inline(always)]
fn q8_0_quants(x: &BlockQ8_0) -> Quants {
    // SAFETY: two 16-byte loads inside the 32 bytes of `x.qs`; NEON is on every aarch64 target.
    unsafe { (vld1q_s8(x.qs.as_ptr()), vld1q_s8(x.qs.as_ptr().add(16))) }
}

/// Four rows' 16 elements (as 4×u32 each) → four chunks of 4 elements × 4 rows:
/// chunk c = [r0 c, r1 c, r2 c, r3 c] (a 4×4 transpose of u32).
#[inline(always)]
fn transpose4(r: [int8x16_t; 4]) -> [int8x16_t; 4] {
    // SAFETY: register-only NEON, which every aarch64 target has.
    unsafe {
        let r = r.map(|v| vreinterpretq_u32_s8(v));
        let t0 = vtrn1q_u32(r[0], r[1]); // r0c0 r1c0 r0c2 r1c2
        let t1 = vtrn2q_u32(r[0], r[1]); // r0c1 r1c1 r0c3 r1c3
        let t2 = vtrn1q_u32(r[2], r[3]);
        let t3 = vtrn2q_u32(r[2], r[3]);
        let u = |a: uint32x4_t| vreinterpretq_u64_u32(a);
        let c0 = vtrn1q_u64(u(t0), u(t2));
        let c1 = vtrn1q_u64(u(t1), u(t3));
        let c2 = vtrn2q_u64(u(t0), u(t2));
        let c3 = vtrn2q_u64(u(t1), u(t3));
        [c0, c1, c2, c3].map(|v| vreinterpretq_s8_u64(v))
    }
}

/// Store 16 bytes into `o` (exactly 16 bytes long).
#[inline(always)]
fn st(o: &mut [u8], v: int8x16_t) {
    assert_eq!(o.len(), 16);
    // SAFETY: `o` is 16 writable bytes (asserted); vst1q_s8 has no alignment requirement.
    unsafe { vst1q_s8(o.as_mut_ptr().cast(), v) }
}

/// Four rows of blocks → the dotprod layout (see the module docs).
fn prepare_w_dot<B>(
    w: [&[u8]; 4],
    out: &mut [u8],
    quants: impl Fn(&B) -> Quants,
    d: impl Fn(&B) -> Half,
) where
    B: Block,
{
    let x = w.map(as_blocks::<B>);
    let nb = x[0].len();
    assert!(x.iter().all(|r| r.len() == nb), "four rows of one length");
    assert_eq!(out.len(), nb * W_DOT_BLOCK, "prepared weight size");
    for (i, o) in out.chunks_exact_mut(W_DOT_BLOCK).enumerate() {
        let q = x.map(|r| quants(&r[i]));
        let lo = transpose4([q[0].0, q[1].0, q[2].0, q[3].0]);
        let hi = transpose4([q[0].1, q[1].1, q[2].1, q[3].1]);
        for (c, v) in lo.into_iter().chain(hi).enumerate() {
            st(&mut o[16 * c..16 * c + 16], v);
        }
        for (r, x) in x.iter().enumerate() {
            o[128 + 4 * r..][..4].copy_from_slice(&f16(d(&x[i])).to_le_bytes());
        }
    }
}

/// Four rows of blocks → the i8mm layout (see the module docs).
fn prepare_w_mm<B>(
    w: [&[u8]; 4],
    out: &mut [u8],
    quants: impl Fn(&B) -> Quants,
    d: impl Fn(&B) -> Half,
) where
    B: Block,
{
    let x = w.map(as_blocks::<B>);
    let nb = x[0].len();
    assert!(x.iter().all(|r| r.len() == nb), "four rows of one length");
    assert_eq!(out.len(), nb * W_MM_BLOCK, "prepared weight size");
    for (i, o) in out.chunks_exact_mut(W_MM_BLOCK).enumerate() {
        let q = x.map(|r| quants(&r[i]));
        for p in 0..2 {
            let (a, b) = (q[2 * p], q[2 * p + 1]);
            // SAFETY: register-only NEON (64-bit zips), which every aarch64 target has.
            let octets = unsafe {
                let z = |x: int8x16_t, y: int8x16_t| {
                    let (x, y) = (vreinterpretq_s64_s8(x), vreinterpretq_s64_s8(y));
                    [vzip1q_s64(x, y), vzip2q_s64(x, y)].map(|v| vreinterpretq_s8_s64(v))
                };
                let [o0, o1] = z(a.0, b.0);
                let [o2, o3] = z(a.1, b.1);
                [o0, o1, o2, o3]
            };
            for (g, v) in octets.into_iter().enumerate() {
                let at = 32 * g + 16 * p;
                st(&mut o[at..at + 16], v);
            }
        }
        for (r, x) in x.iter().enumerate() {
            let dr = f16(d(&x[i])).to_le_bytes();
            o[128 + 8 * r..][..4].copy_from_slice(&dr);
            o[128 + 8 * r + 4..][..4].copy_from_slice(&dr);
        }
    }
}

fn w_dot_bytes<B>(w_row: usize) -> usize {
    w_row / size_of::<B>() * W_DOT_BLOCK
}

fn w_mm_bytes<B>(w_row: usize) -> usize {
    w_row / size_of::<B>() * W_MM_BLOCK
}

// ---------------------------------------------------------------- tiles

/// Block counts of a tile call, checking every prepared buffer's size.
fn tile_blocks(w: &[u8], w_block: usize, a: &[&[u8]; 4]) -> usize {
    let nb = w.len() / w_block;
    assert_eq!(w.len(), nb * w_block, "prepared weight size");
    assert!(
        a.iter().all(|a| a.len() == nb * A_BLOCK),
        "prepared activation sizes"
    );
    nb
}

/// The dotprod tile. `Q4` picks the single dots' scale order: `(s·dx)·dy` (Q4_0) or
/// `s·(dx·dy)` (Q8_0).
///
/// # Safety
/// The CPU must support dotprod.
#[target_feature(enable = "neon,dotprod")]
unsafe fn tile_dot<const Q4: bool>(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    let nb = tile_blocks(w, W_DOT_BLOCK, &a);
    let zero = vdupq_n_s32(0);
    // acc[v]: lanes = rows.
    let mut acc = [vdupq_n_f32(0.0); 4];
    for b in 0..nb {
        // SAFETY: every load below is inside block b of a checked buffer: weights at 64·h + 16·c
        // (+ 16 ≤ 128) and the scales at 128..144 of the 144-byte block, activations 16·h + 16 ≤ 32 and the scale at 32..36
        // of the 36-byte block (`tile_blocks` checked nb blocks of each); `sdot_lane` needs the
        // dotprod this function is compiled with and our caller guarantees (# Safety).
        unsafe {
            let wb = w.as_ptr().add(b * W_DOT_BLOCK);
            let ab = [
                a[0].as_ptr().add(b * A_BLOCK),
                a[1].as_ptr().add(b * A_BLOCK),
                a[2].as_ptr().add(b * A_BLOCK),
                a[3].as_ptr().add(b * A_BLOCK),
            ];
            let mut s = [zero; 4];
            for h in 0..2 {
                let wc = [
                    ld(wb.add(64 * h)),
                    ld(wb.add(64 * h + 16)),
                    ld(wb.add(64 * h + 32)),
                    ld(wb.add(64 * h + 48)),
                ];
                for v in 0..4 {
                    let av = ld(ab[v].add(16 * h));
                    let mut sv = sdot_lane::<0>(s[v], wc[0], av);
                    sv = sdot_lane::<1>(sv, wc[1], av);
                    sv = sdot_lane::<2>(sv, wc[2], av);
                    s[v] = sdot_lane::<3>(sv, wc[3], av);
                }
            }
            let dx = ldf(wb.add(4 * QK));
            for v in 0..4 {
                let dy = ld1f(ab[v].add(QK));
                let sf = vcvtq_f32_s32(s[v]);
                let t = if Q4 {
                    vmulq_n_f32(vmulq_f32(sf, dx), dy)
                } else {
                    vmulq_f32(sf, vmulq_n_f32(dx, dy))
                };
                acc[v] = vaddq_f32(acc[v], t);
            }
        }
    }
    let mut out = [[0f32; 4]; 4];
    for (v, acc) in acc.iter().enumerate() {
        let mut lanes = [0f32; 4];
        // SAFETY: a 16-byte store into the 16-byte array `lanes`.
        unsafe { vst1q_f32(lanes.as_mut_ptr(), *acc) };
        for r in 0..4 {
            out[r][v] = lanes[r];
        }
    }
    out
}

/// The i8mm tile (scale order as [`tile_dot`]).
///
/// # Safety
/// The CPU must support i8mm.
#[target_feature(enable = "neon,i8mm")]
unsafe fn tile_mm<const Q4: bool>(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    let nb = tile_blocks(w, W_MM_BLOCK, &a);
    let zero = vdupq_n_s32(0);
    let zero_i8 = vdupq_n_s8(0);
    // acc[p][q]: rows 2p, 2p + 1 × vectors 2q, 2q + 1 as [r0v0, r0v1, r1v0, r1v1].
    let mut acc = [[vdupq_n_f32(0.0); 2]; 2];
    for b in 0..nb {
        // SAFETY: every load below is inside block b of a checked buffer: weights at
        // 32·(2h + g) + 16·p (+ 16 ≤ 128) and the scales at 128..160 of the 160-byte block, activations 16·h + 16 ≤
        // 32 and the scale at 32..36 of the 36-byte block (`tile_blocks` checked nb blocks of
        // each); `smmla` needs the i8mm this function is compiled with and our caller
        // guarantees (# Safety).
        unsafe {
            let wb = w.as_ptr().add(b * W_MM_BLOCK);
            let ab = [
                a[0].as_ptr().add(b * A_BLOCK),
                a[1].as_ptr().add(b * A_BLOCK),
                a[2].as_ptr().add(b * A_BLOCK),
                a[3].as_ptr().add(b * A_BLOCK),
            ];
            let mut s = [[zero; 2]; 2];
            for h in 0..2 {
                // pairs[g][q], per group g of 8 elements: [v(2q) 8 | v(2q+1) 8].
                let mut pairs = [[zero_i8; 2]; 2];
                for q in 0..2 {
                    let a0 = vreinterpretq_s64_s8(ld(ab[2 * q].add(16 * h)));
                    let a1 = vreinterpretq_s64_s8(ld(ab[2 * q + 1].add(16 * h)));
                    pairs[0][q] = vreinterpretq_s8_s64(vzip1q_s64(a0, a1));
                    pairs[1][q] = vreinterpretq_s8_s64(vzip2q_s64(a0, a1));
                }
                for (g, pg) in pairs.iter().enumerate() {
                    let o = wb.add(32 * (2 * h + g));
                    for (p, sp) in s.iter_mut().enumerate() {
                        let wp = ld(o.add(16 * p));
                        for (spq, pq) in sp.iter_mut().zip(pg) {
                            *spq = smmla(*spq, wp, *pq);
                        }
                    }
                }
            }
            let dx = [ldf(wb.add(4 * QK)), ldf(wb.add(4 * QK + 16))];
            let mut dys = [vdupq_n_f32(0.0); 2];
            for q in 0..2 {
                let d0 = vdupq_n_f32(ld1f(ab[2 * q].add(QK)));
                let d1 = vdupq_n_f32(ld1f(ab[2 * q + 1].add(QK)));
                dys[q] = vzip1q_f32(d0, d1); // [dy(2q), dy(2q+1), dy(2q), dy(2q+1)]
            }
            for p in 0..2 {
                for q in 0..2 {
                    let sf = vcvtq_f32_s32(s[p][q]);
                    let t = if Q4 {
                        vmulq_f32(vmulq_f32(sf, dx[p]), dys[q])
                    } else {
                        vmulq_f32(sf, vmulq_f32(dx[p], dys[q]))
                    };
                    acc[p][q] = vaddq_f32(acc[p][q], t);
                }
            }
        }
    }
    let mut out = [[0f32; 4]; 4];
    for (p, accp) in acc.iter().enumerate() {
        for (q, acc) in accp.iter().enumerate() {
            let mut lanes = [0f32; 4];
            // SAFETY: a 16-byte store into the 16-byte array `lanes`.
            unsafe { vst1q_f32(lanes.as_mut_ptr(), *acc) };
            for i in 0..2 {
                for j in 0..2 {
                    out[2 * p + i][2 * q + j] = lanes[2 * i + j];
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------- K-quants (Q4_K, Q5_K, Q6_K)
//
// Installed by `dotprod_kernels` as `gemm_q4_K_q8_K_4x4`, `gemm_q5_K_q8_K_4x4` and
// `gemm_q6_K_q8_K_4x4`. Tested below against the dotprod single dots.
//
// Activations (Q8_K): per super-block its 256 quants, the scale as f32, then the eight
// 32-element sums as i32 (292 bytes). Weights: per super-block sixteen 16-element groups, each
// four 16-byte chunks as in the Q4_0 layout (chunk c of group g = elements 16g + 4c..+4 of rows
// 0..4, 1024 bytes), then per type: Q4_K / Q5_K the eight sub-block scales and eight mins as i32 ×4
// rows, d ×4 and dmin ×4 as f32 (1312 bytes); Q6_K the sixteen group scales as i32 ×4 rows
// and d ×4 as f32 (1296 bytes).

/// Bytes of one prepared Q8_K block.
const A_K_BLOCK: usize = QK_K + 4 + 32;
const W_Q4_K_BLOCK: usize = 1024 + 128 + 128 + 32;
const W_Q6_K_BLOCK: usize = 1024 + 256 + 16;

/// Prepared bytes of a Q8_K activation row of `a_row` bytes (none for an empty row).
fn k_prepared_bytes(a_row: usize) -> Option<usize> {
    let nb = a_row / size_of::<BlockQ8_K>();
    (nb > 0 && nb * size_of::<BlockQ8_K>() == a_row).then_some(nb * A_K_BLOCK)
}

/// A Q8_K row → per block the 256 quants, the scale and the eight 32-element sums.
fn k_prepare(a: &[u8], out: &mut [u8]) {
    let y = as_blocks::<BlockQ8_K>(a);
    assert_eq!(out.len(), y.len() * A_K_BLOCK, "prepared activation size");
    for (y, o) in y.iter().zip(out.chunks_exact_mut(A_K_BLOCK)) {
        for (o, &q) in o[..QK_K].iter_mut().zip(&y.qs) {
            *o = q as u8;
        }
        o[QK_K..QK_K + 4].copy_from_slice(&y.d);
        for j in 0..8 {
            let sum = y.bsum(2 * j) as i32 + y.bsum(2 * j + 1) as i32;
            o[QK_K + 4 + 4 * j..][..4].copy_from_slice(&sum.to_le_bytes());
        }
    }
}

/// Four rows' 16-element groups (`q[row][group]`) → the chunk layout at `o[..1024]`.
fn store_groups(q: &[[int8x16_t; 16]; 4], o: &mut [u8]) {
    for g in 0..16 {
        let c = transpose4([q[0][g], q[1][g], q[2][g], q[3][g]]);
        for (k, v) in c.into_iter().enumerate() {
            st(&mut o[64 * g + 16 * k..64 * g + 16 * k + 16], v);
        }
    }
}

/// `v[r]` for four rows as i32 little-endian at `o[..16]`.
fn store_i32x4(o: &mut [u8], v: [i32; 4]) {
    for (r, v) in v.into_iter().enumerate() {
        o[4 * r..4 * r + 4].copy_from_slice(&v.to_le_bytes());
    }
}

/// `v[r]` for four rows as f32 little-endian at `o[..16]`.
fn store_f32x4(o: &mut [u8], v: [f32; 4]) {
    for (r, v) in v.into_iter().enumerate() {
        o[4 * r..4 * r + 4].copy_from_slice(&v.to_le_bytes());
    }
}

/// A Q4_K block's 256 nibbles as sixteen 16-element groups (values 0..16).
fn q4_K_groups(x: &BlockQ4_K) -> [int8x16_t; 16] {
    let zero = unsafe_zero();
    let mut g = [zero; 16];
    for jj in 0..4 {
        // Bytes 32jj..32jj+32: low nibbles = elements 64jj..+32, high = 64jj+32..+32.
        let (lo0, hi0) = nibbles16(&x.qs[32 * jj..32 * jj + 16]);
        let (lo1, hi1) = nibbles16(&x.qs[32 * jj + 16..32 * jj + 32]);
        g[4 * jj] = lo0;
        g[4 * jj + 1] = lo1;
        g[4 * jj + 2] = hi0;
        g[4 * jj + 3] = hi1;
    }
    g
}

/// A zeroed int8 register.
#[inline(always)]
fn unsafe_zero() -> int8x16_t {
    // SAFETY: register-only NEON, which every aarch64 target has.
    unsafe { vdupq_n_s8(0) }
}

/// 16 bytes → (low nibbles, high nibbles) as int8.
#[inline(always)]
fn nibbles16(b: &[u8]) -> (int8x16_t, int8x16_t) {
    assert_eq!(b.len(), 16);
    // SAFETY: a 16-byte load from the 16-byte slice (asserted); register-only NEON after.
    unsafe {
        let v = vld1q_u8(b.as_ptr());
        (
            vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F))),
            vreinterpretq_s8_u8(vshrq_n_u8::<4>(v)),
        )
    }
}

/// A Q6_K block's 256 elements as sixteen 16-element groups of q − 32 (as the single dot).
fn q6_K_groups(x: &BlockQ6_K) -> [int8x16_t; 16] {
    let mut out = [unsafe_zero(); 16];
    // SAFETY: 16-byte loads inside x.ql (64n + 32 + l + 16 ≤ 128) and x.qh (32n + l + 16 ≤ 64);
    // the unpacking is `neon::q6_k_quarters`.
    unsafe {
        for n in 0..2 {
            for half in 0..2 {
                let l = 16 * half;
                let ql0 = vld1q_u8(x.ql.as_ptr().add(64 * n + l));
                let ql1 = vld1q_u8(x.ql.as_ptr().add(64 * n + 32 + l));
                let qh = vld1q_u8(x.qh.as_ptr().add(32 * n + l));
                let q = super::neon::q6_k_quarters(ql0, ql1, qh);
                for (g, q) in q.into_iter().enumerate() {
                    // Elements 128n + 32g + l + (0..16): group 8n + 2g + half.
                    out[8 * n + 2 * g + half] = q;
                }
            }
        }
    }
    out
}

/// Four rows of Q4_K-like blocks (Q4_K, Q5_K: 6-bit scales and mins, d, dmin) → the layout.
fn prepare_w_k4<B: Block>(
    w: [&[u8]; 4],
    out: &mut [u8],
    groups: impl Fn(&B) -> [int8x16_t; 16],
    meta: impl Fn(&B) -> (&[u8; 12], Half, Half),
) {
    let x = w.map(as_blocks::<B>);
    let nb = x[0].len();
    assert!(x.iter().all(|r| r.len() == nb), "four rows of one length");
    assert_eq!(out.len(), nb * W_Q4_K_BLOCK, "prepared weight size");
    for (i, o) in out.chunks_exact_mut(W_Q4_K_BLOCK).enumerate() {
        let b = x.map(|r| &r[i]);
        store_groups(&b.map(&groups), o);
        let m = b.map(&meta);
        let sm = m.map(|(scales, _, _)| unpack_scales_mins(scales));
        for j in 0..8 {
            store_i32x4(&mut o[1024 + 16 * j..], sm.map(|(sc, _)| sc[j] as i32));
            store_i32x4(&mut o[1152 + 16 * j..], sm.map(|(_, m)| m[j] as i32));
        }
        store_f32x4(&mut o[1280..], m.map(|(_, d, _)| f16(d)));
        store_f32x4(&mut o[1296..], m.map(|(_, _, dmin)| f16(dmin)));
    }
}

fn q4_K_meta(b: &BlockQ4_K) -> (&[u8; 12], Half, Half) {
    (&b.scales, b.d, b.dmin)
}

fn q5_K_meta(b: &BlockQ5_K) -> (&[u8; 12], Half, Half) {
    (&b.scales, b.d, b.dmin)
}

fn q4_K_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    prepare_w_k4::<BlockQ4_K>(w, out, q4_K_groups, q4_K_meta)
}

fn q5_K_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    prepare_w_k4::<BlockQ5_K>(w, out, q5_K_groups, q5_K_meta)
}

/// A Q5_K block's 256 elements (values 0..32: the nibble plus 16 if its `qh` bit is set) as
/// sixteen 16-element groups.
fn q5_K_groups(x: &BlockQ5_K) -> [int8x16_t; 16] {
    let mut g = [unsafe_zero(); 16];
    // SAFETY: 16-byte loads inside x.qh (0 and 16 of 32); register-only NEON after.
    let (qh0, qh1) = unsafe { (vld1q_u8(x.qh.as_ptr()), vld1q_u8(x.qh.as_ptr().add(16))) };
    for jj in 0..4 {
        let (lo0, hi0) = nibbles16(&x.qs[32 * jj..32 * jj + 16]);
        let (lo1, hi1) = nibbles16(&x.qs[32 * jj + 16..32 * jj + 32]);
        // SAFETY: register-only NEON, which every aarch64 target has.
        unsafe {
            let h = vdupq_n_u8(0x10);
            let (u0, u1) = (vdupq_n_u8(1 << (2 * jj)), vdupq_n_u8(2 << (2 * jj)));
            let add = |q: int8x16_t, qh: uint8x16_t, u: uint8x16_t| {
                vreinterpretq_s8_u8(vorrq_u8(
                    vreinterpretq_u8_s8(q),
                    vandq_u8(vtstq_u8(qh, u), h),
                ))
            };
            g[4 * jj] = add(lo0, qh0, u0);
            g[4 * jj + 1] = add(lo1, qh1, u0);
            g[4 * jj + 2] = add(hi0, qh0, u1);
            g[4 * jj + 3] = add(hi1, qh1, u1);
        }
    }
    g
}

/// The eight (scale, min) pairs of a Q4_K block.
fn unpack_scales_mins(scales: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let (mut sc, mut m) = ([0u8; 8], [0u8; 8]);
    for j in 0..8 {
        (sc[j], m[j]) = get_scale_min_k4(j, scales);
    }
    (sc, m)
}

fn q6_K_prepare_w(w: [&[u8]; 4], out: &mut [u8]) {
    let x = w.map(as_blocks::<BlockQ6_K>);
    let nb = x[0].len();
    assert!(x.iter().all(|r| r.len() == nb), "four rows of one length");
    assert_eq!(out.len(), nb * W_Q6_K_BLOCK, "prepared weight size");
    for (i, o) in out.chunks_exact_mut(W_Q6_K_BLOCK).enumerate() {
        let b = x.map(|r| &r[i]);
        store_groups(&b.map(q6_K_groups), o);
        for g in 0..16 {
            store_i32x4(&mut o[1024 + 16 * g..], b.map(|b| b.scales[g] as i32));
        }
        store_f32x4(&mut o[1280..], b.map(|b| f16(b.d)));
    }
}

fn q4_K_w_bytes(w_row: usize) -> usize {
    w_row / size_of::<BlockQ4_K>() * W_Q4_K_BLOCK
}

fn q5_K_w_bytes(w_row: usize) -> usize {
    w_row / size_of::<BlockQ5_K>() * W_Q4_K_BLOCK
}

fn q6_K_w_bytes(w_row: usize) -> usize {
    w_row / size_of::<BlockQ6_K>() * W_Q6_K_BLOCK
}

/// `s[v]` (lanes = rows) plus sixteen elements (group `g` of the block at `wb`, four rows) ·
/// sixteen elements of each vector at `ab[v] + 16·g`.
///
/// # Safety
/// The CPU must support dotprod; `wb + 64g .. + 64` and `ab[v] + 16g .. + 16` readable.
#[inline(always)]
unsafe fn group_dot(
    mut s: [int32x4_t; 4],
    wb: *const u8,
    ab: &[*const u8; 4],
    g: usize,
) -> [int32x4_t; 4] {
    // SAFETY: the loads are in bounds and dotprod is present (# Safety).
    unsafe {
        let wc = [
            ld(wb.add(64 * g)),
            ld(wb.add(64 * g + 16)),
            ld(wb.add(64 * g + 32)),
            ld(wb.add(64 * g + 48)),
        ];
        for v in 0..4 {
            let av = ld(ab[v].add(16 * g));
            let mut sv = sdot_lane::<0>(s[v], wc[0], av);
            sv = sdot_lane::<1>(sv, wc[1], av);
            sv = sdot_lane::<2>(sv, wc[2], av);
            s[v] = sdot_lane::<3>(sv, wc[3], av);
        }
        s
    }
}

/// Four f32 lanes → `out[r][v]` for vector `v`.
fn scatter(out: &mut [[f32; 4]; 4], v: usize, acc: float32x4_t) {
    let mut lanes = [0f32; 4];
    // SAFETY: a 16-byte store into the 16-byte array `lanes`.
    unsafe { vst1q_f32(lanes.as_mut_ptr(), acc) };
    for r in 0..4 {
        out[r][v] = lanes[r];
    }
}

/// The Q4_K / Q5_K dotprod tile: per row and vector `sumf += d·Σ sc·s − dmin·Σ m·bsum`, with
/// `d = dx·dy`, `dmin = dminx·dy` (the single dot's operations and order).
///
/// # Safety
/// The CPU must support dotprod.
#[target_feature(enable = "neon,dotprod")]
unsafe fn tile_q4_K(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    let nb = w.len() / W_Q4_K_BLOCK;
    assert_eq!(w.len(), nb * W_Q4_K_BLOCK, "prepared weight size");
    assert!(
        a.iter().all(|a| a.len() == nb * A_K_BLOCK),
        "prepared activation sizes"
    );
    let mut acc = [vdupq_n_f32(0.0); 4];
    for b in 0..nb {
        // SAFETY: block b of each checked buffer: weight groups at 64g + 64 ≤ 1024, scales and
        // mins at 1024..1280, d and dmin at 1280..1312 of the 1312-byte block; activations at
        // 16g + 16 ≤ 256, the scale at 256..260 and the sums at 260..292 of the 292-byte block;
        // dotprod as our caller guarantees (# Safety).
        unsafe {
            let wb = w.as_ptr().add(b * W_Q4_K_BLOCK);
            let ab = [0, 1, 2, 3].map(|v| a[v].as_ptr().add(b * A_K_BLOCK));
            let mut isum = [vdupq_n_s32(0); 4];
            for j in 0..8 {
                let s = group_dot([vdupq_n_s32(0); 4], wb, &ab, 2 * j);
                let s = group_dot(s, wb, &ab, 2 * j + 1);
                let sc = vld1q_s32(wb.add(1024 + 16 * j).cast());
                for v in 0..4 {
                    isum[v] = vmlaq_s32(isum[v], s[v], sc);
                }
            }
            let mins: [int32x4_t; 8] =
                [0, 1, 2, 3, 4, 5, 6, 7].map(|j| vld1q_s32(wb.add(1152 + 16 * j).cast()));
            let dx = ldf(wb.add(1280));
            let dminx = ldf(wb.add(1296));
            for v in 0..4 {
                let bs0 = vld1q_s32(ab[v].add(QK_K + 4).cast());
                let bs1 = vld1q_s32(ab[v].add(QK_K + 20).cast());
                let mut m = vmulq_laneq_s32::<0>(mins[0], bs0);
                m = vmlaq_laneq_s32::<1>(m, mins[1], bs0);
                m = vmlaq_laneq_s32::<2>(m, mins[2], bs0);
                m = vmlaq_laneq_s32::<3>(m, mins[3], bs0);
                m = vmlaq_laneq_s32::<0>(m, mins[4], bs1);
                m = vmlaq_laneq_s32::<1>(m, mins[5], bs1);
                m = vmlaq_laneq_s32::<2>(m, mins[6], bs1);
                m = vmlaq_laneq_s32::<3>(m, mins[7], bs1);
                let dy = ld1f(ab[v].add(QK_K));
                let d = vmulq_n_f32(dx, dy);
                let dmin = vmulq_n_f32(dminx, dy);
                let t = vsubq_f32(
                    vmulq_f32(d, vcvtq_f32_s32(isum[v])),
                    vmulq_f32(dmin, vcvtq_f32_s32(m)),
                );
                acc[v] = vaddq_f32(acc[v], t);
            }
        }
    }
    let mut out = [[0f32; 4]; 4];
    for (v, acc) in acc.into_iter().enumerate() {
        scatter(&mut out, v, acc);
    }
    out
}

/// The Q6_K dotprod tile: per row and vector `sumf += (dx·dy)·Σ sc·s` (the single dot's order).
///
/// # Safety
/// The CPU must support dotprod.
#[target_feature(enable = "neon,dotprod")]
unsafe fn tile_q6_K(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    let nb = w.len() / W_Q6_K_BLOCK;
    assert_eq!(w.len(), nb * W_Q6_K_BLOCK, "prepared weight size");
    assert!(
        a.iter().all(|a| a.len() == nb * A_K_BLOCK),
        "prepared activation sizes"
    );
    let mut acc = [vdupq_n_f32(0.0); 4];
    for b in 0..nb {
        // SAFETY: block b of each checked buffer: weight groups at 64g + 64 ≤ 1024, scales at
        // 1024..1280 and d at 1280..1296 of the 1296-byte block; activations at 16g + 16 ≤ 256
        // and the scale at 256..260 of the 292-byte block; dotprod as our caller guarantees.
        unsafe {
            let wb = w.as_ptr().add(b * W_Q6_K_BLOCK);
            let ab = [0, 1, 2, 3].map(|v| a[v].as_ptr().add(b * A_K_BLOCK));
            let mut isum = [vdupq_n_s32(0); 4];
            for g in 0..16 {
                let s = group_dot([vdupq_n_s32(0); 4], wb, &ab, g);
                let sc = vld1q_s32(wb.add(1024 + 16 * g).cast());
                for v in 0..4 {
                    isum[v] = vmlaq_s32(isum[v], s[v], sc);
                }
            }
            let dx = ldf(wb.add(1280));
            for v in 0..4 {
                let d = vmulq_n_f32(dx, ld1f(ab[v].add(QK_K)));
                acc[v] = vaddq_f32(acc[v], vmulq_f32(d, vcvtq_f32_s32(isum[v])));
            }
        }
    }
    let mut out = [[0f32; 4]; 4];
    for (v, acc) in acc.into_iter().enumerate() {
        scatter(&mut out, v, acc);
    }
    out
}

fn q4_K_tile(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: only reachable through `dotprod_k_tiles`, which asserts dotprod.
    unsafe { tile_q4_K(w, a) }
}

fn q6_K_tile(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: only reachable through `dotprod_k_tiles`, which asserts dotprod.
    unsafe { tile_q6_K(w, a) }
}

/// The dotprod K-quant tiles (Q4_K, Q5_K, Q6_K), bit-identical to the dotprod single dots.
/// Panics on a CPU without dotprod.
pub(super) fn dotprod_k_tiles() -> (Tile4x4, Tile4x4, Tile4x4) {
    assert!(
        std::arch::is_aarch64_feature_detected!("dotprod"),
        "dotprod tiles on a CPU without dotprod"
    );
    (
        Tile4x4 {
            prepared_bytes: k_prepared_bytes,
            prepare: k_prepare,
            prepared_w_bytes: q4_K_w_bytes,
            prepare_w: q4_K_prepare_w,
            tile: q4_K_tile,
        },
        Tile4x4 {
            prepared_bytes: k_prepared_bytes,
            prepare: k_prepare,
            prepared_w_bytes: q5_K_w_bytes,
            prepare_w: q5_K_prepare_w,
            tile: q4_K_tile,
        },
        Tile4x4 {
            prepared_bytes: k_prepared_bytes,
            prepare: k_prepare,
            prepared_w_bytes: q6_K_w_bytes,
            prepare_w: q6_K_prepare_w,
            tile: q6_K_tile,
        },
    )
}

// ---------------------------------------------------------------- tables

fn d_q4_0(x: &BlockQ4_0) -> Half {
    x.d
}

fn d_q8_0(x: &BlockQ8_0) -> Half {
    x.d
}

fn q4_0_prepare_w_dot(w: [&[u8]; 4], out: &mut [u8]) {
    prepare_w_dot::<BlockQ4_0>(w, out, q4_0_quants, d_q4_0)
}

fn q8_0_prepare_w_dot(w: [&[u8]; 4], out: &mut [u8]) {
    prepare_w_dot::<BlockQ8_0>(w, out, q8_0_quants, d_q8_0)
}

fn q4_0_prepare_w_mm(w: [&[u8]; 4], out: &mut [u8]) {
    prepare_w_mm::<BlockQ4_0>(w, out, q4_0_quants, d_q4_0)
}

fn q8_0_prepare_w_mm(w: [&[u8]; 4], out: &mut [u8]) {
    prepare_w_mm::<BlockQ8_0>(w, out, q8_0_quants, d_q8_0)
}

fn q4_0_tile_dot(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: only reachable through `dotprod_tiles`, which asserts dotprod.
    unsafe { tile_dot::<true>(w, a) }
}

fn q8_0_tile_dot(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: only reachable through `dotprod_tiles`, which asserts dotprod.
    unsafe { tile_dot::<false>(w, a) }
}

fn q4_0_tile_mm(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: only reachable through `i8mm_tiles`, which asserts i8mm.
    unsafe { tile_mm::<true>(w, a) }
}

fn q8_0_tile_mm(w: &[u8], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: only reachable through `i8mm_tiles`, which asserts i8mm.
    unsafe { tile_mm::<false>(w, a) }
}

/// The dotprod tiles (Q4_0, Q8_0). Panics on a CPU without dotprod.
pub(super) fn dotprod_tiles() -> (Tile4x4, Tile4x4) {
    assert!(
        std::arch::is_aarch64_feature_detected!("dotprod"),
        "dotprod tiles on a CPU without dotprod"
    );
    (
        Tile4x4 {
            prepared_bytes,
            prepare,
            prepared_w_bytes: w_dot_bytes::<BlockQ4_0>,
            prepare_w: q4_0_prepare_w_dot,
            tile: q4_0_tile_dot,
        },
        Tile4x4 {
            prepared_bytes,
            prepare,
            prepared_w_bytes: w_dot_bytes::<BlockQ8_0>,
            prepare_w: q8_0_prepare_w_dot,
            tile: q8_0_tile_dot,
        },
    )
}

/// The i8mm tiles (Q4_0, Q8_0). Panics on a CPU without i8mm.
pub(super) fn i8mm_tiles() -> (Tile4x4, Tile4x4) {
    assert!(
        std::arch::is_aarch64_feature_detected!("i8mm"),
        "i8mm tiles on a CPU without i8mm"
    );
    (
        Tile4x4 {
            prepared_bytes,
            prepare,
            prepared_w_bytes: w_mm_bytes::<BlockQ4_0>,
            prepare_w: q4_0_prepare_w_mm,
            tile: q4_0_tile_mm,
        },
        Tile4x4 {
            prepared_bytes,
            prepare,
            prepared_w_bytes: w_mm_bytes::<BlockQ8_0>,
            prepare_w: q8_0_prepare_w_mm,
            tile: q8_0_tile_mm,
        },
    )
}

#[cfg(test)]
mod tests {
    //! The K-quant tiles (not yet in a table, so not reached by tests/paths.rs) against sixteen
    //! dotprod single dots, bit for bit.

    use super::*;
    use crate::{scalar, GgmlType};

    /// xorshift64.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        /// Uniform in [-r, r).
        fn f32(&mut self, r: f32) -> f32 {
            ((self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * r
        }
    }

    /// `nb` blocks of `ty`: random bytes with finite f16 scales below `range`, or every byte
    /// `fill` with scales `range`.
    fn blocks(rng: &mut Rng, ty: GgmlType, nb: usize, fill: Option<u8>, range: f32) -> Vec<u8> {
        let size = ty.type_size();
        let mut v: Vec<u8> = match fill {
            Some(f) => vec![f; nb * size],
            None => (0..nb * size).map(|_| rng.next() as u8).collect(),
        };
        let fields: &[usize] = if ty == GgmlType::Q6_K {
            &[208]
        } else {
            &[0, 2]
        };
        for b in v.chunks_exact_mut(size) {
            for &o in fields {
                let d = if fill.is_some() {
                    range
                } else {
                    rng.f32(range)
                };
                b[o..o + 2].copy_from_slice(&Half::from_f32(d).0);
            }
        }
        v
    }

    #[test]
    fn k_tiles_equal_dotprod_single_dots() {
        if !std::arch::is_aarch64_feature_detected!("dotprod") {
            return;
        }
        let (q4k, q5k, q6k) = dotprod_k_tiles();
        let cases: [(GgmlType, Tile4x4, crate::dispatch::VecDotFn); 3] = [
            (
                GgmlType::Q4_K,
                q4k,
                super::super::dotprod::vec_dot_q4_K_q8_K,
            ),
            (
                GgmlType::Q5_K,
                q5k,
                super::super::dotprod::vec_dot_q5_K_q8_K,
            ),
            (
                GgmlType::Q6_K,
                q6k,
                super::super::dotprod::vec_dot_q6_K_q8_K,
            ),
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut checked = 0;
        for (ty, t, dot) in cases {
            for nb in [1usize, 2, 3, 5] {
                let n = nb * QK_K;
                // Activations: random, ramps (many significant bits), ±max, a spike.
                let xs: Vec<Vec<f32>> = vec![
                    (0..n).map(|_| rng.f32(3.0)).collect(),
                    (0..n).map(|i| 1.0 + (i % 13) as f32 * 0.07).collect(),
                    (0..n)
                        .map(|i| if i % 2 == 0 { 1e3 } else { -1e3 })
                        .collect(),
                    (0..n)
                        .map(|i| {
                            if i == n / 2 {
                                5e4
                            } else {
                                1e-3 * (i % 7) as f32
                            }
                        })
                        .collect(),
                ];
                let a: Vec<Vec<u8>> = xs
                    .iter()
                    .map(|x| {
                        let mut q = vec![0u8; nb * size_of::<BlockQ8_K>()];
                        scalar::quantize_row_q8_K(x, &mut q);
                        q
                    })
                    .collect();
                let pb = (t.prepared_bytes)(a[0].len()).expect("any Q8_K row");
                let pa: Vec<Vec<u8>> = a
                    .iter()
                    .map(|a| {
                        let mut o = vec![0u8; pb];
                        (t.prepare)(a, &mut o);
                        o
                    })
                    .collect();
                let w: Vec<Vec<u8>> = vec![
                    blocks(&mut rng, ty, nb, None, 2.0),
                    blocks(&mut rng, ty, nb, None, 65504.0),
                    blocks(&mut rng, ty, nb, None, 6e-5),
                    blocks(&mut rng, ty, nb, Some(0xFF), 1.5),
                    blocks(&mut rng, ty, nb, Some(0x00), 65504.0),
                    blocks(&mut rng, ty, nb, Some(0x80), 0.75),
                    blocks(&mut rng, ty, nb, None, 1.0),
                ];
                for rows in w.windows(4) {
                    let mut pw = vec![0u8; (t.prepared_w_bytes)(rows[0].len())];
                    (t.prepare_w)([&rows[0], &rows[1], &rows[2], &rows[3]], &mut pw);
                    let got = (t.tile)(&pw, [&pa[0], &pa[1], &pa[2], &pa[3]]);
                    for r in 0..4 {
                        for v in 0..4 {
                            let want = dot(&rows[r], &a[v]);
                            assert_eq!(
                                got[r][v].to_bits(),
                                want.to_bits(),
                                "{ty} {nb} blocks row {r} vec {v}: {} vs {want}",
                                got[r][v]
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 3 * 4 * 4 * 16);
    }
}
