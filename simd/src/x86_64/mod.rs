//! x86_64 kernels: AVX2 + FMA + F16C, and AVX-512 (F, BW, VL, VNNI) on top.

mod avx2;
mod avx512;

use crate::dispatch::Kernels;

/// The first feature of the AVX2 path this CPU lacks.
pub(crate) fn missing_avx2() -> Option<&'static str> {
    if !is_x86_feature_detected!("avx2") {
        Some("avx2")
    } else if !is_x86_feature_detected!("fma") {
        Some("fma")
    } else if !is_x86_feature_detected!("f16c") {
        Some("f16c")
    } else {
        None
    }
}

/// The first feature of the AVX-512 path this CPU lacks.
pub(crate) fn missing_avx512() -> Option<&'static str> {
    missing_avx2().or(if !is_x86_feature_detected!("avx512f") {
        Some("avx512f")
    } else if !is_x86_feature_detected!("avx512bw") {
        Some("avx512bw")
    } else if !is_x86_feature_detected!("avx512vl") {
        Some("avx512vl")
    } else if !is_x86_feature_detected!("avx512vnni") {
        Some("avx512vnni")
    } else {
        None
    })
}

/// The AVX2 table (every kernel); call only when `missing_avx2()` is `None`.
pub(crate) fn avx2_kernels() -> Kernels {
    avx2::kernels()
}

/// The AVX-512 table (every kernel); call only when `missing_avx512()` is `None`.
pub(crate) fn avx512_kernels() -> Kernels {
    avx512::kernels()
}
