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
    /// The same weights repacked at load into resident panels (`ouro_simd::resident`), where
    /// the kernel path has them; the file's pages for this range are then released.
    pub resident: Option<std::sync::Arc<ouro_simd::Resident>>,
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
    /// ggml Q8_0 blocks (f16 scale + 32 × i8), values in row order.
    Q8_0(&'a [u8]),
}

impl KvRows<'_> {
    /// Values stored.
    pub(crate) fn len(&self) -> usize {
        match self {
            KvRows::F32(x) => x.len(),
            KvRows::F16(x) => x.len(),
            KvRows::Q8_0(x) => x.len() / 34 * 32,
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
            KvRows::Q8_0(x) => (kern.dot_q8_0_f32)(x, off, y),
        }
    }

    /// `out[r]` = [`KvRows::dot`] at `off + r·stride`: one query against consecutive rows
    /// (f16, q8_0: the rows kernels, bit for bit the single dots).
    pub(crate) fn dot_rows(
        &self,
        kern: &Kernels,
        off: usize,
        stride: usize,
        y: &[f32],
        out: &mut [f32],
    ) {
        match self {
            KvRows::F16(x) if !out.is_empty() => (kern.dot_f16_f32_rows)(&x[off..], stride, y, out),
            KvRows::Q8_0(x) => (kern.dot_q8_0_f32_rows)(x, off, stride, y, out),
            _ => {
                for (r, o) in out.iter_mut().enumerate() {
                    *o = self.dot(kern, off + r * stride, y);
                }
            }
        }
    }

    /// [`KvRows::mad`] with `a[r]` at `off + r·stride`, in order (f16, q8_0: the rows kernels,
    /// bit for bit the single mads).
    pub(crate) fn mad_rows(
        &self,
        kern: &Kernels,
        off: usize,
        stride: usize,
        a: &[f32],
        y: &mut [f32],
    ) {
        match self {
            KvRows::F16(x) if !a.is_empty() => (kern.mad_f16_f32_rows)(y, a, &x[off..], stride),
            KvRows::Q8_0(x) => (kern.mad_q8_0_f32_rows)(y, a, x, off, stride),
            _ => {
                for (r, &a) in a.iter().enumerate() {
                    self.mad(kern, off + r * stride, a, y);
                }
            }
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
            KvRows::Q8_0(x) => (kern.mad_q8_0_f32)(y, a, x, off),
        }
    }
}

/// What attention reads for one (loop, layer): the slot's own rows for positions below
/// `split`, then (with last-loop KV sharing) the shared plane's rows for the positions after.
#[derive(Clone, Copy, Debug)]
pub struct KvView<'a> {
    head: KvRows<'a>,
    /// Values (not positions) stored in `head` that belong to the view.
    split: usize,
    tail: Option<KvRows<'a>>,
}

impl<'a> From<KvRows<'a>> for KvView<'a> {
    fn from(rows: KvRows<'a>) -> Self {
        KvView {
            split: rows.len(),
            head: rows,
            tail: None,
        }
    }
}

impl<'a> KvView<'a> {
    /// The first `split` values of `head`, then all of `tail`.
    pub fn split(head: KvRows<'a>, split: usize, tail: KvRows<'a>) -> Self {
        debug_assert!(split <= head.len());
        KvView {
            head,
            split,
            tail: Some(tail),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.split + self.tail.map_or(0, |t| t.len())
    }

    #[inline]
    pub(crate) fn dot(&self, kern: &Kernels, off: usize, y: &[f32]) -> f32 {
        match self.tail {
            Some(t) if off >= self.split => t.dot(kern, off - self.split, y),
            _ => self.head.dot(kern, off, y),
        }
    }

    #[inline]
    pub(crate) fn mad(&self, kern: &Kernels, off: usize, a: f32, y: &mut [f32]) {
        match self.tail {
            Some(t) if off >= self.split => t.mad(kern, off - self.split, a, y),
            _ => self.head.mad(kern, off, a, y),
        }
    }

    /// How many of `n` rows at `off + r·stride` start in `head` (the rest are in `tail`).
    fn rows_in_head(&self, off: usize, stride: usize, n: usize) -> usize {
        match self.tail {
            None => n,
            Some(_) if off >= self.split => 0,
            Some(_) => (self.split - off).div_ceil(stride).min(n),
        }
    }

    /// [`KvView::dot`] of `out.len()` rows at `off + r·stride`.
    pub(crate) fn dot_rows(
        &self,
        kern: &Kernels,
        off: usize,
        stride: usize,
        y: &[f32],
        out: &mut [f32],
    ) {
        let h = self.rows_in_head(off, stride, out.len());
        let (in_head, in_tail) = out.split_at_mut(h);
        self.head.dot_rows(kern, off, stride, y, in_head);
        if let (Some(t), false) = (self.tail, in_tail.is_empty()) {
            t.dot_rows(kern, off + h * stride - self.split, stride, y, in_tail);
        }
    }

    /// [`KvView::mad`] with `a[r]` at `off + r·stride`, in order.
    pub(crate) fn mad_rows(
        &self,
        kern: &Kernels,
        off: usize,
        stride: usize,
        a: &[f32],
        y: &mut [f32],
    ) {
        let h = self.rows_in_head(off, stride, a.len());
        self.head.mad_rows(kern, off, stride, &a[..h], y);
        if let (Some(t), false) = (self.tail, h == a.len()) {
            t.mad_rows(kern, off + h * stride - self.split, stride, &a[h..], y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Q8_0 rows: `dot` and `mad` over ranges that start and end inside blocks equal the same
    /// arithmetic on the dequantized values.
    #[test]
    fn q8_0_rows_match_their_dequantized_values() {
        let n = 96;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.173)
            .collect();
        let mut blocks = vec![0u8; n / 32 * 34];
        ouro_simd::quantize_row(GgmlType::Q8_0, &x, &mut blocks);
        let mut deq = vec![0f32; n];
        ouro_simd::dequantize_row(GgmlType::Q8_0, &blocks, &mut deq);
        let rows = KvRows::Q8_0(&blocks);
        assert_eq!(rows.len(), n);
        let kern = ouro_simd::kernels();
        for (off, len) in [(0, 32), (0, 96), (5, 48), (48, 48), (31, 2), (60, 7)] {
            let y: Vec<f32> = (0..len).map(|i| (i as f32 * 0.31).cos()).collect();
            let want: f32 = deq[off..off + len].iter().zip(&y).map(|(a, b)| a * b).sum();
            let got = rows.dot(kern, off, &y);
            let scale: f32 = deq[off..off + len]
                .iter()
                .zip(&y)
                .map(|(a, b)| (a * b).abs())
                .sum();
            assert!(
                (got - want).abs() <= 1e-5 * scale.max(1.0),
                "dot {off}+{len}: {got} vs {want}"
            );
            let mut acc = y.clone();
            rows.mad(kern, off, 0.5, &mut acc);
            for (i, (a, y)) in acc.iter().zip(&y).enumerate() {
                let want = y + 0.5 * deq[off + i];
                assert!(
                    (a - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "mad {off}+{len} at {i}"
                );
            }
        }
    }

    /// `dot_rows` / `mad_rows` over views of every element type, whole and split at a row (the
    /// shared-plane layout), give the bits of `dot` / `mad` row by row: 7 rows of 4 heads × 32.
    #[test]
    fn rows_of_a_view_equal_its_single_rows() {
        use half::f16;
        let (n_rows, kv_dim, hd) = (7, 128, 32);
        let x: Vec<f32> = (0..n_rows * kv_dim)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.173)
            .collect();
        let x16: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        let mut x8 = vec![0u8; x.len() / 32 * 34];
        ouro_simd::quantize_row(GgmlType::Q8_0, &x, &mut x8);
        let kern = ouro_simd::kernels();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let y: Vec<f32> = (0..hd).map(|i| (i as f32 * 0.31).cos()).collect();
        let a: Vec<f32> = (0..n_rows).map(|r| 0.3 - r as f32 * 0.07).collect();
        let cut = 3 * kv_dim;
        let views: [(&str, KvView<'_>); 6] = [
            ("f32", KvRows::F32(&x).into()),
            ("f16", KvRows::F16(&x16).into()),
            ("q8_0", KvRows::Q8_0(&x8).into()),
            (
                "f32 split",
                KvView::split(KvRows::F32(&x), cut, KvRows::F32(&x[cut..])),
            ),
            (
                "f16 split",
                KvView::split(KvRows::F16(&x16), cut, KvRows::F16(&x16[cut..])),
            ),
            (
                "q8_0 split",
                KvView::split(KvRows::Q8_0(&x8), cut, KvRows::Q8_0(&x8[cut / 32 * 34..])),
            ),
        ];
        for (name, view) in views {
            for head in 0..kv_dim / hd {
                let at = head * hd;
                let want: Vec<f32> = (0..n_rows)
                    .map(|r| view.dot(kern, at + r * kv_dim, &y))
                    .collect();
                let mut got = vec![f32::NAN; n_rows];
                view.dot_rows(kern, at, kv_dim, &y, &mut got);
                assert_eq!(bits(&got), bits(&want), "{name} dot head {head}");
                let mut want_y = y.clone();
                for (r, &ar) in a.iter().enumerate() {
                    view.mad(kern, at + r * kv_dim, ar, &mut want_y);
                }
                let mut got_y = y.clone();
                view.mad_rows(kern, at, kv_dim, &a, &mut got_y);
                assert_eq!(bits(&got_y), bits(&want_y), "{name} mad head {head}");
            }
        }
    }
}
