//! The per-token arithmetic of a decoder layer, scalar and simple; the heavy matrix products go
//! through `ouro_simd::matmul`.

pub mod attention;
pub mod matmul;
pub mod norm;
pub mod rope;

pub use attention::attention;
pub use matmul::matmul;
pub use norm::rmsnorm;
pub use rope::{rope_interleaved, rope_table};

/// SiLU(gate) · up, in place on `gate`: the SwiGLU activation.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    debug_assert_eq!(gate.len(), up.len());
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = silu(*g) * u;
    }
}

/// x · sigmoid(x).
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silu_values() {
        assert_eq!(silu(0.0), 0.0);
        assert!((silu(1.0) - 0.731_058_6).abs() < 1e-6);
        assert!((silu(-2.0) - (-0.238_405_84)).abs() < 1e-6);
        let mut g = vec![1.0, -2.0];
        swiglu(&mut g, &[2.0, 3.0]);
        assert!((g[0] - 1.462_117_2).abs() < 1e-6);
        assert!((g[1] - (-0.715_217_5)).abs() < 1e-6);
    }
}
