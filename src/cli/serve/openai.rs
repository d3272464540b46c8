//! The OpenAI wire format: request bodies (with Ouro's `loops`, `exit_threshold`, `exit_mode`),
//! response and chunk bodies (with a per-token `loops` array and llama-server's `timings`) and
//! the error body `{"error": {"message", "type", "code"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// An error answered as OpenAI does.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// The body, also sent as an SSE `error` payload.
    pub fn body(&self) -> Value {
        let (ty, code) = match self.status {
            StatusCode::UNAUTHORIZED => ("authentication_error", "invalid_api_key"),
            StatusCode::PAYLOAD_TOO_LARGE => ("invalid_request_error", "request_too_large"),
            StatusCode::TOO_MANY_REQUESTS => ("rate_limit_error", "queue_full"),
            StatusCode::NOT_FOUND => ("invalid_request_error", "not_found"),
            StatusCode::SERVICE_UNAVAILABLE => ("server_error", "unavailable"),
            s if s.is_server_error() => ("server_error", "internal_error"),
            _ => ("invalid_request_error", "invalid_request"),
        };
        json!({"error": {"message": self.message, "type": ty, "code": code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// Fields shared by both endpoints.
#[derive(Deserialize, Debug, Default)]
pub struct Common {
    pub max_tokens: Option<i64>,
    /// The newer name of `max_tokens` (chat).
    pub max_completion_tokens: Option<i64>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<usize>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub seed: Option<u64>,
    pub stop: Option<Stop>,
    pub n: Option<u64>,
    #[serde(default)]
    pub stream: bool,
    /// llama-server's `ignore_eos`: do not stop at the model's stop tokens.
    #[serde(default)]
    pub ignore_eos: bool,
    /// Ouro: loops to run (1…).
    pub loops: Option<usize>,
    /// Ouro: exit threshold Q in [0, 1].
    pub exit_threshold: Option<f32>,
    /// Ouro: `select` or `skip`.
    pub exit_mode: Option<String>,
}

/// `stop`: one string or several.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

#[derive(Deserialize, Debug)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    #[serde(flatten)]
    pub common: Common,
}

#[derive(Deserialize, Debug)]
pub struct ChatMessage {
    pub role: String,
    /// A string, or an array of parts of which the `text` ones are used.
    #[serde(default)]
    pub content: Value,
}

impl ChatMessage {
    pub fn text(&self) -> Result<String, ApiError> {
        match &self.content {
            Value::String(s) => Ok(s.clone()),
            Value::Null => Ok(String::new()),
            Value::Array(parts) => {
                let mut out = String::new();
                for p in parts {
                    match (p.get("type").and_then(Value::as_str), p.get("text")) {
                        (Some("text"), Some(Value::String(t))) => out.push_str(t),
                        _ => {
                            return Err(ApiError::bad_request(
                                "only text content parts are supported",
                            ))
                        }
                    }
                }
                Ok(out)
            }
            _ => Err(ApiError::bad_request(
                "message content must be a string or an array of text parts",
            )),
        }
    }
}

#[derive(Deserialize, Debug)]
pub struct CompletionRequest {
    pub prompt: Prompt,
    #[serde(flatten)]
    pub common: Common,
}

/// `prompt`: a string, or an array holding exactly one string.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum Prompt {
    One(String),
    Many(Vec<String>),
}

/// `usage` and llama-server's `timings` of a finished request.
pub fn usage(prompt_tokens: usize, completion_tokens: usize) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

pub fn timings(
    prompt_n: usize,
    cache_n: usize,
    prompt_ms: f64,
    gen_n: usize,
    gen_ms: f64,
) -> Value {
    let per = |n: usize, ms: f64| if n > 0 { ms / n as f64 } else { 0.0 };
    let rate = |n: usize, ms: f64| if ms > 0.0 { n as f64 * 1e3 / ms } else { 0.0 };
    json!({
        "cache_n": cache_n,
        "prompt_n": prompt_n,
        "prompt_ms": prompt_ms,
        "prompt_per_token_ms": per(prompt_n, prompt_ms),
        "prompt_per_second": rate(prompt_n, prompt_ms),
        "predicted_n": gen_n,
        "predicted_ms": gen_ms,
        "predicted_per_token_ms": per(gen_n, gen_ms),
        "predicted_per_second": rate(gen_n, gen_ms),
    })
}
