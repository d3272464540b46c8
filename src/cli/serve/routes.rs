//! The HTTP routes: request validation (every bad input is a 4xx with an OpenAI-style body),
//! prompt building (chat template or raw text), queueing, and the response.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::json;

use ouro::chat_template::{ChatTemplate, Message};
use ouro::engine::batch::{resolve_depth, SeqRequest};
use ouro::model::Model;
use ouro::sampler::SamplerConfig;
use ouro::session::ExitMode;

use super::openai::{ApiError, ChatRequest, Common, CompletionRequest, Prompt};
use super::scheduler::{Handle, Job, Submit};
use super::sse::{self, Assembler, Kind, Meta};

/// The chat page (one static file, no build step).
const CHAT_HTML: &str = include_str!("chat.html");

/// At most this many stop strings (as OpenAI).
const MAX_STOPS: usize = 4;

/// What every handler shares.
pub struct AppState {
    pub model: Arc<Model>,
    pub model_name: String,
    pub template: ChatTemplate,
    pub handle: Handle,
    pub ctx: usize,
    pub parallel: usize,
    /// Server defaults (the sampling flags), overridden per request.
    pub sampler: SamplerConfig,
    pub loops: Option<usize>,
    pub exit_threshold: Option<f32>,
    pub exit_mode: ExitMode,
    pub api_key: Option<String>,
    pub next_id: AtomicU64,
}

pub type Shared = Arc<AppState>;

/// `Authorization: Bearer KEY` on the API routes when `--api-key` is set.
pub async fn auth(State(st): State<Shared>, req: Request, next: Next) -> Response {
    if let Some(key) = &st.api_key {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same(given.as_bytes(), key.as_bytes()) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or invalid API key (send `Authorization: Bearer KEY`)",
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Constant-time equality (no early exit on the first differing byte).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn index() -> Html<&'static str> {
    Html(CHAT_HTML)
}

pub async fn health(State(st): State<Shared>) -> Json<serde_json::Value> {
    let busy = st.handle.load.busy.load(Ordering::SeqCst);
    Json(json!({
        "status": "ok",
        "slots_processing": busy,
        "slots_idle": st.parallel.saturating_sub(busy),
        "queued": st.handle.load.queued.load(Ordering::SeqCst),
        "tokens_generated": st.handle.load.generated.load(Ordering::SeqCst),
        "requests_cancelled": st.handle.load.cancelled.load(Ordering::SeqCst),
        "steps": st.handle.load.steps.load(Ordering::SeqCst),
    }))
}

pub async fn models(State(st): State<Shared>) -> Json<serde_json::Value> {
    let c = st.model.config();
    Json(json!({
        "object": "list",
        "data": [{
            "id": st.model_name, "object": "model", "created": 0, "owned_by": "ouro",
            "meta": {
                "n_ctx": st.ctx, "n_ctx_train": c.context_length, "n_vocab": c.vocab_size,
                "n_layers": c.n_layers, "n_loops": c.n_loops, "exit_gate": c.has_exit_gate,
                "early_exit_threshold": c.early_exit_threshold, "parallel": st.parallel,
            },
        }],
    }))
}

pub async fn fallback() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}

/// The body as JSON of type `T`, or the 400/413 the client should see.
fn parse<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(|e| {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "request body too large".to_owned()
        } else {
            format!("cannot read the request body: {e}")
        };
        ApiError::new(status, message)
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
}

pub async fn chat(
    State(st): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: ChatRequest = parse(body)?;
    if req.messages.is_empty() {
        return Err(ApiError::bad_request("`messages` must not be empty"));
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        messages.push(Message::new(m.role.as_str(), m.text()?));
    }
    let text = st
        .template
        .render(&messages, true)
        .map_err(|e| ApiError::bad_request(format!("{e}")))?;
    let tok = st.model.tokenizer();
    let mut prompt: Vec<u32> = tok.bos_to_add().into_iter().collect();
    prompt.extend(
        tok.encode(&text, true)
            .map_err(|e| ApiError::bad_request(format!("cannot tokenize: {e}")))?,
    );
    run(&st, Kind::Chat, prompt, req.common).await
}

pub async fn completions(
    State(st): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: CompletionRequest = parse(body)?;
    let text = match req.prompt {
        Prompt::One(s) => s,
        Prompt::Many(mut v) if v.len() == 1 => v.remove(0),
        Prompt::Many(_) => {
            return Err(ApiError::bad_request(
                "`prompt` must be one string (batches of prompts are not supported)",
            ))
        }
    };
    let tok = st.model.tokenizer();
    let mut prompt: Vec<u32> = tok.bos_to_add().into_iter().collect();
    prompt.extend(
        tok.encode(&text, true)
            .map_err(|e| ApiError::bad_request(format!("cannot tokenize: {e}")))?,
    );
    run(&st, Kind::Completion, prompt, req.common).await
}

/// Validate the options, queue the job and answer (JSON or SSE).
async fn run(st: &Shared, kind: Kind, prompt: Vec<u32>, c: Common) -> Result<Response, ApiError> {
    if c.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad_request("only `n` = 1 is supported"));
    }
    if prompt.is_empty() {
        return Err(ApiError::bad_request("the prompt is empty"));
    }
    if prompt.len() >= st.ctx {
        return Err(ApiError::bad_request(format!(
            "the prompt is {} tokens, longer than the context can hold with room for an answer \
             ({} tokens per request, --ctx)",
            prompt.len(),
            st.ctx
        )));
    }
    let room = st.ctx - prompt.len();
    let max_tokens = match c.max_completion_tokens.or(c.max_tokens) {
        None => room,
        Some(m) if m >= 1 => (m as u64).min(room as u64) as usize,
        Some(m) => {
            return Err(ApiError::bad_request(format!(
                "`max_tokens` must be at least 1, got {m}"
            )))
        }
    };
    let mut sampler = st.sampler.clone();
    if let Some(t) = c.temperature {
        sampler.temp = t;
    }
    if let Some(p) = c.top_p {
        sampler.top_p = p;
    }
    if let Some(k) = c.top_k {
        sampler.top_k = k;
    }
    if let Some(p) = c.min_p {
        sampler.min_p = p;
    }
    if let Some(p) = c.repeat_penalty {
        sampler.repeat_penalty = p;
    }
    if let Some(s) = c.seed {
        sampler.seed = s;
    }
    sampler
        .validate()
        .map_err(|e| ApiError::bad_request(field_names(&e)))?;
    let mode = match c.exit_mode.as_deref() {
        None => st.exit_mode,
        Some("select") => ExitMode::Select,
        Some("skip") => ExitMode::Skip,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`exit_mode` must be \"select\" or \"skip\", got {other:?}"
            )))
        }
    };
    let n_loops = st.model.config().n_loops;
    let loops = c.loops.or(st.loops);
    if let Some(l) = c.loops {
        if l == 0 || l > 2 * n_loops {
            return Err(ApiError::bad_request(format!(
                "`loops` must be in 1..={} (the model has {n_loops}), got {l}",
                2 * n_loops
            )));
        }
    }
    let depth = resolve_depth(
        &st.model,
        loops,
        c.exit_threshold.or(st.exit_threshold),
        mode,
    )
    .map_err(|e| ApiError::bad_request(format!("{e}")))?;
    let stops = c.stop.map(|s| s.into_vec()).unwrap_or_default();
    if stops.len() > MAX_STOPS || stops.iter().any(String::is_empty) {
        return Err(ApiError::bad_request(format!(
            "`stop` holds at most {MAX_STOPS} non-empty strings"
        )));
    }

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let job = Job {
        prompt,
        req: SeqRequest {
            sampler,
            max_tokens,
            depth,
            ignore_eos: c.ignore_eos,
        },
        tx,
        cancel: cancel.clone(),
    };
    match st.handle.submit(job) {
        Submit::Queued => {}
        Submit::Full => {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "the server is busy: the request queue is full, retry later",
            ))
        }
        Submit::Stopped => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the model's scheduler has stopped; restart the server",
            ))
        }
    }
    let n = st.next_id.fetch_add(1, Ordering::SeqCst);
    let meta = Meta {
        kind,
        id: match kind {
            Kind::Chat => format!("chatcmpl-{n}"),
            Kind::Completion => format!("cmpl-{n}"),
        },
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model: st.model_name.clone(),
    };
    let asm = Assembler::new(stops);
    if c.stream {
        Ok(sse::stream(meta, rx, asm, cancel))
    } else {
        let body = sse::collect(meta, rx, asm, cancel).await?;
        Ok(Json(body).into_response())
    }
}

/// The sampler names command-line flags; a request names JSON fields.
fn field_names(msg: &str) -> String {
    [
        ("--temp", "temperature"),
        ("--top-p", "top_p"),
        ("--top-k", "top_k"),
        ("--min-p", "min_p"),
        ("--repeat-penalty", "repeat_penalty"),
    ]
    .iter()
    .fold(msg.to_owned(), |m, (flag, field)| m.replace(flag, field))
}
