//! llama-quantize's K-quant mixtures (`Q4_K_M`, `Q4_K_S`, `Q5_K_M`, `Q5_K_S`, `Q6_K`): which
//! type each tensor gets, by role and layer, as `llama_tensor_get_type` decides it (without an
//! importance matrix, `--pure` or per-tensor overrides), and the row quantizer for every type.
//!
//! The rules, for a tensor that llama.cpp quantizes at all (2-D, name ends in `weight`, not a norm):
//! * `output.weight` — and `token_embd.weight` when the file has no `output.weight` (tied) — is
//!   Q6_K (Q8_0 if its rows are not a multiple of the default type's block);
//! * an untied `token_embd.weight` takes the default type;
//! * `attn_v` of layer i: Q6_K in `_M` files when `use_more_bits(i, n)` (n = number of attn_v
//!   tensors); Q5_K in Q4_K_S files for i < 4;
//! * `ffn_down` of layer i: Q6_K in Q4_K_M / Q5_K_M files when `use_more_bits(i, n_layers)`; Q5_K
//!   in Q4_K_S files for i < n_layers / 8;
//! * everything else: the default type (Q4_K, Q5_K or Q6_K);
//! * then the shape fallback: rows that are not a multiple of 256 demote Q4_K → Q5_0,
//!   Q5_K → Q5_1, Q6_K → Q8_0, and to F16 if even 32 does not divide them.
//!
//! The layer counts are llama-quantize's: for `attn_v` the number of `attn_v` tensors (physical
//! layers); for `ffn_down` the model's `n_layer_all`, which llama.cpp's looped loaders (`nanbeige`,
//! and the `ouro` patch, which reuses it) set to `block_count × num_loops` — 96 for Ouro-1.4B, so
//! ffn_down is Q6_K in layers 0–11, 14, 17, 20, 23 of a Q4_K_M file. We follow that count so the
//! files are byte-identical to llama-quantize's. llama.cpp visits tensors sorted by layer number,
//! so its running counters equal the layer index.

use ouro_simd::GgmlType;

/// The K-quant file types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mixture {
    Q4KM,
    Q4KS,
    Q5KM,
    Q5KS,
    Q6K,
}

impl Mixture {
    /// The type of every tensor no rule singles out.
    pub fn default_type(self) -> GgmlType {
        match self {
            Mixture::Q4KM | Mixture::Q4KS => GgmlType::Q4_K,
            Mixture::Q5KM | Mixture::Q5KS => GgmlType::Q5_K,
            Mixture::Q6K => GgmlType::Q6_K,
        }
    }
}

/// What the rules need to know about the whole file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileShape {
    /// llama.cpp's `n_layer_all`: `block_count`, times `num_loops` for looped architectures.
    pub n_layers: usize,
    /// Number of `attn_v.weight` tensors.
    pub n_attn_v: usize,
    /// No `output.weight`: `token_embd` doubles as the output matrix.
    pub tied: bool,
}

impl FileShape {
    /// From the GGUF tensor names of a file and its `n_layer_all` (see [`FileShape::n_layers`]).
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>, n_layers: usize) -> FileShape {
        let mut n_attn_v = 0;
        let mut tied = true;
        for name in names {
            if name.contains("attn_v.weight") {
                n_attn_v += 1;
            }
            if name == "output.weight" {
                tied = false;
            }
        }
        FileShape {
            n_layers,
            n_attn_v,
            tied,
        }
    }
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third between.
pub fn use_more_bits(i_layer: usize, n_layers: usize) -> bool {
    let (i, n) = (i_layer as i64, n_layers as i64);
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// The layer number of a `blk.N.…` tensor.
fn layer_of(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// The type of a tensor that llama.cpp quantizes (2-D, not a norm), with rows of `row_len`.
pub fn tensor_type(mix: Mixture, shape: &FileShape, name: &str, row_len: usize) -> GgmlType {
    let default = mix.default_type();
    let layer = layer_of(name).unwrap_or(0);
    let is_output = name == "output.weight" || (shape.tied && name == "token_embd.weight");
    let ty = if is_output {
        if !row_len.is_multiple_of(default.block_size()) {
            GgmlType::Q8_0
        } else {
            GgmlType::Q6_K
        }
    } else if name == "token_embd.weight" {
        default
    } else if name.contains("attn_v.weight") {
        match mix {
            Mixture::Q4KM | Mixture::Q5KM if use_more_bits(layer, shape.n_attn_v) => GgmlType::Q6_K,
            Mixture::Q4KS if layer < 4 => GgmlType::Q5_K,
            _ => default,
        }
    } else if name.contains("ffn_down") {
        match mix {
            Mixture::Q4KM | Mixture::Q5KM if use_more_bits(layer, shape.n_layers) => GgmlType::Q6_K,
            Mixture::Q4KS if layer < shape.n_layers / 8 => GgmlType::Q5_K,
            _ => default,
        }
    } else {
        default
    };
    fallback(ty, row_len)
}

/// llama.cpp's `tensor_type_fallback` for rows that do not split into the type's blocks.
pub fn fallback(ty: GgmlType, row_len: usize) -> GgmlType {
    if row_len.is_multiple_of(ty.block_size()) {
        return ty;
    }
    let demoted = match ty {
        GgmlType::Q4_K => GgmlType::Q5_0,
        GgmlType::Q5_K => GgmlType::Q5_1,
        GgmlType::Q6_K => GgmlType::Q8_0,
        other => other,
    };
    if row_len.is_multiple_of(demoted.block_size()) {
        demoted
    } else {
        GgmlType::F16
    }
}

/// Quantizes one row to `ty` with the scalar reference quantizers (the K-quants with ggml's
/// `quantize_row_q*_K_ref`, everything else with `ouro_simd::quantize_row`).
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) {
    use ouro_simd::quantize_k;
    match ty {
        GgmlType::Q4_K => quantize_k::quantize_row_q4_K(src, dst),
        GgmlType::Q5_K => quantize_k::quantize_row_q5_K(src, dst),
        GgmlType::Q6_K => quantize_k::quantize_row_q6_K(src, dst),
        _ => ouro_simd::quantize_row(ty, src, dst),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n_layers: usize, tied: bool) -> Vec<String> {
        let mut v = vec!["token_embd.weight".to_owned()];
        if !tied {
            v.push("output.weight".to_owned());
        }
        for i in 0..n_layers {
            v.push(format!("blk.{i}.attn_v.weight"));
            v.push(format!("blk.{i}.ffn_down.weight"));
        }
        v
    }

    #[test]
    fn use_more_bits_for_24_layers() {
        // n/8 = 3, 7n/8 = 21: layers 0-2, 21-23 and 5, 8, 11, 14, 17, 20.
        let more: Vec<usize> = (0..24).filter(|&i| use_more_bits(i, 24)).collect();
        assert_eq!(more, [0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23]);
    }

    #[test]
    fn ouro_ffn_down_counts_logical_layers() {
        // Ouro-1.4B: 24 layers × 4 loops = llama.cpp's n_layer_all 96; attn_v counts 24 tensors.
        let n = names(24, false);
        let shape = FileShape::from_names(n.iter().map(String::as_str), 96);
        let q6 = |t: &str| -> Vec<usize> {
            (0..24)
                .filter(|i| {
                    tensor_type(Mixture::Q4KM, &shape, &format!("blk.{i}.{t}.weight"), 2048)
                        == GgmlType::Q6_K
                })
                .collect()
        };
        assert_eq!(
            q6("ffn_down"),
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 17, 20, 23]
        );
        assert_eq!(q6("attn_v"), [0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23]);
    }

    #[test]
    fn q4_k_m_rules() {
        let n = names(24, false);
        let shape = FileShape::from_names(n.iter().map(String::as_str), 24);
        assert_eq!(
            shape,
            FileShape {
                n_layers: 24,
                n_attn_v: 24,
                tied: false
            }
        );
        let t = |name: &str, row| tensor_type(Mixture::Q4KM, &shape, name, row);
        assert_eq!(t("output.weight", 2048), GgmlType::Q6_K);
        assert_eq!(t("token_embd.weight", 2048), GgmlType::Q4_K);
        assert_eq!(t("blk.0.attn_v.weight", 2048), GgmlType::Q6_K);
        assert_eq!(t("blk.3.attn_v.weight", 2048), GgmlType::Q4_K);
        assert_eq!(t("blk.5.ffn_down.weight", 5632), GgmlType::Q6_K);
        assert_eq!(t("blk.6.ffn_down.weight", 5632), GgmlType::Q4_K);
        assert_eq!(t("blk.6.attn_q.weight", 2048), GgmlType::Q4_K);
        // Fallbacks: 576 = 2.25·256 → Q5_0 / Q5_1 / Q8_0; 48 → F16.
        assert_eq!(t("blk.6.attn_q.weight", 576), GgmlType::Q5_0);
        assert_eq!(t("blk.0.attn_v.weight", 576), GgmlType::Q8_0);
        assert_eq!(t("blk.6.attn_q.weight", 48), GgmlType::F16);
        let s = |name: &str| tensor_type(Mixture::Q5KS, &shape, name, 576);
        assert_eq!(s("blk.6.attn_q.weight"), GgmlType::Q5_1);
        assert_eq!(t("output.weight", 576), GgmlType::Q8_0);
    }

    #[test]
    fn tied_embedding_is_the_output() {
        let n = names(30, true);
        let shape = FileShape::from_names(n.iter().map(String::as_str), 30);
        assert!(shape.tied);
        for mix in [
            Mixture::Q4KM,
            Mixture::Q4KS,
            Mixture::Q5KM,
            Mixture::Q5KS,
            Mixture::Q6K,
        ] {
            assert_eq!(
                tensor_type(mix, &shape, "token_embd.weight", 576),
                GgmlType::Q8_0
            );
            assert_eq!(
                tensor_type(mix, &shape, "token_embd.weight", 512),
                GgmlType::Q6_K
            );
        }
    }

    #[test]
    fn q4_k_s_rules() {
        let n = names(24, false);
        let shape = FileShape::from_names(n.iter().map(String::as_str), 24);
        let t = |name: &str| tensor_type(Mixture::Q4KS, &shape, name, 2048);
        assert_eq!(t("blk.3.attn_v.weight"), GgmlType::Q5_K);
        assert_eq!(t("blk.4.attn_v.weight"), GgmlType::Q4_K);
        assert_eq!(t("blk.2.ffn_down.weight"), GgmlType::Q5_K);
        assert_eq!(t("blk.3.ffn_down.weight"), GgmlType::Q4_K);
        assert_eq!(t("blk.23.ffn_down.weight"), GgmlType::Q4_K);
    }
}
