//! The K-quant quantizers of [`crate::quantize_k`] compiled for AVX2: the same lane code, wider
//! vectors. No FMA is enabled and Rust never contracts a multiply and an add, so every byte stays
//! ggml's (the `quantize_k` unit test compares this build with the baseline one).

use crate::quantize_k::{q4_K_rows, q5_K_rows, q6_K_rows};

/// Quantizes with the AVX2 build and returns true, or returns false when the CPU lacks AVX2.
pub(crate) fn q4_K(src: &[f32], dst: &mut [u8]) -> bool {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return false;
    }
    // SAFETY: the CPU has AVX2 (checked above).
    unsafe { q4_K_avx2(src, dst) };
    true
}

/// As [`q4_K`], for Q5_K.
pub(crate) fn q5_K(src: &[f32], dst: &mut [u8]) -> bool {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return false;
    }
    // SAFETY: the CPU has AVX2 (checked above).
    unsafe { q5_K_avx2(src, dst) };
    true
}

/// As [`q4_K`], for Q6_K.
pub(crate) fn q6_K(src: &[f32], dst: &mut [u8]) -> bool {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return false;
    }
    // SAFETY: the CPU has AVX2 (checked above).
    unsafe { q6_K_avx2(src, dst) };
    true
}

#[target_feature(enable = "avx2")]
fn q4_K_avx2(src: &[f32], dst: &mut [u8]) {
    q4_K_rows(src, dst);
}

#[target_feature(enable = "avx2")]
fn q5_K_avx2(src: &[f32], dst: &mut [u8]) {
    q5_K_rows(src, dst);
}

#[target_feature(enable = "avx2")]
fn q6_K_avx2(src: &[f32], dst: &mut [u8]) {
    q6_K_rows(src, dst);
}
