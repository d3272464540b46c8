//! ggml-compatible quantized blocks and kernels: scalar reference + runtime-dispatched SIMD.
//!
//! The public entry points take and return plain slices; lengths are checked here and a
//! mismatch panics with a clear message (a programmer error, never user input).

// Kernels keep ggml's names (`vec_dot_q4_K_q8_K`): the K is part of the format name.
#![allow(non_snake_case)]
// `unsafe` lives only in the ISA modules (x86_64/, aarch64/), which allow it for themselves;
// blocks, scalar, types, dispatch and the matmul driver have none.
#![deny(unsafe_code)]

pub mod blocks;
pub mod dispatch;
mod matmul;
pub mod panel;
pub mod quantize_k;
pub mod resident;
pub mod scalar;
pub mod types;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use dispatch::{init, kernels, selected, Kernels, Path, SimdError, Tile4x4};
pub use matmul::{
    matmul, matmul_resident, matmul_resident_with, matmul_with, PANEL_MIN_VECS, TILES_MIN_VECS,
};
pub use resident::Resident;
pub use types::GgmlType;
/// The int8 multiply-add peak microbenchmark (benches/gemm.rs reports GEMMs against it).
#[cfg(target_arch = "x86_64")]
#[doc(hidden)]
pub use x86_64::peak::{int8_peak, PeakKind};

/// Whether the crate can quantize / dequantize this type (and dot it, for weight types).
pub fn is_supported(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        ty,
        F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 | Q4_K | Q5_K | Q6_K | Q8_K
    )
}

/// Whether [`matmul`] takes weights of type `ty`: every supported type except the
/// activation-only Q8_1 and Q8_K (ggml has no dot product with them as weights either).
pub fn is_weight_type(ty: GgmlType) -> bool {
    is_supported(ty) && !matches!(ty, GgmlType::Q8_1 | GgmlType::Q8_K)
}

/// The type activations are quantized to before a dot product with weights of type `wtype`
/// (ggml's `vec_dot_type`). Panics if `!is_supported(wtype)`.
pub fn vec_dot_type(wtype: GgmlType) -> GgmlType {
    use GgmlType::*;
    match wtype {
        F32 | F16 | BF16 => F32,
        Q4_0 | Q5_0 | Q8_0 => Q8_0,
        Q4_1 | Q5_1 | Q8_1 => Q8_1,
        Q4_K | Q5_K | Q6_K | Q8_K => Q8_K,
        _ => panic!("ouro_simd::vec_dot_type: {wtype} is not supported"),
    }
}

/// Elements `n` → bytes of `ty`, panicking on a partial block (programmer error).
fn row_bytes(what: &str, ty: GgmlType, n: usize) -> usize {
    match ty.row_bytes(n as u64) {
        Some(b) => b as usize,
        None => panic!(
            "ouro_simd::{what}: {n} elements is not a whole number of {ty} blocks of {}",
            ty.block_size()
        ),
    }
}

/// Decode a row of `ty` (`src`: whole blocks) into `dst.len()` f32.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) {
    let expected = row_bytes("dequantize_row", ty, dst.len());
    assert_eq!(
        src.len(),
        expected,
        "ouro_simd::dequantize_row: {} {ty} elements need {expected} bytes, got {}",
        dst.len(),
        src.len()
    );
    use GgmlType::*;
    match ty {
        F32 => scalar::dequantize_row_f32(src, dst),
        F16 => scalar::dequantize_row_f16(src, dst),
        BF16 => scalar::dequantize_row_bf16(src, dst),
        Q4_0 => scalar::dequantize_row_q4_0(src, dst),
        Q4_1 => scalar::dequantize_row_q4_1(src, dst),
        Q5_0 => scalar::dequantize_row_q5_0(src, dst),
        Q5_1 => scalar::dequantize_row_q5_1(src, dst),
        Q8_0 => scalar::dequantize_row_q8_0(src, dst),
        Q8_1 => scalar::dequantize_row_q8_1(src, dst),
        Q4_K => scalar::dequantize_row_q4_K(src, dst),
        Q5_K => scalar::dequantize_row_q5_K(src, dst),
        Q6_K => scalar::dequantize_row_q6_K(src, dst),
        Q8_K => scalar::dequantize_row_q8_K(src, dst),
        _ => panic!("ouro_simd::dequantize_row: {ty} is not supported"),
    }
}

/// Encode `src` as a row of `ty` into `dst` (exactly the row's bytes) with the scalar
/// reference quantizers: bit-exact with gguf-py / ggml for Q8_0 Q4_0 Q4_1 Q5_0 Q5_1, F16, BF16.
/// Supported: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q8_1 Q8_K (not Q4_K/Q5_K/Q6_K).
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) {
    let expected = row_bytes("quantize_row", ty, src.len());
    assert_eq!(
        dst.len(),
        expected,
        "ouro_simd::quantize_row: {} {ty} elements need {expected} bytes, got {}",
        src.len(),
        dst.len()
    );
    use GgmlType::*;
    match ty {
        F32 => scalar::quantize_row_f32(src, dst),
        F16 => scalar::quantize_row_f16(src, dst),
        BF16 => scalar::quantize_row_bf16(src, dst),
        Q4_0 => scalar::quantize_row_q4_0(src, dst),
        Q4_1 => scalar::quantize_row_q4_1(src, dst),
        Q5_0 => scalar::quantize_row_q5_0(src, dst),
        Q5_1 => scalar::quantize_row_q5_1(src, dst),
        Q8_0 => scalar::quantize_row_q8_0(src, dst),
        Q8_1 => scalar::quantize_row_q8_1(src, dst),
        Q8_K => scalar::quantize_row_q8_K(src, dst),
        _ => panic!("ouro_simd::quantize_row: no quantizer for {ty}"),
    }
}

/// Whether the loader should repack weights of type `ty` into resident panels: the selected
/// path has a resident kernel for it and `OURO_REPACK` is not `0` (the switch that keeps every
/// weight in the map, for A/B runs and for memory-tight machines).
pub fn resident_enabled(ty: GgmlType) -> bool {
    kernels().resident.is_some()
        && Resident::supports(ty)
        && std::env::var("OURO_REPACK").map_or(true, |v| v != "0")
}
