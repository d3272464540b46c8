//! What a GGUF file holds, summarized from its metadata and tensor index alone (no tensor data
//! is read): the facts `ouro info` prints, as text or JSON.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::gguf::{GgufFile, Value};

/// One tensor in the `--tensors` listing.
#[derive(Serialize, Debug)]
pub struct TensorRow {
    pub name: String,
    pub dims: Vec<u64>,
    #[serde(rename = "type")]
    pub ty: String,
    pub bytes: u64,
    pub offset: u64,
}

/// The facts `ouro info` reports; missing keys are `None` (JSON null).
#[derive(Serialize, Debug)]
pub struct Summary {
    pub version: u32,
    pub alignment: u64,
    pub architecture: Option<String>,
    pub name: Option<String>,
    pub n_layers: Option<u64>,
    pub n_loops: u64,
    pub dim: Option<u64>,
    pub n_heads: Option<u64>,
    pub n_kv_heads: Option<u64>,
    pub head_dim: Option<u64>,
    pub ffn_dim: Option<u64>,
    pub vocab_size: Option<u64>,
    pub context_length: Option<u64>,
    pub rope_freq_base: Option<f32>,
    pub rms_eps: Option<f32>,
    pub file_type: Option<u64>,
    pub file_type_name: Option<&'static str>,
    pub n_kv: usize,
    pub n_tensors: usize,
    pub tensor_types: BTreeMap<String, u64>,
    pub tensor_bytes: u64,
    pub exit_gate: bool,
    pub early_exit_threshold: Option<f32>,
    pub chat_template: bool,
    pub tokenizer_model: Option<String>,
    pub simd: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tensors: Option<Vec<TensorRow>>,
}

/// llama.cpp's `llama_ftype` names (`general.file_type`).
fn file_type_name(id: u64) -> Option<&'static str> {
    Some(match id {
        0 => "ALL_F32",
        1 => "MOSTLY_F16",
        2 => "MOSTLY_Q4_0",
        3 => "MOSTLY_Q4_1",
        7 => "MOSTLY_Q8_0",
        8 => "MOSTLY_Q5_0",
        9 => "MOSTLY_Q5_1",
        10 => "MOSTLY_Q2_K",
        11 => "MOSTLY_Q3_K_S",
        12 => "MOSTLY_Q3_K_M",
        13 => "MOSTLY_Q3_K_L",
        14 => "MOSTLY_Q4_K_S",
        15 => "MOSTLY_Q4_K_M",
        16 => "MOSTLY_Q5_K_S",
        17 => "MOSTLY_Q5_K_M",
        18 => "MOSTLY_Q6_K",
        19 => "MOSTLY_IQ2_XXS",
        20 => "MOSTLY_IQ2_XS",
        21 => "MOSTLY_Q2_K_S",
        22 => "MOSTLY_IQ3_XS",
        23 => "MOSTLY_IQ3_XXS",
        24 => "MOSTLY_IQ1_S",
        25 => "MOSTLY_IQ4_NL",
        26 => "MOSTLY_IQ3_S",
        27 => "MOSTLY_IQ3_M",
        28 => "MOSTLY_IQ2_S",
        29 => "MOSTLY_IQ2_M",
        30 => "MOSTLY_IQ4_XS",
        31 => "MOSTLY_IQ1_M",
        32 => "MOSTLY_BF16",
        36 => "MOSTLY_TQ1_0",
        37 => "MOSTLY_TQ2_0",
        38 => "MOSTLY_MXFP4_MOE",
        39 => "MOSTLY_NVFP4",
        40 => "MOSTLY_Q1_0",
        1024 => "GUESSED",
        _ => return None,
    })
}

impl Summary {
    /// Reads the summary from a parsed file; `with_tensors` adds the per-tensor listing.
    pub fn from_gguf(g: &GgufFile<'_>, with_tensors: bool) -> Summary {
        let arch = g.architecture().map(str::to_owned);
        let prefix = arch.clone().unwrap_or_default();
        let key = |k: &str| g.get(&format!("{prefix}.{k}"));
        let uint = |k: &str| key(k).and_then(Value::as_u64);
        let float = |k: &str| key(k).and_then(Value::as_f32);

        let dim = uint("embedding_length");
        let n_heads = uint("attention.head_count");
        let head_dim = uint("attention.key_length").or_else(|| {
            dim.zip(n_heads)
                .and_then(|(d, h)| d.checked_div(h).filter(|_| d % h == 0))
        });
        let vocab_size = uint("vocab_size")
            .or_else(|| {
                g.get("tokenizer.ggml.tokens")
                    .and_then(Value::as_array)
                    .map(|a| a.len() as u64)
            })
            .or_else(|| {
                ["output.weight", "token_embd.weight"]
                    .iter()
                    .find_map(|n| g.tensor(n)?.dims.get(1).copied())
            });
        let file_type = g.get("general.file_type").and_then(Value::as_u64);

        let mut tensor_types = BTreeMap::new();
        let mut tensor_bytes = 0u64;
        for t in &g.tensors {
            *tensor_types.entry(t.ty.name().to_owned()).or_insert(0) += 1;
            // Tensors of a hostile file may overlap, so the sum is not bounded by its length.
            tensor_bytes = tensor_bytes.saturating_add(t.n_bytes);
        }

        Summary {
            version: g.version,
            alignment: g.alignment,
            name: g
                .get("general.name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            n_layers: uint("block_count"),
            n_loops: uint("num_loops").unwrap_or(1),
            dim,
            n_heads,
            n_kv_heads: uint("attention.head_count_kv").or(n_heads),
            head_dim,
            ffn_dim: uint("feed_forward_length"),
            vocab_size,
            context_length: uint("context_length"),
            rope_freq_base: float("rope.freq_base"),
            rms_eps: float("attention.layer_norm_rms_epsilon"),
            file_type,
            file_type_name: file_type.and_then(file_type_name),
            n_kv: g.metadata.len(),
            n_tensors: g.tensors.len(),
            tensor_types,
            tensor_bytes,
            exit_gate: key("exit_gate.weight").is_some(),
            early_exit_threshold: float("early_exit_threshold"),
            chat_template: g.get("tokenizer.chat_template").is_some(),
            tokenizer_model: g
                .get("tokenizer.ggml.model")
                .and_then(Value::as_str)
                .map(str::to_owned),
            simd: ouro_simd::selected(),
            tensors: with_tensors.then(|| {
                g.tensors
                    .iter()
                    .map(|t| TensorRow {
                        name: t.name.clone(),
                        dims: t.dims.clone(),
                        ty: t.ty.name().to_owned(),
                        bytes: t.n_bytes,
                        offset: t.offset,
                    })
                    .collect()
            }),
            architecture: arch,
        }
    }

    /// Human-readable report, one fact per line.
    pub fn to_text(&self) -> String {
        fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
            v.as_ref().map_or_else(|| "-".to_owned(), |v| v.to_string())
        }
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let types = self
            .tensor_types
            .iter()
            .map(|(t, n)| format!("{t}:{n}"))
            .collect::<Vec<_>>()
            .join(" ");
        let rows = [
            ("architecture", opt(&self.architecture)),
            ("name", opt(&self.name.as_deref().map(|n| format!("{n:?}")))),
            ("gguf version", self.version.to_string()),
            ("layers", opt(&self.n_layers)),
            ("loops", self.n_loops.to_string()),
            ("dim", opt(&self.dim)),
            ("heads", opt(&self.n_heads)),
            ("kv heads", opt(&self.n_kv_heads)),
            ("head dim", opt(&self.head_dim)),
            ("ffn dim", opt(&self.ffn_dim)),
            ("vocab size", opt(&self.vocab_size)),
            ("context length", opt(&self.context_length)),
            ("rope base", opt(&self.rope_freq_base)),
            ("rms eps", opt(&self.rms_eps)),
            (
                "file type",
                match (self.file_type, self.file_type_name) {
                    (Some(id), Some(n)) => format!("{n} ({id})"),
                    (Some(id), None) => id.to_string(),
                    _ => "-".to_owned(),
                },
            ),
            ("metadata keys", self.n_kv.to_string()),
            ("tensors", self.n_tensors.to_string()),
            ("tensor types", types),
            (
                "tensor bytes",
                format!(
                    "{} ({:.1} MiB)",
                    self.tensor_bytes,
                    self.tensor_bytes as f64 / (1024.0 * 1024.0)
                ),
            ),
            ("alignment", self.alignment.to_string()),
            ("exit gate", yes_no(self.exit_gate).to_owned()),
            ("early exit threshold", opt(&self.early_exit_threshold)),
            ("chat template", yes_no(self.chat_template).to_owned()),
            ("tokenizer model", opt(&self.tokenizer_model)),
            ("simd", self.simd.to_owned()),
        ];
        let mut out = String::new();
        for (k, v) in rows {
            out.push_str(&format!("{:<21} {v}\n", format!("{k}:")));
        }
        if let Some(tensors) = &self.tensors {
            let width = tensors.iter().map(|t| t.name.len()).max().unwrap_or(4);
            out.push_str(&format!(
                "\n{:<width$}  {:<24}  {:<8}  {:>12}\n",
                "name", "dims", "type", "bytes"
            ));
            for t in tensors {
                let dims = format!("{:?}", t.dims);
                out.push_str(&format!(
                    "{:<width$}  {dims:<24}  {:<8}  {:>12}\n",
                    t.name, t.ty, t.bytes
                ));
            }
        }
        out
    }
}
