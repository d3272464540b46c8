//! `ouro chat`: the interactive REPL.
//!
//! Each turn renders the whole conversation with the model's chat template, then prefills only
//! the part the KV cache does not hold yet (the cache mirrors `tokens` / `text`; if the new
//! rendering does not extend `text`, the cache is cut back to the longest common token prefix).
//! Answers stream as they are sampled and stop at an end-of-turn token, after `-n` tokens, at a
//! full context or on Ctrl-C (which keeps the session). On a terminal: rustyline with a history
//! file, colours, the depth view. With piped stdin: every line is a user turn, stdout gets the
//! answers only, everything else goes to stderr.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rustyline::error::ReadlineError;

use crate::chat::{end_of_turn_tokens, ChatTemplate, Message};
use crate::cli::generate::{kv_type, load_model, model_path, KvTypeArg, RunArgs};
use crate::gguf::GgufFile;
use crate::model::Model;
use crate::sampler::{Sampler, SamplerConfig};
use crate::session::{ExitMode, Session, Stats};
use crate::tokenizer::StreamDecoder;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// GGUF model file (default: $OURO_MODEL, else the demo model models/ouro-demo.gguf;
    /// models/README.md says how to get or convert others).
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
    /// System prompt for the conversation.
    #[arg(long)]
    pub system: Option<String>,
    /// Tokens per answer at most (an answer also ends at the end-of-turn token).
    #[arg(short = 'n', long, default_value_t = 1024)]
    pub n_predict: usize,
    /// Temperature; 0 = greedy.
    #[arg(long, default_value_t = 1.0)]
    pub temp: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 0.7)]
    pub top_p: f32,
    /// Keep the K most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// RNG seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Context size in tokens (the whole conversation must fit).
    #[arg(long, default_value_t = 4096)]
    pub ctx: usize,
    /// KV cache element type.
    #[arg(long, value_enum, default_value_t = KvTypeArg::F16)]
    pub kv_type: KvTypeArg,
    #[command(flatten)]
    pub run: RunArgs,
    /// Colour each generated token by the loop it exited at (terminal only).
    #[arg(long)]
    pub show_depth: bool,
    /// Plain text output, no colours.
    #[arg(long)]
    pub no_color: bool,
}

const HELP: &str = "\
commands:
  /help                 this list
  /exit                 leave (also Ctrl-D, or Ctrl-C on an empty line)
  /reset                forget the conversation (keeps the system prompt and settings)
  /system [TEXT]        show or set the system prompt (`/system none` clears it)
  /set [KEY VALUE]      show settings or change one: temp, top_p, top_k, seed, loops
                        (N or default), threshold (Q in [0,1] or default), exit_mode
                        (select|skip), think (show|hide)
  /stats                speed, loops per token, layer evaluations saved, KV memory
  /save FILE            write the conversation as JSON
  /load FILE            read a conversation saved with /save
  /depth on|off         colour tokens by the loop they exited at
Ctrl-C during an answer stops it; the conversation goes on. Start a line with // to send
a message that begins with /.";

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Think {
    Show,
    Hide,
}

/// Loop colours for the depth view (xterm-256 indices), loop 1 first; deeper loops reuse the last.
const LOOP_COLORS: [u8; 8] = [39, 44, 78, 184, 208, 196, 201, 250];

fn loop_color(loop_1based: usize) -> u8 {
    LOOP_COLORS[loop_1based.clamp(1, LOOP_COLORS.len()) - 1]
}

/// What one answer cost, for `/stats`.
#[derive(Clone, Debug, Default)]
struct TurnStats {
    prompt_tokens: usize,
    prompt_secs: f64,
    gen_tokens: usize,
    gen_secs: f64,
    /// 1-based loops each answer token was read out at.
    loops: Vec<usize>,
}

impl TurnStats {
    fn mean_loops(&self) -> f64 {
        if self.loops.is_empty() {
            0.0
        } else {
            self.loops.iter().sum::<usize>() as f64 / self.loops.len() as f64
        }
    }
}

struct Chat<'m> {
    model: &'m Model,
    session: Session<'m>,
    template: ChatTemplate,
    stop_tokens: Vec<u32>,
    sampler_cfg: SamplerConfig,
    sampler: Sampler,
    system: Option<String>,
    messages: Vec<Message>,
    /// Tokens in the KV cache, in order (`session.n_past() == tokens.len()`).
    tokens: Vec<u32>,
    /// The text those tokens stand for.
    text: String,
    loops: Option<usize>,
    threshold: Option<f32>,
    exit_mode: ExitMode,
    think: Think,
    depth_view: bool,
    legend_shown: bool,
    color: bool,
    interactive: bool,
    max_tokens: usize,
    /// Layer evaluations a run without early exit would have made (for "saved").
    full_depth_evals: u64,
    last_turn: Option<TurnStats>,
    interrupt: Arc<Interrupt>,
}

pub fn run(args: Args) -> Result<()> {
    let path = model_path(args.model.as_deref())?;
    check_sampling(args.temp, args.top_p)?;
    if args.n_predict == 0 {
        bail!("-n must be at least 1");
    }
    let model = load_model(&path)?;
    let opts = args
        .run
        .session_options(&model, args.ctx, kv_type(args.kv_type))?;
    let (loops, threshold, exit_mode) = (opts.loops, opts.exit_threshold, opts.exit_mode);
    let session = Session::new(&model, opts)?;
    let (bos, eos) = special_token_strings(&model);
    let (template, notice) = ChatTemplate::from_source_or_chatml(model.chat_template(), &bos, &eos)
        .context("the model's chat template")?;
    if let Some(n) = notice {
        eprintln!("{n}");
    }
    let tok = model.tokenizer();
    let stop_tokens = end_of_turn_tokens(model.stop_tokens(), |s| tok.token_to_id(s));
    let sampler_cfg = SamplerConfig {
        temp: args.temp,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
        ..SamplerConfig::default()
    };
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
        stop_tokens,
        sampler: Sampler::new(sampler_cfg.clone()),
        sampler_cfg,
        system: args.system.clone(),
        messages: Vec::new(),
        tokens: Vec::new(),
        text: String::new(),
        loops,
        threshold,
        exit_mode,
        think: Think::Show,
        depth_view: args.show_depth,
        legend_shown: false,
        color,
        interactive,
        max_tokens: args.n_predict,
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

fn check_sampling(temp: f32, top_p: f32) -> Result<()> {
    if !(temp >= 0.0 && temp.is_finite()) {
        bail!("temperature must be >= 0, got {temp}");
    }
    if !(top_p > 0.0 && top_p <= 1.0) {
        bail!("top-p must be in (0, 1], got {top_p}");
    }
    Ok(())
}

/// `bos_token` / `eos_token` for the template, from `tokenizer.ggml.{bos,eos}_token_id`.
pub fn special_token_strings(model: &Model) -> (String, String) {
    let Ok(g) = GgufFile::parse(model.bytes()) else {
        return (String::new(), String::new());
    };
    let tok = model.tokenizer();
    let get = |key: &str| {
        g.get(key)
            .and_then(|v| v.as_u64())
            .and_then(|id| u32::try_from(id).ok())
            .and_then(|id| tok.token_str(id))
            .unwrap_or_default()
    };
    (
        get("tokenizer.ggml.bos_token_id"),
        get("tokenizer.ggml.eos_token_id"),
    )
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

/// Splits streamed text into thinking (`<think>…</think>`, tags included) and answer pieces,
/// holding back a possible partial tag at the end.
#[derive(Default)]
struct ThinkSplitter {
    in_think: bool,
    pending: String,
}

impl ThinkSplitter {
    const OPEN: &'static str = "<think>";
    const CLOSE: &'static str = "</think>";

    fn push(&mut self, text: &str, out: &mut Vec<(bool, String)>) {
        self.pending.push_str(text);
        loop {
            let tag = if self.in_think {
                Self::CLOSE
            } else {
                Self::OPEN
            };
            if let Some(i) = self.pending.find(tag) {
                let before: String = self.pending.drain(..i).collect();
                let tag_text: String = self.pending.drain(..tag.len()).collect();
                if self.in_think {
                    out.push((true, before + &tag_text));
                } else {
                    out.push((false, before));
                    out.push((true, tag_text));
                }
                self.in_think = !self.in_think;
                continue;
            }
            // Keep the longest tail that could still grow into `tag`.
            let keep = (1..tag.len().min(self.pending.len() + 1))
                .rev()
                .find(|&k| {
                    self.pending.is_char_boundary(self.pending.len() - k)
                        && tag.starts_with(&self.pending[self.pending.len() - k..])
                })
                .unwrap_or(0);
            let emit: String = self.pending.drain(..self.pending.len() - keep).collect();
            out.push((self.in_think, emit));
            return;
        }
    }

    fn flush(&mut self, out: &mut Vec<(bool, String)>) {
        out.push((self.in_think, std::mem::take(&mut self.pending)));
    }
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
        if self.depth_view {
            self.print_legend();
        }
        loop {
            match rl.readline("> ") {
                Ok(line) => {
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
                Err(ReadlineError::Interrupted) | Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e).context("cannot read the input line"),
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

    fn command(&mut self, cmd: &str) -> bool {
        let (name, arg) = match cmd.split_once(char::is_whitespace) {
            Some((n, a)) => (n, a.trim()),
            None => (cmd, ""),
        };
        match name {
            "help" | "?" => self.info(HELP),
            "exit" | "quit" | "q" => return false,
            "reset" => {
                self.messages.clear();
                self.session.reset();
                self.tokens.clear();
                self.text.clear();
                self.info("conversation cleared");
            }
            "system" => self.system_command(arg),
            "set" => self.set_command(arg),
            "stats" => self.info(&self.stats_text()),
            "save" => self.save(arg),
            "load" => self.load(arg),
            "depth" => match arg {
                "on" => {
                    self.depth_view = true;
                    if self.color {
                        self.print_legend();
                    } else {
                        self.info("depth view on (plain text: loops per turn after each answer)");
                    }
                }
                "off" => {
                    self.depth_view = false;
                    self.info("depth view off");
                }
                _ => self.info("usage: /depth on|off"),
            },
            _ => self.info(&format!(
                "unknown command /{name}; /help lists the commands"
            )),
        }
        true
    }

    fn system_command(&mut self, arg: &str) {
        if arg.is_empty() {
            match &self.system {
                Some(s) => self.info(&format!("system prompt: {s}")),
                None => self.info("no system prompt; /system TEXT sets one"),
            }
        } else if arg == "none" {
            self.system = None;
            self.info("system prompt cleared (takes effect on the next turn)");
        } else {
            self.system = Some(arg.to_owned());
            self.info("system prompt set (takes effect on the next turn)");
        }
    }

    fn set_command(&mut self, arg: &str) {
        let mut parts = arg.split_whitespace();
        let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
            if arg.is_empty() {
                self.info(&self.settings_text());
            } else {
                self.info("usage: /set KEY VALUE (keys: temp top_p top_k seed loops threshold exit_mode think)");
            }
            return;
        };
        match self.apply_setting(key, value) {
            Ok(()) => {
                self.info(&format!("{key} = {value}"));
                let trained = self.model.config().n_loops;
                if self.loops.is_some_and(|k| k > trained) && key == "loops" {
                    self.info(&format!(
                        "note: this model was trained with {trained} loops; more may lower quality"
                    ));
                }
            }
            Err(msg) => self.info(&format!("/set {key}: {msg} (unchanged)")),
        }
    }

    /// Validate and apply one setting; on error nothing changes.
    fn apply_setting(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bad = |what: &str| format!("{value:?} is not {what}");
        match key {
            "temp" | "temperature" => {
                let t: f32 = value.parse().map_err(|_| bad("a number"))?;
                check_sampling(t, self.sampler_cfg.top_p).map_err(|e| e.to_string())?;
                self.sampler_cfg.temp = t;
            }
            "top_p" | "top-p" => {
                let p: f32 = value.parse().map_err(|_| bad("a number"))?;
                check_sampling(self.sampler_cfg.temp, p).map_err(|e| e.to_string())?;
                self.sampler_cfg.top_p = p;
            }
            "top_k" | "top-k" => {
                self.sampler_cfg.top_k = value.parse().map_err(|_| bad("a whole number >= 0"))?;
            }
            "seed" => {
                self.sampler_cfg.seed = value.parse().map_err(|_| bad("a whole number >= 0"))?;
            }
            "loops" => {
                let loops = if value == "default" {
                    None
                } else {
                    let k: usize = value.parse().map_err(|_| bad("a whole number >= 1"))?;
                    if k == 0 {
                        return Err("loops must be at least 1".into());
                    }
                    Some(k)
                };
                self.loops = loops;
            }
            "threshold" | "exit_threshold" => {
                let q = if value == "default" {
                    None
                } else {
                    let q: f32 = value.parse().map_err(|_| bad("a number in [0, 1]"))?;
                    if !(0.0..=1.0).contains(&q) {
                        return Err(format!("{q} is outside [0, 1]"));
                    }
                    Some(q)
                };
                self.threshold = q;
            }
            "exit_mode" | "exit-mode" => {
                self.exit_mode = match value {
                    "select" => ExitMode::Select,
                    "skip" => ExitMode::Skip,
                    _ => return Err(bad("select or skip")),
                };
            }
            "think" => {
                self.think = match value {
                    "show" => Think::Show,
                    "hide" => Think::Hide,
                    _ => return Err(bad("show or hide")),
                };
            }
            _ => {
                return Err(
                    "unknown key (temp top_p top_k seed loops threshold exit_mode think)".into(),
                )
            }
        }
        self.sampler = Sampler::new(self.sampler_cfg.clone());
        self.session
            .set_depth(self.loops, self.threshold, self.exit_mode);
        Ok(())
    }

    fn settings_text(&self) -> String {
        let c = &self.sampler_cfg;
        let opt = |v: Option<String>| v.unwrap_or_else(|| "default".into());
        format!(
            "temp {} | top_p {} | top_k {} | seed {} | loops {} | threshold {} | exit_mode {} | think {} | depth {}",
            c.temp,
            c.top_p,
            c.top_k,
            c.seed,
            opt(self.loops.map(|l| l.to_string())),
            opt(self.threshold.map(|q| q.to_string())),
            match self.exit_mode {
                ExitMode::Select => "select",
                ExitMode::Skip => "skip",
            },
            match self.think {
                Think::Show => "show",
                Think::Hide => "hide",
            },
            if self.depth_view { "on" } else { "off" },
        )
    }

    fn stats_text(&self) -> String {
        let s: &Stats = self.session.stats();
        let mut out = String::new();
        if let Some(t) = &self.last_turn {
            out.push_str(&format!(
                "last turn: prompt {} tokens ({:.1} tok/s), answer {} tokens ({:.1} tok/s), mean loops/token {:.2}\n",
                t.prompt_tokens,
                rate(t.prompt_tokens, t.prompt_secs),
                t.gen_tokens,
                rate(t.gen_tokens, t.gen_secs),
                t.mean_loops()
            ));
        }
        let saved = self.full_depth_evals.saturating_sub(s.layer_evals);
        let pct = if self.full_depth_evals > 0 {
            100.0 * saved as f64 / self.full_depth_evals as f64
        } else {
            0.0
        };
        out.push_str(&format!(
            "session: prompt {} tokens ({:.1} tok/s), generated {} tokens ({:.1} tok/s), mean loops/token {:.2}\n\
             early exit: {} layer evaluations run, {} saved ({:.1}%)\n\
             kv cache: {:.2} MiB in use, {} of {} positions",
            s.prompt_tokens,
            s.prompt_tok_per_s(),
            s.gen_tokens,
            s.gen_tok_per_s(),
            s.mean_loops(),
            s.layer_evals,
            saved,
            pct,
            s.kv_bytes as f64 / (1024.0 * 1024.0),
            self.session.n_past(),
            self.session.ctx()
        ));
        out
    }

    fn save(&self, arg: &str) {
        if arg.is_empty() {
            self.info("usage: /save FILE");
            return;
        }
        let doc = SavedChat {
            system: self.system.clone(),
            messages: self.messages.clone(),
        };
        let result = serde_json::to_string_pretty(&doc)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(arg, json + "\n").map_err(|e| e.to_string()));
        match result {
            Ok(()) => self.info(&format!("saved {} messages to {arg}", self.messages.len())),
            Err(e) => self.info(&format!("cannot save to {arg}: {e}")),
        }
    }

    fn load(&mut self, arg: &str) {
        if arg.is_empty() {
            self.info("usage: /load FILE");
            return;
        }
        let doc = std::fs::read_to_string(arg)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<SavedChat>(&text).map_err(|e| e.to_string()));
        match doc {
            Ok(doc) => {
                self.system = doc.system;
                self.messages = doc.messages;
                self.info(&format!(
                    "loaded {} messages from {arg} (prefilled with the next turn)",
                    self.messages.len()
                ));
            }
            Err(e) => self.info(&format!("cannot load {arg}: {e}")),
        }
    }

    fn print_legend(&mut self) {
        if !self.color || self.legend_shown {
            return;
        }
        let n = self.loops.unwrap_or(self.model.config().n_loops);
        let mut line = String::from("depth view: tokens coloured by exit loop ");
        for l in 1..=n {
            line.push_str(&format!("\x1b[38;5;{}m■ {l}\x1b[0m ", loop_color(l)));
        }
        println!("{line}");
        self.legend_shown = true;
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

    /// The tokens to prefill for this turn, after cutting the cache back to what still matches.
    /// `None` (with a message) when they do not fit in the context.
    fn new_tokens(&mut self, rendered: &str) -> Result<Option<Vec<u32>>> {
        let tok = self.model.tokenizer();
        let ctx = self.session.ctx();
        let (keep, mut new) = match rendered.strip_prefix(self.text.as_str()) {
            Some(suffix) if !self.tokens.is_empty() => {
                (self.tokens.len(), tok.encode(suffix, true)?)
            }
            _ => {
                let mut all: Vec<u32> = Vec::new();
                let encoded = tok.encode(rendered, true)?;
                if let Some(b) = tok.bos_to_add() {
                    if encoded.first() != Some(&b) {
                        all.push(b);
                    }
                }
                all.extend(encoded);
                let common = self
                    .tokens
                    .iter()
                    .zip(&all)
                    .take_while(|(a, b)| a == b)
                    .count();
                (common, all.split_off(common))
            }
        };
        let (keep, new) = if new.is_empty() {
            // Nothing new to read: re-run the last token to get logits to sample from.
            if keep == 0 {
                bail!("the chat template rendered nothing");
            }
            let last = self.tokens[keep - 1];
            new.push(last);
            (keep - 1, new)
        } else {
            (keep, new)
        };
        if keep + new.len() >= ctx {
            self.info(&format!(
                "context full: this turn needs {} tokens, the context holds {ctx} and {keep} are in use. \
                 /reset to start over (or restart with a larger --ctx)",
                new.len()
            ));
            return Ok(None);
        }
        self.session.truncate(keep);
        self.tokens.truncate(keep);
        Ok(Some(new))
    }

    /// Generate one answer; `None` if the turn could not start (context full).
    fn answer(&mut self) -> Result<Option<String>> {
        let rendered = self.template.render(&self.conversation(), true)?;
        let Some(new) = self.new_tokens(&rendered)? else {
            return Ok(None);
        };
        let c = self.model.config();
        let depth = self.loops.unwrap_or(c.n_loops) as u64;
        let n_layers = c.n_layers as u64;
        let tok = self.model.tokenizer();
        let mut turn = TurnStats::default();

        self.interrupt.stop.store(false, Ordering::SeqCst);
        self.interrupt.generating.store(true, Ordering::SeqCst);
        let t0 = Instant::now();
        let first = self.session.prefill(&new);
        turn.prompt_secs = t0.elapsed().as_secs_f64();
        turn.prompt_tokens = new.len();
        let first = match first {
            Ok(f) => f,
            Err(e) => {
                self.abort();
                return Err(e.into());
            }
        };
        self.full_depth_evals += new.len() as u64 * depth * n_layers;
        self.tokens.extend_from_slice(&new);
        self.text = rendered.clone();
        let base = self.tokens.len();

        let (mut logits, mut exit_loop) = (first.logits, first.exit_loop);
        let mut stream = StreamDecoder::new();
        let mut splitter = ThinkSplitter {
            in_think: rendered.trim_end().ends_with(ThinkSplitter::OPEN),
            pending: String::new(),
        };
        let mut generated: Vec<u32> = Vec::new();
        let mut pieces = Vec::new();
        let mut thinking_marked = false;
        let mut end_note = None;
        let t1 = Instant::now();
        loop {
            if self.interrupt.stop.load(Ordering::SeqCst) {
                end_note = Some("[interrupted]".to_owned());
                break;
            }
            if self.session.n_past() >= self.session.ctx() {
                end_note = Some(format!(
                    "[context full at {} tokens: /reset to start over, or restart with a larger --ctx]",
                    self.session.ctx()
                ));
                break;
            }
            let id = self.sampler.sample(&mut logits, &self.tokens);
            if self.stop_tokens.contains(&id) {
                break;
            }
            generated.push(id);
            turn.loops.push(exit_loop + 1);
            pieces.clear();
            splitter.push(&stream.push(tok, id), &mut pieces);
            self.write_pieces(&pieces, exit_loop + 1, &mut thinking_marked);
            // Every answer token goes into the cache, the last one too: the next turn then
            // prefills exactly the template's text after the answer.
            let next = match self.session.step(id) {
                Ok(n) => n,
                Err(e) => {
                    println!();
                    self.abort();
                    return Err(e.into());
                }
            };
            self.full_depth_evals += depth * n_layers;
            self.tokens.push(id);
            if generated.len() >= self.max_tokens {
                break;
            }
            logits = next.logits;
            exit_loop = next.exit_loop;
        }
        self.interrupt.generating.store(false, Ordering::SeqCst);
        turn.gen_secs = t1.elapsed().as_secs_f64();
        turn.gen_tokens = generated.len();
        pieces.clear();
        splitter.push(&stream.flush(tok), &mut pieces);
        splitter.flush(&mut pieces);
        self.write_pieces(&pieces, exit_loop + 1, &mut thinking_marked);
        self.finish_answer(end_note.as_deref(), &turn);
        // `text` mirrors the cache: rebuild it from the decoded answer so that multi-token
        // characters decode as a whole (the piecewise decode above may split them).
        let answer_in_cache = &self.tokens[base..];
        self.text = format!("{rendered}{}", tok.decode(answer_in_cache));
        self.last_turn = Some(turn);
        Ok(Some(tok.decode(&generated)))
    }

    /// After a failed forward pass the cache may hold part of a batch: forget it all; the
    /// next turn prefills the whole conversation again.
    fn abort(&mut self) {
        self.interrupt.generating.store(false, Ordering::SeqCst);
        self.session.reset();
        self.tokens.clear();
        self.text.clear();
    }

    /// Write answer pieces; hidden thinking shows as one dim "(thinking…)" on a terminal.
    fn write_pieces(&self, pieces: &[(bool, String)], loop_1based: usize, marked: &mut bool) {
        let mut out = std::io::stdout().lock();
        for (thinking, text) in pieces {
            if text.is_empty() {
                continue;
            }
            if *thinking && self.think == Think::Hide {
                if self.color && !*marked {
                    let _ = write!(out, "\x1b[2m(thinking…)\x1b[0m ");
                    *marked = true;
                }
                continue;
            }
            let r = if self.color && (self.depth_view || *thinking) {
                let dim = if *thinking { "2;" } else { "" };
                let fg = if self.depth_view {
                    format!("38;5;{}", loop_color(loop_1based))
                } else {
                    "39".to_owned()
                };
                write!(out, "\x1b[{dim}{fg}m{text}\x1b[0m")
            } else {
                write!(out, "{text}")
            };
            // A closed stdout (e.g. `| head`) must not kill the session mid-turn.
            if r.is_err() {
                return;
            }
        }
        let _ = out.flush();
    }

    fn finish_answer(&self, end_note: Option<&str>, turn: &TurnStats) {
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out);
            let _ = out.flush();
        }
        if let Some(note) = end_note {
            if self.color {
                println!("\x1b[2m{note}\x1b[0m");
            } else {
                eprintln!("{note}");
            }
        }
        if self.depth_view {
            self.info(&self.histogram(turn));
        }
    }

    /// One line: tokens per exit loop for this answer.
    fn histogram(&self, turn: &TurnStats) -> String {
        const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
        let n = turn
            .loops
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(self.loops.unwrap_or(self.model.config().n_loops));
        let mut counts = vec![0usize; n + 1];
        for &l in &turn.loops {
            counts[l] += 1;
        }
        let max = counts.iter().copied().max().unwrap_or(0).max(1);
        let mut line = String::from("loops/token ");
        for (l, &c) in counts.iter().enumerate().skip(1) {
            if self.color {
                let bar = if c == 0 {
                    ' '
                } else {
                    BARS[(c * 7).div_ceil(max).min(7)]
                };
                line.push_str(&format!("\x1b[38;5;{}m{l}{bar}\x1b[0m ", loop_color(l)));
            } else {
                line.push_str(&format!("{l}:{c} "));
            }
        }
        line.push_str(&format!(
            "| mean {:.2} over {} tokens",
            turn.mean_loops(),
            turn.loops.len()
        ));
        line
    }
}

fn rate(n: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

fn save_history(rl: &mut rustyline::DefaultEditor, path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // History is a convenience: a read-only data dir must not disturb the chat.
    let _ = rl.save_history(path);
}

#[cfg(test)]
mod tests {
    use super::ThinkSplitter;

    fn split(chunks: &[&str], in_think: bool) -> Vec<(bool, String)> {
        let mut s = ThinkSplitter {
            in_think,
            pending: String::new(),
        };
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        s.flush(&mut out);
        // Merge neighbours of the same kind; drop empties.
        let mut merged: Vec<(bool, String)> = Vec::new();
        for (k, t) in out.into_iter().filter(|(_, t)| !t.is_empty()) {
            match merged.last_mut() {
                Some((lk, lt)) if *lk == k => lt.push_str(&t),
                _ => merged.push((k, t)),
            }
        }
        merged
    }

    #[test]
    fn think_tags_split_across_chunks() {
        let got = split(&["Hi <th", "ink>why", " not</thi", "nk> ok <", "3"], false);
        assert_eq!(
            got,
            vec![
                (false, "Hi ".to_owned()),
                (true, "<think>why not</think>".to_owned()),
                (false, " ok <3".to_owned()),
            ]
        );
    }

    #[test]
    fn starts_inside_thinking_after_a_think_prompt() {
        let got = split(&["plan…", "</think>\n\nAnswer"], true);
        assert_eq!(
            got,
            vec![
                (true, "plan…</think>".to_owned()),
                (false, "\n\nAnswer".to_owned())
            ]
        );
    }
}
