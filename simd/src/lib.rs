//! ggml-compatible quantized blocks and kernels: scalar reference + runtime-dispatched SIMD.

pub mod types;

pub use types::GgmlType;
