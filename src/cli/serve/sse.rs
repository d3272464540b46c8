//! Answer assembly: `stop` strings (text after a stop string is never sent; text that may be
//! the start of one is held back until it is not), and the server-sent-event stream of a
//! `stream: true` request, which ends with `data: [DONE]`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio_stream::wrappers::ReceiverStream;

use super::openai::{timings, usage, ApiError};
use super::scheduler::Msg;

/// A piece of the answer: its text and the 1-based loop of the token it came from (`None` for
/// text the detokenizer held back until the end).
pub type Piece = (String, Option<usize>);

/// Applies `stop` strings to streamed pieces.
pub struct Assembler {
    stops: Vec<String>,
    held: Vec<Piece>,
    pub stopped: bool,
}

impl Assembler {
    pub fn new(stops: Vec<String>) -> Self {
        Assembler {
            stops,
            held: Vec::new(),
            stopped: false,
        }
    }

    /// Add a piece; the pieces that can be sent now (cut at a stop string, which sets
    /// `stopped`).
    pub fn push(&mut self, text: &str, loops: Option<usize>) -> Vec<Piece> {
        if self.stopped {
            return Vec::new();
        }
        self.held.push((text.to_owned(), loops));
        if self.stops.is_empty() {
            return std::mem::take(&mut self.held);
        }
        let s: String = self.held.iter().map(|p| p.0.as_str()).collect();
        if let Some(k) = self.stops.iter().filter_map(|st| s.find(st.as_str())).min() {
            self.stopped = true;
            return self.release(k, true);
        }
        // Hold back the longest tail of `s` that begins some stop string.
        let mut hold_from = s.len();
        for st in &self.stops {
            for len in (1..st.len()).rev() {
                if st.is_char_boundary(len) && s.ends_with(&st[..len]) {
                    hold_from = hold_from.min(s.len() - len);
                    break;
                }
            }
        }
        self.release(hold_from, false)
    }

    /// Release the pieces that end at or before byte `k` of the held text; with `cut`, also the
    /// piece `k` falls in, truncated at `k`, and drop the rest.
    fn release(&mut self, k: usize, cut: bool) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut at = 0;
        let mut rest = Vec::new();
        for (text, loops) in std::mem::take(&mut self.held) {
            let end = at + text.len();
            if end <= k {
                out.push((text, loops));
            } else if cut {
                if at < k {
                    out.push((text[..k - at].to_owned(), loops));
                }
                break;
            } else {
                rest.push((text, loops));
            }
            at = end;
        }
        self.held = rest;
        out
    }

    /// At the end: whatever is still held.
    pub fn flush(&mut self) -> Vec<Piece> {
        if self.stopped {
            return Vec::new();
        }
        std::mem::take(&mut self.held)
    }
}

/// Which endpoint a response is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Chat,
    Completion,
}

/// The id, time and model name every body of one response carries.
#[derive(Clone)]
pub struct Meta {
    pub kind: Kind,
    pub id: String,
    pub created: u64,
    pub model: String,
}

impl Meta {
    /// A streamed chunk carrying `pieces` (possibly none) and, at the end, the finish reason.
    pub fn chunk(&self, pieces: &[Piece], finish: Option<&str>, first: bool) -> Value {
        let text: String = pieces.iter().map(|p| p.0.as_str()).collect();
        let loops: Vec<usize> = pieces.iter().filter_map(|p| p.1).collect();
        let choice = match self.kind {
            Kind::Chat => {
                let mut delta = json!({});
                if first {
                    delta["role"] = json!("assistant");
                }
                if !pieces.is_empty() {
                    delta["content"] = json!(text);
                }
                json!({"index": 0, "delta": delta, "finish_reason": finish, "loops": loops})
            }
            Kind::Completion => json!({
                "index": 0, "text": text, "finish_reason": finish, "logprobs": null, "loops": loops
            }),
        };
        let object = match self.kind {
            Kind::Chat => "chat.completion.chunk",
            Kind::Completion => "text_completion",
        };
        json!({
            "id": self.id, "object": object, "created": self.created, "model": self.model,
            "choices": [choice],
        })
    }

    /// The whole non-streamed response.
    pub fn response(&self, pieces: &[Piece], finish: &str, usage: Value, timings: Value) -> Value {
        let text: String = pieces.iter().map(|p| p.0.as_str()).collect();
        let loops: Vec<usize> = pieces.iter().filter_map(|p| p.1).collect();
        let (object, choice) = match self.kind {
            Kind::Chat => (
                "chat.completion",
                json!({
                    "index": 0, "message": {"role": "assistant", "content": text},
                    "finish_reason": finish, "loops": loops,
                }),
            ),
            Kind::Completion => (
                "text_completion",
                json!({
                    "index": 0, "text": text, "finish_reason": finish, "logprobs": null,
                    "loops": loops,
                }),
            ),
        };
        json!({
            "id": self.id, "object": object, "created": self.created, "model": self.model,
            "choices": [choice], "usage": usage, "timings": timings,
        })
    }
}

/// The end of a request as the client sees it: the finish reason (`stop` also when a stop
/// string cut the answer), usage and timings.
pub fn finish(msg: &Msg, stopped: bool) -> Option<(&'static str, Value, Value)> {
    let Msg::Done {
        reason,
        prompt_n,
        cache_n,
        prompt_ms,
        gen_n,
        gen_ms,
        ..
    } = msg
    else {
        return None;
    };
    let reason = if stopped { "stop" } else { reason };
    Some((
        reason,
        usage(prompt_n + cache_n, *gen_n),
        timings(*prompt_n, *cache_n, *prompt_ms, *gen_n, *gen_ms),
    ))
}

/// Collect a whole answer (non-streaming).
pub async fn collect(
    meta: Meta,
    mut rx: UnboundedReceiver<Msg>,
    mut asm: Assembler,
    cancel: Arc<AtomicBool>,
) -> Result<Value, ApiError> {
    let mut pieces = Vec::new();
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Token { text, loops } => {
                pieces.extend(asm.push(&text, Some(loops)));
                if asm.stopped {
                    cancel.store(true, Ordering::SeqCst);
                }
            }
            Msg::Error(e) => {
                return Err(ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    e,
                ))
            }
            done @ Msg::Done { .. } => {
                if let Msg::Done { tail, .. } = &done {
                    if !tail.is_empty() {
                        pieces.extend(asm.push(tail, None));
                    }
                }
                pieces.extend(asm.flush());
                let (reason, usage, timings) = finish(&done, asm.stopped).expect("done");
                return Ok(meta.response(&pieces, reason, usage, timings));
            }
        }
    }
    Err(ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "the request ended without an answer (server shutting down?)",
    ))
}

fn data(v: &Value) -> Result<SseEvent, Infallible> {
    Ok(SseEvent::default().data(v.to_string()))
}

/// Stream an answer as server-sent events. A forwarding task turns scheduler messages into
/// events; when the client leaves, the response body (and with it the event channel) is
/// dropped, the task ends at once and drops the scheduler's channel, which frees the slot
/// before the next step.
pub fn stream(
    meta: Meta,
    mut rx: UnboundedReceiver<Msg>,
    mut asm: Assembler,
    cancel: Arc<AtomicBool>,
) -> Response {
    let (etx, erx) = mpsc::channel::<Result<SseEvent, Infallible>>(64);
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let msg = tokio::select! {
                _ = etx.closed() => return,
                msg = rx.recv() => msg,
            };
            let Some(msg) = msg else { return };
            let mut events = Vec::new();
            let finished = matches!(msg, Msg::Done { .. } | Msg::Error(_));
            match msg {
                Msg::Token { text, loops } => {
                    let pieces = asm.push(&text, Some(loops));
                    if asm.stopped {
                        cancel.store(true, Ordering::SeqCst);
                    }
                    if !pieces.is_empty() || first {
                        events.push(data(&meta.chunk(&pieces, None, first)));
                        first = false;
                    }
                }
                Msg::Error(e) => {
                    let err = ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e);
                    events.push(data(&err.body()));
                    events.push(Ok(SseEvent::default().data("[DONE]")));
                }
                done @ Msg::Done { .. } => {
                    let mut pieces = Vec::new();
                    if let Msg::Done { tail, .. } = &done {
                        if !tail.is_empty() {
                            pieces.extend(asm.push(tail, None));
                        }
                    }
                    pieces.extend(asm.flush());
                    let (reason, usage, timings) = finish(&done, asm.stopped).expect("done");
                    if !pieces.is_empty() || first {
                        events.push(data(&meta.chunk(&pieces, None, first)));
                    }
                    let mut last = meta.chunk(&[], Some(reason), false);
                    last["usage"] = usage;
                    last["timings"] = timings;
                    events.push(data(&last));
                    events.push(Ok(SseEvent::default().data("[DONE]")));
                }
            }
            for ev in events {
                if etx.send(ev).await.is_err() {
                    return;
                }
            }
            if finished {
                return;
            }
        }
    });
    Sse::new(ReceiverStream::new(erx))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(p: &[Piece]) -> Vec<&str> {
        p.iter().map(|x| x.0.as_str()).collect()
    }

    #[test]
    fn no_stop_strings_pass_everything_through() {
        let mut a = Assembler::new(vec![]);
        assert_eq!(a.push("ab", Some(2)), vec![("ab".to_owned(), Some(2))]);
        assert!(a.flush().is_empty());
    }

    #[test]
    fn a_possible_stop_start_is_held_until_it_is_not() {
        let mut a = Assembler::new(vec!["abc".into()]);
        assert!(a.push("xa", Some(1)).is_empty());
        assert!(a.push("b", Some(2)).is_empty());
        assert_eq!(texts(&a.push("d", Some(3))), ["xa", "b", "d"]);
        assert!(!a.stopped);
        assert_eq!(texts(&a.push("q", Some(4))), ["q"]);
    }

    #[test]
    fn a_stop_across_pieces_cuts_there_and_drops_the_rest() {
        let mut a = Assembler::new(vec!["abc".into(), " =".into()]);
        assert_eq!(texts(&a.push("x", Some(1))), ["x"]);
        assert!(a.push("ab", Some(2)).is_empty());
        let out = a.push("cz", Some(3));
        assert!(a.stopped);
        // Nothing of the stop string or after it; the loops of released pieces only.
        assert!(out.is_empty(), "{out:?}");
        assert!(a.push("more", Some(1)).is_empty());
        assert!(a.flush().is_empty());
        let mut b = Assembler::new(vec![" =".into()]);
        assert_eq!(texts(&b.push("589 = 9", Some(2))), ["589"]);
        assert!(b.stopped);
    }

    #[test]
    fn the_held_tail_is_flushed_at_the_end() {
        let mut a = Assembler::new(vec!["</s>".into()]);
        assert_eq!(texts(&a.push("done<", Some(1))), Vec::<&str>::new());
        assert_eq!(a.flush(), vec![("done<".to_owned(), Some(1))]);
    }
}
