//! Causal scaled-dot-product attention with grouped KV heads: query head h reads KV head
//! h / (n_heads / n_kv_heads). Softmax in f32. One rayon task per (query token, KV head): the
//! group's query heads share each key and value row while it is in L1, and the f16 cache is
//! read in place by the SIMD row kernels (`dot_f16_f32`, `mad_f16_f32`), streaming K once and
//! V once per task.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::tensor::KvView;

/// Shapes of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
}

thread_local! {
    /// Per-worker score buffer (`group × n_keys`), kept between calls: no allocation per task.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `q`: `[n × n_heads·head_dim]` queries whose absolute positions are `positions` (row i sees
/// keys 0..=positions[i]); `k`, `v`: `[n_pos × n_kv_heads·head_dim]` cached keys/values;
/// `out`: `[n × n_heads·head_dim]`.
pub fn attention(
    q: &[f32],
    k: KvView<'_>,
    v: KvView<'_>,
    positions: &[usize],
    s: AttnShape,
    out: &mut [f32],
) {
    let hd = s.head_dim;
    let q_dim = s.n_heads * hd;
    let kv_dim = s.n_kv_heads * hd;
    let group = s.n_heads / s.n_kv_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let kern = ouro_simd::kernels();
    debug_assert_eq!(q.len(), positions.len() * q_dim);
    debug_assert_eq!(out.len(), q.len());
    debug_assert!(positions.iter().all(|&p| (p + 1) * kv_dim <= k.len()));
    debug_assert!(positions.iter().all(|&p| (p + 1) * kv_dim <= v.len()));
    // Heads g·group .. (g+1)·group of token i are adjacent in `out`: one chunk per task.
    out.par_chunks_mut(group * hd)
        .enumerate()
        .for_each(|(idx, o)| {
            let (i, g) = (idx / s.n_kv_heads, idx % s.n_kv_heads);
            let qg = &q[i * q_dim + g * group * hd..][..group * hd];
            let kv_off = g * hd;
            let n_keys = positions[i] + 1;
            SCORES.with_borrow_mut(|scores| {
                scores.clear();
                scores.resize(group * n_keys, 0.0);
                // Scores, head-major: scores[h·n_keys + p]; each key row read once for the group.
                for p in 0..n_keys {
                    for (h, qh) in qg.chunks_exact(hd).enumerate() {
                        scores[h * n_keys + p] = k.dot(kern, p * kv_dim + kv_off, qh) * scale;
                    }
                }
                for sc in scores.chunks_exact_mut(n_keys) {
                    let max = sc.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0f32;
                    for x in sc.iter_mut() {
                        *x = (*x - max).exp();
                        sum += *x;
                    }
                    let inv = 1.0 / sum;
                    for x in sc.iter_mut() {
                        *x *= inv;
                    }
                }
                o.fill(0.0);
                for p in 0..n_keys {
                    for (h, oh) in o.chunks_exact_mut(hd).enumerate() {
                        v.mad(kern, p * kv_dim + kv_off, scores[h * n_keys + p], oh);
                    }
                }
            });
        });
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;
    use crate::tensor::KvRows;

    /// GQA attention against an f64 reference, for head sizes below, at and across the SIMD
    /// widths (3: scalar tails only; 40: 8-lane steps; 64: 32-element steps), with the cache
    /// as f32 and as f16 (the f16 path runs the selected SIMD row kernels).
    #[test]
    fn matches_naive_gqa_attention() {
        for hd in [3usize, 40, 64] {
            check_gqa(hd);
        }
    }

    fn check_gqa(hd: usize) {
        let s = AttnShape {
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: hd,
        };
        let (n_pos, kv_dim, q_dim) = (5, 2 * hd, 4 * hd);
        let f = |i: usize, m: f32| ((i as f32 * m).sin()) * 1.5;
        // Keys and values exactly representable in f16, so both caches hold the same numbers.
        let r = |x: f32| f16::from_f32(x).to_f32();
        let k: Vec<f32> = (0..n_pos * kv_dim).map(|i| r(f(i, 0.7))).collect();
        let v: Vec<f32> = (0..n_pos * kv_dim).map(|i| r(f(i, 1.3))).collect();
        let (k16, v16): (Vec<f16>, Vec<f16>) = (
            k.iter().map(|&x| f16::from_f32(x)).collect(),
            v.iter().map(|&x| f16::from_f32(x)).collect(),
        );
        let positions = [2usize, 4];
        let q: Vec<f32> = (0..2 * q_dim).map(|i| f(i, 0.45) / hd as f32).collect();
        let mut out = vec![0.0f32; 2 * q_dim];
        let mut out16 = vec![0.0f32; 2 * q_dim];
        let (k32, v32) = (KvRows::F32(&k), KvRows::F32(&v));
        attention(&q, k32.into(), v32.into(), &positions, s, &mut out);
        let (kh, vh) = (KvRows::F16(&k16), KvRows::F16(&v16));
        attention(&q, kh.into(), vh.into(), &positions, s, &mut out16);
        // A view split after position 2 (the shared-plane layout) reads the same rows.
        let cut = 3 * kv_dim;
        let (ks, vs) = (
            KvView::split(KvRows::F32(&k), cut, KvRows::F32(&k[cut..])),
            KvView::split(KvRows::F32(&v), cut, KvRows::F32(&v[cut..])),
        );
        let mut out_split = vec![0.0f32; 2 * q_dim];
        attention(&q, ks, vs, &positions, s, &mut out_split);
        assert_eq!(out_split, out);
        for (i, &p) in positions.iter().enumerate() {
            for h in 0..4 {
                let kvh = h / 2;
                let qs = &q[i * q_dim + h * hd..][..hd];
                let sc: Vec<f64> = (0..=p)
                    .map(|j| {
                        (0..hd)
                            .map(|d| (qs[d] * k[j * kv_dim + kvh * hd + d]) as f64)
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let z: f64 = sc.iter().map(|x| x.exp()).sum();
                for d in 0..hd {
                    let e: f64 = (0..=p)
                        .map(|j| sc[j].exp() / z * v[j * kv_dim + kvh * hd + d] as f64)
                        .sum();
                    let at = i * q_dim + h * hd + d;
                    assert!((out[at] as f64 - e).abs() < 1e-5, "f32 hd={hd} at {at}");
                    assert!((out16[at] as f64 - e).abs() < 1e-5, "f16 hd={hd} at {at}");
                }
            }
        }
    }
}
