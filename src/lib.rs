//! `ouro`: a CPU-first, quantized runtime for looped language models (ByteDance Seed's Ouro).
//!
//! Layout (README "Design"; arrows point one way: gguf ← tensor ← model/ops ← session ←
//! engine): `gguf` (format), `mmap` (the only `unsafe` in this crate), `tensor` (the words
//! model and ops share), `model` (config, weights, KV cache, exit math, forward pass), `ops`
//! (norms, RoPE, attention, matmul dispatch), `sampler`, `tokenizer`, `chat_template`,
//! `session` (one sequence), `engine` (the generation loop), `info` (file summaries). The
//! command-line front end lives in the binary (`src/main.rs`, `src/cli/`).
#![deny(unsafe_code)]

pub mod chat_template;
pub mod engine;
pub mod gguf;
pub mod info;
pub mod mmap;
pub mod model;
pub mod ops;
pub mod sampler;
pub mod session;
pub mod tensor;
pub mod tokenizer;
