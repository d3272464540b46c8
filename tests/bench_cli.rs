//! `ouro bench --json` on a converted fixture: the keys, positive finite rates, and the
//! bandwidth arithmetic checked against the tensor sizes read independently from the file.
//! No time limits: speed is not asserted, only that it was measured.

mod common;

use std::path::Path;
use std::process::Command;

use ouro::gguf::GgufFile;
use serde_json::Value;

/// Matrices read once per layer evaluation.
const LAYER_MATRICES: [&str; 7] = [
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

/// Relative tolerance of `gb_per_s` against bytes × mean rate (float formatting only).
const GBS_REL_TOL: f64 = 1e-9;

fn bench(model: &Path, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ouro"))
        .arg("bench")
        .arg("-m")
        .arg(model)
        .args(["-p", "8", "-n", "4", "-r", "2", "-t", "2", "--json"])
        .args(extra)
        .output()
        .expect("run ouro bench");
    assert!(
        out.status.success(),
        "ouro bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

fn positive(v: &Value, key: &str) -> f64 {
    let x = v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing or not a number in {v}"));
    assert!(x.is_finite() && x > 0.0, "{key} = {x}");
    x
}

fn rate(v: &Value, key: &str, reps: usize) -> f64 {
    let r = &v[key];
    let mean = positive(r, "mean");
    let sd = r["sd"]
        .as_f64()
        .unwrap_or_else(|| panic!("{key}.sd in {v}"));
    assert!(sd.is_finite() && sd >= 0.0, "{key}.sd = {sd}");
    let samples = r["samples"].as_array().expect("samples");
    assert_eq!(samples.len(), reps, "{key}.samples");
    let xs: Vec<f64> = samples
        .iter()
        .map(|s| s.as_f64().expect("sample"))
        .collect();
    assert!(
        xs.iter().all(|x| x.is_finite() && *x > 0.0),
        "{key}: {xs:?}"
    );
    let m = xs.iter().sum::<f64>() / xs.len() as f64;
    assert!(
        (m - mean).abs() <= 1e-9 * mean,
        "{key}.mean {mean} vs samples {xs:?}"
    );
    mean
}

/// (stack bytes, head bytes) summed from the file's tensor index.
fn tensor_bytes(model: &Path) -> (u64, u64) {
    let bytes = std::fs::read(model).expect("read model");
    let g = GgufFile::parse(&bytes).expect("parse model");
    let stack = g
        .tensors
        .iter()
        .filter(|t| {
            t.name.starts_with("blk.")
                && LAYER_MATRICES
                    .iter()
                    .any(|m| t.name.ends_with(&format!(".{m}.weight")))
        })
        .map(|t| t.n_bytes)
        .sum();
    let head = g
        .tensor("output.weight")
        .or_else(|| g.tensor("token_embd.weight"))
        .expect("output head")
        .n_bytes;
    (stack, head)
}

#[test]
fn json_has_positive_rates_and_full_depth_bandwidth() {
    let model = common::converted("ouro-tiny-a", "q8_0");
    let v = bench(&model, &[]);
    rate(&v, "pp_tok_per_s", 2);
    let tg = rate(&v, "tg_tok_per_s", 2);
    positive(&v, "peak_rss_bytes");
    assert_eq!(v["threads"], 2);
    // ouro-tiny-a: 2 layers, 4 loops; without --exit-threshold every token runs all 4.
    assert_eq!(v["loops"], 4);
    assert_eq!(v["mean_loops"].as_f64(), Some(4.0));
    assert_eq!(
        v["layer_evals"],
        2 * 4 * 4 * 2,
        "reps × tokens × loops × layers"
    );
    let (stack, head) = tensor_bytes(&model);
    assert_eq!(v["weight_bytes_per_token"].as_u64(), Some(4 * stack + head));
    let gbs = positive(&v, "gb_per_s");
    let want = (4 * stack + head) as f64 * tg / 1e9;
    assert!(
        (gbs - want).abs() <= GBS_REL_TOL * want,
        "gb_per_s {gbs} vs {want}"
    );
}

#[test]
fn one_loop_streams_the_stack_once() {
    let model = common::converted("ouro-tiny-a", "q8_0");
    let v = bench(&model, &["--loops", "1"]);
    rate(&v, "tg_tok_per_s", 2);
    let (stack, head) = tensor_bytes(&model);
    assert_eq!(v["loops"], 1);
    assert_eq!(v["weight_bytes_per_token"].as_u64(), Some(stack + head));
}

/// `-d N`: the untimed prefill of N tokens is kept out of the counts — the timed layer
/// evaluations are exactly 2 repetitions × 4 tokens × layers × loops, as without `-d`.
#[test]
fn depth_prefill_is_not_counted() {
    let model = common::converted("ouro-tiny-a", "q8_0");
    let plain = bench(&model, &[]);
    let deep = bench(&model, &["-d", "24"]);
    assert_eq!(deep["n_depth"], 24);
    assert_eq!(plain["n_depth"], 0);
    rate(&deep, "tg_tok_per_s", 2);
    rate(&deep, "pp_tok_per_s", 2);
    let evals = |v: &Value| v["layer_evals"].as_u64().expect("layer_evals");
    assert!(evals(&plain) > 0);
    assert_eq!(evals(&deep), evals(&plain));
}

#[test]
fn skip_mode_reports_loops_actually_run() {
    // ouro-tiny-b: 3 layers, 3 loops, threshold 0.6 shipped; --exit-threshold 0 overrides it.
    let model = common::converted("ouro-tiny-b", "q8_0");
    let v = bench(&model, &["--exit-threshold", "0", "--exit-mode", "skip"]);
    rate(&v, "pp_tok_per_s", 2);
    rate(&v, "tg_tok_per_s", 2);
    positive(&v, "gb_per_s");
    assert_eq!(v["loops"], 3);
    assert_eq!(v["exit_mode"], "skip");
    // Spec: exit at the first loop whose CDF ≥ q; with q = 0 that is loop 0 for every token,
    // so each of the 2 reps × 4 tokens runs the 3 layers once.
    assert_eq!(
        v["layer_evals"],
        2 * 4 * 3,
        "reps × tokens × layers × 1 loop"
    );
    let mean_loops = positive(&v, "mean_loops");
    assert_eq!(mean_loops, 1.0, "mean_loops");
    let (stack, head) = tensor_bytes(&model);
    let want = (stack as f64 * mean_loops) as u64 + head;
    assert_eq!(v["weight_bytes_per_token"].as_u64(), Some(want));
}

/// `--exit-mode skip` without `--exit-threshold` uses the file's threshold, as generate and
/// chat do (ouro-tiny-b ships 0.6), and so runs fewer loops than full depth.
#[test]
fn skip_mode_uses_the_files_threshold() {
    let model = common::converted("ouro-tiny-b", "q8_0");
    let v = bench(&model, &["--exit-mode", "skip"]);
    let q = v["exit_threshold"]
        .as_f64()
        .expect("exit_threshold from the file");
    assert!((q - 0.6).abs() < 1e-6, "{q}");
    let mean_loops = positive(&v, "mean_loops");
    assert!(mean_loops < 3.0, "mean_loops {mean_loops}");
    let evals = v["layer_evals"].as_u64().expect("layer_evals");
    assert!(
        evals < 2 * 4 * 3 * 3,
        "{evals} layer evaluations at full depth or more"
    );
    // --loops fixes the depth and, as in generate, turns the file's threshold off.
    let v = bench(&model, &["--exit-mode", "skip", "--loops", "3"]);
    assert!(v["exit_threshold"].is_null());
    assert_eq!(v["layer_evals"], 2 * 4 * 3 * 3);
}

/// `--draft-loops` adds greedy generation with and without self-speculation and its counters.
#[test]
fn speculation_is_measured_with_its_counters() {
    let model = common::converted("ouro-tiny-b", "q8_0");
    let v = bench(&model, &["--draft-loops", "2", "--draft-max", "3"]);
    let sp = &v["speculation"];
    assert_eq!(sp["draft_loops"], 2);
    assert!(sp["plain_tok_per_s"]["mean"].as_f64().expect("plain") > 0.0);
    assert!(sp["spec_tok_per_s"]["mean"].as_f64().expect("spec") > 0.0);
    let (drafted, accepted) = (
        sp["drafted"].as_u64().expect("drafted"),
        sp["accepted"].as_u64().expect("accepted"),
    );
    // 4 tokens, at most 3 drafts per verification of which at least one is full depth's.
    assert!(drafted >= 3 && accepted <= drafted, "{sp}");
    // A verification emits at most its 3 drafts (all accepted) and at least one token.
    let per_verify = sp["tokens_per_verify"].as_f64().expect("per verify");
    assert!((1.0..=3.0).contains(&per_verify), "{sp}");
    // Without the flag there is no such section.
    assert!(bench(&model, &[])["speculation"].is_null());
}

#[test]
fn bad_options_are_one_line_errors() {
    let model = common::converted("ouro-tiny-a", "q8_0");
    for args in [&["-r", "0"][..], &["-p", "0", "-n", "0"], &["--loops", "0"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_ouro"))
            .arg("bench")
            .arg("-m")
            .arg(&model)
            .args(args)
            .output()
            .expect("run ouro bench");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}
