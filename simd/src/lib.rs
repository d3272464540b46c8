//! ggml-compatible quantized blocks and kernels: scalar reference + runtime-dispatched SIMD.
