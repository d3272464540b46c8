//! Causal scaled-dot-product attention with grouped KV heads: query head h reads KV head
//! h / (n_heads / n_kv_heads). Softmax in f32. The f16 and q8_0 caches are read in place by the
//! SIMD row kernels (`dot_f16_f32` / `mad_f16_f32`, `dot_q8_0_f32` / `mad_q8_0_f32`).
//!
//! Two schedules with the same arithmetic:
//! - one query token (decode): one rayon task per worker, each a contiguous range of heads;
//!   per query head one rows-kernel call for its scores over all keys and one for its value
//!   sum (the output held in registers, the next keys prefetched);
//! - a batch (prefill, speculative verification): one task per (block of up to 16 query tokens,
//!   KV head): each key row is read once for all the block's query rows (tokens × the group's
//!   heads) — a query tile against the keys — the scores of the tile are kept, each row's
//!   softmax is taken, and each value row is read once and added into all the tile's outputs.
//!   K and V stream once per query block instead of once per query token.
//!
//! Every output row goes through exactly the same operations in the same order in both
//! schedules (its scores by the same kernel, its softmax, its value sum key by key), so a
//! token's attention is bit-identical whether it runs alone or in a batch: verifying drafts in
//! one batch yields exactly the logits plain decoding would (the lossless-speculation
//! guarantee), as the batched matmul tiles are bit-identical to single-row dots. A one-pass
//! (online) softmax, rescaling the running sums per key block, would change the rounding with
//! the batch composition, so it is not used; the tile keeps `rows × n_keys` f32 scores instead
//! (16 tokens × group × 4096 keys × 4 B = 256 KiB per worker per group head at most).

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

/// Query tokens per tile of the batched schedule.
const TILE_TOKENS: usize = 16;

/// `q`: `[n × n_heads·head_dim]` queries whose absolute positions are `positions` (row i sees
/// keys 0..=positions[i]); `k`, `v`: `[n_pos × n_kv_heads·head_dim]` cached keys/values;
/// `out`: `[n × n_heads·head_dim]`. One token: per-token tasks; a batch: query tiles (the
/// results are bit-identical, see the module doc).
pub fn attention(
    q: &[f32],
    k: KvView<'_>,
    v: KvView<'_>,
    positions: &[usize],
    s: AttnShape,
    out: &mut [f32],
) {
    if positions.len() >= 2 {
        attention_tiled(q, k, v, positions, s, out);
    } else {
        attention_per_token(q, k, v, positions, s, out);
    }
}

/// The batched schedule: tasks over (block of query tokens, KV head), see the module doc.
fn attention_tiled(
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
    let gw = group * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    let kern = ouro_simd::kernels();
    let n = positions.len();
    debug_assert_eq!(q.len(), n * q_dim);
    debug_assert_eq!(out.len(), q.len());
    debug_assert!(positions.iter().all(|&p| (p + 1) * kv_dim <= k.len()));
    debug_assert!(positions.iter().all(|&p| (p + 1) * kv_dim <= v.len()));
    // Tiles of up to TILE_TOKENS tokens, smaller when that leaves fewer than ~4 tasks per
    // worker (a verification batch of a few tokens still spreads over the KV heads).
    let want_tasks = 4 * rayon::current_num_threads();
    let bq = (n * s.n_kv_heads / want_tasks).clamp(1, TILE_TOKENS);
    let n_blocks = n.div_ceil(bq);
    let tiles: Vec<Vec<f32>> = (0..n_blocks * s.n_kv_heads)
        .into_par_iter()
        .map(|t| {
            let (b, g) = (t / s.n_kv_heads, t % s.n_kv_heads);
            let toks = b * bq..(b * bq + bq).min(n);
            let pos = &positions[toks.clone()];
            let kv_off = g * hd;
            let n_keys = pos.iter().max().map_or(0, |&p| p + 1);
            let rows = pos.len() * group;
            // Query row r = token (r / group), head (r % group) of the group.
            let q_row = |r: usize| {
                let i = toks.start + r / group;
                &q[i * q_dim + g * gw + (r % group) * hd..][..hd]
            };
            let keys_of = |r: usize| pos[r / group] + 1;
            let mut o = vec![0f32; rows * hd];
            SCORES.with_borrow_mut(|scores| {
                scores.clear();
                scores.resize(rows * n_keys, 0.0);
                // Scores, row-major: scores[r·n_keys + p]; each key row read once for the tile.
                for p in 0..n_keys {
                    let at = p * kv_dim + kv_off;
                    for r in (0..rows).filter(|&r| p < keys_of(r)) {
                        scores[r * n_keys + p] = k.dot(kern, at, q_row(r)) * scale;
                    }
                }
                for (r, sc) in scores.chunks_exact_mut(n_keys).enumerate() {
                    softmax(&mut sc[..keys_of(r)]);
                }
                for p in 0..n_keys {
                    let at = p * kv_dim + kv_off;
                    for (r, or) in o.chunks_exact_mut(hd).enumerate() {
                        if p < keys_of(r) {
                            v.mad(kern, at, scores[r * n_keys + p], or);
                        }
                    }
                }
            });
            o
        })
        .collect();
    for (t, o) in tiles.iter().enumerate() {
        let (b, g) = (t / s.n_kv_heads, t % s.n_kv_heads);
        for (j, ot) in o.chunks_exact(gw).enumerate() {
            let i = b * bq + j;
            out[i * q_dim + g * gw..][..gw].copy_from_slice(ot);
        }
    }
}

/// In place: exp(x − max) / Σ, summed in order (both schedules call this).
#[inline]
fn softmax(sc: &mut [f32]) {
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

/// The per-token schedule (one query token): the KV heads split into one contiguous range per
/// worker; each query head takes its scores over all keys with one rows kernel call, its
/// softmax, and its value sum with another (`dot_f16_f32_rows` / `mad_f16_f32_rows`: the
/// output stays in registers across the keys and the next keys' lines are prefetched — one
/// head's slice of a cached row is a few lines of a 4 KiB row, a new page each key, which the
/// hardware prefetchers do not follow). Each head's arithmetic is the batched schedule's: its
/// scores key by key, its softmax, its value sum in key order.
fn attention_per_token(
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
    let Some(&pos) = positions.first() else {
        return;
    };
    debug_assert_eq!(positions.len(), 1);
    debug_assert_eq!(q.len(), q_dim);
    debug_assert_eq!(out.len(), q.len());
    let n_keys = pos + 1;
    debug_assert!(n_keys * kv_dim <= k.len() && n_keys * kv_dim <= v.len());
    // KV heads per task; query heads g·group .. (g+1)·group are adjacent in `q` and `out`.
    let per_task = s.n_kv_heads.div_ceil(rayon::current_num_threads()).max(1);
    out.par_chunks_mut(per_task * group * hd)
        .enumerate()
        .for_each(|(task, o)| {
            let h0 = task * per_task * group;
            SCORES.with_borrow_mut(|sc| {
                sc.clear();
                sc.resize(n_keys, 0.0);
                for (j, oh) in o.chunks_exact_mut(hd).enumerate() {
                    let h = h0 + j;
                    let (qh, at) = (&q[h * hd..][..hd], h / group * hd);
                    k.dot_rows(kern, at, kv_dim, qh, sc);
                    for x in sc.iter_mut() {
                        *x *= scale;
                    }
                    softmax(sc);
                    oh.fill(0.0);
                    v.mad_rows(kern, at, kv_dim, sc, oh);
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

    /// Random keys/values quantized to each cache type, queries at consecutive positions
    /// after a cached prefix (a prefill or a verification batch) and out of order.
    struct Case {
        s: AttnShape,
        n_pos: usize,
        positions: Vec<usize>,
        q: Vec<f32>,
        k: Vec<f32>,
        v: Vec<f32>,
    }

    fn case(
        seed: u64,
        n_heads: usize,
        n_kv_heads: usize,
        hd: usize,
        positions: Vec<usize>,
    ) -> Case {
        let mut st = seed;
        let mut rnd = move || {
            st = st
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((st >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
        };
        let n_pos = positions.iter().max().unwrap() + 1;
        let kv = n_pos * n_kv_heads * hd;
        Case {
            s: AttnShape {
                n_heads,
                n_kv_heads,
                head_dim: hd,
            },
            n_pos,
            q: (0..positions.len() * n_heads * hd).map(|_| rnd()).collect(),
            k: (0..kv).map(|_| rnd()).collect(),
            v: (0..kv).map(|_| rnd()).collect(),
            positions,
        }
    }

    /// The batched (tiled) schedule is bit-identical to the per-token one — the property that
    /// keeps verification batches lossless — for f32, f16 and q8_0 caches, MHA and GQA groups
    /// of 2, 3 and 8, head sizes 8 / 40 / 64 / 128, batches of 2 to 37 tokens at the start of
    /// the cache and after a prefix, positions out of order, with 1 and 3 workers (tile sizes
    /// 1 to 16); and within 2e-5 of an f64 reference on the f32 cache.
    #[test]
    fn tiled_batches_equal_per_token_attention() {
        let shapes = [(4, 4, 64), (4, 2, 40), (6, 2, 8), (8, 1, 128), (16, 2, 64)];
        let batches: Vec<Vec<usize>> = vec![
            vec![0, 1],
            (0..17).collect(),
            (0..37).collect(),
            (90..99).collect(),
            vec![40, 3, 77, 12, 0, 41],
        ];
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                for (si, &(nh, nkv, hd)) in shapes.iter().enumerate() {
                    for (bi, pos) in batches.iter().enumerate() {
                        let c = case((si * 10 + bi) as u64, nh, nkv, hd, pos.clone());
                        check_tiled(&c, threads);
                    }
                }
            });
        }
    }

    fn check_tiled(c: &Case, threads: usize) {
        let ctx = format!("{:?} n={} t={threads}", c.s, c.positions.len());
        let n_out = c.q.len();
        let run = |k: KvView<'_>, v: KvView<'_>| {
            let mut tiled = vec![0f32; n_out];
            attention(&c.q, k, v, &c.positions, c.s, &mut tiled);
            let mut per_token = vec![0f32; n_out];
            let q_dim = c.s.n_heads * c.s.head_dim;
            for (i, &p) in c.positions.iter().enumerate() {
                attention_per_token(
                    &c.q[i * q_dim..][..q_dim],
                    k,
                    v,
                    &[p],
                    c.s,
                    &mut per_token[i * q_dim..][..q_dim],
                );
            }
            assert_eq!(tiled, per_token, "{ctx}");
            tiled
        };
        let out32 = run(KvRows::F32(&c.k).into(), KvRows::F32(&c.v).into());
        let (k16, v16): (Vec<f16>, Vec<f16>) = (
            c.k.iter().map(|&x| f16::from_f32(x)).collect(),
            c.v.iter().map(|&x| f16::from_f32(x)).collect(),
        );
        run(KvRows::F16(&k16).into(), KvRows::F16(&v16).into());
        if c.k.len().is_multiple_of(32) {
            let q8 = |x: &[f32]| {
                let mut b = vec![0u8; x.len() / 32 * 34];
                ouro_simd::quantize_row(ouro_simd::GgmlType::Q8_0, x, &mut b);
                b
            };
            let (k8, v8) = (q8(&c.k), q8(&c.v));
            run(KvRows::Q8_0(&k8).into(), KvRows::Q8_0(&v8).into());
        }
        // f64 reference on the f32 cache.
        let (hd, nh) = (c.s.head_dim, c.s.n_heads);
        let (q_dim, kv_dim, group) = (nh * hd, c.s.n_kv_heads * hd, nh / c.s.n_kv_heads);
        assert!(c.n_pos * kv_dim <= c.k.len());
        for (i, &p) in c.positions.iter().enumerate() {
            for h in 0..nh {
                let kvo = (h / group) * hd;
                let qs = &c.q[i * q_dim + h * hd..][..hd];
                let sc: Vec<f64> = (0..=p)
                    .map(|j| {
                        (0..hd)
                            .map(|d| qs[d] as f64 * c.k[j * kv_dim + kvo + d] as f64)
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let m = sc.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = sc.iter().map(|x| (x - m).exp()).sum();
                for d in 0..hd {
                    let e: f64 = (0..=p)
                        .map(|j| (sc[j] - m).exp() / z * c.v[j * kv_dim + kvo + d] as f64)
                        .sum();
                    let got = out32[i * q_dim + h * hd + d] as f64;
                    assert!(
                        (got - e).abs() < 2e-5,
                        "{ctx}: f64 ref at {i},{h},{d}: {got} vs {e}"
                    );
                }
            }
        }
    }
}
