//! Model hyperparameters read from GGUF keys (`{arch}.*`), for the `ouro`, `nanbeige` and
//! `llama` architectures.

use crate::gguf::{GgufFile, Value};

use super::ModelError;

/// The architectures this runtime runs. A Llama is a LoopLM with one loop and no post-norms;
/// nanbeige is llama.cpp's looped Llama without post-norms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Ouro,
    Nanbeige,
    Llama,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Ouro => "ouro",
            Arch::Nanbeige => "nanbeige",
            Arch::Llama => "llama",
        }
    }
}

/// Hyperparameters of a (looped) decoder.
#[derive(Clone, Debug)]
pub struct Config {
    pub arch: Arch,
    /// Physical layers (`{arch}.block_count`).
    pub n_layers: usize,
    /// Passes over the layer stack (`{arch}.num_loops`; 1 for llama).
    pub n_loops: usize,
    pub dim: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    /// Rotated dimensions per head (`{arch}.rope.dimension_count`, default head_dim).
    pub rope_dim: usize,
    pub hidden_dim: usize,
    pub vocab_size: usize,
    pub context_length: usize,
    pub rope_freq_base: f32,
    pub rms_eps: f32,
    /// `ouro.early_exit_threshold`, the reference's default exit threshold.
    pub early_exit_threshold: Option<f32>,
    /// Sandwich norms (`post_attention_norm`, `post_ffw_norm`) present: ouro.
    pub has_post_norms: bool,
    /// `ouro.exit_gate.weight`/`.bias` present in the metadata.
    pub has_exit_gate: bool,
    /// `output_norm` only after the last loop (`{arch}.skip_loop_final_norm`); llama always.
    pub skip_loop_final_norm: bool,
}

fn req<'g>(g: &'g GgufFile, key: &str) -> Result<&'g Value, ModelError> {
    g.get(key)
        .ok_or_else(|| ModelError::MissingKey(key.to_owned()))
}

fn bad(key: &str, expected: &str, v: &Value) -> ModelError {
    ModelError::BadKey {
        key: key.to_owned(),
        expected: expected.to_owned(),
        found: format!("{v:?}").chars().take(60).collect(),
    }
}

/// A positive integer key (capped to keep later size arithmetic sane).
fn get_usize(g: &GgufFile, key: &str) -> Result<Option<usize>, ModelError> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 && n <= (1 << 24) => Ok(Some(n as usize)),
            _ => Err(bad(key, "a positive integer up to 2^24", v)),
        },
    }
}

fn get_f32(g: &GgufFile, key: &str) -> Result<Option<f32>, ModelError> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => match v.as_f32() {
            Some(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(bad(key, "a finite float", v)),
        },
    }
}

impl Config {
    pub fn from_gguf(g: &GgufFile) -> Result<Config, ModelError> {
        let arch_key = "general.architecture";
        let arch_value = req(g, arch_key)?;
        let arch_name = arch_value
            .as_str()
            .ok_or_else(|| bad(arch_key, "a string", arch_value))?;
        let arch = match arch_name {
            "ouro" => Arch::Ouro,
            "nanbeige" => Arch::Nanbeige,
            "llama" => Arch::Llama,
            other => return Err(ModelError::UnsupportedArch(other.to_owned())),
        };
        let a = arch.name();
        let need = |k: &str| -> Result<usize, ModelError> {
            let key = format!("{a}.{k}");
            get_usize(g, &key)?.ok_or(ModelError::MissingKey(key))
        };
        let n_layers = need("block_count")?;
        let dim = need("embedding_length")?;
        let hidden_dim = need("feed_forward_length")?;
        let n_heads = need("attention.head_count")?;
        let n_kv_heads = get_usize(g, &format!("{a}.attention.head_count_kv"))?.unwrap_or(n_heads);
        let n_loops = match arch {
            Arch::Llama => 1,
            Arch::Ouro => get_usize(g, "ouro.num_loops")?.ok_or(ModelError::MissingNumLoops)?,
            Arch::Nanbeige => get_usize(g, "nanbeige.num_loops")?.unwrap_or(1),
        };
        if n_heads % n_kv_heads != 0 {
            return Err(ModelError::BadKey {
                key: format!("{a}.attention.head_count_kv"),
                expected: format!("a divisor of head_count {n_heads}"),
                found: n_kv_heads.to_string(),
            });
        }
        let head_dim = match get_usize(g, &format!("{a}.attention.key_length"))? {
            Some(h) => h,
            None => {
                if dim % n_heads != 0 {
                    return Err(ModelError::MissingKey(format!("{a}.attention.key_length")));
                }
                dim / n_heads
            }
        };
        if let Some(vl) = get_usize(g, &format!("{a}.attention.value_length"))? {
            if vl != head_dim {
                return Err(ModelError::BadKey {
                    key: format!("{a}.attention.value_length"),
                    expected: format!("key_length {head_dim}"),
                    found: vl.to_string(),
                });
            }
        }
        let rope_dim = get_usize(g, &format!("{a}.rope.dimension_count"))?.unwrap_or(head_dim);
        if rope_dim > head_dim || rope_dim % 2 != 0 {
            return Err(ModelError::BadKey {
                key: format!("{a}.rope.dimension_count"),
                expected: format!("an even number up to head_dim {head_dim}"),
                found: rope_dim.to_string(),
            });
        }
        let vocab_size = match get_usize(g, &format!("{a}.vocab_size"))? {
            Some(v) => v,
            None => match g.tensor("token_embd.weight") {
                Some(t) if t.dims.len() == 2 && t.dims[1] > 0 && t.dims[1] <= (1 << 24) => {
                    t.dims[1] as usize
                }
                _ => return Err(ModelError::MissingKey(format!("{a}.vocab_size"))),
            },
        };
        let context_length = get_usize(g, &format!("{a}.context_length"))?.unwrap_or(4096);
        let rope_freq_base = get_f32(g, &format!("{a}.rope.freq_base"))?.unwrap_or(10000.0);
        let rms_eps_key = format!("{a}.attention.layer_norm_rms_epsilon");
        let rms_eps = get_f32(g, &rms_eps_key)?.ok_or(ModelError::MissingKey(rms_eps_key))?;
        let early_exit_threshold = get_f32(g, &format!("{a}.early_exit_threshold"))?;
        let has_exit_gate = g.get(&format!("{a}.exit_gate.weight")).is_some();
        let skip_loop_final_norm = match arch {
            Arch::Llama => true,
            _ => {
                let key = format!("{a}.skip_loop_final_norm");
                match g.get(&key) {
                    None => false,
                    Some(v) => v.as_bool().ok_or_else(|| bad(&key, "a bool", v))?,
                }
            }
        };
        Ok(Config {
            arch,
            n_layers,
            n_loops,
            dim,
            n_heads,
            n_kv_heads,
            head_dim,
            rope_dim,
            hidden_dim,
            vocab_size,
            context_length,
            rope_freq_base,
            rms_eps,
            early_exit_threshold,
            has_post_norms: arch == Arch::Ouro,
            has_exit_gate,
            skip_loop_final_norm,
        })
    }

    /// Width of one token's K (or V) in one KV slot.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Width of the concatenated query heads.
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }
}
