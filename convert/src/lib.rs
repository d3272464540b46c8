//! The converter behind the `ouro-convert` binary: Hugging Face Ouro / Llama checkpoints → GGUF
//! ([`hf2gguf`]), GGUF requantization ([`quantize`]) and shape-exact random checkpoints
//! ([`synth`]), and adding an exit gate to a GGUF made elsewhere ([`add_gate`]). A library so the fuzz targets can drive the same code as the binary.

pub mod add_gate;
pub mod config;
pub mod hf2gguf;
pub mod interrupt;
pub mod kquant_plan;
mod names;
pub mod plan;
mod progress;
pub mod quantize;
pub mod size_label;
pub mod source;
pub mod summary;
pub mod synth;
mod tokmeta;
