//! RMSNorm: x · w / sqrt(mean(x²) + eps), the sum of squares in f64. The weight is used as
//! stored (no Gemma-style 1 + w).

/// Normalize each `w.len()`-wide row of `x` into `out`.
pub fn rmsnorm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let dim = w.len();
    debug_assert_eq!(x.len(), out.len());
    debug_assert_eq!(x.len() % dim, 0);
    for (xr, or) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let ss: f64 = xr.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let scale = (1.0 / (ss / dim as f64 + eps as f64).sqrt()) as f32;
        for ((o, &v), &g) in or.iter_mut().zip(xr).zip(w) {
            *o = (v * scale) * g;
        }
    }
}

/// In-place variant of [`rmsnorm`].
pub fn rmsnorm_inplace(x: &mut [f32], w: &[f32], eps: f32) {
    let dim = w.len();
    for xr in x.chunks_exact_mut(dim) {
        let ss: f64 = xr.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let scale = (1.0 / (ss / dim as f64 + eps as f64).sqrt()) as f32;
        for (v, &g) in xr.iter_mut().zip(w) {
            *v = (*v * scale) * g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_rms_after_norm_and_weight_applied() {
        let x = [3.0f32, -4.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        let w = [1.0f32, 2.0, 1.0, 1.0];
        let mut out = [0.0f32; 8];
        rmsnorm(&x, &w, 0.0, &mut out);
        // rms of row 0 = sqrt(25 / 4) = 2.5
        assert!((out[0] - 1.2).abs() < 1e-6);
        assert!((out[1] - -3.2).abs() < 1e-6);
        assert_eq!(&out[4..], &[1.0, 2.0, 1.0, 1.0]);
        let mut y = x;
        rmsnorm_inplace(&mut y, &w, 0.0);
        assert_eq!(y, out);
        // eps matters for small inputs
        let mut z = [1e-3f32; 4];
        rmsnorm_inplace(&mut z, &[1.0; 4], 1e-6);
        assert!((z[0] - 1e-3 / (1e-6f32 + 1e-6).sqrt()).abs() < 1e-4);
    }
}
