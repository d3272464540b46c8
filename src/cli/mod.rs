//! Subcommands of the `ouro` binary; each module has an `Args` (clap) and a `run`.
pub mod info;
