//! GGUF v3 writer with explicit states: [`GgufWriter`] collects metadata and tensor infos,
//! [`GgufWriter::begin`] computes every aligned offset and writes header, metadata and infos to
//! a temporary file beside the target, [`GgufDataWriter`] streams each tensor's bytes in the
//! declared order, and [`GgufDataWriter::finish`] renames the file into place.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::GgufError;
use super::value::Value;
use super::{tensor_n_bytes, GgmlType, DEFAULT_ALIGNMENT, KEY_ALIGNMENT, MAGIC, MAX_ARRAY_DEPTH};

/// The GGUF version this writer produces.
pub const WRITE_VERSION: u32 = 3;

/// Longest tensor name ggml loads (`GGML_MAX_NAME` is 64 including the NUL).
pub const MAX_NAME_LEN: usize = 63;

struct PlannedTensor {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    n_bytes: u64,
}

/// First state: collects metadata and tensor infos (no tensor data).
pub struct GgufWriter {
    alignment: u64,
    metadata: Vec<(String, Value)>,
    keys: HashSet<String>,
    tensors: Vec<PlannedTensor>,
    names: HashSet<String>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

fn check_value(key: &str, value: &Value, depth: usize) -> Result<(), GgufError> {
    if let Value::Array(elem, items) = value {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(GgufError::NestingTooDeepAdded {
                key: key.to_owned(),
                max: MAX_ARRAY_DEPTH,
            });
        }
        for item in items {
            if item.value_type() != *elem {
                return Err(GgufError::MixedArray {
                    key: key.to_owned(),
                    expected: *elem,
                    found: item.value_type(),
                });
            }
            check_value(key, item, depth + 1)?;
        }
    }
    Ok(())
}

impl GgufWriter {
    /// An empty GGUF v3 file with alignment 32 (unless `general.alignment` is added).
    pub fn new() -> Self {
        GgufWriter {
            alignment: DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            keys: HashSet::new(),
            tensors: Vec::new(),
            names: HashSet::new(),
        }
    }

    /// Adds a metadata entry. A duplicate key, an array whose items are not all of its element
    /// type, or a `general.alignment` that is not a UINT32 power of two is an error.
    pub fn add_kv(&mut self, key: impl Into<String>, value: Value) -> Result<(), GgufError> {
        let key = key.into();
        if self.keys.contains(&key) {
            return Err(GgufError::DuplicateKeyAdded { key });
        }
        check_value(&key, &value, 0)?;
        if key == KEY_ALIGNMENT {
            match value {
                Value::U32(a) if a.is_power_of_two() => self.alignment = u64::from(a),
                ref other => {
                    return Err(GgufError::BadAlignmentValue {
                        found: other.describe(),
                    })
                }
            }
        }
        self.keys.insert(key.clone());
        self.metadata.push((key, value));
        Ok(())
    }

    /// Declares a tensor (ggml dim order: `dims[0]` is the row length). Its data is written
    /// later, in declaration order, by [`GgufDataWriter::write_tensor`].
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ty: GgmlType,
    ) -> Result<(), GgufError> {
        let name = name.into();
        if self.names.contains(&name) {
            return Err(GgufError::DuplicateTensorAdded { name });
        }
        if name.len() > MAX_NAME_LEN {
            return Err(GgufError::TensorNameTooLong {
                len: name.len(),
                name,
                max: MAX_NAME_LEN,
            });
        }
        let n_bytes = tensor_n_bytes(dims, ty).map_err(|source| GgufError::BadTensor {
            name: name.clone(),
            source,
        })?;
        self.names.insert(name.clone());
        self.tensors.push(PlannedTensor {
            name,
            dims: dims.to_vec(),
            ty,
            n_bytes,
        });
        Ok(())
    }

    /// Creates a temporary file beside `path` and writes header, metadata, tensor infos (with
    /// offsets computed here) and the padding up to the data section.
    pub fn begin(self, path: &Path) -> Result<GgufDataWriter, GgufError> {
        let tmp = Self::temp_path(path)?;
        self.begin_at(path, &tmp)
    }

    /// [`begin`](GgufWriter::begin) with the temporary file chosen by the caller (normally from
    /// [`temp_path`](GgufWriter::temp_path)), for callers that must know it before it exists,
    /// e.g. to remove it from a signal handler's thread.
    pub fn begin_at(self, path: &Path, tmp: &Path) -> Result<GgufDataWriter, GgufError> {
        let mut offsets = Vec::with_capacity(self.tensors.len());
        let mut next = 0u64;
        for t in &self.tensors {
            offsets.push(next);
            next = padded(t.n_bytes, self.alignment)
                .and_then(|n| next.checked_add(n))
                .ok_or_else(|| GgufError::BadTensor {
                    name: t.name.clone(),
                    source: super::ShapeError::Overflow,
                })?;
        }

        let file = File::create(tmp).map_err(|source| GgufError::Io {
            path: tmp.to_path_buf(),
            source,
        })?;
        let mut out = GgufDataWriter {
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            tmp: tmp.to_path_buf(),
            target: path.to_path_buf(),
            tensors: self
                .tensors
                .iter()
                .map(|t| (t.name.clone(), t.n_bytes))
                .collect(),
            next: 0,
            alignment: self.alignment,
            pos: 0,
            renamed: false,
        };

        let mut head = Vec::new();
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&WRITE_VERSION.to_le_bytes());
        head.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        head.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_str(&mut head, key);
            head.extend_from_slice(&value.value_type().id().to_le_bytes());
            put_value(&mut head, value);
        }
        for (t, offset) in self.tensors.iter().zip(offsets) {
            put_str(&mut head, &t.name);
            head.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                head.extend_from_slice(&d.to_le_bytes());
            }
            head.extend_from_slice(&t.ty.id().to_le_bytes());
            head.extend_from_slice(&offset.to_le_bytes());
        }
        out.write(&head)?;
        out.pad()?;
        Ok(out)
    }
}

/// `n` rounded up to a multiple of `alignment`, or `None` on overflow.
fn padded(n: u64, alignment: u64) -> Option<u64> {
    n.checked_next_multiple_of(alignment)
}

impl GgufWriter {
    /// A new hidden temporary file name beside `path`: `.NAME.PID-N.tmp`, unique in this process.
    pub fn temp_path(path: &Path) -> Result<PathBuf, GgufError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let Some(name) = path.file_name() else {
            return Err(GgufError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
            });
        };
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp_name = format!(".{}.{}-{n}.tmp", name.to_string_lossy(), std::process::id());
        Ok(path.with_file_name(tmp_name))
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::U8(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::I8(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::U16(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::I16(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::U32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => buf.push(u8::from(*v)),
        Value::String(s) => put_str(buf, s),
        Value::Array(elem, items) => {
            buf.extend_from_slice(&elem.id().to_le_bytes());
            buf.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                put_value(buf, item);
            }
        }
        Value::U64(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::I64(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::F64(v) => buf.extend_from_slice(&v.to_le_bytes()),
    }
}

/// Second state: streams tensor data in declaration order. Dropping it without
/// [`finish`](GgufDataWriter::finish) deletes the temporary file and leaves the target as it was.
pub struct GgufDataWriter {
    out: Option<BufWriter<File>>,
    tmp: PathBuf,
    target: PathBuf,
    tensors: Vec<(String, u64)>,
    next: usize,
    alignment: u64,
    pos: u64,
    renamed: bool,
}

impl GgufDataWriter {
    fn io_err(&self, source: std::io::Error) -> GgufError {
        GgufError::Io {
            path: self.tmp.clone(),
            source,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), GgufError> {
        let res = match self.out.as_mut() {
            Some(out) => out.write_all(bytes),
            None => Err(std::io::Error::other("writer already finished")),
        };
        res.map_err(|e| self.io_err(e))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Zero bytes up to the next multiple of the alignment.
    fn pad(&mut self) -> Result<(), GgufError> {
        let n = self.pos.next_multiple_of(self.alignment) - self.pos;
        const ZEROS: [u8; 256] = [0; 256];
        let mut left = n;
        while left > 0 {
            let k = left.min(ZEROS.len() as u64) as usize;
            self.write(&ZEROS[..k])?;
            left -= k as u64;
        }
        Ok(())
    }

    /// Writes the next tensor's data: `name` must be the next declared tensor and `bytes`
    /// exactly its size; zero padding follows.
    pub fn write_tensor(&mut self, name: &str, bytes: &[u8]) -> Result<(), GgufError> {
        let Some((expected, n_bytes)) = self.tensors.get(self.next) else {
            return Err(GgufError::TensorOrder {
                expected: "no more tensors".to_owned(),
                found: name.to_owned(),
            });
        };
        if expected != name {
            return Err(GgufError::TensorOrder {
                expected: super::error::short(expected),
                found: name.to_owned(),
            });
        }
        if bytes.len() as u64 != *n_bytes {
            return Err(GgufError::TensorSize {
                name: name.to_owned(),
                expected: *n_bytes,
                found: bytes.len() as u64,
            });
        }
        self.write(bytes)?;
        self.pad()?;
        self.next += 1;
        Ok(())
    }

    /// Checks every tensor was written, flushes, fsyncs and renames the file into place.
    pub fn finish(mut self) -> Result<(), GgufError> {
        if let Some((next, _)) = self.tensors.get(self.next) {
            return Err(GgufError::MissingTensors {
                written: self.next,
                declared: self.tensors.len(),
                next: next.clone(),
            });
        }
        let Some(out) = self.out.take() else {
            return Err(self.io_err(std::io::Error::other("writer already finished")));
        };
        let file = out.into_inner().map_err(|e| {
            let err = std::io::Error::new(e.error().kind(), e.error().to_string());
            self.io_err(err)
        })?;
        file.sync_all().map_err(|e| self.io_err(e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.target).map_err(|source| GgufError::Io {
            path: self.target.clone(),
            source,
        })?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for GgufDataWriter {
    fn drop(&mut self) {
        drop(self.out.take());
        if !self.renamed {
            // Best effort: the file is ours and unfinished; a failure leaves a hidden temp file.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
