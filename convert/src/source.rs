//! The tensors of a Hugging Face checkpoint: `model.safetensors`, or the shards listed in
//! `model.safetensors.index.json`.
//!
//! Headers are parsed and validated by the `safetensors` crate. Tensor data is read with
//! positioned reads, one tensor at a time, instead of through a memory map: the pages of a
//! mapped 2.9 GB file stay in the process's resident set once touched, while a read buffer is
//! freed after each tensor, so peak RSS stays at about the largest tensor plus its output.
//! Data offsets are arbitrary (often not 2- or 4-byte aligned), so values are decoded with
//! `from_le_bytes`, never cast.

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::Metadata;
use safetensors::Dtype;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Element type of a source tensor (the ones Hugging Face checkpoints use for weights).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrcType {
    F32,
    F16,
    BF16,
}

impl SrcType {
    pub fn size(self) -> usize {
        match self {
            SrcType::F32 => 4,
            SrcType::F16 | SrcType::BF16 => 2,
        }
    }
}

/// Where one tensor lives.
#[derive(Clone, Debug)]
pub struct SrcTensor {
    pub shape: Vec<usize>,
    pub ty: SrcType,
    shard: usize,
    /// Absolute byte offset of the data in the shard file.
    offset: u64,
    n_bytes: usize,
}

impl SrcTensor {
    pub fn n_elements(&self) -> usize {
        self.shape.iter().product()
    }
}

struct Shard {
    path: PathBuf,
    file: File,
}

/// All tensors of a checkpoint, by HF name.
pub struct Source {
    shards: Vec<Shard>,
    tensors: BTreeMap<String, SrcTensor>,
}

/// Largest safetensors header we accept (the crate's own limit is 100 MB).
const MAX_HEADER: u64 = 100_000_000;

impl Source {
    /// Opens `DIR/model.safetensors.index.json` and its shards if present, else `DIR/model.safetensors`.
    pub fn open(dir: &Path) -> Result<Source> {
        let index_path = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let mut source = Source {
            shards: Vec::new(),
            tensors: BTreeMap::new(),
        };
        if index_path.exists() {
            let text = std::fs::read_to_string(&index_path)
                .with_context(|| format!("cannot read {}", index_path.display()))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", index_path.display()))?;
            let map = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| anyhow!("{}: no `weight_map` object", index_path.display()))?;
            let mut files: Vec<&str> = Vec::new();
            for (name, file) in map {
                let file = file.as_str().ok_or_else(|| {
                    anyhow!(
                        "{}: weight_map[{name:?}] is not a file name",
                        index_path.display()
                    )
                })?;
                if file.contains('/') || file.contains('\\') || file == ".." {
                    bail!(
                        "{}: shard name {file:?} is not a plain file name",
                        index_path.display()
                    );
                }
                if !files.contains(&file) {
                    files.push(file);
                }
            }
            files.sort_unstable();
            for file in files {
                source.add_shard(&dir.join(file))?;
            }
            for (name, file) in map {
                let t = source.tensors.get(name).ok_or_else(|| {
                    anyhow!(
                        "{}: tensor {name} is listed but not in any shard",
                        index_path.display()
                    )
                })?;
                let actual = &source.shards[t.shard].path;
                if actual.file_name().and_then(|f| f.to_str()) != file.as_str() {
                    bail!(
                        "{}: tensor {name} is listed in {} but found in {}",
                        index_path.display(),
                        file,
                        actual.display()
                    );
                }
            }
        } else if single.exists() {
            source.add_shard(&single)?;
        } else {
            bail!(
                "{}: no model.safetensors or model.safetensors.index.json",
                dir.display()
            );
        }
        Ok(source)
    }

    fn add_shard(&mut self, path: &Path) -> Result<()> {
        let mut file =
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let file_len = file
            .metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len();
        let mut len_bytes = [0u8; 8];
        file.read_exact(&mut len_bytes)
            .with_context(|| format!("{}: too short for a safetensors header", path.display()))?;
        let n = u64::from_le_bytes(len_bytes);
        if n > MAX_HEADER || n + 8 > file_len {
            bail!(
                "{}: safetensors header length {n} is invalid for a {file_len}-byte file",
                path.display()
            );
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact(&mut header)
            .with_context(|| format!("{}: cannot read the safetensors header", path.display()))?;
        let metadata: Metadata = serde_json::from_slice(&header)
            .map_err(|e| anyhow!("{}: invalid safetensors header: {e}", path.display()))?;
        let data_start = 8 + n;
        if data_start + metadata.data_len() as u64 != file_len {
            bail!(
                "{}: header describes {} data bytes but the file holds {}",
                path.display(),
                metadata.data_len(),
                file_len - data_start
            );
        }
        let shard = self.shards.len();
        for (name, info) in metadata.tensors() {
            let ty = match info.dtype {
                Dtype::F32 => SrcType::F32,
                Dtype::F16 => SrcType::F16,
                Dtype::BF16 => SrcType::BF16,
                other => bail!(
                    "{}: tensor {name} has dtype {other:?}; only F32, F16 and BF16 are supported",
                    path.display()
                ),
            };
            let (start, end) = info.data_offsets;
            let tensor = SrcTensor {
                shape: info.shape.clone(),
                ty,
                shard,
                offset: data_start + start as u64,
                n_bytes: end - start,
            };
            if self.tensors.insert(name.clone(), tensor).is_some() {
                bail!(
                    "tensor {name} appears in more than one shard ({})",
                    path.display()
                );
            }
        }
        self.shards.push(Shard {
            path: path.to_path_buf(),
            file,
        });
        Ok(())
    }

    pub fn tensors(&self) -> &BTreeMap<String, SrcTensor> {
        &self.tensors
    }

    pub fn get(&self, name: &str) -> Option<&SrcTensor> {
        self.tensors.get(name)
    }

    /// The raw little-endian bytes of a tensor.
    pub fn read_bytes(&self, t: &SrcTensor) -> Result<Vec<u8>> {
        let shard = &self.shards[t.shard];
        let mut buf = vec![0u8; t.n_bytes];
        read_exact_at(&shard.file, &mut buf, t.offset)
            .with_context(|| format!("cannot read {}", shard.path.display()))?;
        Ok(buf)
    }

    /// A whole tensor decoded to f32.
    pub fn read_f32(&self, t: &SrcTensor) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(t)?;
        let mut out = vec![0f32; t.n_elements()];
        decode_f32(t.ty, &bytes, &mut out);
        Ok(out)
    }
}

/// Decodes little-endian `src` of type `ty` into `dst` (exact: every source value is an f32).
pub fn decode_f32(ty: SrcType, src: &[u8], dst: &mut [f32]) {
    assert_eq!(
        src.len(),
        dst.len() * ty.size(),
        "decode_f32: length mismatch"
    );
    match ty {
        SrcType::F32 => {
            for (d, c) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        SrcType::F16 => {
            for (d, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *d = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        SrcType::BF16 => {
            for (d, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *d = f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16);
            }
        }
    }
}

/// Fill `buf` from `file` at byte `offset` without moving a shared cursor (threads read one
/// file concurrently): `pread` on Unix, `seek_read` on Windows.
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let (mut done, mut off) = (0, offset);
        while done < buf.len() {
            match std::os::windows::fs::FileExt::seek_read(file, &mut buf[done..], off)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => {
                    done += n;
                    off += n as u64;
                }
            }
        }
        Ok(())
    }
}
