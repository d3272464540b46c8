//! `ouro generate`: prefill a prompt, then stream what the engine generates.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use ouro::chat_template::Message;
use ouro::engine::{Event, GenerateConfig, Generator, StopReason};

use super::common::{kv_type, load_model, max_tokens, KvTypeArg, RunArgs, SamplingArgs, SpecArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// GGUF model file (default: $OURO_MODEL, else the demo model models/ouro-demo.gguf).
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
    /// Prompt text (special tokens such as <|im_start|> are parsed).
    #[arg(short = 'p', long)]
    pub prompt: String,
    /// Send the prompt as one user turn through the model's chat template (ChatML when the
    /// file has none), ending with the assistant's generation prompt.
    #[arg(long)]
    pub chat: bool,
    /// Tokens to generate at most; -1 = until a stop token or the context is full.
    #[arg(
        short = 'n',
        long,
        default_value_t = 128,
        allow_negative_numbers = true
    )]
    pub n_predict: i64,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Context size in tokens.
    #[arg(long, default_value_t = 4096)]
    pub ctx: usize,
    /// KV cache element type.
    #[arg(long, value_enum, default_value_t = KvTypeArg::F16)]
    pub kv_type: KvTypeArg,
    /// Do not stop at end-of-sequence tokens.
    #[arg(long)]
    pub ignore_eos: bool,
    /// Print special tokens (<|im_start|>, …) as text.
    #[arg(long)]
    pub special: bool,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub spec: SpecArgs,
}

pub fn run(args: Args) -> Result<()> {
    let sampler = args.sampling.config()?;
    let max_tokens = max_tokens(args.n_predict)?;
    let (model, _) = load_model(args.model.as_deref())?;
    let mut opts = args
        .run
        .session_options(&model, args.ctx, kv_type(args.kv_type))?;
    args.spec.adjust(&mut opts);
    let tok = model.tokenizer();
    let text = if args.chat {
        let (template, _) = model.chat_template().context("the model's chat template")?;
        template
            .render(&[Message::new("user", args.prompt.as_str())], true)
            .context("cannot render the chat template")?
    } else {
        args.prompt.clone()
    };
    let mut prompt: Vec<u32> = tok.bos_to_add().into_iter().collect();
    prompt.extend(tok.encode(&text, true)?);
    if prompt.is_empty() {
        bail!("the prompt is empty");
    }
    if prompt.len() > args.ctx {
        bail!(
            "the prompt has {} tokens but --ctx is {}",
            prompt.len(),
            args.ctx
        );
    }
    // Ctrl-C ends the generation cleanly: the text so far, a newline and the timings.
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C while the first is being honoured: leave now.
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")?;

    let mut session = args.run.session(&model, opts)?;
    let cfg = GenerateConfig {
        sampler,
        max_tokens,
        ignore_eos: args.ignore_eos,
        show_special: args.special,
        cache_last: false,
        speculation: args.spec.speculation(),
    };
    let events = Generator::new(&mut session, &prompt, 0, cfg)?.with_cancel(&cancel);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut generated = Vec::new();
    let mut loops = Vec::new();
    let mut done = None;
    for event in events {
        match event? {
            Event::Token { id, text, loops: l } => {
                generated.push(id);
                loops.push(l);
                if !args.json {
                    write!(out, "{text}")?;
                    out.flush()?;
                }
            }
            Event::Done {
                reason,
                stats,
                tail,
            } => {
                if !args.json {
                    write!(out, "{tail}")?;
                }
                done = Some((reason, stats));
            }
        }
    }
    let (reason, stats) = done.context("the generation ended without a result")?;
    if args.json {
        let doc = serde_json::json!({
            "prompt_tokens": prompt,
            "tokens": generated,
            "text": tok.decode(&generated),
            "loops": loops,
            "stop_reason": reason.as_str(),
            "prompt_tok_per_s": stats.prompt_tok_per_s(),
            "gen_tok_per_s": stats.gen_tok_per_s(),
            "layer_evals": stats.layer_evals,
            "full_depth_layer_evals": stats.full_depth_layer_evals,
            "speculation": args.spec.speculation().map(|s| serde_json::json!({
                "draft_loops": s.draft_loops,
                "draft_max": s.draft_max,
                "drafted": stats.drafted,
                "accepted": stats.accepted,
                "acceptance": stats.acceptance(),
                "verifies": stats.verifies,
                "tokens_per_verify": stats.tokens_per_verify(),
            })),
            "kv_bytes": session.stats().kv_bytes,
            "simd": ouro_simd::selected(),
        });
        writeln!(out, "{doc}")?;
    } else {
        writeln!(out)?;
        match reason {
            StopReason::ContextFull => eprintln!(
                "note: context of {} tokens is full; stopping",
                session.ctx()
            ),
            StopReason::Cancelled => eprintln!("[interrupted]"),
            StopReason::Stop(_) | StopReason::MaxTokens => {}
        }
        eprintln!(
            "prompt: {} tokens, {:.1} tok/s | generated: {} tokens, {:.1} tok/s | mean loops {:.2} | layer evals {} | simd {}",
            stats.prompt_tokens,
            stats.prompt_tok_per_s(),
            stats.gen_tokens,
            stats.gen_tok_per_s(),
            stats.mean_loops(),
            stats.layer_evals,
            ouro_simd::selected()
        );
        if stats.verifies > 0 {
            eprintln!(
                "speculation: {} drafted, {} accepted ({:.1} %), {:.2} tokens per verification",
                stats.drafted,
                stats.accepted,
                100.0 * stats.acceptance(),
                stats.tokens_per_verify()
            );
        }
    }
    if reason == StopReason::Cancelled {
        std::process::exit(130);
    }
    Ok(())
}
