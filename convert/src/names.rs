//! The explicit HF → GGUF tensor map (design.md decision 1), with the shape each tensor must have.

use crate::config::{Arch, HfConfig};

/// What a tensor is, which decides its output type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// 1-D RMSNorm weight: always f32.
    Norm,
    /// `token_embd` or `output`: the quality-sensitive matrices.
    Embedding,
    /// Any other 2-D weight.
    Matrix,
}

/// One GGUF tensor and where it comes from.
#[derive(Clone, Debug)]
pub struct TensorSpec {
    pub hf_name: String,
    pub gguf_name: String,
    /// HF shape, row-major (`[out_features, in_features]` for Linear weights).
    pub shape: Vec<usize>,
    pub role: Role,
    /// `Some(n)`: rows are permuted for interleaved RoPE with `n` heads (llama.cpp `permute`).
    pub permute_heads: Option<usize>,
}

impl TensorSpec {
    fn new(hf: &str, gguf: &str, shape: &[usize], role: Role) -> TensorSpec {
        TensorSpec {
            hf_name: hf.to_owned(),
            gguf_name: gguf.to_owned(),
            shape: shape.to_vec(),
            role,
            permute_heads: None,
        }
    }

    /// GGUF dims: ggml order, `dims[0]` = row length.
    pub fn gguf_dims(&self) -> Vec<u64> {
        self.shape.iter().rev().map(|&d| d as u64).collect()
    }

    pub fn row_len(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }

    pub fn n_elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// HF names of the exit gate (Ouro only); stored as metadata, not tensors.
pub const GATE_WEIGHT: &str = "model.early_exit_gate.weight";
pub const GATE_BIAS: &str = "model.early_exit_gate.bias";

/// HF tensors that carry no weights and are skipped silently when present.
pub fn is_ignored(name: &str) -> bool {
    name.ends_with(".rotary_emb.inv_freq")
}

/// The GGUF tensors of a model, in file order (globals first, then layer by layer).
pub fn tensor_specs(cfg: &HfConfig) -> Vec<TensorSpec> {
    let (d, v, h) = (cfg.dim, cfg.vocab_size, cfg.hidden_dim);
    let q_rows = cfg.n_heads * cfg.head_dim;
    let kv_rows = cfg.n_kv_heads * cfg.head_dim;
    let mut specs = vec![TensorSpec::new(
        "model.embed_tokens.weight",
        "token_embd.weight",
        &[v, d],
        Role::Embedding,
    )];
    specs.push(TensorSpec::new(
        "model.norm.weight",
        "output_norm.weight",
        &[d],
        Role::Norm,
    ));
    if !cfg.tie_word_embeddings {
        specs.push(TensorSpec::new(
            "lm_head.weight",
            "output.weight",
            &[v, d],
            Role::Embedding,
        ));
    }
    for l in 0..cfg.n_layers {
        let hf = |s: &str| format!("model.layers.{l}.{s}.weight");
        let gg = |s: &str| format!("blk.{l}.{s}.weight");
        let mut push = |hf_part: &str,
                        gguf_part: &str,
                        shape: &[usize],
                        role: Role,
                        permute: Option<usize>| {
            let mut spec = TensorSpec::new(&hf(hf_part), &gg(gguf_part), shape, role);
            spec.permute_heads = permute;
            specs.push(spec);
        };
        push("input_layernorm", "attn_norm", &[d], Role::Norm, None);
        push(
            "self_attn.q_proj",
            "attn_q",
            &[q_rows, d],
            Role::Matrix,
            Some(cfg.n_heads),
        );
        push(
            "self_attn.k_proj",
            "attn_k",
            &[kv_rows, d],
            Role::Matrix,
            Some(cfg.n_kv_heads),
        );
        push(
            "self_attn.v_proj",
            "attn_v",
            &[kv_rows, d],
            Role::Matrix,
            None,
        );
        push(
            "self_attn.o_proj",
            "attn_output",
            &[d, q_rows],
            Role::Matrix,
            None,
        );
        if cfg.arch == Arch::Ouro {
            // Sandwich norms: `input_layernorm_2` follows attention, `post_attention_layernorm`
            // is the PRE-MLP norm (Llama's meaning), `post_attention_layernorm_2` follows the MLP.
            push(
                "input_layernorm_2",
                "post_attention_norm",
                &[d],
                Role::Norm,
                None,
            );
        }
        push(
            "post_attention_layernorm",
            "ffn_norm",
            &[d],
            Role::Norm,
            None,
        );
        push("mlp.gate_proj", "ffn_gate", &[h, d], Role::Matrix, None);
        push("mlp.up_proj", "ffn_up", &[h, d], Role::Matrix, None);
        push("mlp.down_proj", "ffn_down", &[d, h], Role::Matrix, None);
        if cfg.arch == Arch::Ouro {
            push(
                "post_attention_layernorm_2",
                "post_ffw_norm",
                &[d],
                Role::Norm,
                None,
            );
        }
    }
    specs
}

/// Permutes the rows of a `[rows, cols]` matrix from HF's rotate-half order to the interleaved
/// order of llama.cpp's NORM RoPE, exactly like llama.cpp's `permute`:
/// `w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2).reshape(rows, cols)`.
/// Output row `h*hd + 2*i + j` is source row `h*hd + j*hd/2 + i` (hd = rows / n_head).
pub fn permuted_source_row(row: usize, rows: usize, n_head: usize) -> usize {
    let hd = rows / n_head;
    let half = hd / 2;
    let (h, r) = (row / hd, row % hd);
    let (i, j) = (r / 2, r % 2);
    h * hd + j * half + i
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numpy expression, evaluated by hand for 2 heads of head_dim 4:
    /// reshape(2, 2, 2, cols).swapaxes(1, 2) takes rows [0, 2, 1, 3, 4, 6, 5, 7].
    #[test]
    fn permutation_matches_numpy_reshape_swapaxes() {
        let got: Vec<usize> = (0..8).map(|r| permuted_source_row(r, 8, 2)).collect();
        assert_eq!(got, vec![0, 2, 1, 3, 4, 6, 5, 7]);
        let got: Vec<usize> = (0..8).map(|r| permuted_source_row(r, 8, 1)).collect();
        assert_eq!(got, vec![0, 4, 1, 5, 2, 6, 3, 7]);
    }
}
