//! The `/` commands of `ouro chat`: settings, system prompt, statistics, save and load.

use ouro::session::ExitMode;

use super::render::Think;
use super::{Chat, SavedChat};

/// The keys `/set` knows.
const SET_KEYS: &str = "temp top_p top_k min_p repeat_penalty seed loops threshold exit_mode think";

pub const HELP: &str = "\
commands:
  /help                 this list
  /exit                 leave (also Ctrl-D, or Ctrl-C on an empty line)
  /reset                forget the conversation (keeps the system prompt and settings)
  /system [TEXT]        show or set the system prompt (`/system none` clears it)
  /set [KEY VALUE]      show settings or change one: temp, top_p, top_k, min_p,
                        repeat_penalty, seed, loops (N or default), threshold (Q in [0,1] or default), exit_mode
                        (select|skip), think (show|hide)
  /stats                speed, loops per token, layer evaluations saved, KV memory
  /save FILE            write the conversation as JSON
  /load FILE            read a conversation saved with /save
  /depth on|off         colour tokens by the loop they exited at
Ctrl-C during an answer stops it; the conversation goes on. Start a line with // to send
a message that begins with /.";

impl Chat<'_> {
    pub(super) fn command(&mut self, cmd: &str) -> bool {
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
                    self.style.depth_view = true;
                    if self.style.color {
                        self.print_legend();
                    } else {
                        self.info("depth view on (plain text: loops per turn after each answer)");
                    }
                }
                "off" => {
                    self.style.depth_view = false;
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
                self.info(&format!("usage: /set KEY VALUE (keys: {SET_KEYS})"));
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
            "temp" | "temperature" | "top_p" | "top-p" | "min_p" | "min-p" | "repeat_penalty"
            | "repeat-penalty" => {
                let x: f32 = value.parse().map_err(|_| bad("a number"))?;
                let mut cfg = self.sampler_cfg.clone();
                match key {
                    "temp" | "temperature" => cfg.temp = x,
                    "top_p" | "top-p" => cfg.top_p = x,
                    "min_p" | "min-p" => cfg.min_p = x,
                    _ => cfg.repeat_penalty = x,
                }
                cfg.validate()?;
                self.sampler_cfg = cfg;
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
                self.style.think = match value {
                    "show" => Think::Show,
                    "hide" => Think::Hide,
                    _ => return Err(bad("show or hide")),
                };
            }
            _ => return Err(format!("unknown key (keys: {SET_KEYS})")),
        }
        self.session
            .set_depth(self.loops, self.threshold, self.exit_mode);
        Ok(())
    }

    fn settings_text(&self) -> String {
        let c = &self.sampler_cfg;
        let opt = |v: Option<String>| v.unwrap_or_else(|| "default".into());
        format!(
            "temp {} | top_p {} | top_k {} | min_p {} | repeat_penalty {} | seed {} | loops {} | threshold {} | exit_mode {} | think {} | depth {}",
            c.temp,
            c.top_p,
            c.top_k,
            c.min_p,
            c.repeat_penalty,
            c.seed,
            opt(self.loops.map(|l| l.to_string())),
            opt(self.threshold.map(|q| q.to_string())),
            match self.exit_mode {
                ExitMode::Select => "select",
                ExitMode::Skip => "skip",
            },
            match self.style.think {
                Think::Show => "show",
                Think::Hide => "hide",
            },
            if self.style.depth_view { "on" } else { "off" },
        )
    }

    fn stats_text(&self) -> String {
        let s = self.session.stats();
        let mut out = String::new();
        if let Some(t) = &self.last_turn {
            out.push_str(&format!(
                "last turn: prompt {} tokens ({:.1} tok/s), answer {} tokens ({:.1} tok/s), mean loops/token {:.2}\n",
                t.prompt_tokens,
                t.prompt_tok_per_s(),
                t.gen_tokens,
                t.gen_tok_per_s(),
                t.mean_loops()
            ));
        }
        out.push_str(&format!(
            "session: prompt {} tokens ({:.1} tok/s), generated {} tokens ({:.1} tok/s), mean loops/token {:.2}\n",
            s.prompt_tokens,
            s.prompt_tok_per_s(),
            s.gen_tokens,
            s.gen_tok_per_s(),
            s.mean_loops(),
        ));
        let saved = self.full_depth_evals.saturating_sub(s.layer_evals);
        let pct = if self.full_depth_evals > 0 {
            100.0 * saved as f64 / self.full_depth_evals as f64
        } else {
            0.0
        };
        let depth = self.session.depth().ok();
        match depth {
            Some(d) if d.mode == ExitMode::Select && d.threshold.is_some() => out.push_str(&format!(
                "early exit: select mode computes every loop ({} layer evaluations) and only picks the \
                 readout loop per token; `/set exit_mode skip` stops computing at the exit loop\n",
                s.layer_evals
            )),
            Some(d) if d.threshold.is_none() => out.push_str(&format!(
                "early exit: off (no threshold: every token runs {} loops; `/set threshold 0.6` and \
                 `/set exit_mode skip` cut loops) — {} layer evaluations\n",
                d.loops, s.layer_evals
            )),
            _ => out.push_str(&format!(
                "early exit (skip): {} layer evaluations run, {} saved ({:.1}%)\n",
                s.layer_evals, saved, pct
            )),
        }
        out.push_str(&format!(
            "kv cache: {:.2} MiB in use, {} of {} positions",
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
}
