//! A session: one model, one KV cache and one thread pool. Prefill runs the prompt in batches
//! through the batched matmul; decoding runs one token per call.

use std::time::Instant;

use crate::model::forward::{forward, forward_span, BatchOutput, Input, Span};
use crate::model::{KvCache, Model, ModelError};

pub use crate::model::forward::{Depth, ExitMode};
pub use crate::model::KvType;

/// Tokens per prefill batch (one matrix–matrix product per weight per batch).
const PREFILL_BATCH: usize = 64;

/// Session settings.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Most positions the cache may hold.
    pub ctx: usize,
    pub kv_type: KvType,
    /// Worker threads (≥ 1).
    pub threads: usize,
    /// Fixed depth (1…; above the file's n_loops is allowed). `None` = the file's n_loops.
    pub loops: Option<usize>,
    /// Exit threshold Q in [0, 1]. `None` = the file's `early_exit_threshold` when `loops` is
    /// also `None`, else no early exit. Q ≥ 1 never exits early.
    pub exit_threshold: Option<f32>,
    pub exit_mode: ExitMode,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            ctx: 4096,
            kv_type: KvType::F16,
            threads: default_threads(),
            loops: None,
            exit_threshold: None,
            exit_mode: ExitMode::Select,
        }
    }
}

/// Physical cores (`num_cpus::get_physical`, portable), at least 1.
pub fn default_threads() -> usize {
    num_cpus::get_physical().max(1)
}

/// Counters since the session started (or [`Session::reset_stats`]).
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub prompt_tokens: usize,
    pub prompt_secs: f64,
    pub gen_tokens: usize,
    pub gen_secs: f64,
    /// (token, physical layer) evaluations actually executed.
    pub layer_evals: u64,
    /// `loops_hist[t]`: tokens read out after loop t (0-based).
    pub loops_hist: Vec<u64>,
    /// Bytes held by the KV cache.
    pub kv_bytes: usize,
}

impl Stats {
    pub fn prompt_tok_per_s(&self) -> f64 {
        rate(self.prompt_tokens, self.prompt_secs)
    }

    pub fn gen_tok_per_s(&self) -> f64 {
        rate(self.gen_tokens, self.gen_secs)
    }

    /// Mean loops (1-based count) per token read out.
    pub fn mean_loops(&self) -> f64 {
        let n: u64 = self.loops_hist.iter().sum();
        let s: u64 = self
            .loops_hist
            .iter()
            .enumerate()
            .map(|(t, c)| (t as u64 + 1) * c)
            .sum();
        if n == 0 {
            0.0
        } else {
            s as f64 / n as f64
        }
    }
}

/// `n / secs`, 0 when no time passed.
pub(crate) fn rate(n: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// Logits of the last position and the loop it was read out from.
#[derive(Clone, Debug)]
pub struct StepOutput {
    /// `[vocab_size]`
    pub logits: Vec<f32>,
    /// 0-based loop read out.
    pub exit_loop: usize,
}

/// Every position of an [`Session::evaluate`] call.
#[derive(Clone, Debug)]
pub struct EvalOutput {
    /// `[n × vocab_size]`
    pub logits: Vec<f32>,
    /// `[loops × n]` gate values; NaN where a loop was not computed or the model has no gate.
    pub gates: Vec<f32>,
    /// Loops run at most (rows of `gates`).
    pub loops: usize,
    /// `[n]` 0-based loop read out per position.
    pub exit_loops: Vec<usize>,
}

pub struct Session<'m> {
    model: &'m Model,
    ctx: usize,
    cache: KvCache,
    pool: rayon::ThreadPool,
    loops: Option<usize>,
    exit_threshold: Option<f32>,
    exit_mode: ExitMode,
    stats: Stats,
}

impl<'m> Session<'m> {
    pub fn new(model: &'m Model, opts: SessionOptions) -> Result<Self, ModelError> {
        if opts.ctx == 0 {
            return Err(ModelError::InvalidOption("ctx must be at least 1".into()));
        }
        if opts.threads == 0 {
            return Err(ModelError::InvalidOption(
                "threads must be at least 1".into(),
            ));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.threads)
            .build()
            .map_err(|e| ModelError::InvalidOption(format!("cannot start threads: {e}")))?;
        let c = model.config();
        if opts.kv_type == KvType::Q8_0 && !c.kv_dim().is_multiple_of(32) {
            return Err(ModelError::InvalidOption(format!(
                "a q8_0 KV cache needs K/V rows of a multiple of 32 values; this model's are {}",
                c.kv_dim()
            )));
        }
        let mut s = Session {
            model,
            ctx: opts.ctx,
            cache: KvCache::new(opts.kv_type, 1, c.n_layers, c.kv_dim()),
            pool,
            loops: opts.loops,
            exit_threshold: opts.exit_threshold,
            exit_mode: opts.exit_mode,
            stats: Stats::default(),
        };
        // Only the loops this session runs get KV slots (`--loops 1` on a 4-loop file keeps one
        // slot per layer); a later, deeper call grows them by the skip policy's copies.
        let depth = s.depth()?;
        s.cache.ensure_loop_slots(depth.loops);
        Ok(s)
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// Positions in the cache.
    pub fn n_past(&self) -> usize {
        self.cache.n_tokens()
    }

    pub fn ctx(&self) -> usize {
        self.ctx
    }

    /// Forget every cached position (statistics are kept).
    pub fn reset(&mut self) {
        self.cache.truncate(0);
        self.stats.kv_bytes = self.cache.bytes();
    }

    pub fn reset_stats(&mut self) {
        self.stats = Stats::default();
        self.stats.kv_bytes = self.cache.bytes();
    }

    /// Keep the first `n_past` positions.
    pub fn truncate(&mut self, n_past: usize) {
        self.cache.truncate(n_past);
        self.stats.kv_bytes = self.cache.bytes();
    }

    /// Change the depth policy for the next calls (validated when they run).
    pub fn set_depth(
        &mut self,
        loops: Option<usize>,
        exit_threshold: Option<f32>,
        exit_mode: ExitMode,
    ) {
        self.loops = loops;
        self.exit_threshold = exit_threshold;
        self.exit_mode = exit_mode;
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The effective depth policy (loops, resolved threshold, mode): see [`SessionOptions`].
    pub fn depth(&self) -> Result<Depth, ModelError> {
        let c = self.model.config();
        let loops = self.loops.unwrap_or(c.n_loops);
        if loops == 0 {
            return Err(ModelError::InvalidOption("loops must be at least 1".into()));
        }
        if let Some(q) = self.exit_threshold {
            if !(0.0..=1.0).contains(&q) {
                return Err(ModelError::InvalidOption(format!(
                    "exit threshold {q} is outside [0, 1]"
                )));
            }
        }
        let threshold = match (self.exit_threshold, self.loops) {
            (Some(q), _) => Some(q),
            (None, None) => c.early_exit_threshold,
            (None, Some(_)) => None,
        };
        Ok(Depth {
            loops,
            threshold: threshold.filter(|&q| q < 1.0),
            mode: self.exit_mode,
        })
    }

    fn check(&self, tokens: &[u32]) -> Result<Depth, ModelError> {
        self.check_at(self.n_past(), tokens)?;
        self.depth()
    }

    /// Token ids in range, `tokens` fit in the context from position `pos`, and not empty.
    fn check_at(&self, pos: usize, tokens: &[u32]) -> Result<(), ModelError> {
        let vocab_size = self.model.config().vocab_size;
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= vocab_size) {
            return Err(ModelError::BadToken { id, vocab_size });
        }
        let needed = pos + tokens.len();
        if needed > self.ctx {
            return Err(ModelError::ContextFull {
                needed,
                ctx: self.ctx,
            });
        }
        if tokens.is_empty() {
            return Err(ModelError::InvalidOption("no tokens to evaluate".into()));
        }
        Ok(())
    }

    fn run(&mut self, tokens: &[u32], depth: &Depth, all_logits: bool) -> BatchOutput {
        self.cache.ensure_loop_slots(depth.loops);
        let (model, cache) = (self.model, &mut self.cache);
        let out = self
            .pool
            .install(|| forward(model, cache, tokens, depth, all_logits));
        self.stats.layer_evals += out.layer_evals;
        self.stats.kv_bytes = self.cache.bytes();
        out
    }

    fn count_exit(&mut self, exit_loop: usize) {
        if self.stats.loops_hist.len() <= exit_loop {
            self.stats.loops_hist.resize(exit_loop + 1, 0);
        }
        self.stats.loops_hist[exit_loop] += 1;
    }

    /// Append `tokens` to the cache in batches; the logits of the last one.
    pub fn prefill(&mut self, tokens: &[u32]) -> Result<StepOutput, ModelError> {
        let depth = self.check(tokens)?;
        let start = Instant::now();
        let mut last = None;
        for chunk in tokens.chunks(PREFILL_BATCH) {
            last = Some(self.run(chunk, &depth, false));
        }
        self.stats.prompt_tokens += tokens.len();
        self.stats.prompt_secs += start.elapsed().as_secs_f64();
        let out = last.ok_or_else(|| ModelError::InvalidOption("no tokens".into()))?;
        let exit_loop = out.exit_loops.last().copied().unwrap_or(0);
        Ok(StepOutput {
            logits: out.logits,
            exit_loop,
        })
    }

    /// Append one generated token; its logits.
    pub fn step(&mut self, token: u32) -> Result<StepOutput, ModelError> {
        let depth = self.check(&[token])?;
        let start = Instant::now();
        let out = self.run(&[token], &depth, false);
        self.stats.gen_tokens += 1;
        self.stats.gen_secs += start.elapsed().as_secs_f64();
        let exit_loop = out.exit_loops[0];
        self.count_exit(exit_loop);
        Ok(StepOutput {
            logits: out.logits,
            exit_loop,
        })
    }

    /// Append `tokens` (in prefill batches) and return the readout of every position, the gates
    /// and the exit loops: what the reference returns for a no-cache pass from an empty session.
    pub fn evaluate(&mut self, tokens: &[u32]) -> Result<EvalOutput, ModelError> {
        let depth = self.check(tokens)?;
        let start = Instant::now();
        let n = tokens.len();
        let mut logits = Vec::with_capacity(n * self.model.config().vocab_size);
        let mut gates = vec![f32::NAN; depth.loops * n];
        let mut exit_loops = Vec::with_capacity(n);
        let mut done = 0;
        for chunk in tokens.chunks(PREFILL_BATCH) {
            let out = self.run(chunk, &depth, true);
            logits.extend_from_slice(&out.logits);
            let m = chunk.len();
            for t in 0..depth.loops {
                gates[t * n + done..][..m].copy_from_slice(&out.gates[t * m..][..m]);
            }
            exit_loops.extend_from_slice(&out.exit_loops);
            done += m;
        }
        self.stats.prompt_tokens += n;
        self.stats.prompt_secs += start.elapsed().as_secs_f64();
        Ok(EvalOutput {
            logits,
            gates,
            loops: depth.loops,
            exit_loops,
        })
    }

    /// Positions drafted past the committed ones (in the first loops' slots only).
    pub fn n_drafted(&self) -> usize {
        self.cache
            .slot_len(0, 0)
            .saturating_sub(self.cache.n_tokens())
    }

    /// Self-speculative decoding, draft side: run `token` (at the next position after the
    /// committed and already drafted ones) through the first `draft_loops` loops only, exactly
    /// as full depth runs them. Returns the loop-`draft_loops` readout logits and the hidden
    /// state carried into loop `draft_loops` (for [`Session::verify`]). Needs full depth without
    /// early exit (see [`Session::can_speculate`]).
    pub fn draft(
        &mut self,
        token: u32,
        draft_loops: usize,
    ) -> Result<(Vec<f32>, Vec<f32>), ModelError> {
        let depth = self.speculation_depth(draft_loops)?;
        let pos = self.n_past() + self.n_drafted();
        self.check_at(pos, &[token])?;
        self.cache.ensure_loop_slots(depth.loops);
        let span = Span {
            input: Input::Tokens(&[token]),
            pos0: pos,
            loops: 0..draft_loops,
            complete: false,
        };
        let (out, carry) = self.run_span(span, &depth, false);
        Ok((out.logits, carry))
    }

    /// One span of a speculative step, counted as generation time.
    fn run_span(&mut self, span: Span<'_>, depth: &Depth, all: bool) -> (BatchOutput, Vec<f32>) {
        let start = Instant::now();
        let (model, cache) = (self.model, &mut self.cache);
        let out = self
            .pool
            .install(|| forward_span(model, cache, span, depth, all));
        self.stats.layer_evals += out.0.layer_evals;
        self.stats.kv_bytes = self.cache.bytes();
        self.stats.gen_secs += start.elapsed().as_secs_f64();
        out
    }

    /// Self-speculative decoding, verify side: the drafted positions (`carries`: their hidden
    /// states from [`Session::draft`], in order) run the remaining loops in one batch and are
    /// committed. Returns the full-depth logits of every one (`[n × vocab_size]`). The caller
    /// then keeps the accepted prefix with [`Session::truncate`].
    pub fn verify(&mut self, carries: &[f32], draft_loops: usize) -> Result<Vec<f32>, ModelError> {
        let depth = self.speculation_depth(draft_loops)?;
        let n = carries.len() / self.model.config().dim;
        if n != self.n_drafted() || n == 0 {
            return Err(ModelError::InvalidOption(format!(
                "verify needs the {} drafted positions, got {n}",
                self.n_drafted()
            )));
        }
        let span = Span {
            input: Input::Hidden(carries),
            pos0: self.n_past(),
            loops: draft_loops..depth.loops,
            complete: true,
        };
        Ok(self.run_span(span, &depth, true).0.logits)
    }

    /// Whether self-speculation from `draft_loops` loops applies: fewer draft loops than the
    /// depth, no exit threshold (every token runs the full depth) and no KV sharing; the error
    /// says which condition fails.
    pub fn check_speculation(&self, draft_loops: usize) -> Result<(), ModelError> {
        self.speculation_depth(draft_loops).map(|_| ())
    }

    /// [`Session::check_speculation`] as a yes/no.
    pub fn can_speculate(&self, draft_loops: usize) -> bool {
        self.check_speculation(draft_loops).is_ok()
    }

    /// Last-loop KV sharing (`--kv-share last`, the Ouro paper's §5.4.2 decoding variant):
    /// from now on each single decoded token keeps only the K/V of the last loop it computed,
    /// in one plane per layer that every loop reads; prompt batches keep a slot per loop (a
    /// batch after decoded tokens first copies their shared rows into every loop's slot).
    pub fn share_last_loop_kv(&mut self) {
        self.cache.enable_sharing();
        self.stats.kv_bytes = self.cache.bytes();
    }

    fn speculation_depth(&self, draft_loops: usize) -> Result<Depth, ModelError> {
        let depth = self.depth()?;
        if draft_loops == 0 || draft_loops >= depth.loops {
            return Err(ModelError::InvalidOption(format!(
                "draft loops must be in 1..{} (the depth), got {draft_loops}",
                depth.loops
            )));
        }
        if depth.threshold.is_some() {
            return Err(ModelError::InvalidOption(
                "self-speculative decoding runs full depth: it cannot be combined with an exit \
                 threshold"
                    .into(),
            ));
        }
        if self.cache.sharing() {
            return Err(ModelError::InvalidOption(
                "self-speculative decoding verifies drafts in a batch: it cannot be combined \
                 with last-loop KV sharing"
                    .into(),
            ));
        }
        Ok(depth)
    }

    /// Count tokens generated outside [`Session::step`] (speculative decoding) in the stats.
    pub fn count_generated(&mut self, n: usize, exit_loop: usize) {
        self.stats.gen_tokens += n;
        for _ in 0..n {
            self.count_exit(exit_loop);
        }
    }
}
