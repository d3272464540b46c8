//! Read-only memory map of a model file (memmap2). With `ouro-simd`, the only `unsafe` here.
