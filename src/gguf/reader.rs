//! Bounds-checked, zero-copy GGUF v2/v3 reader over a byte slice. Every count and length is
//! checked against the bytes that remain before anything is allocated.

use std::collections::HashMap;

use super::error::{Context, GgufError};
use super::value::{Value, ValueType};
use super::{tensor_n_bytes, GgmlType, TensorInfo, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};

/// Arrays nested deeper than this are rejected (bounds the reader's recursion).
pub const MAX_ARRAY_DEPTH: usize = 16;

/// Most array elements in all of a file's metadata together. Each element becomes a 32-byte
/// `Value`, so this caps metadata memory at 512 MiB plus string bytes whatever the file size;
/// the largest real tokenizers (vocab + merges + scores + types) hold about 2 million.
pub const MAX_ARRAY_ELEMENTS: u64 = 1 << 24;

/// Fewest bytes of one metadata entry: key length (8), value type (4), smallest value (1).
const MIN_KV_SIZE: u64 = 8 + 4 + 1;
/// Fewest bytes of one tensor info: name length (8), n_dims (4), type (4), offset (8).
const MIN_TENSOR_INFO_SIZE: u64 = 8 + 4 + 4 + 8;

/// A parsed GGUF file: metadata and tensor index, with tensor data borrowed from `bytes`.
pub struct GgufFile<'a> {
    pub version: u32,
    /// `general.alignment`, or 32.
    pub alignment: u64,
    /// Byte offset of the data section (tensor offsets are relative to it).
    pub data_start: u64,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    bytes: &'a [u8],
    key_index: HashMap<String, usize>,
    tensor_index: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile<'_> {
    /// Everything but the file bytes (which may be gigabytes).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("data_start", &self.data_start)
            .field("file_len", &self.bytes.len())
            .field("metadata", &self.metadata)
            .field("tensors", &self.tensors)
            .finish_non_exhaustive()
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Array elements read so far (see [`MAX_ARRAY_ELEMENTS`]).
    n_elements: u64,
}

impl<'a> Cursor<'a> {
    fn offset(&self) -> u64 {
        self.pos as u64
    }

    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, ctx: &Context, what: &'static str) -> Result<&'a [u8], GgufError> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(GgufError::Truncated {
                offset: self.offset(),
                context: ctx.clone(),
                what,
                need: n,
                remaining,
            });
        }
        // n <= remaining, which fits in usize.
        let end = self.pos + n as usize;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(
        &mut self,
        ctx: &Context,
        what: &'static str,
    ) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, ctx, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, ctx: &Context, what: &'static str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(ctx, what)?))
    }

    fn u64(&mut self, ctx: &Context, what: &'static str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(ctx, what)?))
    }

    /// Fails unless `count` items of at least `min_size` bytes each fit in what remains;
    /// `at` is the offset of the count field.
    fn check_count(
        &self,
        at: u64,
        count: u64,
        min_size: u64,
        ctx: &Context,
        what: &'static str,
    ) -> Result<(), GgufError> {
        let need = u128::from(count) * u128::from(min_size);
        if need > u128::from(self.remaining()) {
            return Err(GgufError::CountTooLarge {
                offset: at,
                context: ctx.clone(),
                what,
                count,
                need,
                remaining: self.remaining(),
            });
        }
        Ok(())
    }

    fn string(&mut self, ctx: &Context, what: &'static str) -> Result<String, GgufError> {
        let len = self.u64(ctx, what)?;
        let start = self.offset();
        let s = self.take(len, ctx, what)?;
        match std::str::from_utf8(s) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(GgufError::InvalidUtf8 {
                offset: start,
                context: ctx.clone(),
                what,
            }),
        }
    }

    fn value_type(&mut self, ctx: &Context) -> Result<ValueType, GgufError> {
        let offset = self.offset();
        let id = self.u32(ctx, "value type")?;
        ValueType::from_id(id).ok_or_else(|| GgufError::UnknownValueType {
            offset,
            context: ctx.clone(),
            found: id,
        })
    }

    fn value(&mut self, ty: ValueType, ctx: &Context, depth: usize) -> Result<Value, GgufError> {
        Ok(match ty {
            ValueType::U8 => Value::U8(u8::from_le_bytes(self.array(ctx, "UINT8")?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array(ctx, "INT8")?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(ctx, "UINT16")?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(ctx, "INT16")?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.array(ctx, "UINT32")?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(ctx, "INT32")?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(ctx, "FLOAT32")?)),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.array(ctx, "UINT64")?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(ctx, "INT64")?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(ctx, "FLOAT64")?)),
            // ggml writes bools as one byte, 0 or 1; anything else is a corrupt file.
            ValueType::Bool => {
                let offset = self.offset();
                match self.array::<1>(ctx, "BOOL")?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    found => {
                        return Err(GgufError::BadBool {
                            offset,
                            context: ctx.clone(),
                            found,
                        })
                    }
                }
            }
            ValueType::String => Value::String(self.string(ctx, "string value")?),
            ValueType::Array => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::NestingTooDeep {
                        offset: self.offset(),
                        context: ctx.clone(),
                        max: MAX_ARRAY_DEPTH,
                    });
                }
                let elem = self.value_type(ctx)?;
                let at = self.offset();
                let count = self.u64(ctx, "array length")?;
                self.check_count(at, count, elem.min_size(), ctx, "array length")?;
                self.n_elements = self.n_elements.saturating_add(count);
                if self.n_elements > MAX_ARRAY_ELEMENTS {
                    return Err(GgufError::TooManyElements {
                        offset: at,
                        context: ctx.clone(),
                        max: MAX_ARRAY_ELEMENTS,
                    });
                }
                // count <= remaining bytes, so it fits in usize and the allocation is bounded.
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(elem, ctx, depth + 1)?);
                }
                Value::Array(elem, items)
            }
        })
    }
}

impl<'a> GgufFile<'a> {
    /// Parses the header, metadata and tensor infos of a GGUF v2 or v3 file and checks every
    /// tensor's data range. Tensor data is not copied.
    pub fn parse(bytes: &'a [u8]) -> Result<GgufFile<'a>, GgufError> {
        let mut cur = Cursor {
            bytes,
            pos: 0,
            n_elements: 0,
        };
        let hdr = Context::Header;
        let magic = cur.array::<4>(&hdr, "magic")?;
        if magic != MAGIC {
            return Err(GgufError::BadMagic {
                offset: 0,
                found: magic,
            });
        }
        let version = cur.u32(&hdr, "version")?;
        if version != 2 && version != 3 {
            return Err(GgufError::UnsupportedVersion {
                offset: 4,
                found: version,
            });
        }
        let n_tensors = cur.u64(&hdr, "tensor count")?;
        let n_kv = cur.u64(&hdr, "metadata count")?;
        cur.check_count(16, n_kv, MIN_KV_SIZE, &hdr, "metadata count")?;
        cur.check_count(8, n_tensors, MIN_TENSOR_INFO_SIZE, &hdr, "tensor count")?;
        let need = u128::from(n_kv) * u128::from(MIN_KV_SIZE)
            + u128::from(n_tensors) * u128::from(MIN_TENSOR_INFO_SIZE);
        if need > u128::from(cur.remaining()) {
            return Err(GgufError::CountTooLarge {
                offset: 8,
                context: hdr,
                what: "metadata and tensor counts",
                count: n_kv.saturating_add(n_tensors),
                need,
                remaining: cur.remaining(),
            });
        }

        // Both counts are bounded by the file size from here on.
        let mut metadata = Vec::with_capacity(n_kv as usize);
        let mut key_index = HashMap::with_capacity(n_kv as usize);
        let mut alignment = DEFAULT_ALIGNMENT;
        for i in 0..n_kv {
            let key_offset = cur.offset();
            let key = cur.string(&Context::KeyIndex(i), "key")?;
            let ctx = Context::Key(key.clone());
            let ty = cur.value_type(&ctx)?;
            let value = cur.value(ty, &ctx, 0)?;
            if key_index.contains_key(&key) {
                return Err(GgufError::DuplicateKey {
                    offset: key_offset,
                    key,
                });
            }
            if key == super::KEY_ALIGNMENT {
                alignment = match value {
                    Value::U32(a) if a.is_power_of_two() => u64::from(a),
                    ref other => {
                        return Err(GgufError::BadAlignment {
                            offset: key_offset,
                            found: other.describe(),
                        })
                    }
                };
            }
            key_index.insert(key.clone(), metadata.len());
            metadata.push((key, value));
        }

        let mut tensors = Vec::with_capacity(n_tensors as usize);
        let mut tensor_index = HashMap::with_capacity(n_tensors as usize);
        let mut info_offsets = Vec::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let info_offset = cur.offset();
            let name = cur.string(&Context::TensorIndex(i), "tensor name")?;
            let ctx = Context::Tensor(name.clone());
            let dims_offset = cur.offset();
            let n_dims = cur.u32(&ctx, "n_dims")?;
            if n_dims as usize > MAX_DIMS {
                return Err(GgufError::BadShape {
                    offset: dims_offset,
                    name,
                    source: super::ShapeError::TooManyDims(n_dims as usize),
                });
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(cur.u64(&ctx, "dim")?);
            }
            let type_offset = cur.offset();
            let type_id = cur.u32(&ctx, "ggml type")?;
            let offset_offset = cur.offset();
            let offset = cur.u64(&ctx, "data offset")?;
            let ty = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType {
                offset: type_offset,
                name: name.clone(),
                found: type_id,
            })?;
            let n_bytes = tensor_n_bytes(&dims, ty).map_err(|source| GgufError::BadShape {
                offset: dims_offset,
                name: name.clone(),
                source,
            })?;
            if tensor_index.contains_key(&name) {
                return Err(GgufError::DuplicateTensor {
                    offset: info_offset,
                    name,
                });
            }
            tensor_index.insert(name.clone(), tensors.len());
            info_offsets.push(offset_offset);
            tensors.push(TensorInfo {
                name,
                dims,
                ty,
                offset,
                n_bytes,
            });
        }

        let info_end = cur.offset();
        let data_start = info_end.next_multiple_of(alignment);
        let file_len = bytes.len() as u64;
        for (t, &field_offset) in tensors.iter().zip(&info_offsets) {
            if t.offset % alignment != 0 {
                return Err(GgufError::MisalignedTensor {
                    offset: field_offset,
                    name: t.name.clone(),
                    tensor_offset: t.offset,
                    alignment,
                });
            }
            let start = u128::from(data_start) + u128::from(t.offset);
            let end = start + u128::from(t.n_bytes);
            if end > u128::from(file_len) {
                return Err(GgufError::TensorOutOfFile {
                    offset: field_offset,
                    name: t.name.clone(),
                    start: data_start.saturating_add(t.offset),
                    end,
                    file_len,
                });
            }
        }

        Ok(GgufFile {
            version,
            alignment,
            data_start,
            metadata,
            tensors,
            bytes,
            key_index,
            tensor_index,
        })
    }

    /// The value of a metadata key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// The tensor info with this name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The bytes of a tensor of this file (range checked in `parse`; no copy).
    ///
    /// # Panics
    /// If `t` does not describe a tensor inside this file (a `TensorInfo` from another file).
    pub fn tensor_data(&self, t: &TensorInfo) -> &'a [u8] {
        let start = self.data_start.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.n_bytes));
        let range = start
            .zip(end)
            .and_then(|(s, e)| Some(usize::try_from(s).ok()?..usize::try_from(e).ok()?));
        match range.and_then(|r| self.bytes.get(r)) {
            Some(data) => data,
            None => panic!("tensor {:?} does not lie in this GGUF file", t.name),
        }
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Option<&str> {
        self.get(super::KEY_ARCHITECTURE)?.as_str()
    }
}
