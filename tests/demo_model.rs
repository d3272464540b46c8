//! The shipped demo model (models/ouro-demo.gguf, trained by models/train/train.py) through the
//! real CLI: greedy answers to held-out problems must stay at the accuracy recorded in
//! models/ouro-demo-eval.json (written by models/train/eval_gguf.py, quoted in models/README.md),
//! and `--exit-mode skip` at the file's threshold must do fewer layer evaluations than full depth.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Accuracy may fall this much below the recorded figure (4 of 100 items) before the test fails:
/// the recorded run used the same binary logic, so only kernel rounding can move an answer.
const MARGIN: f64 = 0.04;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Item {
    question: String,
    answer: String,
}

fn items(n: usize) -> Vec<Item> {
    let text = std::fs::read_to_string(root().join("models/ouro-demo-test.jsonl"))
        .expect("models/ouro-demo-test.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("jsonl line");
            Item {
                question: v["question"].as_str().expect("question").to_owned(),
                answer: v["answer"].as_str().expect("answer").to_owned(),
            }
        })
        .collect()
}

struct Run {
    correct: usize,
    layer_evals: u64,
    tokens: usize,
    loops: u64,
}

/// Ask every item greedily with `extra` flags; the model comes from the default path (no -m).
fn run(items: &[Item], extra: &[&str]) -> Run {
    let mut r = Run {
        correct: 0,
        layer_evals: 0,
        tokens: 0,
        loops: 0,
    };
    for it in items {
        let out = Command::new(env!("CARGO_BIN_EXE_ouro"))
            .current_dir(root())
            .env_remove("OURO_MODEL")
            .args(["generate", "--chat", "-p", &it.question])
            .args(["--temp", "0", "-n", "40", "--json", "-t", "1"])
            .args(extra)
            .output()
            .expect("run ouro");
        assert!(
            out.status.success(),
            "ouro generate failed on {:?}: {}",
            it.question,
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json output");
        if v["text"].as_str().map(str::trim) == Some(it.answer.as_str()) {
            r.correct += 1;
        }
        r.layer_evals += v["layer_evals"].as_u64().expect("layer_evals");
        let loops = v["loops"].as_array().expect("loops");
        r.tokens += loops.len();
        r.loops += loops.iter().map(|l| l.as_u64().expect("loop")).sum::<u64>();
    }
    r
}

fn recorded() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("models/ouro-demo-eval.json"))
        .expect("models/ouro-demo-eval.json");
    serde_json::from_str(&text).expect("eval json")
}

fn demo_path() -> PathBuf {
    root().join("models/ouro-demo.gguf")
}

#[test]
fn demo_model_is_small_and_present() {
    let len = std::fs::metadata(demo_path())
        .expect("models/ouro-demo.gguf")
        .len();
    assert!(len <= 16 << 20, "demo model is {len} bytes, over 16 MiB");
}

#[test]
fn demo_model_keeps_its_recorded_accuracy_and_skip_saves_layers() {
    let rec = recorded();
    let n = rec["ci_items"].as_u64().expect("ci_items") as usize;
    let items = items(n);
    assert_eq!(items.len(), n);
    let want = |setting: &str| {
        rec["settings"][setting]["ci"]["accuracy"]
            .as_f64()
            .unwrap_or_else(|| panic!("no recorded accuracy for {setting}"))
    };

    let full = run(&items, &["--loops", "4"]);
    let select = run(&items, &["--exit-mode", "select"]);
    let skip = run(&items, &["--exit-mode", "skip"]);
    let one = run(&items, &["--loops", "1"]);
    let acc = |r: &Run| r.correct as f64 / n as f64;
    eprintln!(
        "demo model on {n} held-out items: depth 4 {:.3}, depth 1 {:.3}, select {:.3}, skip {:.3} \
         (mean loops {:.2}, layer evals {} vs {} at full depth)",
        acc(&full),
        acc(&one),
        acc(&select),
        acc(&skip),
        skip.loops as f64 / skip.tokens as f64,
        skip.layer_evals,
        full.layer_evals
    );
    for (name, r) in [
        ("depth 4", &full),
        ("depth 1", &one),
        ("default threshold, select", &select),
        ("default threshold, skip", &skip),
    ] {
        assert!(
            acc(r) >= want(name) - MARGIN,
            "{name}: accuracy {:.3} fell below the recorded {:.3} - {MARGIN}",
            acc(r),
            want(name)
        );
    }
    // Depth matters: one loop is clearly worse than four.
    assert!(
        acc(&one) + 0.2 <= acc(&full),
        "depth 1 {:.3} vs depth 4 {:.3}",
        acc(&one),
        acc(&full)
    );
    // Skip really cuts computation: fewer layer evaluations than running every loop.
    assert!(
        (skip.layer_evals as f64) < 0.9 * full.layer_evals as f64,
        "skip {} layer evals vs {} at full depth",
        skip.layer_evals,
        full.layer_evals
    );
}
