//! Ctrl-C, SIGTERM and panics never leave a partial output behind.
//!
//! Every file or directory a command writes before its final rename is registered here for as
//! long as it is unfinished ([`Pending`]). A dedicated thread waits for SIGINT / SIGTERM (the
//! signal handler itself only wakes it, through `signal-hook`'s self-pipe), removes everything
//! registered and exits with 128 + the signal number: 130 for SIGINT, 143 for SIGTERM. Creating
//! and committing (renaming into place) happen under the same lock as that cleanup, so a signal
//! lands either before a path exists or after it is registered, and never lets a rename happen
//! after the cleanup. A panic or an error unwinds through [`Pending`]'s `Drop`, which removes the
//! path the same way.
//!
//! Test hook: `OURO_CONVERT_TEST_HOOK=stall:N` makes the command print `test hook: stalled after
//! N tensors` to stderr after its N-th tensor and then wait forever (to be signalled);
//! `panic:N` panics there instead. The integration tests use it to interrupt a conversion at a
//! known point.

use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// What a registered path is and how it is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A file (removed with `remove_file`).
    File,
    /// A directory and everything in it.
    Tree,
    /// A directory this command created: removed only if it is empty.
    CreatedDir,
}

struct Registry {
    /// Set by the signal thread: nothing may be created or committed any more.
    interrupted: bool,
    paths: Vec<(PathBuf, Kind)>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    interrupted: false,
    paths: Vec::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while the lock was held must not stop the cleanup of the other paths.
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

fn remove(path: &Path, kind: Kind) {
    // Best effort: what is already gone is fine, and there is nobody left to report to.
    let _ = match kind {
        Kind::File => std::fs::remove_file(path),
        Kind::Tree => std::fs::remove_dir_all(path),
        Kind::CreatedDir => std::fs::remove_dir(path),
    };
}

/// Remove every registered path and exit with 128 + `sig` (`name` for the message).
fn clean_up_and_exit(sig: i32, name: &str) -> ! {
    let mut reg = registry();
    reg.interrupted = true;
    let unfinished = !reg.paths.is_empty();
    // Innermost first: files inside a created directory go before the directory.
    for (path, kind) in reg.paths.drain(..).rev() {
        remove(&path, kind);
    }
    if unfinished {
        eprintln!("\ninterrupted ({name}): the unfinished output was removed");
    } else {
        eprintln!("\ninterrupted ({name})");
    }
    std::process::exit(128 + sig);
}

/// Starts the thread that turns SIGINT / SIGTERM into cleanup and exit status 130 / 143.
#[cfg(unix)]
pub fn install() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).context("cannot install the SIGINT/SIGTERM handler")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                clean_up_and_exit(sig, name);
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// Ctrl-C (and Ctrl-Break / console close) off Unix: the same cleanup, exit status 130.
#[cfg(not(unix))]
pub fn install() -> Result<()> {
    ctrlc::set_handler(|| clean_up_and_exit(2, "Ctrl-C"))
        .context("cannot install the Ctrl-C handler")
}

/// An unfinished output path, removed on drop unless committed.
#[must_use = "dropping a Pending removes its path"]
pub struct Pending {
    path: PathBuf,
    kind: Kind,
    committed: bool,
}

impl Pending {
    /// Registers `path` and runs `create` (which creates it) under the registry lock; if
    /// `create` fails or panics, the path is removed.
    pub fn create<T>(
        path: &Path,
        kind: Kind,
        create: impl FnOnce() -> Result<T>,
    ) -> Result<(Pending, T)> {
        // Declared before the guard, so an early return releases the lock before `drop`.
        let pending = Pending {
            path: path.to_path_buf(),
            kind,
            committed: false,
        };
        let mut reg = registry();
        if reg.interrupted {
            bail!("interrupted");
        }
        reg.paths.push((path.to_path_buf(), kind));
        let value = create()?;
        drop(reg);
        Ok((pending, value))
    }

    /// Runs `commit` (which moves the output into place) under the registry lock and
    /// unregisters the path; after a signal it fails instead.
    pub fn commit<T>(mut self, commit: impl FnOnce() -> Result<T>) -> Result<T> {
        let mut reg = registry();
        if reg.interrupted {
            bail!("interrupted");
        }
        let value = commit()?;
        unregister(&mut reg, &self.path, self.kind);
        self.committed = true;
        drop(reg);
        Ok(value)
    }
}

fn unregister(reg: &mut Registry, path: &Path, kind: Kind) {
    if let Some(i) = reg.paths.iter().rposition(|(p, k)| p == path && *k == kind) {
        reg.paths.remove(i);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let mut reg = registry();
        unregister(&mut reg, &self.path, self.kind);
        if !reg.interrupted {
            remove(&self.path, self.kind);
        }
    }
}

/// Called once per tensor written; see the module doc for `OURO_CONVERT_TEST_HOOK`.
pub fn tensor_done() {
    enum Hook {
        Stall(usize),
        Panic(usize),
    }
    static HOOK: OnceLock<Option<Hook>> = OnceLock::new();
    static DONE: AtomicUsize = AtomicUsize::new(0);
    let hook = HOOK.get_or_init(|| {
        let spec = std::env::var("OURO_CONVERT_TEST_HOOK").ok()?;
        let (what, n) = spec.split_once(':')?;
        let n = n.parse().ok()?;
        match what {
            "stall" => Some(Hook::Stall(n)),
            "panic" => Some(Hook::Panic(n)),
            _ => None,
        }
    });
    let done = DONE.fetch_add(1, Ordering::Relaxed) + 1;
    match hook {
        Some(Hook::Stall(n)) if done == *n => {
            eprintln!("test hook: stalled after {n} tensors");
            loop {
                std::thread::park();
            }
        }
        Some(Hook::Panic(n)) if done == *n => panic!("test hook: panic after {n} tensors"),
        _ => {}
    }
}
