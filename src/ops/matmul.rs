//! Matrix products against a weight tensor in the map, through `ouro_simd::matmul`.

use crate::tensor::WeightTensor;

/// y[v·rows + r] = W[r] · x[v·cols ..][..cols] for `n_vecs` input vectors (rows split across
/// the current rayon pool).
pub fn matmul(w: &WeightTensor, file: &[u8], x: &[f32], n_vecs: usize, y: &mut [f32]) {
    debug_assert_eq!(x.len(), n_vecs * w.cols);
    debug_assert_eq!(y.len(), n_vecs * w.rows);
    match &w.resident {
        Some(r) => ouro_simd::matmul_resident(r, x, n_vecs, y),
        None => ouro_simd::matmul(w.ty, w.data(file), w.rows, w.cols, x, n_vecs, y),
    }
}

/// Dequantize row `row` of `w` into `out` (`[cols]`): the embedding lookup.
pub fn dequantize_row(w: &WeightTensor, file: &[u8], row: usize, out: &mut [f32]) {
    let rb = w.row_bytes();
    let data = w.data(file);
    ouro_simd::dequantize_row(w.ty, &data[row * rb..(row + 1) * rb], out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgmlType;

    fn tensor(ty: GgmlType, rows: usize, cols: usize, n_bytes: usize) -> WeightTensor {
        WeightTensor {
            name: "t".into(),
            ty,
            rows,
            cols,
            offset: 0,
            n_bytes,
            resident: None,
        }
    }

    #[test]
    fn f32_matmul_matches_naive_dot() {
        let (rows, cols, n) = (5, 64, 3);
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0)
            .collect();
        let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        let x: Vec<f32> = (0..n * cols)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 4.0)
            .collect();
        let t = tensor(GgmlType::F32, rows, cols, bytes.len());
        let mut y = vec![0.0f32; n * rows];
        matmul(&t, &bytes, &x, n, &mut y);
        for v in 0..n {
            for r in 0..rows {
                let e: f32 = (0..cols).map(|c| w[r * cols + c] * x[v * cols + c]).sum();
                assert!((y[v * rows + r] - e).abs() < 1e-4, "v{v} r{r}");
            }
        }
        let mut row = vec![0.0f32; cols];
        dequantize_row(&t, &bytes, 3, &mut row);
        assert_eq!(row, w[3 * cols..4 * cols]);
    }
}
