//! The looped forward pass over a batch of consecutive tokens (design.md §3):
//!
//! ```text
//! h = token_embd[token]
//! for loop t:                      (the same weights every loop; KV slot t·n_layers + l)
//!     for layer l:
//!         h += post_attention_norm(attention(attn_norm(h)))
//!         h += post_ffw_norm(down(silu(gate(x)) · up(x))),  x = ffn_norm(h)
//!     h_t = output_norm(h)          (fed to the next loop unless skip_loop_final_norm)
//!     λ_t = sigmoid(exit_gate · h_t); exit rule
//! logits = output · h_exit
//! ```
//!
//! **Skipped loops and the KV cache** (`ExitMode::Skip`): a token that exits at loop e stops
//! computing, but later tokens still attend to it in loops e+1…: its K/V rows in the slots of
//! every loop after e are copies of its rows in loop e's slots (its last computed loop), layer by
//! layer. The same rule fills the slots of loops beyond a fixed `--loops K` depth, so every slot
//! always holds every position and the depth can change between calls. The exiting token's own
//! readout never depends on this choice; only later tokens see the copies.

use crate::ops::{self, attention::AttnShape, norm::rmsnorm_inplace};

use super::exit::{sigmoid, ExitTracker};
use super::{KvCache, Model};

/// How early exit cuts loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ExitMode {
    /// Every loop is computed; the readout is the first loop whose exit CDF reaches the
    /// threshold (the reference rule).
    #[default]
    Select,
    /// Computation stops at that loop (the latency cut); see the module doc for the KV policy.
    Skip,
}

/// The depth policy of one forward call.
#[derive(Clone, Copy, Debug)]
pub struct Depth {
    /// Loops to run at most (≥ 1).
    pub loops: usize,
    /// Exit threshold Q; `None` = always the last loop. Ignored without an exit gate.
    pub threshold: Option<f32>,
    pub mode: ExitMode,
}

/// What one batch produced.
#[derive(Debug)]
pub struct BatchOutput {
    /// `[n_out × vocab_size]`: every position, or only the last one.
    pub logits: Vec<f32>,
    /// `[loops × n]` gate values λ_t; NaN where not computed (skipped, or no exit gate).
    pub gates: Vec<f32>,
    /// `[n]` 0-based loop read out per position.
    pub exit_loops: Vec<usize>,
    /// (token, physical layer) evaluations executed.
    pub layer_evals: u64,
}

/// Run `tokens` (positions `cache.n_tokens()…`) through the model, appending to every KV slot.
/// The caller checks token ids, the context limit and that the cache has ≥ `depth.loops` loop
/// slots.
pub fn forward(
    model: &Model,
    cache: &mut KvCache,
    tokens: &[u32],
    depth: &Depth,
    all_logits: bool,
) -> BatchOutput {
    let span = Span {
        input: Input::Tokens(tokens),
        pos0: cache.n_tokens(),
        loops: 0..depth.loops,
        complete: true,
    };
    forward_span(model, cache, span, depth, all_logits).0
}

/// What a span of loops starts from.
pub enum Input<'a> {
    /// Token ids: the span starts at loop 0 from their embeddings.
    Tokens(&'a [u32]),
    /// `[n × dim]` hidden states carried out of an earlier span (the input of its next loop).
    Hidden(&'a [f32]),
}

/// Loops `loops` of a batch at positions `pos0…` (self-speculative decoding runs a token's
/// loops in two spans: the draft's first loops, then the rest in the verification batch).
pub struct Span<'a> {
    pub input: Input<'a>,
    pub pos0: usize,
    pub loops: std::ops::Range<usize>,
    /// Last span of these positions: fill the slots past `loops.end` as the skip policy does
    /// and commit the positions in the cache. A partial span appends only to its own slots.
    pub complete: bool,
}

/// Run one span; the batch output (readout at the exit loop, or at `loops.end − 1` for a
/// partial span, which must not have an exit threshold) and the hidden states carried out
/// (`[n × dim]`, the input of loop `loops.end`).
pub fn forward_span(
    model: &Model,
    cache: &mut KvCache,
    span: Span<'_>,
    depth: &Depth,
    all_logits: bool,
) -> (BatchOutput, Vec<f32>) {
    let c = model.config();
    let w = model.weights();
    let file = model.bytes();
    let dim = c.dim;
    let n = match span.input {
        Input::Tokens(t) => t.len(),
        Input::Hidden(h) => h.len() / dim,
    };
    let kv_dim = c.kv_dim();
    let pos0 = span.pos0;
    let (first_loop, loops) = (span.loops.start, span.loops.end);
    let n_slots = cache.n_loop_slots();
    debug_assert!(first_loop < loops && loops <= n_slots);
    debug_assert!(
        (first_loop == 0 && span.complete) || depth.threshold.is_none(),
        "a split span cannot apply an exit threshold"
    );
    let shape = AttnShape {
        n_heads: c.n_heads,
        n_kv_heads: c.n_kv_heads,
        head_dim: c.head_dim,
    };

    // Embedding rows, dequantized (or the hidden states carried in).
    let mut x = vec![0.0f32; n * dim];
    match span.input {
        Input::Tokens(tokens) => {
            for (i, &tok) in tokens.iter().enumerate() {
                let row = &mut x[i * dim..][..dim];
                ops::matmul::dequantize_row(&w.token_embd, file, tok as usize, row);
            }
        }
        Input::Hidden(h) => x.copy_from_slice(h),
    }
    // RoPE tables: one per position, the same in every loop.
    let tables: Vec<Vec<(f32, f32)>> = (0..n)
        .map(|i| ops::rope_table(pos0 + i, c.rope_dim, c.rope_freq_base))
        .collect();

    let threshold = match (&w.exit_gate, depth.threshold) {
        (Some(_), Some(q)) => q,
        _ => f32::INFINITY,
    };
    let mut trackers = vec![ExitTracker::new(loops - first_loop, threshold); n];
    let mut gates = vec![f32::NAN; loops * n];
    let mut exit_loops = vec![loops - 1; n];
    let mut readout = vec![0.0f32; n * dim];
    let mut active: Vec<usize> = (0..n).collect();
    let mut layer_evals = 0u64;
    let mut k_row = vec![0.0f32; kv_dim];
    let mut v_row = vec![0.0f32; kv_dim];

    let last_slot = if span.complete { n_slots } else { loops };
    // One decoded token with last-loop KV sharing on: K/V go to the shared planes.
    let shared = cache.sharing() && n == 1 && span.complete && first_loop == 0;
    if cache.sharing() && !shared {
        cache.unshare();
    }
    for t in first_loop..last_slot {
        let computing = t < loops && !active.is_empty();
        let na = if computing { active.len() } else { 0 };
        let positions: Vec<usize> = active.iter().take(na).map(|&i| pos0 + i).collect();
        // Hidden states of the tokens that compute this loop.
        let mut xa = vec![0.0f32; na * dim];
        for (j, &i) in active.iter().take(na).enumerate() {
            xa[j * dim..][..dim].copy_from_slice(&x[i * dim..][..dim]);
        }
        let mut b = LoopBufs::new(model, na);

        for (l, layer) in w.layers.iter().enumerate() {
            if na > 0 {
                let rope = active.iter().take(na).map(|&i| tables[i].as_slice());
                project_qkv(model, layer, &xa, na, rope, &mut b);
            }
            let (k, v) = (&b.k, &b.v);
            // Append this batch to slot (t, l) in position order: computed rows, or copies of
            // the token's rows in loop t−1 for tokens not computing this loop. A decoded token
            // under last-loop sharing writes its row to the layer's shared plane instead (each
            // loop replaces the last; the loop it exits at stays).
            if shared {
                if na > 0 {
                    cache.put_shared(l, pos0, k, v);
                }
            } else if na == n {
                cache.append(t, l, k, v);
            } else {
                let mut j = 0;
                for i in 0..n {
                    if j < na && active[j] == i {
                        cache.append(t, l, &k[j * kv_dim..][..kv_dim], &v[j * kv_dim..][..kv_dim]);
                        j += 1;
                    } else {
                        cache.read(t - 1, l, pos0 + i, &mut k_row, &mut v_row);
                        cache.append(t, l, &k_row, &v_row);
                    }
                }
            }
            if na == 0 {
                continue;
            }
            let (k_rows, v_rows) = (cache.view_k(t, l), cache.view_v(t, l));
            ops::attention(&b.q, k_rows, v_rows, &positions, shape, &mut b.att);
            b.finish_layer(model, layer, na, &mut xa);
            layer_evals += na as u64;
        }
        if na == 0 {
            continue;
        }

        // End of loop t: h_t = output_norm(h), the exit gate and the exit rule.
        let mut h = vec![0.0f32; na * dim];
        ops::rmsnorm(&xa, &w.output_norm, c.rms_eps, &mut h);
        for (j, &i) in active.iter().enumerate() {
            let hj = &h[j * dim..][..dim];
            let lambda = match gate_value(model, hj) {
                Some(lambda) => {
                    gates[t * n + i] = lambda;
                    lambda
                }
                None => 0.0,
            };
            if let (_, Some(e)) = trackers[i].push(lambda) {
                exit_loops[i] = first_loop + e;
                readout[i * dim..][..dim].copy_from_slice(hj);
            }
        }
        let next = if c.skip_loop_final_norm { &xa } else { &h };
        for (j, &i) in active.iter().enumerate() {
            x[i * dim..][..dim].copy_from_slice(&next[j * dim..][..dim]);
        }
        if depth.mode == ExitMode::Skip {
            active.retain(|&i| trackers[i].exited().is_none());
        }
    }
    if span.complete {
        cache.commit(pos0 + n);
    }

    // Readout: lm_head on the chosen h of every requested position.
    let first = if all_logits { 0 } else { n - 1 };
    let n_out = n - first;
    let mut logits = vec![0.0f32; n_out * c.vocab_size];
    ops::matmul(&w.output, file, &readout[first * dim..], n_out, &mut logits);
    let out = BatchOutput {
        logits,
        gates,
        exit_loops,
        layer_evals,
    };
    (out, x)
}

/// The activations of one loop over the stack for `n` tokens (allocated once per loop and
/// reused by every layer): `[n × dim]` (`xb`, `o`), `[n × q_dim]` (`q`, `att`),
/// `[n × kv_dim]` (`k`, `v`), `[n × hidden]` (`g`, `u`). Shared by [`forward_span`] and
/// `multi::forward_multi`, whose layers differ only in how K/V reach the cache and attention.
pub(super) struct LoopBufs {
    pub xb: Vec<f32>,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    pub att: Vec<f32>,
    pub o: Vec<f32>,
    pub g: Vec<f32>,
    pub u: Vec<f32>,
}

impl LoopBufs {
    pub(super) fn new(model: &Model, n: usize) -> LoopBufs {
        let c = model.config();
        let z = |width: usize| vec![0.0f32; n * width];
        LoopBufs {
            xb: z(c.dim),
            q: z(c.q_dim()),
            k: z(c.kv_dim()),
            v: z(c.kv_dim()),
            att: z(c.q_dim()),
            o: z(c.dim),
            g: z(c.hidden_dim),
            u: z(c.hidden_dim),
        }
    }

    /// A layer after its attention: output projection of `att`, optional post-attention norm,
    /// residual into `xa` (`[n × dim]`); then the MLP block — pre-norm, SwiGLU, optional
    /// post-norm, residual.
    pub(super) fn finish_layer(
        &mut self,
        model: &Model,
        layer: &super::weights::Layer,
        n: usize,
        xa: &mut [f32],
    ) {
        let (c, file) = (model.config(), model.bytes());
        ops::matmul(&layer.attn_output, file, &self.att, n, &mut self.o);
        if let Some(norm) = &layer.post_attention_norm {
            rmsnorm_inplace(&mut self.o, norm, c.rms_eps);
        }
        add_assign(xa, &self.o);
        ops::rmsnorm(xa, &layer.ffn_norm, c.rms_eps, &mut self.xb);
        ops::matmul(&layer.ffn_gate, file, &self.xb, n, &mut self.g);
        ops::matmul(&layer.ffn_up, file, &self.xb, n, &mut self.u);
        ops::swiglu(&mut self.g, &self.u);
        ops::matmul(&layer.ffn_down, file, &self.g, n, &mut self.o);
        if let Some(norm) = &layer.post_ffw_norm {
            rmsnorm_inplace(&mut self.o, norm, c.rms_eps);
        }
        add_assign(xa, &self.o);
    }
}

/// A layer's attention inputs for `n` tokens: pre-norm of `xa`, the q/k/v projections into
/// `b`, RoPE on q and k with each token's table (`rope`: one per token, in order).
pub(super) fn project_qkv<'t>(
    model: &Model,
    layer: &super::weights::Layer,
    xa: &[f32],
    n: usize,
    rope: impl Iterator<Item = &'t [(f32, f32)]>,
    b: &mut LoopBufs,
) {
    let (c, file) = (model.config(), model.bytes());
    let (q_dim, kv_dim) = (c.q_dim(), c.kv_dim());
    ops::rmsnorm(xa, &layer.attn_norm, c.rms_eps, &mut b.xb);
    ops::matmul(&layer.attn_q, file, &b.xb, n, &mut b.q);
    ops::matmul(&layer.attn_k, file, &b.xb, n, &mut b.k);
    ops::matmul(&layer.attn_v, file, &b.xb, n, &mut b.v);
    for (j, table) in rope.enumerate() {
        ops::rope_interleaved(&mut b.q[j * q_dim..][..q_dim], c.head_dim, table);
        ops::rope_interleaved(&mut b.k[j * kv_dim..][..kv_dim], c.head_dim, table);
    }
}

/// The exit gate's λ = sigmoid(w·h + b) for one normed hidden state, if the model has a gate.
pub(super) fn gate_value(model: &Model, h: &[f32]) -> Option<f32> {
    let gate = model.weights().exit_gate.as_ref()?;
    let z: f32 = gate.weight.iter().zip(h).map(|(a, b)| a * b).sum();
    Some(sigmoid(z + gate.bias))
}

fn add_assign(acc: &mut [f32], x: &[f32]) {
    for (a, &b) in acc.iter_mut().zip(x) {
        *a += b;
    }
}
