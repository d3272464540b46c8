//! `ouro chat`: the interactive REPL (this file: arguments, input, one turn), its `/` commands
//! (`commands.rs`) and how answers are drawn (`render.rs`).
//!
//! Each turn renders the whole conversation with the model's chat template and prefills only
//! the part the KV cache does not hold yet (`ouro::engine::prefix`); the engine samples and
//! streams the answer, which stops at an end-of-turn token, after `-n` tokens, at a full
//! context or on Ctrl-C (which keeps the session). When a turn does not fit, the oldest turns
//! are dropped (the system prompt stays) and the rest is prefilled again. On a terminal:
//! rustyline with a history file, colours, the depth view, and lines typed while an answer
//! streams are queued and run next. With piped stdin: every line is a user turn, stdout gets
//! the answers only, everything else goes to stderr.

mod commands;
mod render;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rustyline::error::ReadlineError;

use ouro::chat_template::{ChatTemplate, Message, ThinkSplitter};
use ouro::engine::{prefix, Event, GenStats, GenerateConfig, Generator, Speculation, StopReason};
use ouro::model::Model;
use ouro::sampler::SamplerConfig;
use ouro::session::{ExitMode, Session};

use super::common::{kv_type, load_model, max_tokens, KvTypeArg, RunArgs, SamplingArgs, SpecArgs};
use render::{Style, Think};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// GGUF model file (default: $OURO_MODEL, else the demo model models/ouro-demo.gguf;
    /// models/README.md says how to get or convert others).
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
    /// System prompt for the conversation.
    #[arg(long)]
    pub system: Option<String>,
    /// Tokens per answer at most (an answer also ends at the end-of-turn token); -1 = until
    /// the end of the turn or the context.
    #[arg(
        short = 'n',
        long,
        default_value_t = 1024,
        allow_negative_numbers = true
    )]
    pub n_predict: i64,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Context size in tokens (the conversation must fit; the oldest turns are dropped when it
    /// does not). Default: the context length the model was trained with.
    #[arg(long)]
    pub ctx: Option<usize>,
    /// KV cache element type.
    #[arg(long, value_enum, default_value_t = KvTypeArg::F16)]
    pub kv_type: KvTypeArg,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Colour each generated token by the loop it exited at (terminal only).
    #[arg(long)]
    pub show_depth: bool,
    /// Show special tokens (<|im_start|>, …) in answers as text.
    #[arg(long)]
    pub special: bool,
    /// Plain text output, no colours.
    #[arg(long)]
    pub no_color: bool,
}

/// The JSON written by `/save` and read by `/load`.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedChat {
    system: Option<String>,
    messages: Vec<Message>,
}

/// Ctrl-C while generating stops the answer; anywhere else it ends the program.
struct Interrupt {
    generating: AtomicBool,
    stop: AtomicBool,
}

struct Chat<'m> {
    model: &'m Model,
    session: Session<'m>,
    template: ChatTemplate,
    sampler_cfg: SamplerConfig,
    max_tokens: Option<usize>,
    show_special: bool,
    speculation: Option<Speculation>,
    system: Option<String>,
    messages: Vec<Message>,
    /// Tokens in the KV cache, in order (`session.n_past() == tokens.len()`).
    tokens: Vec<u32>,
    /// The text those tokens stand for.
    text: String,
    /// Answers so far: the sampler's seed moves on by one per answer, so a chat is
    /// reproducible and its first answer equals `generate --chat` with the same seed.
    turns: u64,
    loops: Option<usize>,
    threshold: Option<f32>,
    exit_mode: ExitMode,
    style: Style,
    legend_shown: bool,
    interactive: bool,
    /// Layer evaluations a run without early exit would have made (for "saved").
    full_depth_evals: u64,
    last_turn: Option<GenStats>,
    interrupt: Arc<Interrupt>,
}

pub fn run(args: Args) -> Result<()> {
    let sampler_cfg = args.sampling.config()?;
    let max_tokens = max_tokens(args.n_predict)?;
    let (model, path) = load_model(args.model.as_deref())?;
    let trained_ctx = model.config().context_length;
    let ctx = match args.ctx {
        Some(c) => {
            if trained_ctx > 0 && c > trained_ctx {
                eprintln!(
                    "warning: --ctx {c} is more than the {trained_ctx} tokens this model was trained \
                     with; answers past that length may degrade"
                );
            }
            c
        }
        None if trained_ctx > 0 => trained_ctx,
        None => 4096,
    };
    let mut opts = args
        .run
        .session_options(&model, ctx, kv_type(args.kv_type))?;
    args.spec.adjust(&mut opts);
    let (loops, threshold, exit_mode) = (opts.loops, opts.exit_threshold, opts.exit_mode);
    let session = args.run.session(&model, opts)?;
    let (template, notice) = model.chat_template().context("the model's chat template")?;
    if let Some(n) = notice {
        eprintln!("{n}");
    }
    let interactive = std::io::stdin().is_terminal();
    let color = std::io::stdout().is_terminal()
        && !args.no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let interrupt = Arc::new(Interrupt {
        generating: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    });
    let handler = Arc::clone(&interrupt);
    ctrlc::set_handler(move || {
        if handler.generating.load(Ordering::SeqCst) {
            handler.stop.store(true, Ordering::SeqCst);
        } else {
            println!();
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")?;
    let mut chat = Chat {
        model: &model,
        session,
        template,
        sampler_cfg,
        max_tokens,
        show_special: args.special,
        speculation: args.spec.speculation(),
        system: args.system.clone(),
        messages: Vec::new(),
        tokens: Vec::new(),
        text: String::new(),
        turns: 0,
        loops,
        threshold,
        exit_mode,
        style: Style {
            color,
            depth_view: args.show_depth,
            think: Think::Show,
        },
        legend_shown: false,
        interactive,
        full_depth_evals: 0,
        last_turn: None,
        interrupt,
    };
    if interactive {
        chat.repl(&path)
    } else {
        chat.piped()
    }
}

/// Ctrl-C at the prompt: on an empty line it ends the chat, otherwise it clears the line.
struct CtrlCAtPrompt;

impl rustyline::ConditionalEventHandler for CtrlCAtPrompt {
    fn handle(
        &self,
        _evt: &rustyline::Event,
        _n: rustyline::RepeatCount,
        _positive: bool,
        ctx: &rustyline::EventContext,
    ) -> Option<rustyline::Cmd> {
        if ctx.line().is_empty() {
            Some(rustyline::Cmd::Interrupt)
        } else {
            Some(rustyline::Cmd::Kill(rustyline::Movement::WholeBuffer))
        }
    }
}

/// `$XDG_DATA_HOME/ouro/history`, else `~/.local/share/ouro/history`.
fn history_path() -> Option<PathBuf> {
    let data = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?)
            .join(".local")
            .join("share"),
    };
    Some(data.join("ouro").join("history"))
}

fn save_history(rl: &mut rustyline::DefaultEditor, path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // History is a convenience: a read-only data dir must not disturb the chat.
    let _ = rl.save_history(path);
}

impl<'m> Chat<'m> {
    /// Command output and notices: stdout on a terminal, stderr when piped (stdout = answers).
    fn info(&self, msg: &str) {
        if self.interactive {
            println!("{msg}");
        } else {
            eprintln!("{msg}");
        }
    }

    fn print_legend(&mut self) {
        if !self.style.color || self.legend_shown {
            return;
        }
        let n = self.loops.unwrap_or(self.model.config().n_loops);
        println!("{}", self.style.legend(n));
        self.legend_shown = true;
    }

    fn repl(&mut self, model_path: &Path) -> Result<()> {
        let mut rl = rustyline::DefaultEditor::new().context("cannot start line editing")?;
        rl.bind_sequence(
            rustyline::KeyEvent::ctrl('C'),
            rustyline::EventHandler::Conditional(Box::new(CtrlCAtPrompt)),
        );
        let history = history_path();
        if let Some(h) = &history {
            // A missing history file is the normal first run.
            let _ = rl.load_history(h);
        }
        let c = self.model.config();
        println!(
            "ouro chat: {} ({} layers x {} loops, context {} tokens); /help for commands, Ctrl-D to leave",
            model_path.display(),
            c.n_layers,
            self.loops.unwrap_or(c.n_loops),
            self.session.ctx()
        );
        if self.style.depth_view {
            self.print_legend();
        }
        // Lines typed or pasted while an answer streams wait in the terminal's buffer (and in
        // rustyline's, kept between calls by its `buffer-redux` feature) and are read next.
        loop {
            let line = match rl.readline("> ") {
                Ok(line) => line,
                Err(ReadlineError::Interrupted) | Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e).context("cannot read the input line"),
            };
            if !line.trim().is_empty() {
                let _ = rl.add_history_entry(line.as_str());
                if let Some(h) = &history {
                    save_history(&mut rl, h);
                }
            }
            if !self.handle_line(&line) {
                break;
            }
        }
        Ok(())
    }

    fn piped(&mut self) -> Result<()> {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let line = line.context("cannot read stdin")?;
            if !self.handle_line(&line) {
                break;
            }
        }
        Ok(())
    }

    /// One input line; false ends the session.
    fn handle_line(&mut self, line: &str) -> bool {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return true;
        }
        if let Some(rest) = line.strip_prefix("//") {
            self.turn(&format!("/{rest}"));
            return true;
        }
        if let Some(cmd) = line.strip_prefix('/') {
            return self.command(cmd.trim());
        }
        self.turn(line);
        true
    }

    /// The conversation as the template sees it.
    fn conversation(&self) -> Vec<Message> {
        let mut all = Vec::with_capacity(self.messages.len() + 1);
        if let Some(s) = &self.system {
            all.push(Message::new("system", s.clone()));
        }
        all.extend(self.messages.iter().cloned());
        all
    }

    /// Forget everything cached.
    fn clear_cache(&mut self) {
        self.session.reset();
        self.tokens.clear();
        self.text.clear();
    }

    /// One user turn: render, prefill the new part, stream the answer.
    fn turn(&mut self, user: &str) {
        self.messages.push(Message::new("user", user));
        match self.answer() {
            Ok(Some(answer)) => self.messages.push(Message::new("assistant", answer)),
            Ok(None) => {
                self.messages.pop();
            }
            Err(e) => {
                self.messages.pop();
                eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            }
        }
    }

    /// The rendering of this turn and its reuse plan, dropping the oldest turns (never the
    /// system prompt or the new question) until it fits with room to answer. `None` (with a
    /// message) when even the new question alone does not fit.
    fn fit_turn(&mut self) -> Result<Option<(String, prefix::ReusePlan)>> {
        let ctx = self.session.ctx();
        let tok = self.model.tokenizer();
        let mut dropped = 0;
        loop {
            let rendered = self.template.render(&self.conversation(), true)?;
            let plan = prefix::plan(&self.tokens, &self.text, &rendered, tok.bos_to_add(), |s| {
                tok.encode(s, true)
            })?;
            if plan.keep + plan.new.len() < ctx {
                if dropped > 0 {
                    self.info(&format!(
                        "[context full: dropped the {dropped} oldest message(s) to make room]"
                    ));
                }
                return Ok(Some((rendered, plan)));
            }
            // Drop the oldest message pair (user + assistant); the new question is last.
            if self.messages.len() <= 1 {
                self.info(&format!(
                    "context full: this message needs {} tokens and the context holds {ctx}; \
                     restart with a larger --ctx",
                    plan.keep + plan.new.len()
                ));
                return Ok(None);
            }
            let n = if self.messages.len() >= 3 { 2 } else { 1 };
            self.messages.drain(..n);
            dropped += n;
        }
    }

    /// Generate one answer; `None` if the turn could not start (context full).
    fn answer(&mut self) -> Result<Option<String>> {
        let Some((rendered, plan)) = self.fit_turn()? else {
            return Ok(None);
        };
        self.session.truncate(plan.keep);
        self.tokens.truncate(plan.keep);
        let n_cached = self.tokens.len();
        self.tokens.extend_from_slice(&plan.new);
        self.text = rendered.clone();

        let cfg = GenerateConfig {
            sampler: SamplerConfig {
                seed: self.sampler_cfg.seed.wrapping_add(self.turns),
                ..self.sampler_cfg.clone()
            },
            max_tokens: self.max_tokens,
            ignore_eos: false,
            show_special: self.show_special,
            cache_last: true,
            speculation: self.speculation,
        };
        self.turns += 1;
        self.interrupt.stop.store(false, Ordering::SeqCst);
        self.interrupt.generating.store(true, Ordering::SeqCst);
        let interrupt = Arc::clone(&self.interrupt);
        let result = self.stream_answer(&rendered, n_cached, cfg, &interrupt.stop);
        self.interrupt.generating.store(false, Ordering::SeqCst);
        let (generated, stats, end_note) = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(std::io::stdout());
                // After a failed forward pass the cache may hold part of a batch: forget it
                // all; the next turn prefills the whole conversation again.
                self.clear_cache();
                return Err(e);
            }
        };
        // The cache now holds the prompt and the answer tokens that were stepped (all of them
        // unless the context filled); `tokens` and `text` mirror it. The text is decoded from
        // the ids as a whole, so multi-token characters come out as the next rendering has them.
        let tok = self.model.tokenizer();
        let answer_cached = (self.session.n_past() - self.tokens.len()).min(generated.len());
        self.tokens.extend_from_slice(&generated[..answer_cached]);
        self.text = format!("{rendered}{}", tok.decode(&generated[..answer_cached]));
        debug_assert_eq!(self.session.n_past(), self.tokens.len());
        self.full_depth_evals += stats.full_depth_layer_evals;
        self.finish_answer(end_note.as_deref(), &stats);
        self.last_turn = Some(stats);
        Ok(Some(tok.decode(&generated)))
    }

    /// Run the engine and draw the answer as it streams.
    fn stream_answer(
        &mut self,
        rendered: &str,
        n_cached: usize,
        cfg: GenerateConfig,
        stop: &AtomicBool,
    ) -> Result<(Vec<u32>, GenStats, Option<String>)> {
        let style = self.style.clone();
        let ctx = self.session.ctx();
        let events =
            Generator::new(&mut self.session, &self.tokens, n_cached, cfg)?.with_cancel(stop);
        let mut splitter = ThinkSplitter::new(rendered);
        let mut pieces = Vec::new();
        let mut marked = false;
        let mut generated = Vec::new();
        let mut last_loop = 1;
        for event in events {
            pieces.clear();
            match event? {
                Event::Token { id, text, loops } => {
                    generated.push(id);
                    last_loop = loops;
                    splitter.push(&text, &mut pieces);
                    style.write_pieces(&pieces, loops, &mut marked);
                }
                Event::Done {
                    reason,
                    stats,
                    tail,
                } => {
                    splitter.push(&tail, &mut pieces);
                    splitter.flush(&mut pieces);
                    style.write_pieces(&pieces, last_loop, &mut marked);
                    let note = match reason {
                        StopReason::Cancelled => Some("[interrupted]".to_owned()),
                        StopReason::ContextFull => Some(format!(
                            "[context full at {ctx} tokens: the next turn drops the oldest turns; /reset to start over]"
                        )),
                        StopReason::Stop(_) | StopReason::MaxTokens => None,
                    };
                    return Ok((generated, stats, note));
                }
            }
        }
        bail!("the generation ended without a result")
    }

    fn finish_answer(&self, end_note: Option<&str>, stats: &GenStats) {
        {
            // A closed stdout (e.g. `| head`) must not kill the session.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out);
            let _ = out.flush();
        }
        if let Some(note) = end_note {
            if self.style.color {
                println!("\x1b[2m{note}\x1b[0m");
            } else {
                eprintln!("{note}");
            }
        }
        if self.style.depth_view {
            let n = self.loops.unwrap_or(self.model.config().n_loops);
            self.info(&self.style.histogram(&stats.loops, n));
        }
    }
}
