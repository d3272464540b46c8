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

pub mod prefix;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::model::{Model, ModelError};
use crate::sampler::{Sampler, SamplerConfig};
use crate::session::Session;
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
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            sampler: SamplerConfig::default(),
            max_tokens: Some(128),
            ignore_eos: false,
            show_special: false,
            cache_last: false,
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
}

impl GenStats {
    pub fn prompt_tok_per_s(&self) -> f64 {
        rate(self.prompt_tokens, self.prompt_secs)
    }

    pub fn gen_tok_per_s(&self) -> f64 {
        rate(self.gen_tokens, self.gen_secs)
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

fn rate(n: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
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
    stats: GenStats,
    gen_start: Instant,
    layer_evals_at_start: u64,
    /// Layer evaluations per token at full depth.
    full_per_token: u64,
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
        let full_per_token = (depth.loops * model.config().n_layers) as u64;
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
            full_depth_layer_evals: new.len() as u64 * full_per_token,
            ..GenStats::default()
        };
        Ok(Generator {
            session,
            model,
            sampler: Sampler::new(cfg.sampler.clone()),
            decoder: StreamDecoder::new(model.tokenizer(), !cfg.show_special),
            cfg,
            cancel: None,
            history: tokens.to_vec(),
            logits: first.logits,
            exit_loop: first.exit_loop,
            pending: None,
            stats,
            gen_start: Instant::now(),
            layer_evals_at_start,
            full_per_token,
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
        self.stats.full_depth_layer_evals += self.full_per_token;
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
        self.history.push(id);
        self.stats.gen_tokens += 1;
        let loops = self.exit_loop + 1;
        self.stats.loops.push(loops);
        self.pending = Some(id);
        Ok(Event::Token {
            id,
            text: self.decoder.push(id),
            loops,
        })
    }
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
