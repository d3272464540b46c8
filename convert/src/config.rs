//! `config.json` of a Hugging Face checkpoint: every field the converter needs, read explicitly
//! (never the remote-code class defaults), with one-line errors naming the field.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value as Json};
use std::path::Path;

/// Which GGUF architecture a checkpoint becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// ByteDance Seed's looped LM: sandwich norms, `total_ut_steps` loops, exit gate.
    Ouro,
    /// A plain Llama (e.g. SmolLM2): one loop, no post-norms, no gate.
    Llama,
}

impl Arch {
    /// The `general.architecture` string (also the metadata key prefix).
    pub fn name(self) -> &'static str {
        match self {
            Arch::Ouro => "ouro",
            Arch::Llama => "llama",
        }
    }
}

/// The model hyper-parameters, in the project's size vocabulary.
#[derive(Clone, Debug)]
pub struct HfConfig {
    pub arch: Arch,
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub hidden_dim: usize,
    pub vocab_size: usize,
    pub context_length: usize,
    pub rope_freq_base: f32,
    pub rms_eps: f32,
    pub tie_word_embeddings: bool,
    /// `total_ut_steps` (1 for Llama).
    pub n_loops: usize,
    /// `early_exit_threshold` (Ouro only).
    pub early_exit_threshold: Option<f32>,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
    /// `_name_or_path`, when the checkpoint records where it came from.
    pub name_or_path: Option<String>,
}

fn field<'a>(obj: &'a Map<String, Json>, key: &str) -> Option<&'a Json> {
    obj.get(key).filter(|v| !v.is_null())
}

fn req_usize(obj: &Map<String, Json>, key: &str) -> Result<usize> {
    let v = field(obj, key).ok_or_else(|| anyhow!("config.json: missing field `{key}`"))?;
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| anyhow!("config.json: `{key}` must be a non-negative integer, found {v}"))
}

fn opt_usize(obj: &Map<String, Json>, key: &str) -> Result<Option<usize>> {
    match field(obj, key) {
        None => Ok(None),
        Some(_) => req_usize(obj, key).map(Some),
    }
}

fn req_f32(obj: &Map<String, Json>, key: &str) -> Result<f32> {
    let v = field(obj, key).ok_or_else(|| anyhow!("config.json: missing field `{key}`"))?;
    v.as_f64()
        .map(|x| x as f32)
        .filter(|x| x.is_finite())
        .ok_or_else(|| anyhow!("config.json: `{key}` must be a number, found {v}"))
}

fn opt_bool(obj: &Map<String, Json>, key: &str) -> Result<Option<bool>> {
    match field(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| anyhow!("config.json: `{key}` must be true or false, found {v}")),
    }
}

/// A token id field: an integer, or a list whose first element is used (HF allows lists for eos).
fn opt_token_id(obj: &Map<String, Json>, key: &str) -> Result<Option<u32>> {
    let Some(v) = field(obj, key) else {
        return Ok(None);
    };
    let first = match v {
        Json::Array(a) => a.first(),
        other => Some(other),
    };
    match first {
        None => Ok(None),
        Some(x) => x
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| anyhow!("config.json: `{key}` must be a token id, found {v}")),
    }
}

impl HfConfig {
    /// Reads and checks `DIR/config.json`.
    pub fn load(dir: &Path) -> Result<HfConfig> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let json: Json = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        let obj = json
            .as_object()
            .ok_or_else(|| anyhow!("{}: expected a JSON object", path.display()))?;
        HfConfig::from_json(obj)
    }

    pub fn from_json(obj: &Map<String, Json>) -> Result<HfConfig> {
        let model_type = field(obj, "model_type")
            .and_then(Json::as_str)
            .unwrap_or("");
        let architectures: Vec<&str> = field(obj, "architectures")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        let arch = if model_type == "ouro" || architectures.contains(&"OuroForCausalLM") {
            Arch::Ouro
        } else if model_type == "llama" || architectures.contains(&"LlamaForCausalLM") {
            Arch::Llama
        } else {
            bail!(
                "config.json: unsupported model_type {model_type:?} (architectures {architectures:?}); \
                 expected \"ouro\" (OuroForCausalLM) or \"llama\" (LlamaForCausalLM)"
            );
        };

        let dim = req_usize(obj, "hidden_size")?;
        let n_layers = req_usize(obj, "num_hidden_layers")?;
        let n_heads = req_usize(obj, "num_attention_heads")?;
        // HF's documented meaning of an absent num_key_value_heads is "same as the heads" (MHA).
        let n_kv_heads = opt_usize(obj, "num_key_value_heads")?.unwrap_or(n_heads);
        if dim == 0 || n_layers == 0 || n_heads == 0 || n_kv_heads == 0 {
            bail!("config.json: hidden_size, num_hidden_layers, num_attention_heads and num_key_value_heads must be > 0");
        }
        if n_heads % n_kv_heads != 0 {
            bail!("config.json: num_attention_heads ({n_heads}) is not a multiple of num_key_value_heads ({n_kv_heads})");
        }
        let head_dim = match opt_usize(obj, "head_dim")? {
            Some(h) => h,
            None if dim % n_heads == 0 => dim / n_heads,
            None => bail!("config.json: no `head_dim` and hidden_size ({dim}) is not a multiple of num_attention_heads ({n_heads})"),
        };
        if head_dim == 0 || head_dim % 2 != 0 {
            bail!("config.json: head_dim must be even and > 0 for RoPE, found {head_dim}");
        }
        let hidden_dim = req_usize(obj, "intermediate_size")?;
        let vocab_size = req_usize(obj, "vocab_size")?;
        if hidden_dim == 0 || vocab_size == 0 {
            bail!("config.json: intermediate_size and vocab_size must be > 0");
        }
        let context_length = req_usize(obj, "max_position_embeddings")?;
        let rope_freq_base = req_f32(obj, "rope_theta")?;
        let rms_eps = req_f32(obj, "rms_norm_eps")?;
        let tie_word_embeddings = opt_bool(obj, "tie_word_embeddings")?.unwrap_or(false);

        if let Some(act) = field(obj, "hidden_act") {
            if act.as_str() != Some("silu") {
                bail!("config.json: hidden_act {act} is not supported (only \"silu\")");
            }
        }
        if let Some(scaling) = field(obj, "rope_scaling") {
            bail!("config.json: rope_scaling {scaling} is not supported (only plain RoPE)");
        }
        if opt_bool(obj, "use_sliding_window")? == Some(true) {
            bail!("config.json: use_sliding_window = true is not supported");
        }
        for bias_key in ["attention_bias", "mlp_bias"] {
            if opt_bool(obj, bias_key)? == Some(true) {
                bail!("config.json: {bias_key} = true is not supported");
            }
        }

        let (n_loops, early_exit_threshold) = match arch {
            Arch::Ouro => {
                let steps = field(obj, "total_ut_steps")
                    .ok_or_else(|| anyhow!("config.json: missing field `total_ut_steps`"))?;
                let n = steps.as_i64().ok_or_else(|| {
                    anyhow!("config.json: `total_ut_steps` must be an integer, found {steps}")
                })?;
                if n < 1 {
                    bail!("config.json: total_ut_steps must be >= 1, found {n}");
                }
                let n = usize::try_from(n)
                    .map_err(|_| anyhow!("config.json: total_ut_steps {n} is too large"))?;
                // The remote-code config class defaults to 1.0 ("always the last loop").
                let threshold = match field(obj, "early_exit_threshold") {
                    Some(_) => req_f32(obj, "early_exit_threshold")?,
                    None => 1.0,
                };
                (n, Some(threshold))
            }
            Arch::Llama => (1, None),
        };

        Ok(HfConfig {
            arch,
            dim,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            hidden_dim,
            vocab_size,
            context_length,
            rope_freq_base,
            rms_eps,
            tie_word_embeddings,
            n_loops,
            early_exit_threshold,
            bos_token_id: opt_token_id(obj, "bos_token_id")?,
            eos_token_id: opt_token_id(obj, "eos_token_id")?,
            pad_token_id: opt_token_id(obj, "pad_token_id")?,
            name_or_path: field(obj, "_name_or_path")
                .and_then(Json::as_str)
                .map(str::to_owned),
        })
    }
}
