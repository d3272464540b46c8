//! Subcommands of the `ouro` binary; each module has an `Args` (clap) and a `run`. What they
//! share is in `common`; no command imports another command's module.
pub mod bench;
pub mod chat;
pub mod common;
pub mod generate;
pub mod info;
pub mod logits;
pub mod perplexity;
pub mod serve;
