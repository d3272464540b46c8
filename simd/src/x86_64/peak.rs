//! The machine's int8 multiply-add peak, for benchmarks: chains of independent `vpdpbusd`
//! (512- and 256-bit) and, for the plain AVX2 path, `vpmaddubsw` + `vpmaddwd` + `vpaddd`.
//! Every GEMM figure is reported as a fraction of these.

use std::arch::x86_64::*;
use std::hint::black_box;

/// Which instruction sequence [`int8_peak`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeakKind {
    /// `vpdpbusd zmm`: 64 u8·i8 multiply-adds per instruction (AVX-512 VNNI).
    VnniZmm,
    /// `vpdpbusd ymm`: 32 per instruction (AVX-512 VL + VNNI).
    VnniYmm,
    /// `vpmaddubsw ymm` + `vpmaddwd ymm` + `vpaddd ymm`: 32 per three instructions (AVX2),
    /// the AVX2 path's int8 product.
    MaddubsYmm,
}

/// Independent accumulator chains: more than latency × throughput of `vpdpbusd` on current
/// x86 cores (5 × 2 at most).
const CHAINS: usize = 16;
/// Chains of the AVX2 sequence (16 ymm registers: 8 accumulators + temporaries).
const CHAINS_AVX2: usize = 8;

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn vnni_zmm(iters: u64) -> i64 {
    let a = _mm512_set1_epi8(black_box(3));
    let mut b = _mm512_set1_epi8(black_box(-2));
    let mut acc = [_mm512_setzero_si512(); CHAINS];
    for _ in 0..iters {
        // Opaque once per round, so nothing can be hoisted out of the loop.
        b = black_box(b);
        for c in acc.iter_mut() {
            *c = _mm512_dpbusd_epi32(*c, a, b);
        }
    }
    acc.iter().map(|&c| _mm512_reduce_add_epi32(c) as i64).sum()
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
fn vnni_ymm(iters: u64) -> i64 {
    let a = _mm256_set1_epi8(black_box(3));
    let mut b = _mm256_set1_epi8(black_box(-2));
    let mut acc = [_mm256_setzero_si256(); CHAINS];
    for _ in 0..iters {
        b = black_box(b);
        for c in acc.iter_mut() {
            *c = _mm256_dpbusd_epi32(*c, a, b);
        }
    }
    acc.iter()
        .map(|&c| _mm512_reduce_add_epi32(_mm512_zextsi256_si512(c)) as i64)
        .sum()
}

#[target_feature(enable = "avx2")]
fn maddubs_ymm(iters: u64) -> i64 {
    let a = _mm256_set1_epi8(black_box(3));
    let one = _mm256_set1_epi16(1);
    let mut b = _mm256_set1_epi8(black_box(-2));
    let mut acc = [_mm256_setzero_si256(); CHAINS_AVX2];
    for _ in 0..iters {
        b = black_box(b);
        for c in acc.iter_mut() {
            let t = _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), one);
            *c = _mm256_add_epi32(*c, t);
        }
    }
    let mut lanes = [0i32; 8];
    let s = acc
        .iter()
        .fold(_mm256_setzero_si256(), |s, &c| _mm256_add_epi32(s, c));
    // SAFETY: a 32-byte store into the 8-i32 array.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), s) };
    lanes.iter().map(|&l| l as i64).sum()
}

/// Run `iters` rounds of `kind` on the calling thread; the multiply-adds done, or `None` if
/// this CPU lacks the instructions. (The checksum goes through `black_box`.)
pub fn int8_peak(kind: PeakKind, iters: u64) -> Option<u64> {
    let avx512 = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni");
    let (sum, per_round) = match kind {
        // SAFETY: the features of `vnni_zmm` were detected just above.
        PeakKind::VnniZmm if avx512 => (unsafe { vnni_zmm(iters) }, 64 * CHAINS),
        // SAFETY: the features of `vnni_ymm` were detected just above.
        PeakKind::VnniYmm if avx512 => (unsafe { vnni_ymm(iters) }, 32 * CHAINS),
        PeakKind::MaddubsYmm if is_x86_feature_detected!("avx2") => {
            // SAFETY: AVX2 was detected just above.
            (unsafe { maddubs_ymm(iters) }, 32 * CHAINS_AVX2)
        }
        _ => return None,
    };
    black_box(sum);
    Some(iters * per_round as u64)
}
