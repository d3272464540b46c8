//! The words `model` and `ops` share: a weight matrix in the mapped file and rows of the KV
//! cache. `ops` computes on them, `model` owns them; neither imports the other's types.

use half::f16;
use ouro_simd::Kernels;

use crate::gguf::GgmlType;

/// A weight matrix in the mapped file: `rows` rows of `cols` elements of type `ty`.
#[derive(Clone, Debug)]
pub struct WeightTensor {
    pub name: String,
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    /// Absolute byte range in the file.
    pub offset: usize,
    pub n_bytes: usize,
}

impl WeightTensor {
    pub fn data<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        &file[self.offset..self.offset + self.n_bytes]
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.n_bytes / self.rows
    }
}

/// Cached keys or values, `[n_pos × n_kv_heads·head_dim]`, in the cache's own element type
/// (f16 rows are read in place, never copied to f32).
#[derive(Clone, Copy, Debug)]
pub enum KvRows<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
}

impl KvRows<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            KvRows::F32(x) => x.len(),
            KvRows::F16(x) => x.len(),
        }
    }

    /// `row[off..off + y.len()] · y` (`kern`: the kernel table, looked up once per call).
    #[inline]
    pub(crate) fn dot(&self, kern: &Kernels, off: usize, y: &[f32]) -> f32 {
        match self {
            KvRows::F32(x) => x[off..off + y.len()]
                .iter()
                .zip(y)
                .fold(0f32, |s, (a, b)| s + a * b),
            KvRows::F16(x) => (kern.dot_f16_f32)(&x[off..off + y.len()], y),
        }
    }

    /// `y += a · row[off..off + y.len()]`.
    #[inline]
    pub(crate) fn mad(&self, kern: &Kernels, off: usize, a: f32, y: &mut [f32]) {
        match self {
            KvRows::F32(x) => {
                let n = y.len();
                for (y, x) in y.iter_mut().zip(&x[off..off + n]) {
                    *y += a * x;
                }
            }
            KvRows::F16(x) => (kern.mad_f16_f32)(y, a, &x[off..off + y.len()]),
        }
    }
}
