//! Ctrl-C (SIGINT), SIGTERM and a panic in the middle of a conversion leave nothing behind: no
//! temporary file, no output, exit status 130 / 143 / 101. The small tests stop the converter at
//! a known point with its test hook (`OURO_CONVERT_TEST_HOOK=stall:N`: it waits forever after the
//! N-th tensor, see convert/src/interrupt.rs) and signal it there; the large one (OURO_LARGE_TESTS=1)
//! signals real 1.4B conversions part-way through, with no hook.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn spawn(args: &[&str], hook: Option<&str>) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(h) = hook {
        cmd.env("OURO_CONVERT_TEST_HOOK", h);
    }
    cmd.spawn().expect("spawn ouro-convert")
}

/// Reads stderr until the hook says the converter stalled; returns the rest of stderr's reader.
fn wait_for_stall(child: &mut Child) -> BufReader<std::process::ChildStderr> {
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = err.read_line(&mut line).unwrap();
        assert!(
            n > 0,
            "ouro-convert ended before the hook: {:?}",
            child.wait()
        );
        if line.starts_with("test hook: stalled after") {
            return err;
        }
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

/// Waits at most a minute for the child to exit (a converter that ignores the signal fails here
/// instead of hanging the suite).
fn wait(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("ouro-convert did not exit within 60 s of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every path under `dir` (recursive), relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

/// Stalls `args` after 3 tensors, sends `sig`, and checks the exit status, the one message on
/// stderr and that `dir` holds exactly `before` afterwards.
fn interrupt_at_hook(args: &[&str], sig: &str, code: i32, dir: &Path, before: &[String]) {
    let mut child = spawn(args, Some("stall:3"));
    let mut err = wait_for_stall(&mut child);
    assert_ne!(tree(dir), before, "no temporary output at the hook");
    signal(&child, sig);
    let status = wait(&mut child);
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(code), "exit status; stderr: {rest}");
    assert!(
        rest.contains(&format!("interrupted (SIG{sig})")),
        "stderr: {rest}"
    );
    assert!(!rest.contains("panicked"), "{rest}");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.is_empty(), "no summary line after a signal: {out}");
    assert_eq!(tree(dir), before, "left behind after SIG{sig}");
}

struct Setup {
    _tmp: tempfile::TempDir,
    hf: PathBuf,
    out_dir: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let hf = tmp.path().join("hf");
    copy_fixture("ouro-tiny-a", &hf);
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    Setup {
        _tmp: tmp,
        hf,
        out_dir,
    }
}

#[test]
fn sigint_during_hf2gguf_leaves_nothing() {
    let s = setup();
    let out = s.out_dir.join("model.gguf");
    let args = [
        "hf2gguf",
        s.hf.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--type",
        "f16",
    ];
    interrupt_at_hook(&args, "INT", 130, &s.out_dir, &[]);
}

#[test]
fn sigterm_during_hf2gguf_leaves_nothing() {
    let s = setup();
    let out = s.out_dir.join("model.gguf");
    let args = [
        "hf2gguf",
        s.hf.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--type",
        "q4_0",
    ];
    interrupt_at_hook(&args, "TERM", 143, &s.out_dir, &[]);
}

#[test]
fn sigint_and_sigterm_during_quantize_leave_nothing_and_keep_an_existing_output() {
    let s = setup();
    let input = s.out_dir.join("in.gguf");
    hf2gguf(&s.hf, &input, "f16");
    let out = s.out_dir.join("q.gguf");
    std::fs::write(&out, b"the previous output").unwrap();
    let before = tree(&s.out_dir);
    let args = [
        "quantize",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        "--type",
        "q4_0",
    ];
    interrupt_at_hook(&args, "INT", 130, &s.out_dir, &before);
    interrupt_at_hook(&args, "TERM", 143, &s.out_dir, &before);
    assert_eq!(std::fs::read(&out).unwrap(), b"the previous output");
}

#[test]
fn sigint_during_synth_removes_the_directories_it_created() {
    let s = setup();
    let out = s.out_dir.join("new/checkpoint");
    let args = ["synth", "--preset", "tiny", "-o", out.to_str().unwrap()];
    interrupt_at_hook(&args, "INT", 130, &s.out_dir, &[]);
}

#[test]
fn sigterm_during_synth_keeps_an_existing_directory_as_it_was() {
    let s = setup();
    let out = s.out_dir.join("ckpt");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    std::fs::write(out.join("config.json"), b"{}").unwrap();
    let before = tree(&s.out_dir);
    let args = ["synth", "--preset", "tiny", "-o", out.to_str().unwrap()];
    interrupt_at_hook(&args, "TERM", 143, &s.out_dir, &before);
    assert_eq!(std::fs::read(out.join("config.json")).unwrap(), b"{}");
}

#[test]
fn a_panic_leaves_nothing() {
    let s = setup();
    let out = s.out_dir.join("model.gguf");
    let hf = [
        "hf2gguf",
        s.hf.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let synth_out = s.out_dir.join("new/ckpt");
    let synth = [
        "synth",
        "--preset",
        "tiny",
        "-o",
        synth_out.to_str().unwrap(),
    ];
    for args in [&hf[..], &synth[..]] {
        let child = spawn(args, Some("panic:3"));
        let o = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(101), "{args:?}: {stderr}");
        assert!(
            stderr.contains("test hook: panic after 3 tensors"),
            "{stderr}"
        );
        assert_eq!(
            tree(&s.out_dir),
            Vec::<String>::new(),
            "{args:?} left files"
        );
    }
}

/// Sum of the sizes of the files under `dir` whose name ends in `.tmp` or starts with `.tmp`
/// (ours and the safetensors crate's), recursively.
fn temp_bytes(dir: &Path) -> u64 {
    tree(dir)
        .iter()
        .map(|p| dir.join(p))
        .filter(|p| p.is_file())
        .filter(|p| {
            p.components().any(|c| {
                let c = c.as_os_str().to_string_lossy();
                c.ends_with(".tmp") || c.starts_with(".tmp")
            })
        })
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Runs `args` and signals it once `dir` holds `at_bytes` of temporary files.
fn interrupt_at_bytes(args: &[&str], sig: &str, code: i32, dir: &Path, at_bytes: u64) {
    let before = tree(dir);
    let mut child = spawn(args, None);
    let start = Instant::now();
    while temp_bytes(dir) < at_bytes {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{args:?} finished ({status}) before writing {at_bytes} bytes");
        }
        assert!(
            start.elapsed() < Duration::from_secs(1800),
            "{args:?} too slow"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&child, sig);
    let status = wait(&mut child);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(code), "{args:?}: {stderr}");
    assert_eq!(tree(dir), before, "{args:?}: left behind after SIG{sig}");
}

/// Real 1.4B conversions signalled part-way (OURO_LARGE_TESTS=1; needs ~6 GB of disk): synth
/// (SIGTERM at 1 GB), hf2gguf to f16 (SIGINT at 27 %, ~770 MB, as in issue 14) and quantize
/// q8_0 → q4_0 (SIGTERM at 300 MB).
#[test]
fn large_1_4b_conversions_interrupted() {
    if std::env::var("OURO_LARGE_TESTS").as_deref() != Ok("1") {
        eprintln!("skipping: set OURO_LARGE_TESTS=1 to signal the 1.4B conversions");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let hf = dir.join("ouro-1.4b");
    let hf_s = hf.to_str().unwrap();
    interrupt_at_bytes(
        &["synth", "--preset", "ouro-1.4b", "-o", hf_s],
        "TERM",
        143,
        dir,
        1_000_000_000,
    );
    assert!(!hf.exists());
    run_ok(&["synth", "--preset", "ouro-1.4b", "-o", hf_s]);

    let f16 = dir.join("big-f16.gguf");
    interrupt_at_bytes(
        &[
            "hf2gguf",
            hf_s,
            "-o",
            f16.to_str().unwrap(),
            "--type",
            "f16",
        ],
        "INT",
        130,
        dir,
        770_000_000,
    );
    let q8 = dir.join("big-q8_0.gguf");
    hf2gguf(&hf, &q8, "q8_0");
    let q4 = dir.join("big-q4_0.gguf");
    interrupt_at_bytes(
        &[
            "quantize",
            q8.to_str().unwrap(),
            q4.to_str().unwrap(),
            "--type",
            "q4_0",
        ],
        "TERM",
        143,
        dir,
        300_000_000,
    );
}
