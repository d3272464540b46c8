//! Chat templates, end-of-turn strings and the think-block splitter.
//!
//! A GGUF stores its chat template as Jinja source in `tokenizer.chat_template`. We render it the
//! way transformers' `apply_chat_template` does: `trim_blocks` + `lstrip_blocks`, the loop
//! controls extension, Python string methods (`content.strip()`, `.split(…)`) through
//! minijinja-contrib's pycompat callback, a `raise_exception(message)` function, and the
//! variables `messages`, `add_generation_prompt`, `bos_token`, `eos_token` (plus any extra
//! keyword such as `enable_thinking`). A file without a template falls back to ChatML.

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};
use serde::{Deserialize, Serialize};

/// ChatML, exactly as the Ouro / SmolLM `tokenizer_config.json` ships it.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] \
     + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}\
     {{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Strings that end an assistant turn in the chat formats we know (ChatML, Llama 3, Phi, Gemma).
/// Any of them that is a single token in the vocabulary stops generation.
pub const END_OF_TURN_STRINGS: [&str; 4] = ["<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"];

const TEMPLATE_NAME: &str = "chat_template";

/// Errors from compiling or rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("tokenizer.chat_template does not compile: {0}")]
    Compile(String),
    #[error("chat template: {0}")]
    Render(String),
}

/// One message of a conversation, as the templates see it (`message['role']`, `message.content`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    fn to_value(&self) -> Value {
        Value::from_pairs([
            ("role", self.role.as_str()),
            ("content", self.content.as_str()),
        ])
    }
}

/// A compiled chat template with the special-token strings it may reference.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    is_fallback: bool,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("is_fallback", &self.is_fallback)
            .finish()
    }
}

impl ChatTemplate {
    /// Compile `source` (Jinja) with transformers' settings.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, ChatError> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| ChatError::Compile(describe(&e)))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned(TEMPLATE_NAME, source.to_owned())
            .map_err(|e| ChatError::Compile(describe(&e)))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
            is_fallback: false,
        })
    }

    /// The built-in ChatML template.
    pub fn chatml(bos_token: &str, eos_token: &str) -> Self {
        let mut t = ChatTemplate::new(CHATML_TEMPLATE, bos_token, eos_token)
            .expect("the built-in ChatML template compiles");
        t.is_fallback = true;
        t
    }

    /// The model's own template when it has one, else ChatML with a one-line notice to show.
    pub fn from_source_or_chatml(
        source: Option<&str>,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<(Self, Option<&'static str>), ChatError> {
        match source {
            Some(src) => Ok((ChatTemplate::new(src, bos_token, eos_token)?, None)),
            None => Ok((
                ChatTemplate::chatml(bos_token, eos_token),
                Some("note: this model file has no tokenizer.chat_template; using ChatML"),
            )),
        }
    }

    /// True when this is the ChatML fallback rather than a template from the model file.
    pub fn is_fallback(&self) -> bool {
        self.is_fallback
    }

    /// Render a conversation.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, ChatError> {
        self.render_with(messages, add_generation_prompt, &[])
    }

    /// Render with extra template variables, e.g. `("enable_thinking", Value::from(false))`.
    pub fn render_with(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        extra: &[(&str, Value)],
    ) -> Result<String, ChatError> {
        let tmpl = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| ChatError::Compile(describe(&e)))?;
        let mut ctx: Vec<(&str, Value)> = vec![
            ("messages", messages.iter().map(Message::to_value).collect()),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
            ("bos_token", Value::from(self.bos_token.as_str())),
            ("eos_token", Value::from(self.eos_token.as_str())),
        ];
        ctx.extend(extra.iter().cloned());
        let ctx = Value::from_pairs(ctx);
        tmpl.render(ctx)
            .map_err(|e| ChatError::Render(describe(&e)))
    }
}

/// `raise_exception(message)`: what HF templates call to reject a conversation.
fn raise_exception(message: String) -> Result<Value, JinjaError> {
    Err(JinjaError::new(ErrorKind::InvalidOperation, message))
}

/// One line: the detail (for `raise_exception`, exactly its message) and where it happened.
fn describe(e: &JinjaError) -> String {
    let what = match e.detail() {
        Some(d) => d.to_owned(),
        None => e.kind().to_string(),
    };
    match e.line() {
        Some(line) => format!("{what} (template line {line})"),
        None => what,
    }
}

/// Splits streamed text into thinking (`<think>…</think>`, tags included) and answer pieces,
/// holding back a possible partial tag at the end.
#[derive(Debug, Default)]
pub struct ThinkSplitter {
    in_think: bool,
    pending: String,
}

impl ThinkSplitter {
    /// A splitter that starts inside a think block when the prompt ended with `<think>`.
    pub fn new(prompt: &str) -> Self {
        ThinkSplitter {
            in_think: prompt.trim_end().ends_with(Self::OPEN),
            pending: String::new(),
        }
    }

    pub const OPEN: &'static str = "<think>";
    pub const CLOSE: &'static str = "</think>";

    /// Split `text` (the next streamed piece) into `(is_thinking, text)` pieces appended to `out`.
    pub fn push(&mut self, text: &str, out: &mut Vec<(bool, String)>) {
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

    /// The held-back tail, at end of stream.
    pub fn flush(&mut self, out: &mut Vec<(bool, String)>) {
        out.push((self.in_think, std::mem::take(&mut self.pending)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_generation_prompt() {
        let t = ChatTemplate::chatml("<|im_start|>", "<|im_end|>");
        let s = t
            .render(&[Message::new("user", "hi")], true)
            .expect("renders");
        assert_eq!(s, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
        assert!(t.is_fallback());
    }

    #[test]
    fn raise_exception_message_is_kept() {
        let t =
            ChatTemplate::new("{{ raise_exception('no system role') }}", "", "").expect("compiles");
        let err = t.render(&[], false).expect_err("raises").to_string();
        assert!(err.contains("no system role"), "{err}");
    }

    #[test]
    fn bad_template_is_an_error_not_a_panic() {
        let err = ChatTemplate::new("{% for m in messages %}", "", "").expect_err("unclosed for");
        assert!(matches!(err, ChatError::Compile(_)));
    }

    fn split(chunks: &[&str], in_think: bool) -> Vec<(bool, String)> {
        let mut s = ThinkSplitter::new(if in_think { "q <think>\n" } else { "q" });
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
