//! The scheduler thread: it owns the model's compute and `--parallel` slots
//! ([`ouro::engine::batch::Sequence`], each with its own KV cache). Between steps it admits
//! queued jobs into free slots (the slot whose cached tokens share the longest prefix with the
//! prompt first), drops jobs whose client left, emits one event per running job, then runs ONE
//! batched forward over every slot with a pending token ([`step_batch`]).
//!
//! The queue in front of it is bounded (`--queue`): a full queue is answered with 429 by the
//! HTTP side, never buffered. The per-job token channel holds at most the job's `max_tokens`
//! events, which the context bounds.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use ouro::engine::batch::{step_batch, SeqRequest, Sequence};
use ouro::engine::{Event, StopReason};
use ouro::model::{KvType, Model};

/// One request for the scheduler.
pub struct Job {
    pub prompt: Vec<u32>,
    pub req: SeqRequest,
    pub tx: UnboundedSender<Msg>,
    /// Raised by the handler when a stop string ended the answer: the job ends with a `Done`.
    pub cancel: Arc<AtomicBool>,
}

/// What the scheduler tells the request's handler.
#[derive(Debug)]
pub enum Msg {
    Token {
        text: String,
        loops: usize,
    },
    Done {
        /// `stop`, `length` or `cancelled`.
        reason: &'static str,
        /// Prompt tokens prefilled (the rest came from a slot's cache).
        prompt_n: usize,
        cache_n: usize,
        prompt_ms: f64,
        gen_n: usize,
        gen_ms: f64,
        tail: String,
    },
    Error(String),
}

/// Counters the HTTP side reads (`/health`).
#[derive(Default)]
pub struct Load {
    pub busy: AtomicUsize,
    pub queued: AtomicUsize,
    /// Tokens emitted, batched forwards run, jobs dropped because their client left.
    pub generated: AtomicU64,
    pub steps: AtomicU64,
    pub cancelled: AtomicU64,
}

/// The HTTP side's end of the queue.
#[derive(Clone)]
pub struct Handle {
    tx: SyncSender<Job>,
    pub load: Arc<Load>,
}

impl Handle {
    /// Queue a job.
    pub fn submit(&self, job: Job) -> Submit {
        // Counted before the send: the scheduler may take the job (and count it out) at once.
        self.load.queued.fetch_add(1, Ordering::SeqCst);
        let r = match self.tx.try_send(job) {
            Ok(()) => return Submit::Queued,
            Err(TrySendError::Full(_)) => Submit::Full,
            Err(TrySendError::Disconnected(_)) => Submit::Stopped,
        };
        self.load.queued.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

/// What became of a submitted job.
#[derive(Debug, PartialEq, Eq)]
pub enum Submit {
    Queued,
    /// The queue holds `--queue` jobs already (429).
    Full,
    /// The scheduler thread is gone (503).
    Stopped,
}

/// Slot settings.
pub struct Config {
    pub parallel: usize,
    pub queue: usize,
    pub ctx: usize,
    pub kv_type: KvType,
    pub threads: usize,
}

/// Start the scheduler thread; it ends once every [`Handle`] is dropped and the running jobs
/// are finished (the drain of a shutdown).
pub fn spawn(
    model: Arc<Model>,
    cfg: Config,
) -> anyhow::Result<(Handle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel(cfg.queue);
    let load = Arc::new(Load::default());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .build()?;
    let load2 = load.clone();
    let thread = std::thread::Builder::new()
        .name("ouro-scheduler".into())
        .spawn(move || run(&model, &cfg, &pool, &rx, &load2))?;
    Ok((Handle { tx, load }, thread))
}

fn send(tx: &Option<UnboundedSender<Msg>>, msg: Msg) {
    if let Some(tx) = tx {
        // A receiver that left is noticed before the next step.
        let _ = tx.send(msg);
    }
}

fn done_msg(ev: Event, cache_n: usize) -> Option<Msg> {
    match ev {
        Event::Done {
            reason,
            stats,
            tail,
        } => Some(Msg::Done {
            reason: reason.as_str(),
            prompt_n: stats.prompt_tokens,
            cache_n,
            prompt_ms: stats.prompt_secs * 1e3,
            gen_n: stats.gen_tokens,
            gen_ms: stats.gen_secs * 1e3,
            tail,
        }),
        Event::Token { .. } => None,
    }
}

fn run(model: &Model, cfg: &Config, pool: &rayon::ThreadPool, rx: &Receiver<Job>, load: &Load) {
    let mut slots: Vec<Sequence<'_>> = (0..cfg.parallel)
        .map(|_| Sequence::new(model, cfg.ctx, cfg.kv_type))
        .collect();
    let mut txs: Vec<Option<UnboundedSender<Msg>>> = (0..cfg.parallel).map(|_| None).collect();
    let mut cached: Vec<usize> = vec![0; cfg.parallel];
    let mut cancels: Vec<Option<Arc<AtomicBool>>> = (0..cfg.parallel).map(|_| None).collect();
    let mut closed = false;
    loop {
        // Admit queued jobs into free slots (block while nothing runs).
        while !closed && slots.iter().any(|s| !s.busy()) {
            let idle = !slots.iter().any(Sequence::busy);
            let job = if idle {
                match rx.recv() {
                    Ok(job) => job,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            } else {
                match rx.try_recv() {
                    Ok(job) => job,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            };
            if job.tx.is_closed() {
                load.queued.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let Some(i) = (0..slots.len())
                .filter(|&i| !slots[i].busy())
                .max_by_key(|&i| {
                    (
                        slots[i].reusable(&job.prompt, &job.req.depth),
                        usize::MAX - i,
                    )
                })
            else {
                load.queued.fetch_sub(1, Ordering::SeqCst);
                break;
            };
            // A job counts as queued until its slot runs (counted busy) or it fails, so /health
            // never shows it in neither, and it is busy before its first token reaches the client.
            match pool.install(|| slots[i].start(&job.prompt, job.req)) {
                Ok(n) => {
                    cached[i] = n;
                    txs[i] = Some(job.tx);
                    cancels[i] = Some(job.cancel);
                    load.busy.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => {
                    let _ = job.tx.send(Msg::Error(format!("{e:#}")));
                }
            }
            load.queued.fetch_sub(1, Ordering::SeqCst);
        }
        if closed && !slots.iter().any(Sequence::busy) {
            return;
        }
        // One event per running job; a job whose client left ends here (its slot is free for
        // the next admission, before any further forward for it).
        for i in 0..slots.len() {
            if !slots[i].busy() {
                continue;
            }
            if txs[i].as_ref().is_none_or(|tx| tx.is_closed()) {
                slots[i].end(StopReason::Cancelled);
                txs[i] = None;
                load.cancelled.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            if cancels[i]
                .as_ref()
                .is_some_and(|c| c.load(Ordering::SeqCst))
            {
                if let Some(msg) = slots[i]
                    .end(StopReason::Cancelled)
                    .and_then(|ev| done_msg(ev, cached[i]))
                {
                    send(&txs[i], msg);
                }
                txs[i] = None;
                continue;
            }
            if let Some(ev) = slots[i].next_event() {
                match ev {
                    Event::Token { text, loops, .. } => {
                        load.generated.fetch_add(1, Ordering::SeqCst);
                        send(&txs[i], Msg::Token { text, loops })
                    }
                    done => {
                        if let Some(msg) = done_msg(done, cached[i]) {
                            send(&txs[i], msg);
                        }
                        txs[i] = None;
                        continue;
                    }
                }
            }
            if slots[i].exhausted() {
                if let Some(msg) = slots[i]
                    .end(StopReason::MaxTokens)
                    .and_then(|ev| done_msg(ev, cached[i]))
                {
                    send(&txs[i], msg);
                }
                txs[i] = None;
            }
        }
        load.busy
            .store(slots.iter().filter(|s| s.busy()).count(), Ordering::SeqCst);
        if slots.iter().any(Sequence::busy) {
            load.steps.fetch_add(1, Ordering::SeqCst);
        }
        let ended = pool.install(|| step_batch(&mut slots));
        for (i, ev) in ended {
            if let Some(msg) = done_msg(ev, cached[i]) {
                send(&txs[i], msg);
            }
            txs[i] = None;
        }
    }
}
