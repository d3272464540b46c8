//! `ouro generate`: prefill a prompt, then sample and stream tokens.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::chat::{ChatTemplate, Message};
use crate::model::Model;
use crate::sampler::{Sampler, SamplerConfig};
use crate::session::{default_threads, ExitMode, KvType, Session, SessionOptions};
use crate::tokenizer::StreamDecoder;

/// `--exit-mode` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitModeArg {
    Select,
    Skip,
}

/// `--kv-type` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvTypeArg {
    F32,
    F16,
}

/// Depth, cache and thread options shared by `generate`, `logits` and `perplexity`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Loops to run (1..=n_loops; more is allowed with a warning). Default: the file's n_loops.
    #[arg(long)]
    pub loops: Option<usize>,
    /// Exit threshold Q in [0, 1] on the exit gate's CDF. Default: the file's
    /// ouro.early_exit_threshold (none with --loops).
    #[arg(long, allow_negative_numbers = true)]
    pub exit_threshold: Option<f32>,
    /// select: compute every loop, read out at the exit loop; skip: stop computing there.
    #[arg(long, value_enum, default_value_t = ExitModeArg::Select)]
    pub exit_mode: ExitModeArg,
    /// Worker threads (default: physical cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
}

impl RunArgs {
    /// Session options after validating the depth flags (`ctx`, `kv_type` from the caller).
    pub fn session_options(
        &self,
        model: &Model,
        ctx: usize,
        kv_type: KvType,
    ) -> Result<SessionOptions> {
        if let Some(k) = self.loops {
            if k == 0 {
                bail!("--loops must be at least 1");
            }
            let n = model.config().n_loops;
            if k > n {
                eprintln!(
                    "warning: --loops {k} exceeds the {n} loops this model was trained with; quality drops"
                );
            }
        }
        if let Some(q) = self.exit_threshold {
            if !(0.0..=1.0).contains(&q) {
                bail!("--exit-threshold must be within [0, 1], got {q}");
            }
        }
        if self.threads == Some(0) {
            bail!("-t must be at least 1");
        }
        if ctx == 0 {
            bail!("--ctx must be at least 1");
        }
        Ok(SessionOptions {
            ctx,
            kv_type,
            threads: self.threads.unwrap_or_else(default_threads),
            loops: self.loops,
            exit_threshold: self.exit_threshold,
            exit_mode: match self.exit_mode {
                ExitModeArg::Select => ExitMode::Select,
                ExitModeArg::Skip => ExitMode::Skip,
            },
        })
    }
}

/// The model shipped in the repository (models/README.md), used when `-m` is not given.
pub const DEMO_MODEL: &str = "models/ouro-demo.gguf";

/// `-m` if given, else the demo model: `$OURO_MODEL`, then `models/ouro-demo.gguf` under the
/// current directory, then under the source checkout this binary was built from.
pub fn model_path(arg: Option<&std::path::Path>) -> Result<std::path::PathBuf> {
    if let Some(path) = arg {
        return Ok(path.to_path_buf());
    }
    if let Some(env) = std::env::var_os("OURO_MODEL") {
        return Ok(env.into());
    }
    let candidates = [
        std::path::PathBuf::from(DEMO_MODEL),
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DEMO_MODEL),
    ];
    match candidates.iter().find(|p| p.is_file()) {
        Some(path) => Ok(path.clone()),
        None => bail!(
            "no model given and the demo model {DEMO_MODEL} is not here: pass -m MODEL.gguf \
             (convert a Hugging Face Ouro checkpoint with `ouro-convert hf2gguf DIR -o model.gguf \
             --type q4_0`, or see models/README.md)"
        ),
    }
}

/// Load a model with the path in the error.
pub fn load_model(path: &std::path::Path) -> Result<Model> {
    if !path.is_file() {
        bail!("model file {} not found", path.display());
    }
    Model::load(path).with_context(|| format!("cannot load {}", path.display()))
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// GGUF model file (default: $OURO_MODEL, else the demo model models/ouro-demo.gguf).
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
    /// Prompt text (special tokens such as <|im_start|> are parsed).
    #[arg(short = 'p', long)]
    pub prompt: String,
    /// Send the prompt as one user turn through the model's chat template (ChatML when the
    /// file has none), ending with the assistant's generation prompt.
    #[arg(long)]
    pub chat: bool,
    /// Tokens to generate at most.
    #[arg(short = 'n', long, default_value_t = 128)]
    pub n_predict: usize,
    /// Temperature; 0 = greedy.
    #[arg(long, default_value_t = 1.0)]
    pub temp: f32,
    /// Keep the K most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 0.7)]
    pub top_p: f32,
    /// Drop tokens below this fraction of the top probability.
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f32,
    /// Repetition penalty over the last 64 tokens (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// RNG seed (same seed, same tokens on every machine).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Context size in tokens.
    #[arg(long, default_value_t = 4096)]
    pub ctx: usize,
    /// KV cache element type.
    #[arg(long, value_enum, default_value_t = KvTypeArg::F16)]
    pub kv_type: KvTypeArg,
    /// Do not stop at end-of-sequence tokens.
    #[arg(long)]
    pub ignore_eos: bool,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn kv_type(arg: KvTypeArg) -> KvType {
    match arg {
        KvTypeArg::F32 => KvType::F32,
        KvTypeArg::F16 => KvType::F16,
    }
}

pub fn run(args: Args) -> Result<()> {
    if !(args.temp >= 0.0
        && args.top_p > 0.0
        && args.top_p <= 1.0
        && args.min_p >= 0.0
        && args.min_p <= 1.0
        && args.repeat_penalty > 0.0)
    {
        bail!("sampling options out of range (need temp >= 0, 0 < top-p <= 1, 0 <= min-p <= 1, repeat-penalty > 0)");
    }
    let model = load_model(&model_path(args.model.as_deref())?)?;
    let opts = args
        .run
        .session_options(&model, args.ctx, kv_type(args.kv_type))?;
    let tok = model.tokenizer();
    let text = if args.chat {
        let (bos, eos) = crate::cli::chat::special_token_strings(&model);
        let (template, _) = ChatTemplate::from_source_or_chatml(model.chat_template(), &bos, &eos)
            .context("the model's chat template")?;
        template
            .render(&[Message::new("user", args.prompt.as_str())], true)
            .context("cannot render the chat template")?
    } else {
        args.prompt.clone()
    };
    let mut prompt: Vec<u32> = tok.bos_to_add().into_iter().collect();
    prompt.extend(tok.encode(&text, true)?);
    if prompt.is_empty() {
        bail!("the prompt is empty");
    }
    if prompt.len() > args.ctx {
        bail!(
            "the prompt has {} tokens but --ctx is {}",
            prompt.len(),
            args.ctx
        );
    }
    let mut session = Session::new(&model, opts)?;
    let mut sampler = Sampler::new(SamplerConfig {
        temp: args.temp,
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
        repeat_penalty: args.repeat_penalty,
        repeat_last_n: 64,
        seed: args.seed,
    });
    let first = session.prefill(&prompt)?;
    let (mut logits, mut exit_loop) = (first.logits, first.exit_loop);
    let mut history = prompt.clone();
    let mut generated = Vec::new();
    let mut loops = Vec::new();
    let mut stream = StreamDecoder::new();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for i in 0..args.n_predict {
        let id = sampler.sample(&mut logits, &history);
        if !args.ignore_eos && model.stop_tokens().contains(&id) {
            break;
        }
        generated.push(id);
        history.push(id);
        loops.push(exit_loop + 1);
        if !args.json {
            write!(out, "{}", stream.push(tok, id))?;
            out.flush()?;
        }
        if i + 1 == args.n_predict {
            break;
        }
        if session.n_past() >= session.ctx() {
            eprintln!(
                "\nnote: context of {} tokens is full; stopping",
                session.ctx()
            );
            break;
        }
        let next = session.step(id)?;
        logits = next.logits;
        exit_loop = next.exit_loop;
    }
    let stats = session.stats();
    if args.json {
        let doc = serde_json::json!({
            "prompt_tokens": prompt,
            "tokens": generated,
            "text": tok.decode(&generated),
            "loops": loops,
            "prompt_tok_per_s": stats.prompt_tok_per_s(),
            "gen_tok_per_s": stats.gen_tok_per_s(),
            "layer_evals": stats.layer_evals,
            "kv_bytes": stats.kv_bytes,
            "simd": ouro_simd::selected(),
        });
        writeln!(out, "{doc}")?;
    } else {
        writeln!(out, "{}", stream.flush(tok))?;
        eprintln!(
            "prompt: {} tokens, {:.1} tok/s | generated: {} tokens, {:.1} tok/s | mean loops {:.2} | layer evals {} | simd {}",
            stats.prompt_tokens,
            stats.prompt_tok_per_s(),
            generated.len(),
            stats.gen_tok_per_s(),
            loops.iter().sum::<usize>() as f64 / loops.len().max(1) as f64,
            stats.layer_evals,
            ouro_simd::selected()
        );
    }
    Ok(())
}
