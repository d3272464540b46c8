//! Generation: the one loop every command and the server use.
//!
//! A [`Generator`] borrows a [`Session`], prefills the new part of a sequence, then yields
//! [`Event`]s: one `Token { id, text, loops }` per sampled token (text already complete UTF-8,
//! special tokens hidden unless asked for) and a final `Done { reason, stats, tail }`. It owns
//! sampling ([`Sampler`]), the stop-token set (computed once by [`Model`]), streaming
//! detokenization ([`StreamDecoder`]) and the per-token depth. Sampling is lazy: a token is
//! stepped into the KV cache only when the caller asks for the next event, so a caller that
//! stops early (Ctrl-C, a closed connection) never pays for a forward it does not use.
//!
//! ```text
//! prefill(new) ─▶ logits ─▶ sample ─▶ stop token? ── yes ─▶ Done(Stop)
//!                   ▲                   │ no
//!                   │                   ▼
//!                 step(id) ◀── Token{id, text, loops} (next call: limits, cancel, context)
//! ```

pub mod batch;
pub mod prefix;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::model::{Model, ModelError};
use crate::sampler::{Sampler, SamplerConfig};
use crate::session::{rate, Session};
use crate::tokenizer::{StreamDecoder, TokenizerError};

/// Everything that can stop a generation with an error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("invalid sampling option: {0}")]
    Sampling(String),
    // The session's reason is shown in the message, not exposed as `source()`, so a `{:#}`
    // chain prints it once.
    #[error("--draft-loops: {0}")]
    Speculation(ModelError),
    #[error("the session holds {n_past} tokens but the caller says {n_cached} are cached")]
    CacheMismatch { n_past: usize, n_cached: usize },
    #[error("nothing to generate from: the sequence is empty")]
    Empty,
}

/// How one generation runs.
#[derive(Clone, Debug)]
pub struct GenerateConfig {
    pub sampler: SamplerConfig,
    /// Tokens to generate at most; `None` = until a stop token or a full context (`-n -1`).
    pub max_tokens: Option<usize>,
    /// Do not stop at the model's stop tokens.
    pub ignore_eos: bool,
    /// Render special tokens (`<|im_start|>`, …) as text instead of hiding them.
    pub show_special: bool,
    /// Step the last generated token into the KV cache too (a chat's next turn then continues
    /// right after it); a one-shot generation leaves it out and saves a forward pass.
    pub cache_last: bool,
    /// Self-speculative decoding from the first loops (full depth, no exit threshold):
    /// `None` decodes one token per forward.
    pub speculation: Option<Speculation>,
}

/// Self-speculative decoding: draft up to `draft_max` tokens from the readout of the first
/// `draft_loops` loops, then run the remaining loops of all of them in one batch and keep the
/// longest prefix full depth accepts. The drafts' first loops are exactly what full depth
/// computes (same inputs, same earlier K/V), so greedy output is token-identical to plain
/// decoding, and sampled output (speculative sampling) has exactly full depth's distribution.
///
/// The draft length adapts within `1..=draft_max` (see [`next_draft_len`]): it starts at
/// `draft_max`, grows by one after a verification that accepted every draft, halves after one
/// that accepted none and shrinks by one when fewer than half were accepted — drafting less
/// where the early readout disagrees (each rejected draft costs a shallow forward and a
/// verified row) and more where it agrees. Only the batch sizes change, never the tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Speculation {
    pub draft_loops: usize,
    pub draft_max: usize,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            sampler: SamplerConfig::default(),
            max_tokens: Some(128),
            ignore_eos: false,
            show_special: false,
            cache_last: false,
            speculation: None,
        }
    }
}

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced this stop token (not emitted as a `Token`).
    Stop(u32),
    /// `max_tokens` reached.
    MaxTokens,
    /// The context holds no more positions.
    ContextFull,
    /// The cancel flag was raised (Ctrl-C, a client that left).
    Cancelled,
}

impl StopReason {
    /// The OpenAI-style name: `stop`, `length` or `cancelled`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StopReason::Stop(_) => "stop",
            StopReason::MaxTokens | StopReason::ContextFull => "length",
            StopReason::Cancelled => "cancelled",
        }
    }
}

/// What one generation cost.
#[derive(Clone, Debug, Default)]
pub struct GenStats {
    /// Tokens prefilled by this generation (the new part of the sequence only).
    pub prompt_tokens: usize,
    pub prompt_secs: f64,
    pub gen_tokens: usize,
    /// Wall time from the end of the prefill to the end of the generation.
    pub gen_secs: f64,
    /// 1-based loop each generated token was read out at.
    pub loops: Vec<usize>,
    /// (token, physical layer) evaluations executed, prefill included.
    pub layer_evals: u64,
    /// The evaluations the same tokens cost without early exit (for "saved").
    pub full_depth_layer_evals: u64,
    /// Self-speculation: tokens drafted, drafts full depth agreed with, verification batches,
    /// and tokens those batches emitted (the accepted drafts, plus full depth's own token at
    /// the first disagreement; a fully accepted batch emits exactly its drafts).
    pub drafted: usize,
    pub accepted: usize,
    pub verifies: usize,
    pub verified_tokens: usize,
}

impl GenStats {
    pub fn prompt_tok_per_s(&self) -> f64 {
        rate(self.prompt_tokens, self.prompt_secs)
    }

    pub fn gen_tok_per_s(&self) -> f64 {
        rate(self.gen_tokens, self.gen_secs)
    }

    /// Accepted drafts / drafted (0 when nothing was drafted).
    pub fn acceptance(&self) -> f64 {
        if self.drafted == 0 {
            0.0
        } else {
            self.accepted as f64 / self.drafted as f64
        }
    }

    /// Tokens emitted per verification batch.
    pub fn tokens_per_verify(&self) -> f64 {
        if self.verifies == 0 {
            0.0
        } else {
            self.verified_tokens as f64 / self.verifies as f64
        }
    }

    /// Mean loops per generated token (0 when none).
    pub fn mean_loops(&self) -> f64 {
        if self.loops.is_empty() {
            0.0
        } else {
            self.loops.iter().sum::<usize>() as f64 / self.loops.len() as f64
        }
    }
}

/// Layer evaluations of one token at `loops` loops (no early exit).
fn full_per_token(model: &Model, loops: usize) -> u64 {
    (loops * model.config().n_layers) as u64
}

/// One thing that happened.
#[derive(Clone, Debug)]
pub enum Event {
    /// A generated token: its id, the text it completes (may be empty while a multi-byte
    /// character is pending, or for a hidden special token), and its 1-based exit loop.
    Token { id: u32, text: String, loops: usize },
    /// The end: why, what it cost, and the text still held back by the detokenizer.
    Done {
        reason: StopReason,
        stats: GenStats,
        tail: String,
    },
}

/// The generation loop over one session; see the module doc.
pub struct Generator<'s, 'm> {
    session: &'s mut Session<'m>,
    model: &'m Model,
    cfg: GenerateConfig,
    sampler: Sampler,
    decoder: StreamDecoder<'m>,
    cancel: Option<&'s AtomicBool>,
    /// Every token of the sequence (cached, and generated so far): the repetition window.
    history: Vec<u32>,
    /// Logits to sample from next and the loop they were read out at.
    logits: Vec<f32>,
    exit_loop: usize,
    /// Sampled and emitted, not yet stepped into the cache.
    pending: Option<u32>,
    /// Tokens a verification produced, to emit one per event: (id, already in the cache).
    queue: VecDeque<(u32, bool)>,
    /// Loops of a full-depth token.
    full_loops: usize,
    /// Tokens to draft next (adaptive, `1..=draft_max`).
    draft_len: usize,
    stats: GenStats,
    gen_start: Instant,
    layer_evals_at_start: u64,
    done: bool,
}

impl<'s, 'm> Generator<'s, 'm> {
    /// Start generating after `tokens`, of which the first `n_cached` are already in the
    /// session's cache (the rest is prefilled now). `tokens` is also the repetition window.
    pub fn new(
        session: &'s mut Session<'m>,
        tokens: &[u32],
        n_cached: usize,
        cfg: GenerateConfig,
    ) -> Result<Self, EngineError> {
        cfg.sampler.validate().map_err(EngineError::Sampling)?;
        if let Some(spec) = cfg.speculation {
            if spec.draft_max == 0 {
                return Err(EngineError::Sampling(
                    "--draft-max must be at least 1".into(),
                ));
            }
            session
                .check_speculation(spec.draft_loops)
                .map_err(EngineError::Speculation)?;
        }
        if session.n_past() != n_cached || n_cached > tokens.len() {
            return Err(EngineError::CacheMismatch {
                n_past: session.n_past(),
                n_cached,
            });
        }
        if tokens.is_empty() {
            return Err(EngineError::Empty);
        }
        let model = session.model();
        let depth = session.depth()?;
        let layer_evals_at_start = session.stats().layer_evals;
        // Nothing new to read (the whole sequence is cached): re-run the last token to get
        // logits to sample from.
        let n_cached = if n_cached == tokens.len() {
            session.truncate(n_cached - 1);
            n_cached - 1
        } else {
            n_cached
        };
        let new = &tokens[n_cached..];
        let t0 = Instant::now();
        let first = session.prefill(new)?;
        let stats = GenStats {
            prompt_tokens: new.len(),
            prompt_secs: t0.elapsed().as_secs_f64(),
            full_depth_layer_evals: new.len() as u64 * full_per_token(model, depth.loops),
            ..GenStats::default()
        };
        Ok(Generator {
            session,
            model,
            sampler: Sampler::new(cfg.sampler.clone()),
            decoder: StreamDecoder::new(model.tokenizer(), !cfg.show_special),
            draft_len: cfg.speculation.map_or(1, |s| s.draft_max),
            cfg,
            cancel: None,
            history: tokens.to_vec(),
            logits: first.logits,
            exit_loop: first.exit_loop,
            pending: None,
            queue: VecDeque::new(),
            full_loops: depth.loops,
            stats,
            gen_start: Instant::now(),
            layer_evals_at_start,
            done: false,
        })
    }

    /// Stop at the next event once `flag` is set (checked before every sample and step).
    pub fn with_cancel(mut self, flag: &'s AtomicBool) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// Tokens generated so far.
    pub fn generated(&self) -> &[u32] {
        &self.history[self.history.len() - self.stats.gen_tokens..]
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|f| f.load(Ordering::SeqCst))
    }

    fn step(&mut self, id: u32) -> Result<(), EngineError> {
        let out = self.session.step(id)?;
        self.stats.full_depth_layer_evals += full_per_token(self.model, self.full_loops);
        self.logits = out.logits;
        self.exit_loop = out.exit_loop;
        Ok(())
    }

    fn finish(&mut self, reason: StopReason) -> Event {
        self.done = true;
        self.stats.gen_secs = self.gen_start.elapsed().as_secs_f64();
        self.stats.layer_evals = self.session.stats().layer_evals - self.layer_evals_at_start;
        Event::Done {
            reason,
            stats: self.stats.clone(),
            tail: self.decoder.flush(),
        }
    }

    fn advance(&mut self) -> Result<Event, EngineError> {
        if let Some((id, in_cache)) = self.queue.pop_front() {
            return Ok(self.emit_verified(id, in_cache));
        }
        let full = self.session.n_past() >= self.session.ctx();
        if let Some(id) = self.pending.take() {
            if self.cancelled() {
                return Ok(self.finish(StopReason::Cancelled));
            }
            if self
                .cfg
                .max_tokens
                .is_some_and(|m| self.stats.gen_tokens >= m)
            {
                if self.cfg.cache_last && !full {
                    self.step(id)?;
                }
                return Ok(self.finish(StopReason::MaxTokens));
            }
            if full {
                return Ok(self.finish(StopReason::ContextFull));
            }
            if let Some(spec) = self.cfg.speculation {
                self.speculate(id, spec)?;
                let (id, in_cache) = self.queue.pop_front().ok_or(EngineError::Empty)?;
                return Ok(self.emit_verified(id, in_cache));
            }
            self.step(id)?;
        } else if self.cfg.max_tokens == Some(0) {
            return Ok(self.finish(StopReason::MaxTokens));
        }
        if self.cancelled() {
            return Ok(self.finish(StopReason::Cancelled));
        }
        // A token that could not be cached afterwards is not sampled when it must be.
        if self.cfg.cache_last && self.session.n_past() >= self.session.ctx() {
            return Ok(self.finish(StopReason::ContextFull));
        }
        let id = self.sampler.sample(&mut self.logits, &self.history);
        if !self.cfg.ignore_eos && self.model.stop_tokens().contains(&id) {
            return Ok(self.finish(StopReason::Stop(id)));
        }
        let loops = self.exit_loop + 1;
        Ok(self.emit(id, loops))
    }

    fn emit(&mut self, id: u32, loops: usize) -> Event {
        self.history.push(id);
        self.stats.gen_tokens += 1;
        self.stats.loops.push(loops);
        self.pending = Some(id);
        Event::Token {
            id,
            text: self.decoder.push(id),
            loops,
        }
    }

    /// Emit a token of the last verification; the cache is cut back to what was emitted when
    /// the generation ends inside the batch.
    fn emit_verified(&mut self, id: u32, in_cache: bool) -> Event {
        let reason = if self.cancelled() {
            Some(StopReason::Cancelled)
        } else if self
            .cfg
            .max_tokens
            .is_some_and(|m| self.stats.gen_tokens >= m)
        {
            Some(StopReason::MaxTokens)
        } else if !self.cfg.ignore_eos && self.model.stop_tokens().contains(&id) {
            Some(StopReason::Stop(id))
        } else {
            None
        };
        if let Some(reason) = reason {
            self.queue.clear();
            self.session.truncate(self.history.len());
            return self.finish(reason);
        }
        let event = self.emit(id, self.full_loops);
        if in_cache {
            self.pending = None;
        }
        event
    }

    /// Draft from `first` (the emitted token not yet in the cache) with the first loops, verify
    /// at full depth in one batch, queue the agreed tokens and the full-depth one after them.
    fn speculate(&mut self, first: u32, spec: Speculation) -> Result<(), EngineError> {
        let pos0 = self.session.n_past();
        let room = self.session.ctx() - pos0;
        let left = self
            .cfg
            .max_tokens
            .map_or(usize::MAX, |m| m - self.stats.gen_tokens);
        let n_max = self.draft_len.min(room).min(left).max(1);
        let dim = self.model.config().dim;
        let mut carries = Vec::with_capacity(n_max * dim);
        let mut drafts = Vec::with_capacity(n_max);
        // The draft distributions (sampling at temperature > 0 only).
        let mut draft_dists = Vec::new();
        let greedy = self.sampler.is_greedy();
        let mut context = self.history.clone();
        let mut token = first;
        for _ in 0..n_max {
            let (mut logits, carry) = self.session.draft(token, spec.draft_loops)?;
            carries.extend_from_slice(&carry);
            token = if greedy {
                // The sampler at temperature 0: argmax after the repetition penalty.
                self.sampler.sample(&mut logits, &context)
            } else {
                let q = self.sampler.distribution(&mut logits, &context);
                let t = self.sampler.draw(&q);
                draft_dists.push(q);
                t
            };
            context.push(token);
            drafts.push(token);
            if self.model.stop_tokens().contains(&token) {
                break;
            }
        }
        let n = drafts.len();
        let mut full = self.session.verify(&carries, spec.draft_loops)?;
        let vocab = self.model.config().vocab_size;
        let mut context = self.history.clone();
        let mut kept = n;
        let accepted_before = self.stats.accepted;
        for (i, &draft) in drafts.iter().enumerate() {
            let logits = &mut full[i * vocab..][..vocab];
            // Greedy: full depth's token. Sampling: accept the draft with probability
            // min(1, p/q), else draw from the residual max(0, p − q): the emitted token is
            // distributed exactly as p (Leviathan et al. 2023, Chen et al. 2023).
            let token = if greedy {
                self.sampler.sample(logits, &context)
            } else {
                let p = self.sampler.distribution(logits, &context);
                let q = &draft_dists[i];
                let ratio = p.prob(draft) / q.prob(draft);
                if self.sampler.uniform() < ratio {
                    draft
                } else {
                    match p.residual(q) {
                        Some(r) => self.sampler.draw(&r),
                        None => self.sampler.draw(&p),
                    }
                }
            };
            context.push(token);
            let last = i + 1 == n;
            if token == draft {
                self.stats.accepted += 1;
            }
            if token == draft && !last {
                self.queue.push_back((token, true));
                continue;
            }
            self.queue.push_back((token, false));
            kept = i + 1;
            break;
        }
        self.session.truncate(pos0 + kept);
        self.session.count_generated(kept, self.full_loops - 1);
        self.stats.drafted += n;
        self.stats.verifies += 1;
        self.stats.verified_tokens += kept;
        let accepted = self.stats.accepted - accepted_before;
        self.draft_len = next_draft_len(self.draft_len, n, accepted, spec.draft_max);
        self.stats.full_depth_layer_evals +=
            kept as u64 * full_per_token(self.model, self.full_loops);
        Ok(())
    }
}

/// The adaptive draft length after a verification of `drafted` tokens of which `accepted`
/// were kept: +1 when all were accepted, halved when none was, −1 when fewer than half were;
/// always within `1..=max`.
pub fn next_draft_len(len: usize, drafted: usize, accepted: usize, max: usize) -> usize {
    let next = if accepted == drafted {
        len + 1
    } else if accepted == 0 {
        len / 2
    } else if 2 * accepted < drafted {
        len - 1
    } else {
        len
    };
    next.clamp(1, max.max(1))
}

impl Iterator for Generator<'_, '_> {
    type Item = Result<Event, EngineError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let event = self.advance();
        if event.is_err() {
            self.done = true;
        }
        Some(event)
    }
}
