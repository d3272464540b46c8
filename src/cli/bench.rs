//! `ouro bench`: prompt-processing and generation speed in the manner of llama.cpp's
//! `llama-bench`, plus peak memory and the weight bandwidth decode implies.
//!
//! - `pp{p}`: one `prefill` of `p` seeded random tokens into an empty cache, timed.
//! - `tg{n}`: `n` single-token `step`s into an empty cache (as `llama-bench`'s tg does), timed.
//! - `-d N`: both start from a cache already holding `N` tokens (prefilled untimed), as
//!   `llama-bench -d` does.
//!
//! Each test is warmed up untimed as `llama-bench` does (the whole prompt for pp, one token for
//! tg: page faults, cache allocation), then runs `-r` times; the rate of every repetition is
//! `tokens / seconds`, and the mean and sample standard deviation of those rates are reported.
//! Bench times the session directly (random tokens, no sampling, as `llama-bench` does) but
//! resolves depth exactly as `generate` and `chat` do: `select` (the default) computes every
//! loop; `--exit-mode skip` cuts loops at `--exit-threshold`, else at the file's
//! `ouro.early_exit_threshold` (unless `--loops` is given).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use ouro::engine::{Event, GenStats, GenerateConfig, Generator, Speculation};
use ouro::model::{Model, WeightTensor};
use ouro::sampler::SamplerConfig;
use ouro::sampler::SplitMix64;
use ouro::session::{ExitMode, Session};

use super::common::{file_name, kv_type, load_model, KvTypeArg, RunArgs, SpecArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// GGUF model file (default: $OURO_MODEL, else the demo model models/ouro-demo.gguf).
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
    /// Prompt tokens for the prompt-processing test (0 = skip it).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 128)]
    pub n_prompt: usize,
    /// Tokens for the generation test (0 = skip it).
    #[arg(short = 'n', long = "n-gen", default_value_t = 64)]
    pub n_gen: usize,
    /// Tokens already in the cache when each test starts (prefilled untimed), as llama-bench's
    /// `-d`: decode and prompt speed at that context depth.
    #[arg(short = 'd', long = "n-depth", default_value_t = 0)]
    pub n_depth: usize,
    /// Timed repetitions of each test (after one untimed warm-up).
    #[arg(short = 'r', long = "repetitions", default_value_t = 3)]
    pub repetitions: usize,
    /// Seed of the random token ids.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// KV cache element type.
    #[arg(long, value_enum, default_value_t = KvTypeArg::F16)]
    pub kv_type: KvTypeArg,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub spec: SpecArgs,
}

/// Mean and sample standard deviation of the per-repetition rates.
#[derive(Serialize, Debug, Clone)]
pub struct Rate {
    pub mean: f64,
    pub sd: f64,
    /// tok/s of each timed repetition.
    pub samples: Vec<f64>,
}

impl Rate {
    fn from_samples(samples: Vec<f64>) -> Rate {
        let n = samples.len() as f64;
        let mean = samples.iter().sum::<f64>() / n;
        let sd = if samples.len() > 1 {
            (samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Rate { mean, sd, samples }
    }
}

/// Everything `--json` prints.
#[derive(Serialize, Debug)]
pub struct Report {
    pub model: String,
    pub arch: &'static str,
    /// Type of the layer matrices (`blk.0.ffn_up`), e.g. `Q4_0`.
    pub weight_type: String,
    pub file_bytes: u64,
    pub simd: &'static str,
    pub threads: usize,
    /// Depth asked for: `--loops`, else the file's n_loops.
    pub loops: usize,
    pub exit_mode: &'static str,
    pub exit_threshold: Option<f32>,
    pub n_prompt: usize,
    pub n_gen: usize,
    /// Cached tokens each test started from (`-d`).
    pub n_depth: usize,
    pub repetitions: usize,
    pub pp_tok_per_s: Option<Rate>,
    pub tg_tok_per_s: Option<Rate>,
    /// VmHWM of this process after all tests (None off Linux).
    pub peak_rss_bytes: Option<u64>,
    /// Bytes of one pass over the layer stack's matrices.
    pub stack_bytes: u64,
    /// Bytes of the output head matrix.
    pub head_bytes: u64,
    /// Weight bytes streamed per generated token: stack × `mean_loops` + head.
    pub weight_bytes_per_token: u64,
    /// `weight_bytes_per_token` × mean tg tok/s, in 10^9 bytes per second.
    pub gb_per_s: Option<f64>,
    /// (token, physical layer) evaluations over the timed tg repetitions.
    pub layer_evals: u64,
    /// Loops actually computed per generated token (below `loops` only in skip mode).
    pub mean_loops: f64,
    /// Bytes of the matrices repacked at load into resident panels (0 with `OURO_REPACK=0` or
    /// on a kernel path without resident kernels); their file pages are released.
    pub repacked_bytes: u64,
    /// KV cache bytes at the end of the last test (`-d` + `-p` or `-d` + `-n` positions).
    pub kv_bytes: usize,
    /// With `--draft-loops`: greedy generation through the engine with and without
    /// self-speculation, alternating, from the same start.
    pub speculation: Option<SpecReport>,
}

/// Self-speculation measured: `-n` greedy tokens after `-d` random tokens and one more.
#[derive(Serialize, Debug)]
pub struct SpecReport {
    pub draft_loops: usize,
    pub draft_max: usize,
    /// Generated tok/s of plain greedy decoding (full depth).
    pub plain_tok_per_s: Rate,
    /// Generated tok/s with speculation.
    pub spec_tok_per_s: Rate,
    pub drafted: usize,
    pub accepted: usize,
    pub acceptance: f64,
    /// Accepted drafts + 1 per verification batch.
    pub tokens_per_verify: f64,
}

/// `n` seeded token ids below `vocab_size`, the same on every machine.
fn random_tokens(rng: &mut SplitMix64, n: usize, vocab_size: usize) -> Vec<u32> {
    (0..n)
        .map(|_| (rng.next_u64() % vocab_size as u64) as u32)
        .collect()
}

/// VmHWM (peak resident set) of this process from /proc/self/status (Linux; None elsewhere).
#[cfg(target_os = "linux")]
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(not(target_os = "linux"))]
fn peak_rss_bytes() -> Option<u64> {
    None
}

fn matrix_bytes(layer_matrices: &[&WeightTensor]) -> u64 {
    layer_matrices.iter().map(|t| t.n_bytes as u64).sum()
}

/// Bytes of every matrix of the layer stack, and of the output head.
fn weight_bytes(model: &Model) -> (u64, u64) {
    let w = model.weights();
    let stack = w
        .layers
        .iter()
        .map(|l| {
            matrix_bytes(&[
                &l.attn_q,
                &l.attn_k,
                &l.attn_v,
                &l.attn_output,
                &l.ffn_gate,
                &l.ffn_up,
                &l.ffn_down,
            ])
        })
        .sum();
    (stack, w.output.n_bytes as u64)
}

/// One timed prefill of `tokens` into an empty cache; tok/s.
fn time_pp(session: &mut Session, depth: &[u32], tokens: &[u32]) -> Result<f64> {
    start_at_depth(session, depth)?;
    let start = Instant::now();
    session.prefill(tokens)?;
    Ok(tokens.len() as f64 / start.elapsed().as_secs_f64())
}

/// An empty cache, then `depth` prefilled untimed (its work kept out of the statistics).
fn start_at_depth(session: &mut Session, depth: &[u32]) -> Result<()> {
    session.reset();
    if !depth.is_empty() {
        session.prefill(depth)?;
    }
    session.reset_stats();
    Ok(())
}

/// `tokens.len()` timed single-token steps after `depth` cached tokens; tok/s.
fn time_tg(session: &mut Session, depth: &[u32], tokens: &[u32]) -> Result<f64> {
    start_at_depth(session, depth)?;
    let start = Instant::now();
    for &t in tokens {
        session.step(t)?;
    }
    Ok(tokens.len() as f64 / start.elapsed().as_secs_f64())
}

/// `n` greedy tokens through the engine after `start` (prefilled untimed, `--ignore-eos`);
/// generated tok/s and the run's stats.
fn time_generation(
    session: &mut Session,
    start: &[u32],
    n: usize,
    speculation: Option<Speculation>,
) -> Result<(f64, GenStats)> {
    session.reset();
    let cfg = GenerateConfig {
        sampler: SamplerConfig {
            temp: 0.0,
            ..SamplerConfig::default()
        },
        max_tokens: Some(n),
        ignore_eos: true,
        speculation,
        ..GenerateConfig::default()
    };
    for event in Generator::new(session, start, 0, cfg)? {
        if let Event::Done { stats, .. } = event? {
            return Ok((stats.gen_tok_per_s(), stats));
        }
    }
    bail!("the generation ended without a result")
}

fn human_bytes(b: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let b = b as f64;
    if b >= GIB {
        format!("{:.2} GiB", b / GIB)
    } else {
        format!("{:.1} MiB", b / MIB)
    }
}

/// Decimal bytes as GB, or MB below 0.1 GB.
fn si_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e8 {
        format!("{:.3} GB", b / 1e9)
    } else {
        format!("{:.3} MB", b / 1e6)
    }
}

pub fn run(args: Args) -> Result<()> {
    if args.repetitions == 0 {
        bail!("-r must be at least 1");
    }
    if args.n_prompt == 0 && args.n_gen == 0 {
        bail!("nothing to measure: -p and -n are both 0");
    }
    let (model, path) = load_model(args.model.as_deref())?;
    let c = model.config();
    let ctx = args.n_prompt.max(args.n_gen) + args.n_depth;
    let opts = args
        .run
        .session_options(&model, ctx, kv_type(args.kv_type))?;
    let threads = opts.threads;
    let mut session = args
        .run
        .session(&model, opts)
        .context("cannot start a session")?;
    // The depth policy as generate and chat resolve it (the file's threshold included).
    let resolved = session.depth()?;
    let (loops, exit_threshold, exit_mode) = (resolved.loops, resolved.threshold, resolved.mode);
    let mut rng = SplitMix64(args.seed);
    let vocab_size = c.vocab_size;
    let depth = random_tokens(&mut rng, args.n_depth, vocab_size);

    let mut pp = None;
    if args.n_prompt > 0 {
        time_pp(
            &mut session,
            &depth,
            &random_tokens(&mut rng, args.n_prompt, vocab_size),
        )?;
        let mut samples = Vec::with_capacity(args.repetitions);
        for _ in 0..args.repetitions {
            samples.push(time_pp(
                &mut session,
                &depth,
                &random_tokens(&mut rng, args.n_prompt, vocab_size),
            )?);
        }
        pp = Some(Rate::from_samples(samples));
    }

    let mut tg = None;
    let (mut layer_evals, mut gen_tokens) = (0u64, 0u64);
    if args.n_gen > 0 {
        time_tg(
            &mut session,
            &depth,
            &random_tokens(&mut rng, 1, vocab_size),
        )?;
        let mut samples = Vec::with_capacity(args.repetitions);
        for _ in 0..args.repetitions {
            samples.push(time_tg(
                &mut session,
                &depth,
                &random_tokens(&mut rng, args.n_gen, vocab_size),
            )?);
            layer_evals += session.stats().layer_evals;
            gen_tokens += session.stats().gen_tokens as u64;
        }
        tg = Some(Rate::from_samples(samples));
    }

    let speculation = match args.spec.speculation() {
        Some(spec) if args.n_gen > 0 => {
            let mut opts = args
                .run
                .session_options(&model, ctx + 1, kv_type(args.kv_type))?;
            args.spec.adjust(&mut opts);
            let mut s = args
                .run
                .session(&model, opts)
                .context("cannot start a session")?;
            let mut start = depth.clone();
            start.extend(random_tokens(&mut rng, 1, vocab_size));
            let (mut plain, mut fast) = (Vec::new(), Vec::new());
            let mut last = GenStats::default();
            // Warm-up, then alternate plain and speculative runs.
            time_generation(&mut s, &start, args.n_gen, Some(spec))?;
            for _ in 0..args.repetitions {
                plain.push(time_generation(&mut s, &start, args.n_gen, None)?.0);
                let (rate, stats) = time_generation(&mut s, &start, args.n_gen, Some(spec))?;
                fast.push(rate);
                last = stats;
            }
            Some(SpecReport {
                draft_loops: spec.draft_loops,
                draft_max: spec.draft_max,
                plain_tok_per_s: Rate::from_samples(plain),
                spec_tok_per_s: Rate::from_samples(fast),
                drafted: last.drafted,
                accepted: last.accepted,
                acceptance: last.acceptance(),
                tokens_per_verify: last.tokens_per_verify(),
            })
        }
        _ => None,
    };

    let (stack_bytes, head_bytes) = weight_bytes(&model);
    let repacked_bytes = model.weights().resident_bytes();
    let mean_loops = if gen_tokens > 0 {
        layer_evals as f64 / (gen_tokens as f64 * c.n_layers as f64)
    } else {
        loops as f64
    };
    let weight_bytes_per_token = (stack_bytes as f64 * mean_loops) as u64 + head_bytes;
    let gb_per_s = tg
        .as_ref()
        .map(|r| weight_bytes_per_token as f64 * r.mean / 1e9);
    let report = Report {
        model: path.display().to_string(),
        arch: c.arch.name(),
        weight_type: model
            .weights()
            .layers
            .first()
            .map_or_else(String::new, |l| l.ffn_up.ty.to_string()),
        file_bytes: model.bytes().len() as u64,
        simd: ouro_simd::selected(),
        threads,
        loops,
        exit_mode: match exit_mode {
            ExitMode::Select => "select",
            ExitMode::Skip => "skip",
        },
        exit_threshold,
        n_prompt: args.n_prompt,
        n_gen: args.n_gen,
        n_depth: args.n_depth,
        repetitions: args.repetitions,
        pp_tok_per_s: pp,
        tg_tok_per_s: tg,
        peak_rss_bytes: peak_rss_bytes(),
        stack_bytes,
        head_bytes,
        weight_bytes_per_token,
        gb_per_s,
        layer_evals,
        mean_loops,
        repacked_bytes,
        kv_bytes: session.stats().kv_bytes,
        speculation,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        print_table(&mut out, &path, &report)?;
    }
    Ok(())
}

fn print_table(out: &mut impl Write, path: &Path, r: &Report) -> Result<()> {
    let depth = match r.exit_threshold {
        Some(q) => format!("{} ({} q={q})", r.loops, r.exit_mode),
        None => r.loops.to_string(),
    };
    writeln!(
        out,
        "| model | arch | type | size | threads | loops | test | t/s |"
    )?;
    writeln!(
        out,
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
    )?;
    let tests = [
        ("pp", r.n_prompt, &r.pp_tok_per_s),
        ("tg", r.n_gen, &r.tg_tok_per_s),
    ];
    let at = if r.n_depth > 0 {
        format!(" @ d{}", r.n_depth)
    } else {
        String::new()
    };
    for (name, n, rate) in tests {
        if let Some(rate) = rate {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {depth} | {name}{n}{at} | {:.2} ± {:.2} |",
                file_name(path),
                r.arch,
                r.weight_type,
                human_bytes(r.file_bytes),
                r.threads,
                rate.mean,
                rate.sd
            )?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "weights per generated token: {} (stack {} × {:.2} loops + head {}){}",
        si_bytes(r.weight_bytes_per_token),
        si_bytes(r.stack_bytes),
        r.mean_loops,
        si_bytes(r.head_bytes),
        r.gb_per_s
            .map(|g| format!(" → {g:.2} GB/s at tg{}", r.n_gen))
            .unwrap_or_default()
    )?;
    if let Some(sp) = &r.speculation {
        writeln!(
            out,
            "self-speculation (draft loops {}, up to {} drafts): greedy tg{} {:.2} ± {:.2} tok/s vs {:.2} ± {:.2} without ({:.2}×); {} of {} drafts accepted ({:.1} %), {:.2} tokens per verification",
            sp.draft_loops,
            sp.draft_max,
            r.n_gen,
            sp.spec_tok_per_s.mean,
            sp.spec_tok_per_s.sd,
            sp.plain_tok_per_s.mean,
            sp.plain_tok_per_s.sd,
            sp.spec_tok_per_s.mean / sp.plain_tok_per_s.mean,
            sp.accepted,
            sp.drafted,
            100.0 * sp.acceptance,
            sp.tokens_per_verify
        )?;
    }
    writeln!(
        out,
        "peak RSS: {} | simd: {} | repacked at load: {} | {} timed repetitions after a warm-up",
        r.peak_rss_bytes
            .map_or_else(|| "n/a".to_owned(), human_bytes),
        r.simd,
        human_bytes(r.repacked_bytes),
        r.repetitions
    )?;
    Ok(())
}
