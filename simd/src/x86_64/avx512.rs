//! AVX-512 VL + VNNI: the 256-bit kernels with `vpdpbusd` doing the u8·i8 sums in one
//! instruction.

use std::arch::x86_64::*;

use super::avx2::F16_TO_F32;

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

pub(crate) use k::kernels;
