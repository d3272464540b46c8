//! Errors of the GGUF reader and writer. Every reader error names the byte offset where it was
//! found and what was being read there (header, key, tensor info); names are printed escaped
//! (`{:?}`) so a hostile name cannot break the one-line message.

use std::fmt;
use std::path::PathBuf;

use super::value::ValueType;
use super::GgmlType;

/// A name as printed in messages: quoted and escaped, cut after 80 characters.
pub fn short(name: &str) -> String {
    const MAX: usize = 80;
    match name.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &name[..cut]),
        None => format!("{name:?}"),
    }
}

/// What the reader was reading when it failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Context {
    /// Magic, version and counts.
    Header,
    /// The key of the metadata entry with this index (the key itself could not be read).
    KeyIndex(u64),
    /// The metadata entry with this key.
    Key(String),
    /// The tensor info with this index (its name could not be read).
    TensorIndex(u64),
    /// The tensor info with this name.
    Tensor(String),
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Context::Header => f.write_str("header"),
            Context::KeyIndex(i) => write!(f, "metadata entry #{i}"),
            Context::Key(k) => write!(f, "key {}", short(k)),
            Context::TensorIndex(i) => write!(f, "tensor info #{i}"),
            Context::Tensor(n) => write!(f, "tensor {}", short(n)),
        }
    }
}

/// Why a tensor's dims and type do not describe a valid tensor.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ShapeError {
    #[error("{0} dims (at most 4 allowed)")]
    TooManyDims(usize),
    #[error("no dims")]
    NoDims,
    #[error("dim {axis} is zero")]
    ZeroDim { axis: usize },
    #[error("row length {ne0} is not a multiple of {ty}'s block size {block_size}")]
    NotWholeBlocks {
        ne0: u64,
        ty: GgmlType,
        block_size: usize,
    },
    #[error("element count or byte size overflows u64")]
    Overflow,
}

/// A GGUF read or write error. Variants with a `source` field (an I/O error, a [`ShapeError`])
/// return it from [`std::error::Error::source`] and leave it out of their own message, so a
/// chain printed with anyhow's `{:#}` names each cause once.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("not a GGUF file: magic \"{}\" at byte {offset}, expected \"GGUF\"", .found.escape_ascii())]
    BadMagic { offset: u64, found: [u8; 4] },
    #[error("unsupported GGUF version {found} at byte {offset} (supported: 2, 3)")]
    UnsupportedVersion { offset: u64, found: u32 },
    #[error("{context} at byte {offset}: file ends while reading {what} (need {need} bytes, {remaining} left)")]
    Truncated {
        offset: u64,
        context: Context,
        what: &'static str,
        need: u64,
        remaining: u64,
    },
    #[error("{context} at byte {offset}: {what} {count} needs at least {need} bytes, only {remaining} left")]
    CountTooLarge {
        offset: u64,
        context: Context,
        what: &'static str,
        count: u64,
        need: u128,
        remaining: u64,
    },
    #[error("{context} at byte {offset}: {what} is not valid UTF-8")]
    InvalidUtf8 {
        offset: u64,
        context: Context,
        what: &'static str,
    },
    #[error("{context} at byte {offset}: BOOL value {found} is neither 0 nor 1")]
    BadBool {
        offset: u64,
        context: Context,
        found: u8,
    },
    #[error("{context} at byte {offset}: unknown value type id {found}")]
    UnknownValueType {
        offset: u64,
        context: Context,
        found: u32,
    },
    #[error("{context} at byte {offset}: arrays nested deeper than {max}")]
    NestingTooDeep {
        offset: u64,
        context: Context,
        max: usize,
    },
    #[error("{context} at byte {offset}: more than {max} array elements in the metadata")]
    TooManyElements {
        offset: u64,
        context: Context,
        max: u64,
    },
    #[error("key {} at byte {offset}: duplicate key", short(.key))]
    DuplicateKey { offset: u64, key: String },
    #[error("key \"general.alignment\" at byte {offset}: must be a UINT32 non-zero power of two, found {found}")]
    BadAlignment { offset: u64, found: String },
    #[error("tensor {} at byte {offset}: duplicate tensor name", short(.name))]
    DuplicateTensor { offset: u64, name: String },
    #[error("tensor {} at byte {offset}: unknown ggml type id {found}", short(.name))]
    UnknownTensorType {
        offset: u64,
        name: String,
        found: u32,
    },
    #[error("tensor {} at byte {offset}: bad shape", short(.name))]
    BadShape {
        offset: u64,
        name: String,
        source: ShapeError,
    },
    #[error("tensor {} at byte {offset}: data offset {tensor_offset} is not a multiple of the alignment {alignment}", short(.name))]
    MisalignedTensor {
        offset: u64,
        name: String,
        tensor_offset: u64,
        alignment: u64,
    },
    #[error("tensor {} at byte {offset}: data [{start}, {end}) lies outside the file ({file_len} bytes)", short(.name))]
    TensorOutOfFile {
        offset: u64,
        name: String,
        start: u64,
        end: u128,
        file_len: u64,
    },
    #[error("{}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key {}: duplicate key", short(.key))]
    DuplicateKeyAdded { key: String },
    #[error("key {}: array declared as {expected} holds a {found}", short(.key))]
    MixedArray {
        key: String,
        expected: ValueType,
        found: ValueType,
    },
    #[error("key \"general.alignment\": must be a UINT32 non-zero power of two, found {found}")]
    BadAlignmentValue { found: String },
    #[error("key {}: arrays nested deeper than {max}", short(.key))]
    NestingTooDeepAdded { key: String, max: usize },
    #[error("tensor {}: duplicate tensor name", short(.name))]
    DuplicateTensorAdded { name: String },
    #[error("tensor {}: name is {len} bytes, ggml allows at most {max}", short(.name))]
    TensorNameTooLong {
        name: String,
        len: usize,
        max: usize,
    },
    #[error("tensor {}: bad shape", short(.name))]
    BadTensor { name: String, source: ShapeError },
    #[error("tensor {} written out of order: expected {expected}", short(.found))]
    TensorOrder { expected: String, found: String },
    #[error("tensor {}: {found} bytes given, its shape and type need {expected}", short(.name))]
    TensorSize {
        name: String,
        expected: u64,
        found: u64,
    },
    #[error("finish called after {written} of {declared} tensors; next is {}", short(.next))]
    MissingTensors {
        written: usize,
        declared: usize,
        next: String,
    },
}
