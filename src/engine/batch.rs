//! Continuous batching: several sequences, each with its own KV cache, sampler and depth
//! policy, decoded together — one [`forward_multi`] per step over every sequence that has a
//! token to append (one weight stream for all of them). `ouro serve` keeps `--parallel` of
//! these [`Sequence`]s as slots; a request joins a free slot between steps and leaves it when
//! it ends.
//!
//! A slot keeps its tokens and KV after its request ends: the next request that starts with
//! the same tokens (and the same depth policy, which the KV depends on) prefills only the rest
//! (llama-server's `cache_prompt`).
//!
//! ```text
//! start(prompt) ─▶ logits ─▶ next() ─▶ Token ─▶ step_batch(all pending) ─▶ logits ─▶ next() …
//!                                  └─▶ Done(Stop | MaxTokens | ContextFull)
//! ```

use std::time::Instant;

use crate::model::forward::{forward, Depth, ExitMode};
use crate::model::multi::{forward_multi, SeqStep};
use crate::model::{KvCache, KvType, Model, ModelError};
use crate::sampler::{Sampler, SamplerConfig};
use crate::tokenizer::StreamDecoder;

use super::{EngineError, Event, GenStats, StopReason};

/// Tokens per prefill batch (as the session's).
const PREFILL_BATCH: usize = 64;

/// What one request asks of a sequence.
#[derive(Clone, Debug)]
pub struct SeqRequest {
    pub sampler: SamplerConfig,
    /// At least 1.
    pub max_tokens: usize,
    pub depth: Depth,
    /// Do not stop at the model's stop tokens.
    pub ignore_eos: bool,
}

/// The resolved depth policy of a request, as [`crate::session::Session::depth`] resolves it:
/// `loops` default to the file's; the threshold defaults to the file's only when neither is
/// given; Q ≥ 1 means no early exit.
pub fn resolve_depth(
    model: &Model,
    loops: Option<usize>,
    exit_threshold: Option<f32>,
    mode: ExitMode,
) -> Result<Depth, ModelError> {
    let c = model.config();
    let n = loops.unwrap_or(c.n_loops);
    if n == 0 {
        return Err(ModelError::InvalidOption("loops must be at least 1".into()));
    }
    if let Some(q) = exit_threshold {
        if !(0.0..=1.0).contains(&q) {
            return Err(ModelError::InvalidOption(format!(
                "exit threshold {q} is outside [0, 1]"
            )));
        }
    }
    let threshold = match (exit_threshold, loops) {
        (Some(q), _) => Some(q),
        (None, None) => c.early_exit_threshold,
        (None, Some(_)) => None,
    };
    Ok(Depth {
        loops: n,
        threshold: threshold.filter(|&q| q < 1.0),
        mode,
    })
}

fn same_depth(a: &Depth, b: &Depth) -> bool {
    a.loops == b.loops && a.threshold == b.threshold && a.mode == b.mode
}

/// One slot: a KV cache and, while a request runs in it, the generation state.
pub struct Sequence<'m> {
    model: &'m Model,
    ctx: usize,
    cache: KvCache,
    /// The tokens the cache holds (prefix reuse) and, during a request, the repetition window.
    tokens: Vec<u32>,
    /// The depth the cached KV was computed with.
    cached_depth: Option<Depth>,
    run: Option<Run<'m>>,
}

/// The state of the request running in a slot.
struct Run<'m> {
    req: SeqRequest,
    sampler: Sampler,
    decoder: StreamDecoder<'m>,
    logits: Vec<f32>,
    exit_loop: usize,
    /// Sampled and emitted, to be stepped into the cache.
    pending: Option<u32>,
    stats: GenStats,
    gen_start: Instant,
}

impl<'m> Sequence<'m> {
    /// An empty slot of `ctx` positions.
    pub fn new(model: &'m Model, ctx: usize, kv_type: KvType) -> Self {
        let c = model.config();
        Sequence {
            model,
            ctx,
            cache: KvCache::new(kv_type, 1, c.n_layers, c.kv_dim()),
            tokens: Vec::new(),
            cached_depth: None,
            run: None,
        }
    }

    /// Whether a request runs here.
    pub fn busy(&self) -> bool {
        self.run.is_some()
    }

    /// Tokens of `prompt` this slot's cache could reuse under `depth` (0 while busy).
    pub fn reusable(&self, prompt: &[u32], depth: &Depth) -> usize {
        if self.busy() || !self.cached_depth.is_some_and(|d| same_depth(&d, depth)) {
            return 0;
        }
        common_prefix(&self.tokens, prompt)
    }

    /// Positions in the cache.
    pub fn n_past(&self) -> usize {
        self.cache.n_tokens()
    }

    /// Bytes held by the KV cache.
    pub fn kv_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Start a request: keep the cached prefix it shares (same depth only), prefill the rest.
    /// Returns how many prompt tokens came from the cache. On error the slot is left empty.
    pub fn start(&mut self, prompt: &[u32], req: SeqRequest) -> Result<usize, EngineError> {
        req.sampler.validate().map_err(EngineError::Sampling)?;
        if prompt.is_empty() {
            return Err(EngineError::Empty);
        }
        let vocab_size = self.model.config().vocab_size;
        if let Some(&id) = prompt.iter().find(|&&t| t as usize >= vocab_size) {
            return Err(ModelError::BadToken { id, vocab_size }.into());
        }
        if prompt.len() > self.ctx {
            return Err(ModelError::ContextFull {
                needed: prompt.len(),
                ctx: self.ctx,
            }
            .into());
        }
        let depth = req.depth;
        // At least the last prompt token is run again: its logits are not kept.
        let keep = self.reusable(prompt, &depth).min(prompt.len() - 1);
        self.cache.truncate(keep);
        self.tokens.truncate(keep);
        self.cached_depth = Some(depth);
        self.cache.ensure_loop_slots(depth.loops);
        let t0 = Instant::now();
        let mut last = None;
        for chunk in prompt[keep..].chunks(PREFILL_BATCH) {
            let out = forward(self.model, &mut self.cache, chunk, &depth, false);
            self.tokens.extend_from_slice(chunk);
            last = Some(out);
        }
        let out = last.ok_or(EngineError::Empty)?;
        let stats = GenStats {
            prompt_tokens: prompt.len() - keep,
            prompt_secs: t0.elapsed().as_secs_f64(),
            layer_evals: out.layer_evals,
            ..GenStats::default()
        };
        self.run = Some(Run {
            sampler: Sampler::new(req.sampler.clone()),
            decoder: StreamDecoder::new(self.model.tokenizer(), true),
            req,
            exit_loop: out.exit_loops.last().copied().unwrap_or(0),
            logits: out.logits,
            pending: None,
            stats,
            gen_start: Instant::now(),
        });
        Ok(keep)
    }

    /// The next event of the running request: sample from the current logits. A `Token`
    /// leaves the token pending for the next [`step_batch`]; a `Done` ends the request (the
    /// slot keeps its KV for reuse). `None` when no request runs or a token is still pending.
    pub fn next_event(&mut self) -> Option<Event> {
        let run = self.run.as_mut()?;
        if run.pending.is_some() {
            return None;
        }
        let id = run.sampler.sample(&mut run.logits, &self.tokens);
        if !run.req.ignore_eos && self.model.stop_tokens().contains(&id) {
            return Some(self.finish(StopReason::Stop(id)));
        }
        let loops = run.exit_loop + 1;
        run.stats.gen_tokens += 1;
        run.stats.loops.push(loops);
        let text = run.decoder.push(id);
        let full = run.stats.gen_tokens >= run.req.max_tokens;
        if !full {
            run.pending = Some(id);
        }
        Some(Event::Token { id, text, loops })
    }

    /// End the request after its last event: `MaxTokens` when its budget is spent, `Cancelled`
    /// otherwise (a client that left). `None` when no request runs.
    pub fn end(&mut self, reason: StopReason) -> Option<Event> {
        self.run.as_ref()?;
        Some(self.finish(reason))
    }

    /// Whether the running request has spent its token budget (its last `Token` was emitted
    /// and nothing is pending).
    pub fn exhausted(&self) -> bool {
        self.run
            .as_ref()
            .is_some_and(|r| r.pending.is_none() && r.stats.gen_tokens >= r.req.max_tokens)
    }

    fn finish(&mut self, reason: StopReason) -> Event {
        let mut run = self.run.take().expect("a running request");
        run.stats.gen_secs = run.gen_start.elapsed().as_secs_f64();
        // Pending tokens never reached the cache: the reusable prefix is what the cache holds.
        self.tokens.truncate(self.cache.n_tokens());
        Event::Done {
            reason,
            stats: run.stats,
            tail: run.decoder.flush(),
        }
    }

    fn pending(&self) -> Option<u32> {
        self.run.as_ref().and_then(|r| r.pending)
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// One decode step: every slot with a pending token appends it in ONE batched forward and
/// gets its next logits. A slot whose context is full instead ends with `ContextFull`; those
/// events are returned with the slot index. Call inside the rayon pool the matmuls should use.
pub fn step_batch(seqs: &mut [Sequence<'_>]) -> Vec<(usize, Event)> {
    let mut ended = Vec::new();
    let mut idx = Vec::new();
    for (i, s) in seqs.iter_mut().enumerate() {
        if s.pending().is_none() {
            continue;
        }
        if s.cache.n_tokens() >= s.ctx {
            if let Some(r) = s.run.as_mut() {
                r.pending = None;
            }
            ended.push((i, s.finish(StopReason::ContextFull)));
            continue;
        }
        idx.push(i);
    }
    if idx.is_empty() {
        return ended;
    }
    let model = seqs[idx[0]].model;
    let vocab = model.config().vocab_size;
    let out = {
        let mut steps: Vec<SeqStep<'_>> = Vec::with_capacity(idx.len());
        let mut want = idx.iter().copied().peekable();
        for (i, s) in seqs.iter_mut().enumerate() {
            if want.peek() != Some(&i) {
                continue;
            }
            want.next();
            let run = s.run.as_ref().expect("pending implies running");
            let depth = run.req.depth;
            s.cache.ensure_loop_slots(depth.loops);
            steps.push(SeqStep {
                token: run.pending.expect("pending"),
                depth,
                cache: &mut s.cache,
            });
        }
        forward_multi(model, &mut steps)
    };
    for (j, &i) in idx.iter().enumerate() {
        let s = &mut seqs[i];
        let run = s.run.as_mut().expect("running");
        let id = run.pending.take().expect("pending");
        s.tokens.push(id);
        run.logits = out.logits[j * vocab..][..vocab].to_vec();
        run.exit_loop = out.exit_loops[j];
    }
    ended
}
