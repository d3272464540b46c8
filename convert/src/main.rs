//! `ouro-convert`: Hugging Face Ouro / Llama checkpoints → GGUF (`hf2gguf`), GGUF requantization
//! (`quantize`) and shape-exact random checkpoints (`synth`).

use anyhow::{anyhow, Result};
use clap::{Parser, Subcommand};
use ouro_convert::plan::FileType;
use ouro_convert::summary::Written;
use ouro_convert::{add_gate, hf2gguf, interrupt, quantize, synth};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "ouro-convert",
    version,
    about = "Convert Ouro / Llama checkpoints to GGUF"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const HF2GGUF_HELP: &str = "\
Writes architecture `ouro` (or `llama` for model_type llama) with llama.cpp's keys and tensor
names, so the file also loads in llama.cpp. Q and K rows are permuted for interleaved RoPE as
llama.cpp's converter does. The exit gate is stored as metadata (ouro.exit_gate.weight/.bias,
ouro.early_exit_threshold); ouro.num_loops = total_ut_steps.

Types: norms are always f32; 2-D weights take --type; in q4_0 files token_embd and output are
Q8_0 (at 4 bits they lose the most: on SmolLM2-135M's embedding Q4_0 leaves 11% relative RMS
weight error, and llama.cpp's own Q4_1 file keeps it Q8_0); rows whose length is not a multiple of
32 fall back to f16. --dry-run prints this plan with the bytes per tensor.
K-quant mixtures (q4_k_m, q4_k_s, q5_k_m, q5_k_s, q6_k) follow llama-quantize's per-tensor
rules (no imatrix): output (and a tied token_embd) Q6_K; attn_v and ffn_down Q6_K in the
use_more_bits layers of _m files (Q5_K in the first layers of q4_k_s); rows not a multiple of
256 fall back to Q5_0 / Q5_1 / Q8_0 (Q4_K / Q5_K / Q6_K), then f16. The bytes are those of
llama-quantize's reference quantizers.

Tokenizer: tokenizer.ggml.* (gpt2 / smollm, tokens with added tokens by id, token types 1 normal,
3 control for special added tokens, 4 user-defined, 5 unused padding; merges) plus the whole
tokenizer.json as tokenizer.huggingface.json and tokenizer.chat_template.
Stop tokens: Ouro ships eos = bos = pad = 0 (<|endoftext|>) but ends chat turns with <|im_end|>.
When the vocabulary has <|im_end|>, it is written as tokenizer.ggml.eos_token_id AND
tokenizer.ggml.eot_token_id; bos and padding keep config.json's ids (0). add_bos_token is
tokenizer_config.json's value (false when absent: Ouro's tokenizer adds no BOS).

The output is written to a temporary file and renamed into place; on any error, Ctrl-C (exit
status 130) or SIGTERM (143) nothing is left.";

const QUANTIZE_HELP: &str = "\
The same plan as hf2gguf: 1-D tensors are f32; for q4_0/q4_1/q5_0/q5_1, token_embd and output are
Q8_0; rows that do not split into 32-blocks become f16; the K-quant mixtures follow
llama-quantize's rules (see hf2gguf --help). Tensors already in their target type are
copied unchanged; other quantized tensors are dequantized and quantized again (with a warning).";

const SYNTH_HELP: &str = "\
The weights are seeded uniform NOISE with plausible scales: the checkpoint has the exact shapes,
names, dtypes (bf16) and file layout of a real release, for benchmarks and large-file tests, but it
generates gibberish. Without --tokenizer-from, a tiny byte-level BPE tokenizer (3 ChatML specials,
256 byte tokens, 30 merges) is generated; the embeddings are still sized by the preset.
The files are written into a hidden directory inside OUTPUT and moved into place at the end; on
any error, Ctrl-C (exit status 130) or SIGTERM (143) nothing is left (and OUTPUT is removed again
if it did not exist before).
--residual-scale S multiplies the two post-sublayer norm weights of every layer
(input_layernorm_2 and post_attention_layernorm_2, which scale what attention and the MLP add to
the residual stream; mean S, spread 0.1 S) and, for S < 1, the spread of the final norm around 1
(model.norm runs after every loop and feeds the next, so its noise alone would move the hidden
state loop after loop): each loop then moves the hidden state less, so the
readout after the first loops agrees with full depth at a rate that rises as S falls. This is a
benchmark knob for self-speculation (a controlled draft acceptance on a real-size file), not a
model of how trained weights behave; the file's general.name says
synthetic-noise-residual-scale-S.";

#[derive(Subcommand)]
enum Command {
    /// Convert a Hugging Face checkpoint directory to GGUF.
    #[command(after_long_help = HF2GGUF_HELP)]
    Hf2gguf {
        /// Checkpoint directory (config.json, *.safetensors, tokenizer.json, ...).
        hf_dir: PathBuf,
        /// Output GGUF file.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Weight type: f32, f16, bf16, q8_0, q4_0, q4_k_m, q4_k_s, q5_k_m, q5_k_s, q6_k.
        #[arg(long = "type", value_name = "TYPE", value_parser = parse_hf_type, default_value = "f16")]
        ty: FileType,
        /// Print the plan (name, shape, type, bytes per tensor and the total), write nothing.
        #[arg(long)]
        dry_run: bool,
        /// general.name (default: config's _name_or_path, else the directory name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Requantize a GGUF, keeping all metadata (general.file_type is updated).
    #[command(after_long_help = QUANTIZE_HELP)]
    Quantize {
        input: PathBuf,
        output: PathBuf,
        /// Target type: q8_0, q4_0, q4_1, q5_0, q5_1, q4_k_m, q4_k_s, q5_k_m, q5_k_s, q6_k, f16, f32.
        #[arg(long = "type", value_name = "TYPE", value_parser = parse_quant_type)]
        ty: FileType,
    },
    /// Copy the exit gate (and threshold) of a Hugging Face checkpoint into a GGUF that has none
    /// (e.g. one made by llama.cpp's converter), without touching its tensors.
    AddGate {
        /// The GGUF to complete.
        input: PathBuf,
        /// The Hugging Face checkpoint directory it was converted from.
        #[arg(long)]
        from: PathBuf,
        /// Output GGUF file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write a random (noise) checkpoint with the exact shapes and layout of a preset.
    #[command(after_long_help = SYNTH_HELP)]
    Synth {
        /// ouro-1.4b, ouro-2.6b or tiny.
        #[arg(long)]
        preset: String,
        /// Output directory (Hugging Face layout).
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// total_ut_steps (default: the preset's, 4).
        #[arg(long)]
        loops: Option<usize>,
        /// Copy the tokenizer files from this checkpoint directory.
        #[arg(long)]
        tokenizer_from: Option<PathBuf>,
        /// Multiply the post-sublayer norm weights (the residual writers) by this factor: below
        /// 1, early loops agree with full depth more often (see below).
        #[arg(long, default_value_t = 1.0, value_name = "S")]
        residual_scale: f32,
    },
}

fn parse_type(s: &str, allowed: &[&str]) -> Result<FileType, String> {
    let lower = s.to_ascii_lowercase();
    match FileType::parse(&lower) {
        Some(t) if allowed.contains(&lower.as_str()) => Ok(t),
        _ => Err(format!("expected one of {}", allowed.join(", "))),
    }
}

fn parse_hf_type(s: &str) -> Result<FileType, String> {
    parse_type(
        s,
        &[
            "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q4_k_s", "q5_k_m", "q5_k_s", "q6_k",
        ],
    )
}

fn parse_quant_type(s: &str) -> Result<FileType, String> {
    parse_type(
        s,
        &[
            "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k_m", "q4_k_s", "q5_k_m", "q5_k_s", "q6_k",
            "f16", "f32",
        ],
    )
}

/// Runs the command; `Some` is what it wrote (`None`: a dry run).
fn run(cli: Cli) -> Result<Option<Written>> {
    match cli.command {
        Command::Hf2gguf {
            hf_dir,
            output,
            ty,
            dry_run,
            name,
        } => hf2gguf::run(&hf2gguf::Options {
            dir: &hf_dir,
            out: output.as_deref(),
            ftype: ty,
            dry_run,
            name: name.as_deref(),
        }),
        Command::Quantize { input, output, ty } => quantize::run(&input, &output, ty).map(Some),
        Command::AddGate {
            input,
            from,
            output,
        } => add_gate::run(&input, &from, &output).map(Some),
        Command::Synth {
            preset,
            output,
            seed,
            loops,
            tokenizer_from,
            residual_scale,
        } => {
            let p = synth::preset(&preset).ok_or_else(|| {
                anyhow!("unknown preset {preset:?} (expected ouro-1.4b, ouro-2.6b or tiny)")
            })?;
            synth::run(&synth::Options {
                preset: p,
                out: &output,
                seed,
                loops,
                tokenizer_from: tokenizer_from.as_deref(),
                residual_scale,
            })
            .map(Some)
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let start = Instant::now();
    match interrupt::install().and_then(|()| run(cli)) {
        Ok(Some(written)) => println!("{}", written.line(start.elapsed().as_secs_f64())),
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            std::process::exit(1);
        }
    }
}
