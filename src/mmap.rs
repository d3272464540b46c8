//! Read-only memory map of a model file (memmap2). With `ouro-simd`, the only `unsafe` here.
#![allow(unsafe_code)]

use std::fs::File;
use std::ops::Deref;
use std::path::Path;

/// A read-only view of a whole file. Tensor data is borrowed from it, never copied, so opening
/// a 2 GB model costs address space, not resident memory.
pub struct Mmap {
    map: memmap2::Mmap,
}

impl Mmap {
    /// Maps `path` read-only. An empty file gives an empty slice.
    pub fn open(path: &Path) -> std::io::Result<Mmap> {
        let file = File::open(path)?;
        // SAFETY: the map is read-only and private to this process. Its soundness assumes the
        // file is not truncated or rewritten while mapped; model files are treated as
        // immutable inputs (our own writer never rewrites in place: it renames a new file over
        // the old one, which leaves existing maps of the old inode intact).
        let map = unsafe { memmap2::MmapOptions::new().map(&file)? };
        Ok(Mmap { map })
    }

    /// The file's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.map
    }
}

impl Deref for Mmap {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}
