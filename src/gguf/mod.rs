//! GGUF v2/v3 reader (bounds-checked, zero-copy) and writer (explicit states, atomic).
//!
//! Format: magic "GGUF", version (u32), tensor count (u64), metadata count (u64), metadata
//! entries (key string, value type u32, value), tensor infos (name, n_dims u32, dims u64 each,
//! ggml type u32, data offset u64), padding to `general.alignment`, then tensor data; all
//! little-endian, strings as u64 length + UTF-8 bytes.

mod error;
mod reader;
mod value;
mod writer;

pub use error::{Context, GgufError, ShapeError};
pub use ouro_simd::GgmlType;
pub use reader::{GgufFile, MAX_ARRAY_DEPTH, MAX_ARRAY_ELEMENTS};
pub use value::{Value, ValueType};
pub use writer::{GgufDataWriter, GgufWriter, MAX_NAME_LEN, WRITE_VERSION};

/// File magic.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Most dims a ggml tensor has.
pub const MAX_DIMS: usize = 4;
/// Metadata key of the data alignment (UINT32).
pub const KEY_ALIGNMENT: &str = "general.alignment";
/// Metadata key of the architecture name.
pub const KEY_ARCHITECTURE: &str = "general.architecture";

/// One tensor's entry in the tensor-info section.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` (ne0) is the row length.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Relative to the data section start.
    pub offset: u64,
    /// Size of the data in bytes.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Product of the dims.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// Bytes of a tensor with these dims and type, checking 1..=4 non-zero dims, whole blocks per
/// row and overflow.
pub fn tensor_n_bytes(dims: &[u64], ty: GgmlType) -> Result<u64, ShapeError> {
    if dims.len() > MAX_DIMS {
        return Err(ShapeError::TooManyDims(dims.len()));
    }
    let Some(&ne0) = dims.first() else {
        return Err(ShapeError::NoDims);
    };
    if let Some(axis) = dims.iter().position(|&d| d == 0) {
        return Err(ShapeError::ZeroDim { axis });
    }
    if ne0 % ty.block_size() as u64 != 0 {
        return Err(ShapeError::NotWholeBlocks {
            ne0,
            ty,
            block_size: ty.block_size(),
        });
    }
    dims.iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .ok_or(ShapeError::Overflow)?;
    let row = ty.row_bytes(ne0).ok_or(ShapeError::Overflow)?;
    dims[1..]
        .iter()
        .try_fold(row, |n, &d| n.checked_mul(d))
        .ok_or(ShapeError::Overflow)
}
