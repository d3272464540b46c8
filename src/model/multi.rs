//! One decode step of several independent sequences in a single batched forward (continuous
//! batching, `ouro serve`): every sequence contributes its next token, each has its own
//! [`KvCache`] and depth policy, and every weight matrix is streamed once for all of them
//! (`ops::matmul` with one row per sequence still computing the loop).
//!
//! The arithmetic is [`forward_span`](super::forward::forward_span)'s for one complete token
//! per sequence starting at loop 0: the same norms, projections, RoPE, attention (per sequence,
//! against its own cache), exit gate and exit rule, and the same KV policy for loops a sequence
//! does not compute (skipped after its exit, or beyond its `--loops`): copies of its rows in the
//! previous loop's slot. The batched matmul computes each output row with the same kernel as a
//! single row, so a sequence's logits do not depend on who it shares the step with
//! (tests/serve_batch.rs checks equality with stepping each sequence alone).

use crate::ops::{self, attention::AttnShape};

use super::exit::ExitTracker;
use super::forward::{gate_value, project_qkv, Depth, ExitMode, LoopBufs};
use super::{KvCache, Model};

/// One sequence of a multi-sequence step: its cache (next position = `cache.n_tokens()`), the
/// token to append and its depth policy. The cache must have ≥ `depth.loops` loop slots and
/// no last-loop sharing; the caller checks the token id and the context limit.
pub struct SeqStep<'a> {
    pub cache: &'a mut KvCache,
    pub token: u32,
    pub depth: Depth,
}

/// What one multi-sequence step produced, in the order of the sequences.
#[derive(Debug)]
pub struct MultiOutput {
    /// `[n × vocab_size]` readout logits.
    pub logits: Vec<f32>,
    /// `[n]` 0-based loop read out per sequence.
    pub exit_loops: Vec<usize>,
    /// (token, physical layer) evaluations executed.
    pub layer_evals: u64,
}

/// Append one token to each sequence; see the module doc.
pub fn forward_multi(model: &Model, seqs: &mut [SeqStep<'_>]) -> MultiOutput {
    let c = model.config();
    let w = model.weights();
    let file = model.bytes();
    let dim = c.dim;
    let n = seqs.len();
    let (q_dim, kv_dim) = (c.q_dim(), c.kv_dim());
    let shape = AttnShape {
        n_heads: c.n_heads,
        n_kv_heads: c.n_kv_heads,
        head_dim: c.head_dim,
    };
    if n == 0 {
        return MultiOutput {
            logits: Vec::new(),
            exit_loops: Vec::new(),
            layer_evals: 0,
        };
    }
    let pos: Vec<usize> = seqs.iter().map(|s| s.cache.n_tokens()).collect();
    let n_slots: Vec<usize> = seqs.iter().map(|s| s.cache.n_loop_slots()).collect();
    for s in seqs.iter() {
        debug_assert!(s.depth.loops >= 1 && s.depth.loops <= s.cache.n_loop_slots());
        debug_assert!(!s.cache.sharing());
    }
    let max_slots = n_slots.iter().copied().max().unwrap_or(0);

    let mut x = vec![0.0f32; n * dim];
    for (i, s) in seqs.iter().enumerate() {
        ops::matmul::dequantize_row(
            &w.token_embd,
            file,
            s.token as usize,
            &mut x[i * dim..][..dim],
        );
    }
    let tables: Vec<Vec<(f32, f32)>> = pos
        .iter()
        .map(|&p| ops::rope_table(p, c.rope_dim, c.rope_freq_base))
        .collect();
    let mut trackers: Vec<ExitTracker> = seqs
        .iter()
        .map(|s| {
            let q = match (&w.exit_gate, s.depth.threshold) {
                (Some(_), Some(q)) => q,
                _ => f32::INFINITY,
            };
            ExitTracker::new(s.depth.loops, q)
        })
        .collect();
    let mut exit_loops: Vec<usize> = seqs.iter().map(|s| s.depth.loops - 1).collect();
    let mut readout = vec![0.0f32; n * dim];
    // Sequences still computing (in order); a sequence leaves after its last loop, or at its
    // exit loop in skip mode.
    let mut active: Vec<usize> = (0..n).collect();
    let mut layer_evals = 0u64;
    let mut k_row = vec![0.0f32; kv_dim];
    let mut v_row = vec![0.0f32; kv_dim];

    for t in 0..max_slots {
        active.retain(|&i| t < seqs[i].depth.loops);
        let na = active.len();
        let mut xa = vec![0.0f32; na * dim];
        for (j, &i) in active.iter().enumerate() {
            xa[j * dim..][..dim].copy_from_slice(&x[i * dim..][..dim]);
        }
        let mut b = LoopBufs::new(model, na);

        for (l, layer) in w.layers.iter().enumerate() {
            if na > 0 {
                let rope = active.iter().map(|&i| tables[i].as_slice());
                project_qkv(model, layer, &xa, na, rope, &mut b);
            }
            let (k, v) = (&b.k, &b.v);
            // Slot (t, l) of every sequence that has it: the computed row, or a copy of the
            // sequence's row in loop t−1.
            let mut j = 0;
            for (i, s) in seqs.iter_mut().enumerate() {
                if t >= n_slots[i] {
                    if j < na && active[j] == i {
                        j += 1;
                    }
                    continue;
                }
                if j < na && active[j] == i {
                    s.cache
                        .append(t, l, &k[j * kv_dim..][..kv_dim], &v[j * kv_dim..][..kv_dim]);
                    j += 1;
                } else {
                    s.cache.read(t - 1, l, pos[i], &mut k_row, &mut v_row);
                    s.cache.append(t, l, &k_row, &v_row);
                }
            }
            if na == 0 {
                continue;
            }
            for (j, &i) in active.iter().enumerate() {
                let cache = &seqs[i].cache;
                ops::attention(
                    &b.q[j * q_dim..][..q_dim],
                    cache.view_k(t, l),
                    cache.view_v(t, l),
                    &[pos[i]],
                    shape,
                    &mut b.att[j * q_dim..][..q_dim],
                );
            }
            b.finish_layer(model, layer, na, &mut xa);
            layer_evals += na as u64;
        }
        if na == 0 {
            continue;
        }

        let mut h = vec![0.0f32; na * dim];
        ops::rmsnorm(&xa, &w.output_norm, c.rms_eps, &mut h);
        for (j, &i) in active.iter().enumerate() {
            let hj = &h[j * dim..][..dim];
            let lambda = gate_value(model, hj).unwrap_or(0.0);
            if let (_, Some(e)) = trackers[i].push(lambda) {
                exit_loops[i] = e;
                readout[i * dim..][..dim].copy_from_slice(hj);
            }
        }
        let next = if c.skip_loop_final_norm { &xa } else { &h };
        for (j, &i) in active.iter().enumerate() {
            x[i * dim..][..dim].copy_from_slice(&next[j * dim..][..dim]);
        }
        active.retain(|&i| seqs[i].depth.mode != ExitMode::Skip || trackers[i].exited().is_none());
    }
    for (i, s) in seqs.iter_mut().enumerate() {
        s.cache.commit(pos[i] + 1);
    }

    let mut logits = vec![0.0f32; n * c.vocab_size];
    ops::matmul(&w.output, file, &readout, n, &mut logits);
    MultiOutput {
        logits,
        exit_loops,
        layer_evals,
    }
}
