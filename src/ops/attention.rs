//! Causal scaled-dot-product attention with grouped KV heads: query head h reads KV head
//! h / (n_heads / n_kv_heads). Softmax in f32. (token, head) pairs run on the current rayon pool.

use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

/// Cached keys or values, `[n_pos × n_kv_heads·head_dim]`, in the cache's own element type:
/// attention reads f16 rows in place (a head's row converted into a small buffer when used)
/// instead of copying the whole history to f32 first.
#[derive(Clone, Copy, Debug)]
pub enum KvRows<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
}

impl KvRows<'_> {
    fn len(&self) -> usize {
        match self {
            KvRows::F32(x) => x.len(),
            KvRows::F16(x) => x.len(),
        }
    }

    /// Elements `[off, off + buf.len())` as f32: borrowed when stored as f32, else converted
    /// into `buf`.
    fn get<'b>(&'b self, off: usize, buf: &'b mut [f32]) -> &'b [f32] {
        match self {
            KvRows::F32(x) => &x[off..off + buf.len()],
            KvRows::F16(x) => {
                x[off..off + buf.len()].convert_to_f32_slice(buf);
                buf
            }
        }
    }
}

/// Shapes of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
}

/// `q`: `[n × n_heads·head_dim]` queries whose absolute positions are `positions` (row i sees
/// keys 0..=positions[i]); `k`, `v`: `[n_pos × n_kv_heads·head_dim]` cached keys/values;
/// `out`: `[n × n_heads·head_dim]`.
pub fn attention(
    q: &[f32],
    k: KvRows<'_>,
    v: KvRows<'_>,
    positions: &[usize],
    s: AttnShape,
    out: &mut [f32],
) {
    let q_dim = s.n_heads * s.head_dim;
    let kv_dim = s.n_kv_heads * s.head_dim;
    let group = s.n_heads / s.n_kv_heads;
    let scale = 1.0 / (s.head_dim as f32).sqrt();
    debug_assert_eq!(q.len(), positions.len() * q_dim);
    debug_assert_eq!(out.len(), q.len());
    debug_assert!(positions.iter().all(|&p| (p + 1) * kv_dim <= k.len()));
    out.par_chunks_mut(s.head_dim)
        .enumerate()
        .for_each(|(idx, o)| {
            let (i, h) = (idx / s.n_heads, idx % s.n_heads);
            let qh = &q[i * q_dim + h * s.head_dim..][..s.head_dim];
            let kv_off = (h / group) * s.head_dim;
            let n_keys = positions[i] + 1;
            let mut buf = vec![0.0f32; s.head_dim];
            let mut scores: Vec<f32> = (0..n_keys)
                .map(|p| {
                    let kh = k.get(p * kv_dim + kv_off, &mut buf);
                    qh.iter().zip(kh).map(|(a, b)| a * b).sum::<f32>() * scale
                })
                .collect();
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for sc in &mut scores {
                *sc = (*sc - max).exp();
                sum += *sc;
            }
            o.fill(0.0);
            for (p, &w) in scores.iter().enumerate() {
                let vh = v.get(p * kv_dim + kv_off, &mut buf);
                let w = w / sum;
                for (a, &b) in o.iter_mut().zip(vh) {
                    *a += w * b;
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_gqa_attention() {
        let s = AttnShape {
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 3,
        };
        let n_pos = 5;
        let f = |i: usize, m: f32| ((i as f32 * m).sin()) * 1.5;
        let k: Vec<f32> = (0..n_pos * 6).map(|i| f(i, 0.7)).collect();
        let v: Vec<f32> = (0..n_pos * 6).map(|i| f(i, 1.3)).collect();
        let positions = [2usize, 4];
        let q: Vec<f32> = (0..2 * 12).map(|i| f(i, 0.45)).collect();
        let mut out = vec![0.0f32; 24];
        attention(
            &q,
            KvRows::F32(&k),
            KvRows::F32(&v),
            &positions,
            s,
            &mut out,
        );
        // The same keys and values stored as f16 give what their f32 values give.
        let (k16, v16): (Vec<f16>, Vec<f16>) = (
            k.iter().map(|&x| f16::from_f32(x)).collect(),
            v.iter().map(|&x| f16::from_f32(x)).collect(),
        );
        let (k32, v32): (Vec<f32>, Vec<f32>) = (
            k16.iter().map(|x| x.to_f32()).collect(),
            v16.iter().map(|x| x.to_f32()).collect(),
        );
        let mut out16 = vec![0.0f32; 24];
        let mut out32 = vec![0.0f32; 24];
        attention(
            &q,
            KvRows::F16(&k16),
            KvRows::F16(&v16),
            &positions,
            s,
            &mut out16,
        );
        attention(
            &q,
            KvRows::F32(&k32),
            KvRows::F32(&v32),
            &positions,
            s,
            &mut out32,
        );
        assert_eq!(out16, out32);
        for (i, &p) in positions.iter().enumerate() {
            for h in 0..4 {
                let kvh = h / 2;
                let qs = &q[i * 12 + h * 3..][..3];
                let sc: Vec<f64> = (0..=p)
                    .map(|j| {
                        (0..3)
                            .map(|d| (qs[d] * k[j * 6 + kvh * 3 + d]) as f64)
                            .sum::<f64>()
                            / 3f64.sqrt()
                    })
                    .collect();
                let z: f64 = sc.iter().map(|x| x.exp()).sum();
                for d in 0..3 {
                    let e: f64 = (0..=p)
                        .map(|j| sc[j].exp() / z * v[j * 6 + kvh * 3 + d] as f64)
                        .sum();
                    assert!((out[i * 12 + h * 3 + d] as f64 - e).abs() < 1e-5);
                }
            }
        }
    }
}
