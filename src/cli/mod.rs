//! Subcommands of the `ouro` binary; each module has an `Args` (clap) and a `run`.
pub mod bench;
pub mod chat;
pub mod generate;
pub mod info;
pub mod logits;
pub mod perplexity;
