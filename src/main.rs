//! The `ouro` binary: a small dispatcher over the subcommands in `cli/` (the command-line front
//! end lives here, not in the library).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

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
    /// Generate text from a prompt (streams; --json prints one object with stats).
    Generate(cli::generate::Args),
    /// Write the readout logits of every prompt position (and the exit gates) as .npy.
    Logits(cli::logits::Args),
    /// llama.cpp-style perplexity of a text file.
    Perplexity(cli::perplexity::Args),
    /// Interactive chat (REPL) with the model's chat template; piped stdin = one turn per line.
    Chat(cli::chat::Args),
    /// Prompt-processing and generation speed (llama-bench style), peak RSS, implied GB/s.
    Bench(cli::bench::Args),
    /// OpenAI-compatible HTTP server with continuous batching and a depth-view chat page.
    Serve(cli::serve::Args),
}

fn main() -> ExitCode {
    // Usage errors exit with status 2 (clap's convention) from inside `parse`.
    let cli = Cli::parse();
    // An OURO_SIMD the CPU cannot honour (or a misspelt one) is an error, not a silent fallback.
    if let Err(e) = ouro_simd::init() {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let result = match cli.command {
        Command::Info(args) => cli::info::run(args),
        Command::Generate(args) => cli::generate::run(args),
        Command::Logits(args) => cli::logits::run(args),
        Command::Perplexity(args) => cli::perplexity::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Chat(args) => cli::chat::run(args),
        Command::Serve(args) => cli::serve::run(args),
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
