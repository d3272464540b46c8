//! `ouro`: a CPU-first, quantized runtime for looped language models (ByteDance Seed's Ouro).
//!
//! Layout (see README "Design"): `gguf` (format), `mmap` (the only `unsafe` in this crate),
//! `model` (config, weights, KV cache, exit math, forward pass), `ops` (norms, RoPE, attention,
//! matmul dispatch), `sampler`, `tokenizer`, `chat`, `session`, `cli` (subcommands).
#![deny(unsafe_code)]

pub mod chat;
pub mod cli;
pub mod gguf;
pub mod mmap;
pub mod model;
pub mod ops;
pub mod sampler;
pub mod session;
pub mod tokenizer;
