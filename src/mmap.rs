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

    /// Drop the resident pages of `offset..offset + len` from this process (the loader calls it
    /// for tensors it has copied elsewhere). A later read of the range faults the pages back in
    /// from the file, with the same bytes: this only returns memory. Errors are ignored (the
    /// advice is an optimisation; the first page of the range is rounded down to a boundary).
    pub fn release(&self, offset: usize, len: usize) {
        #[cfg(unix)]
        // SAFETY: the map is a read-only shared mapping of a file this process never writes
        // through, so MADV_DONTNEED cannot discard data: the pages are re-read from the file on
        // the next access, and no reference into the range observes a change of contents.
        let _ = unsafe {
            self.map
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len)
        };
        #[cfg(not(unix))]
        let _ = (offset, len);
    }
}

impl Deref for Mmap {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}
