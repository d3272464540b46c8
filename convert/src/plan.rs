//! The dtype plan: which ggml type each tensor is written in, and `general.file_type`.
//!
//! Rules (the same for `hf2gguf` and `quantize`):
//! * 1-D tensors (norms) are f32;
//! * 2-D weights take the requested type;
//! * for 4- and 5-bit files, `token_embd` and `output` are Q8_0 (llama.cpp likewise keeps the
//!   embeddings at a higher precision in its low-bit presets);
//! * a quantized type needs a row length divisible by its block size (32); other rows fall back to F16.
//!
//! The K-quant mixtures (`q4_k_m`, `q4_k_s`, `q5_k_m`, `q5_k_s`, `q6_k`) follow llama-quantize's
//! per-tensor rules instead: see [`crate::kquant_plan`].

use crate::kquant_plan::{self, FileShape, Mixture};
use crate::names::Role;
use ouro_simd::GgmlType;

/// The requested file type. Values are spelled like ggml (`q4_0`, not clap's default `q4-0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    F32,
    F16,
    Bf16,
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q4KM,
    Q4KS,
    Q5KM,
    Q5KS,
    Q6K,
}

impl FileType {
    pub fn parse(s: &str) -> Option<FileType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "f32" => FileType::F32,
            "f16" => FileType::F16,
            "bf16" => FileType::Bf16,
            "q8_0" => FileType::Q8_0,
            "q4_0" => FileType::Q4_0,
            "q4_1" => FileType::Q4_1,
            "q5_0" => FileType::Q5_0,
            "q5_1" => FileType::Q5_1,
            "q4_k_m" => FileType::Q4KM,
            "q4_k_s" => FileType::Q4KS,
            "q5_k_m" => FileType::Q5KM,
            "q5_k_s" => FileType::Q5KS,
            "q6_k" => FileType::Q6K,
            _ => return None,
        })
    }

    /// The type of the 2-D weights.
    pub fn ggml_type(self) -> GgmlType {
        match self {
            FileType::F32 => GgmlType::F32,
            FileType::F16 => GgmlType::F16,
            FileType::Bf16 => GgmlType::BF16,
            FileType::Q8_0 => GgmlType::Q8_0,
            FileType::Q4_0 => GgmlType::Q4_0,
            FileType::Q4_1 => GgmlType::Q4_1,
            FileType::Q5_0 => GgmlType::Q5_0,
            FileType::Q5_1 => GgmlType::Q5_1,
            FileType::Q4KM | FileType::Q4KS => GgmlType::Q4_K,
            FileType::Q5KM | FileType::Q5KS => GgmlType::Q5_K,
            FileType::Q6K => GgmlType::Q6_K,
        }
    }

    /// The llama-quantize mixture of a K-quant file type.
    pub fn mixture(self) -> Option<Mixture> {
        Some(match self {
            FileType::Q4KM => Mixture::Q4KM,
            FileType::Q4KS => Mixture::Q4KS,
            FileType::Q5KM => Mixture::Q5KM,
            FileType::Q5KS => Mixture::Q5KS,
            FileType::Q6K => Mixture::Q6K,
            _ => return None,
        })
    }

    /// llama.cpp's `LLAMA_FTYPE` number for `general.file_type`.
    pub fn llama_ftype(self) -> u32 {
        match self {
            FileType::F32 => 0,
            FileType::F16 => 1,
            FileType::Q4_0 => 2,
            FileType::Q4_1 => 3,
            FileType::Q8_0 => 7,
            FileType::Q5_0 => 8,
            FileType::Q5_1 => 9,
            FileType::Q4KS => 14,
            FileType::Q4KM => 15,
            FileType::Q5KS => 16,
            FileType::Q5KM => 17,
            FileType::Q6K => 18,
            FileType::Bf16 => 32,
        }
    }

    fn is_low_bit(self) -> bool {
        matches!(
            self,
            FileType::Q4_0 | FileType::Q4_1 | FileType::Q5_0 | FileType::Q5_1
        )
    }
}

/// The ggml type of one tensor with `n_dims` dims and rows of `row_len` elements.
pub fn tensor_type(ft: FileType, role: Role, n_dims: usize, row_len: usize) -> GgmlType {
    if role == Role::Norm || n_dims < 2 {
        return GgmlType::F32;
    }
    let ty = if role == Role::Embedding && ft.is_low_bit() {
        GgmlType::Q8_0
    } else {
        ft.ggml_type()
    };
    if !row_len.is_multiple_of(ty.block_size()) {
        GgmlType::F16
    } else {
        ty
    }
}

/// The type of one tensor named `gguf_name` in a file of `shape`: the K-quant mixture rules for
/// K-quant file types (1-D tensors and norms stay f32), [`tensor_type`] for the others.
pub fn tensor_type_in(
    ft: FileType,
    shape: &FileShape,
    gguf_name: &str,
    role: Role,
    n_dims: usize,
    row_len: usize,
) -> GgmlType {
    match ft.mixture() {
        Some(mix) if role != Role::Norm && n_dims >= 2 => {
            kquant_plan::tensor_type(mix, shape, gguf_name, row_len)
        }
        _ => tensor_type(ft, role, n_dims, row_len),
    }
}

/// Bytes of a tensor of `n_elements` in rows of `row_len` (`None` if the rows do not split into blocks).
pub fn tensor_bytes(ty: GgmlType, n_elements: usize, row_len: usize) -> Option<u64> {
    if row_len == 0 {
        return Some(0);
    }
    let rows = (n_elements / row_len) as u64;
    ty.row_bytes(row_len as u64)?.checked_mul(rows)
}

/// The role of a GGUF tensor, from its name and number of dims (for `quantize`).
pub fn role_of(gguf_name: &str, n_dims: usize) -> Role {
    if n_dims < 2 {
        Role::Norm
    } else if gguf_name == "token_embd.weight" || gguf_name == "output.weight" {
        Role::Embedding
    } else {
        Role::Matrix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_rules() {
        assert_eq!(
            tensor_type(FileType::Q4_0, Role::Norm, 1, 64),
            GgmlType::F32
        );
        assert_eq!(
            tensor_type(FileType::Q4_0, Role::Embedding, 2, 64),
            GgmlType::Q8_0
        );
        assert_eq!(
            tensor_type(FileType::Q4_0, Role::Matrix, 2, 64),
            GgmlType::Q4_0
        );
        assert_eq!(
            tensor_type(FileType::Q8_0, Role::Embedding, 2, 64),
            GgmlType::Q8_0
        );
        assert_eq!(
            tensor_type(FileType::Q4_0, Role::Matrix, 2, 48),
            GgmlType::F16
        );
        assert_eq!(
            tensor_type(FileType::Bf16, Role::Matrix, 2, 48),
            GgmlType::BF16
        );
        assert_eq!(tensor_bytes(GgmlType::Q4_0, 64 * 3, 64), Some(3 * 2 * 18));
    }
}
