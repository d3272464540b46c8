//! What several commands share: the model path and its loading, the depth / thread flags, the
//! sampling flags. No command module imports another's; they all import this.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use ouro::engine::Speculation;
use ouro::model::{Arch, Model};
use ouro::sampler::SamplerConfig;
use ouro::session::{default_threads, ExitMode, KvType, Session, SessionOptions};

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
    /// ggml Q8_0 blocks: about half the memory of f16.
    #[value(name = "q8_0")]
    Q8_0,
}

pub fn kv_type(arg: KvTypeArg) -> KvType {
    match arg {
        KvTypeArg::F32 => KvType::F32,
        KvTypeArg::F16 => KvType::F16,
        KvTypeArg::Q8_0 => KvType::Q8_0,
    }
}

/// Depth and thread options shared by every command that runs the model.
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
    /// KV of decoded tokens: `none` keeps a slot per loop; `last` keeps only the last loop's
    /// K/V of each decoded token and lets every loop read it (about 1/loops of the decode KV).
    #[arg(long, value_enum, default_value_t = KvShareArg::None)]
    pub kv_share: KvShareArg,
}

/// `--kv-share` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvShareArg {
    None,
    Last,
}

impl RunArgs {
    /// A session with these options, KV sharing applied.
    pub fn session<'m>(&self, model: &'m Model, opts: SessionOptions) -> Result<Session<'m>> {
        let mut s = Session::new(model, opts)?;
        if self.kv_share == KvShareArg::Last {
            s.share_last_loop_kv();
        }
        Ok(s)
    }
}

impl RunArgs {
    /// Session options after validating the depth flags (`ctx`, `kv_type` from the caller).
    /// Every command resolves depth this way, so `--exit-mode skip` without a threshold uses
    /// the file's `ouro.early_exit_threshold` in generate, chat and bench alike.
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

/// Sampling options: one set, flattened into `generate` and `chat` (and the server's defaults).
#[derive(clap::Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Temperature; 0 = greedy.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub temp: f32,
    /// Keep the K most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Nucleus sampling mass, in (0, 1].
    #[arg(long, default_value_t = 0.7, allow_negative_numbers = true)]
    pub top_p: f32,
    /// Drop tokens below this fraction of the top probability, in [0, 1].
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub min_p: f32,
    /// Repetition penalty over the last 64 tokens (1 = off).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub repeat_penalty: f32,
    /// RNG seed (same seed, same tokens on every machine).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl SamplingArgs {
    /// The validated sampler settings; the error names the bad option.
    pub fn config(&self) -> Result<SamplerConfig> {
        let cfg = SamplerConfig {
            temp: self.temp,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: 64,
            seed: self.seed,
        };
        if let Err(msg) = cfg.validate() {
            bail!("{msg}");
        }
        Ok(cfg)
    }
}

/// Self-speculative decoding flags (`generate`, `chat`, `bench`).
#[derive(clap::Args, Debug, Clone)]
pub struct SpecArgs {
    /// Self-speculative decoding: draft tokens from the readout of the first D loops, then
    /// verify them at full depth in one batch (lossless: greedy output is identical, sampled
    /// output keeps full depth's distribution; runs at full depth, without early exit).
    #[arg(long, value_name = "D")]
    pub draft_loops: Option<usize>,
    /// Tokens drafted per verification batch at most.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub draft_max: usize,
}

impl SpecArgs {
    /// Speculation decodes at full depth: without an explicit --exit-threshold the file's
    /// threshold is not applied (Q = 1 never exits early).
    pub fn adjust(&self, opts: &mut SessionOptions) {
        if self.draft_loops.is_some() && opts.exit_threshold.is_none() {
            opts.exit_threshold = Some(1.0);
        }
    }

    pub fn speculation(&self) -> Option<Speculation> {
        self.draft_loops.map(|draft_loops| Speculation {
            draft_loops,
            draft_max: self.draft_max,
        })
    }
}

/// `-n`: a count of tokens (≥ 1), or -1 for "until the end of the turn or the context", as
/// llama.cpp reads it. `generate` and `chat` both refuse 0 (nothing to generate).
pub fn max_tokens(n: i64) -> Result<Option<usize>> {
    match n {
        -1 => Ok(None),
        n if n >= 1 => Ok(Some(n as usize)),
        n => bail!("-n must be -1 (until end of turn / context) or a count >= 1, got {n}"),
    }
}

/// The model shipped in the repository (models/README.md), used when `-m` is not given.
pub const DEMO_MODEL: &str = "models/ouro-demo.gguf";

/// Where the model comes from, for error messages.
enum Source {
    Flag,
    Env,
    Demo,
}

/// `-m` if given, else `$OURO_MODEL`, else the demo model under the current directory, then
/// under the source checkout this binary was built from.
fn model_path(arg: Option<&Path>) -> Result<(PathBuf, Source)> {
    if let Some(path) = arg {
        return Ok((path.to_path_buf(), Source::Flag));
    }
    if let Some(env) = std::env::var_os("OURO_MODEL").filter(|v| !v.is_empty()) {
        return Ok((env.into(), Source::Env));
    }
    let candidates = [
        PathBuf::from(DEMO_MODEL),
        Path::new(env!("CARGO_MANIFEST_DIR")).join(DEMO_MODEL),
    ];
    match candidates.iter().find(|p| p.is_file()) {
        Some(path) => Ok((path.clone(), Source::Demo)),
        None => bail!(
            "no model given and the demo model {DEMO_MODEL} is not here: pass -m MODEL.gguf \
             (convert a Hugging Face Ouro checkpoint with `ouro-convert hf2gguf DIR -o model.gguf \
             --type q4_0`, or see models/README.md)"
        ),
    }
}

/// Resolve the model file (`-m`, `$OURO_MODEL`, the demo model) and check it is a file; the
/// path and a description for errors ("model file X (from $OURO_MODEL)").
pub fn resolve_model(arg: Option<&Path>) -> Result<(PathBuf, String)> {
    let (path, source) = model_path(arg)?;
    let what = match source {
        Source::Flag | Source::Demo => format!("model file {}", path.display()),
        Source::Env => format!("model file {} (from $OURO_MODEL)", path.display()),
    };
    if path.is_dir() {
        bail!("{what} is a directory, not a GGUF file");
    }
    if !path.exists() {
        bail!("{what} not found");
    }
    Ok((path, what))
}

/// Resolve (as [`resolve_model`]) and load; the path, and where it came from, are in every
/// error.
pub fn load_model(arg: Option<&Path>) -> Result<(Model, PathBuf)> {
    let (path, what) = resolve_model(arg)?;
    let model = Model::load(&path).with_context(|| format!("cannot load {what}"))?;
    let c = model.config();
    if c.arch == Arch::Ouro && !c.has_exit_gate && c.n_loops > 1 {
        eprintln!(
            "note: {} has no exit gate (llama.cpp's converter stores none): every token runs all \
             {} loops; `ouro-convert add-gate FILE --from HF_DIR -o OUT` adds it",
            path.display(),
            c.n_loops
        );
    }
    Ok((model, path))
}

/// The file name for tables (`ouro bench`).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
