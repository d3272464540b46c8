//! `ouro serve`: an OpenAI-compatible HTTP server (axum on tokio) with continuous batching
//! and a depth-view chat page at `/`.
//!
//! ```text
//! HTTP (tokio) ── routes: validate, template, tokenize ──▶ bounded queue ──▶ scheduler thread
//!      ▲                                                     (429 when full)   │ --parallel slots,
//!      └──── JSON / SSE ◀── sse: stop strings, chunks ◀── per-job channel ◀────┘ one batched
//!                                                                               forward per step
//! ```
//!
//! Modules: `openai` (wire types, error bodies), `routes` (handlers, auth), `sse` (stop
//! strings, event stream), `scheduler` (slots and steps).

mod openai;
mod routes;
mod scheduler;
mod sse;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use super::common::{file_name, kv_type, load_model, KvShareArg, KvTypeArg, RunArgs, SamplingArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// GGUF model file (default: $OURO_MODEL, else the demo model models/ouro-demo.gguf).
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
    /// Address to bind (loopback by default; 0.0.0.0 exposes the server to the network).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 = any free port; the chosen one is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Sequences decoded together (slots, each with its own KV cache of --ctx positions).
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Context of each slot in tokens (prompt + answer). Default: the length the model was
    /// trained with.
    #[arg(long)]
    pub ctx: Option<usize>,
    /// Requests waiting for a slot at most; more are answered 429.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Require `Authorization: Bearer KEY` on /v1/*.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Largest request body in bytes (413 above).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body: usize,
    /// KV cache element type.
    #[arg(long, value_enum, default_value_t = KvTypeArg::F16)]
    pub kv_type: KvTypeArg,
    #[command(flatten)]
    pub run: RunArgs,
    /// Default sampling (each request may override temperature, top_p, seed, …).
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

pub fn run(args: Args) -> Result<()> {
    if args.parallel == 0 || args.parallel > 256 {
        bail!("--parallel must be in 1..=256, got {}", args.parallel);
    }
    if args.queue == 0 {
        bail!("--queue must be at least 1");
    }
    if args.run.kv_share == KvShareArg::Last {
        bail!("--kv-share last is not supported by `ouro serve` (its batched step keeps a KV slot per loop)");
    }
    if args.api_key.as_deref() == Some("") {
        bail!("--api-key must not be empty");
    }
    let (model, path) = load_model(args.model.as_deref())?;
    let trained = model.config().context_length;
    let ctx = args.ctx.unwrap_or(trained);
    if ctx > trained {
        eprintln!(
            "warning: --ctx {ctx} exceeds the {trained} positions this model was trained with"
        );
    }
    let opts = args
        .run
        .session_options(&model, ctx, kv_type(args.kv_type))?;
    let sampler = args.sampling.config()?;
    let (template, notice) = model.chat_template().context("the model's chat template")?;
    if let Some(n) = notice {
        eprintln!("note: {n}");
    }
    let model = Arc::new(model);
    let (handle, thread) = scheduler::spawn(
        model.clone(),
        scheduler::Config {
            parallel: args.parallel,
            queue: args.queue,
            ctx,
            kv_type: opts.kv_type,
            threads: opts.threads,
        },
    )?;
    let state = Arc::new(routes::AppState {
        model,
        model_name: file_name(&path),
        template,
        handle,
        ctx,
        parallel: args.parallel,
        sampler,
        loops: opts.loops,
        exit_threshold: opts.exit_threshold,
        exit_mode: opts.exit_mode,
        api_key: args.api_key.clone(),
        next_id: AtomicU64::new(1),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(state, &args.host, args.port, args.max_body))?;
    // Every handle is gone with the router: the scheduler finishes what runs and stops.
    thread
        .join()
        .map_err(|_| anyhow::anyhow!("the scheduler thread panicked"))?;
    eprintln!("stopped");
    Ok(())
}

fn app(state: routes::Shared, max_body: usize) -> Router {
    let api = Router::new()
        .route("/v1/chat/completions", post(routes::chat))
        .route("/v1/completions", post(routes::completions))
        .route("/v1/models", get(routes::models))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            routes::auth,
        ));
    Router::new()
        .route("/", get(routes::index))
        .route("/health", get(routes::health))
        .merge(api)
        .fallback(routes::fallback)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

async fn serve(state: routes::Shared, host: &str, port: u16, max_body: usize) -> Result<()> {
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port}"))?;
    let addr: SocketAddr = listener.local_addr()?;
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
    let app = app(state, max_body);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")?;
    Ok(())
}

/// Ctrl-C, or SIGTERM on unix: stop accepting, finish the running requests, exit 0.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("shutting down: finishing the running requests");
}
