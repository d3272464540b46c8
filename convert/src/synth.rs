//! `ouro-convert synth`: a shape-exact Ouro checkpoint in Hugging Face layout, filled with seeded
//! random NOISE (for benchmarks and large-file tests; it generates nothing meaningful).
//!
//! `model.safetensors` is streamed one tensor at a time (a 1.4B file is 2.9 GB), through the
//! `safetensors` crate's own writer, so its layout is exactly what HF writes. Everything is
//! written into a hidden staging directory first (see [`run`]).

use crate::interrupt::{self, Kind, Pending};
use crate::summary::Written;
use anyhow::{anyhow, bail, Context, Result};
use ouro::sampler::SplitMix64;
use rayon::prelude::*;
use safetensors::tensor::View;
use safetensors::Dtype;
use serde_json::{json, Value as Json};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

/// Model sizes of a preset (Ouro-1.4B / 2.6B are the published configs; tiny is for tests).
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub hidden_dim: usize,
    /// `None`: sized from the tokenizer (tiny).
    pub vocab_size: Option<usize>,
    pub context_length: usize,
    pub rope_theta: f64,
    pub rms_eps: f64,
    pub n_loops: usize,
}

pub fn preset(name: &str) -> Option<Preset> {
    let ouro = Preset {
        dim: 2048,
        n_layers: 24,
        n_heads: 16,
        n_kv_heads: 16,
        head_dim: 128,
        hidden_dim: 5632,
        vocab_size: Some(49152),
        context_length: 65536,
        rope_theta: 1_000_000.0,
        rms_eps: 1e-6,
        n_loops: 4,
    };
    match name {
        "ouro-1.4b" => Some(ouro),
        "ouro-2.6b" => Some(Preset {
            n_layers: 48,
            ..ouro
        }),
        "tiny" => Some(Preset {
            dim: 64,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 16,
            hidden_dim: 128,
            vocab_size: None,
            context_length: 2048,
            rope_theta: 10000.0,
            rms_eps: 1e-6,
            n_loops: 4,
        }),
        _ => None,
    }
}

pub struct Options<'a> {
    pub preset: Preset,
    pub out: &'a Path,
    pub seed: u64,
    pub loops: Option<usize>,
    pub tokenizer_from: Option<&'a Path>,
    /// Multiplies the two post-sublayer norm weights of every layer (`input_layernorm_2`,
    /// `post_attention_layernorm_2`: the sandwich norms that write into the residual stream).
    /// Below 1, each loop moves the hidden state less, so early loops read out what full depth
    /// reads out more often: a controlled draft-acceptance rate for self-speculation benchmarks.
    /// The final norm's spread around 1 shrinks by the same factor (up to 1): it is applied
    /// after every loop, so its noise alone would change the hidden state loop after loop.
    pub residual_scale: f32,
}

/// Tokenizer files copied by `--tokenizer-from` (those that exist).
const TOKENIZER_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
];

/// Writes the checkpoint into a hidden staging directory inside `opts.out` and moves the files
/// into place at the end: on an error, a panic or a signal, `opts.out` is left as it was (and
/// removed again if this command created it).
pub fn run(opts: &Options) -> Result<Written> {
    let mut p = opts.preset;
    if let Some(n) = opts.loops {
        if n < 1 {
            bail!("--loops must be >= 1");
        }
        p.n_loops = n;
    }
    if !(opts.residual_scale.is_finite() && opts.residual_scale > 0.0) {
        bail!(
            "--residual-scale must be a finite number > 0, got {}",
            opts.residual_scale
        );
    }
    let out = opts.out;
    let created = create_dirs(out)?;
    let staging = out.join(format!(".synth.{}.tmp", std::process::id()));
    let (pending, ()) = Pending::create(&staging, Kind::Tree, || {
        std::fs::create_dir(&staging)
            .with_context(|| format!("cannot create {}", staging.display()))
    })?;

    let n_tokens = match opts.tokenizer_from {
        Some(dir) => {
            let tok = dir.join("tokenizer.json");
            if !tok.is_file() {
                bail!("{}: no tokenizer.json", dir.display());
            }
            for f in TOKENIZER_FILES {
                let src = dir.join(f);
                if src.is_file() {
                    std::fs::copy(&src, staging.join(f))
                        .with_context(|| format!("cannot copy {}", src.display()))?;
                }
            }
            count_tokens(&tok)?
        }
        None => write_byte_level_tokenizer(&staging)?,
    };
    let vocab_size = match p.vocab_size {
        Some(v) if v < n_tokens => {
            bail!("the tokenizer has {n_tokens} tokens, more than the preset's vocab_size {v}")
        }
        Some(v) => v,
        None => n_tokens.next_multiple_of(64),
    };

    write_json(
        &staging.join("config.json"),
        &config_json(&p, vocab_size, opts.residual_scale),
    )?;
    write_json(
        &staging.join("generation_config.json"),
        &json!({"_from_model_config": true, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}),
    )?;

    let tensors = tensor_list(&p, vocab_size, opts.seed, opts.residual_scale);
    let n_tensors = tensors.len();
    let metadata = HashMap::from([("format".to_owned(), "pt".to_owned())]);
    let path = staging.join("model.safetensors");
    safetensors::serialize_to_file(tensors, Some(metadata), &path).map_err(|e| {
        anyhow!(
            "cannot write {}: {e}",
            out.join("model.safetensors").display()
        )
    })?;
    // The crate's temp file is created 0600; give the checkpoint the usual file mode.
    #[cfg(unix)]
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;

    let bytes = pending.commit(|| move_files(&staging, out))?;
    for dir in created {
        dir.commit(|| Ok(()))?;
    }
    let types = std::iter::repeat_n("bf16".to_owned(), n_tensors);
    Ok(Written::new(out.to_path_buf(), bytes, types))
}

/// Creates `dir` and its missing parents, each registered so that a failure removes it again
/// (if still empty); innermost first, the order in which they are dropped.
fn create_dirs(dir: &Path) -> Result<Vec<Pending>> {
    let mut missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .collect();
    missing.reverse();
    let mut created = Vec::with_capacity(missing.len());
    for d in missing {
        let (pending, ()) = Pending::create(d, Kind::CreatedDir, || {
            std::fs::create_dir(d).with_context(|| format!("cannot create {}", d.display()))
        })?;
        created.push(pending);
    }
    created.reverse();
    Ok(created)
}

/// Renames every file of `staging` into `out`, removes `staging` and returns the bytes moved.
fn move_files(staging: &Path, out: &Path) -> Result<u64> {
    let mut bytes = 0;
    let entries =
        std::fs::read_dir(staging).with_context(|| format!("cannot list {}", staging.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", staging.display()))?;
        let to = out.join(entry.file_name());
        bytes += entry
            .metadata()
            .with_context(|| format!("cannot stat {}", entry.path().display()))?
            .len();
        std::fs::rename(entry.path(), &to)
            .with_context(|| format!("cannot move the output into {}", to.display()))?;
    }
    std::fs::remove_dir(staging).with_context(|| format!("cannot remove {}", staging.display()))?;
    Ok(bytes)
}

fn write_json(path: &Path, value: &Json) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

fn count_tokens(tokenizer_json: &Path) -> Result<usize> {
    let text = std::fs::read_to_string(tokenizer_json)
        .with_context(|| format!("cannot read {}", tokenizer_json.display()))?;
    let tok: Json = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", tokenizer_json.display()))?;
    let vocab_max = tok
        .pointer("/model/vocab")
        .and_then(Json::as_object)
        .map(|v| v.values().filter_map(Json::as_u64).max().unwrap_or(0))
        .ok_or_else(|| anyhow!("{}: no model.vocab", tokenizer_json.display()))?;
    let added_max = tok
        .get("added_tokens")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.get("id").and_then(Json::as_u64))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    Ok(vocab_max.max(added_max) as usize + 1)
}

fn config_json(p: &Preset, vocab_size: usize, residual_scale: f32) -> Json {
    let mut cfg = json!({
        "architectures": ["OuroForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "early_exit_threshold": 1.0,
        "eos_token_id": 0,
        "head_dim": p.head_dim,
        "hidden_act": "silu",
        "hidden_size": p.dim,
        "initializer_range": 0.02,
        "intermediate_size": p.hidden_dim,
        "layer_types": vec!["full_attention"; p.n_layers],
        "max_position_embeddings": p.context_length,
        "max_window_layers": p.n_layers,
        "model_type": "ouro",
        "num_attention_heads": p.n_heads,
        "num_hidden_layers": p.n_layers,
        "num_key_value_heads": p.n_kv_heads,
        "pad_token_id": 0,
        "rms_norm_eps": p.rms_eps,
        "rope_scaling": null,
        "rope_theta": p.rope_theta,
        "sliding_window": null,
        "tie_word_embeddings": false,
        "torch_dtype": "bfloat16",
        "total_ut_steps": p.n_loops,
        "use_cache": true,
        "use_sliding_window": false,
        "vocab_size": vocab_size,
        "synthetic_noise": "written by ouro-convert synth: random weights, not a trained model"
    });
    if residual_scale != 1.0 {
        // Carried into general.name by hf2gguf, so the GGUF says what it is too.
        cfg["_name_or_path"] = json!(format!("synthetic-noise-residual-scale-{residual_scale}"));
        cfg["synthetic_residual_scale"] = json!(residual_scale);
    }
    cfg
}

/// How a tensor's values are drawn: uniform noise with this mean and standard deviation.
#[derive(Clone, Copy)]
struct Noise {
    mean: f32,
    std: f32,
}

/// A tensor generated when the writer asks for its bytes (bf16, little-endian).
pub struct SynthTensor {
    shape: Vec<usize>,
    noise: Noise,
    seed: u64,
}

impl View for SynthTensor {
    fn dtype(&self) -> Dtype {
        Dtype::BF16
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        let bytes = generate(self.shape.iter().product(), self.noise, self.seed);
        interrupt::tensor_done();
        Cow::Owned(bytes)
    }

    fn data_len(&self) -> usize {
        self.shape.iter().product::<usize>() * 2
    }
}

fn tensor_list(
    p: &Preset,
    vocab: usize,
    seed: u64,
    residual_scale: f32,
) -> Vec<(String, SynthTensor)> {
    let (d, h) = (p.dim, p.hidden_dim);
    let (q, kv) = (p.n_heads * p.head_dim, p.n_kv_heads * p.head_dim);
    let norm = Noise {
        mean: 1.0,
        std: 0.1,
    };
    let post_norm = Noise {
        mean: residual_scale,
        std: 0.1 * residual_scale,
    };
    // model.norm (output_norm) runs after every loop and feeds the next, so its spread
    // multiplies the hidden state loop after loop; it shrinks with the same factor.
    let final_norm = Noise {
        mean: 1.0,
        std: 0.1 * residual_scale.min(1.0),
    };
    let lin = |fan_in: usize| Noise {
        mean: 0.0,
        std: 1.0 / (fan_in as f32).sqrt(),
    };
    let mut list: Vec<(String, Vec<usize>, Noise)> = vec![
        (
            "model.embed_tokens.weight".into(),
            vec![vocab, d],
            Noise {
                mean: 0.0,
                std: 1.0,
            },
        ),
        ("model.norm.weight".into(), vec![d], final_norm),
        ("model.early_exit_gate.weight".into(), vec![1, d], lin(d)),
        (
            "model.early_exit_gate.bias".into(),
            vec![1],
            Noise {
                mean: 0.0,
                std: 0.3,
            },
        ),
        ("lm_head.weight".into(), vec![vocab, d], lin(d)),
    ];
    for l in 0..p.n_layers {
        let n = |s: &str| format!("model.layers.{l}.{s}.weight");
        list.extend([
            (n("input_layernorm"), vec![d], norm),
            (n("input_layernorm_2"), vec![d], post_norm),
            (n("post_attention_layernorm"), vec![d], norm),
            (n("post_attention_layernorm_2"), vec![d], post_norm),
            (n("self_attn.q_proj"), vec![q, d], lin(d)),
            (n("self_attn.k_proj"), vec![kv, d], lin(d)),
            (n("self_attn.v_proj"), vec![kv, d], lin(d)),
            (n("self_attn.o_proj"), vec![d, q], lin(q)),
            (n("mlp.gate_proj"), vec![h, d], lin(d)),
            (n("mlp.up_proj"), vec![h, d], lin(d)),
            (n("mlp.down_proj"), vec![d, h], lin(h)),
        ]);
    }
    list.into_iter()
        .map(|(name, shape, noise)| {
            let seed = seed ^ fnv1a(name.as_bytes());
            (name, SynthTensor { shape, noise, seed })
        })
        .collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Elements per independently seeded chunk: the output does not depend on the thread count.
const CHUNK: usize = 1 << 16;

fn generate(n: usize, noise: Noise, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; n * 2];
    // Uniform on [mean - a, mean + a] has standard deviation a / sqrt(3).
    let a = noise.std * 3f32.sqrt();
    out.par_chunks_mut(CHUNK * 2)
        .enumerate()
        .for_each(|(c, bytes)| {
            let mut rng = SplitMix64(seed ^ (c as u64).wrapping_mul(0xd134_2543_de82_ef95));
            for pair in bytes.chunks_exact_mut(4) {
                let r = rng.next_u64();
                for (k, dst) in pair.chunks_exact_mut(2).enumerate() {
                    let u = ((r >> (32 * k)) as u32) as f32 / u32::MAX as f32;
                    let x = noise.mean + a * (2.0 * u - 1.0);
                    dst.copy_from_slice(&half::bf16::from_f32(x).to_le_bytes());
                }
            }
            if bytes.len() % 4 == 2 {
                let u = (rng.next_u64() as u32) as f32 / u32::MAX as f32;
                let x = noise.mean + a * (2.0 * u - 1.0);
                let end = bytes.len();
                bytes[end - 2..].copy_from_slice(&half::bf16::from_f32(x).to_le_bytes());
            }
        });
    out
}

/// GPT-2's byte → printable-character table (`bytes_to_unicode`).
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    let mut table = vec!['\0'; 256];
    for (b, c) in printable.iter().zip(&chars) {
        table[*b as usize] = char::from_u32(*c).unwrap_or('\u{fffd}');
    }
    table
}

/// A small English merge list; every merge joins two tokens that exist before it.
const MERGES: &[(&str, &str)] = &[
    ("Ġ", "t"),
    ("h", "e"),
    ("i", "n"),
    ("Ġ", "a"),
    ("e", "r"),
    ("o", "n"),
    ("r", "e"),
    ("Ġ", "s"),
    ("a", "t"),
    ("e", "n"),
    ("o", "r"),
    ("Ġt", "he"),
    ("Ġ", "o"),
    ("e", "s"),
    ("Ġ", "w"),
    ("i", "s"),
    ("Ġ", "c"),
    ("a", "n"),
    ("Ġ", "f"),
    ("l", "l"),
    ("Ġ", "b"),
    ("i", "t"),
    ("Ġ", "p"),
    ("Ġ", "m"),
    ("in", "g"),
    ("Ġo", "f"),
    ("Ġa", "n"),
    ("Ġan", "d"),
    ("Ġ", "l"),
    ("o", "u"),
];

const SPECIALS: &[&str] = &["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Writes a byte-level BPE tokenizer (SmolLM's pre-tokenizer, 3 ChatML specials, 256 byte tokens,
/// a few merges) and returns its token count.
fn write_byte_level_tokenizer(dir: &Path) -> Result<usize> {
    let mut vocab = serde_json::Map::new();
    let mut next = 0u64;
    for s in SPECIALS {
        vocab.insert((*s).to_owned(), json!(next));
        next += 1;
    }
    for c in byte_chars() {
        vocab.insert(c.to_string(), json!(next));
        next += 1;
    }
    let mut merges = Vec::with_capacity(MERGES.len());
    for (a, b) in MERGES {
        if !vocab.contains_key(*a) || !vocab.contains_key(*b) {
            return Err(anyhow!("internal merge table error: {a} {b}"));
        }
        vocab.insert(format!("{a}{b}"), json!(next));
        next += 1;
        merges.push(json!(format!("{a} {b}")));
    }
    let added: Vec<Json> = SPECIALS
        .iter()
        .enumerate()
        .map(|(id, s)| {
            json!({"id": id, "content": s, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        ]},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": merges}
    });
    write_json(&dir.join("tokenizer.json"), &tokenizer)?;
    let added_decoder: serde_json::Map<String, Json> = SPECIALS
        .iter()
        .enumerate()
        .map(|(id, s)| {
            (
                id.to_string(),
                json!({"content": s, "lstrip": false, "normalized": false, "rstrip": false,
                       "single_word": false, "special": true}),
            )
        })
        .collect();
    write_json(
        &dir.join("tokenizer_config.json"),
        &json!({
            "add_prefix_space": false,
            "added_tokens_decoder": added_decoder,
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
            "bos_token": "<|im_start|>",
            "chat_template": CHATML,
            "clean_up_tokenization_spaces": false,
            "eos_token": "<|im_end|>",
            "model_max_length": 2048,
            "pad_token": "<|im_end|>",
            "tokenizer_class": "GPT2Tokenizer",
            "unk_token": "<|endoftext|>"
        }),
    )?;
    write_json(
        &dir.join("special_tokens_map.json"),
        &json!({
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
            "bos_token": "<|im_start|>",
            "eos_token": "<|im_end|>",
            "pad_token": "<|im_end|>",
            "unk_token": "<|endoftext|>"
        }),
    )?;
    Ok(next as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_gpt2s() {
        let t = byte_chars();
        assert_eq!(t[b'A' as usize], 'A');
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        let distinct: std::collections::HashSet<char> = t.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
    }

    #[test]
    fn noise_has_the_requested_moments() {
        let n = 1 << 18;
        let bytes = generate(
            n,
            Noise {
                mean: 1.0,
                std: 0.1,
            },
            7,
        );
        let xs: Vec<f32> = bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect();
        let mean = xs.iter().sum::<f32>() / n as f32;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n as f32;
        assert!((mean - 1.0).abs() < 2e-3, "mean {mean}");
        assert!((var.sqrt() - 0.1).abs() < 2e-3, "std {}", var.sqrt());
    }
}
