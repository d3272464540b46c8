//! The `ouro` binary: a small dispatcher over the subcommands in `ouro::cli`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ouro::cli;

#[derive(Parser)]
#[command(
    name = "ouro",
    version,
    about = "CPU-first quantized runtime for looped language models (Ouro)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Summarize a GGUF model file: architecture, sizes, tensor types, tokenizer.
    Info(cli::info::InfoArgs),
}

fn main() -> ExitCode {
    // Usage errors exit with status 2 (clap's convention) from inside `parse`.
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => cli::info::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the error chain holds.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(1)
        }
    }
}
