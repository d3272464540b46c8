//! `ouro generate` / `logits` / `perplexity` end to end on the converted fixtures, and the
//! bad-input cases (one-line error, exit status 1).

mod common;

use std::process::{Command, Output};

use common::*;

fn ouro(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ouro"))
        .args(args)
        .output()
        .expect("run ouro")
}

fn json_of(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "ouro failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("one JSON object")
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("u64") as u32)
        .collect()
}

/// A bad-input run: exit status 1 and a single non-empty stderr line mentioning `needle`.
fn assert_clean_failure(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(
        lines[0].to_lowercase().contains(needle),
        "{needle:?} not in {err:?}"
    );
}

#[test]
fn generate_json_greedy_matches_fixture_and_skip_cuts_layers() {
    let model = converted("ouro-tiny-b", "f32");
    let m = model.to_str().expect("utf-8 path");
    let base = [
        "generate",
        "-m",
        m,
        "-p",
        P1_TEXT,
        "-n",
        "12",
        "--temp",
        "0",
        "--ignore-eos",
        "--json",
        "-t",
        "2",
    ];
    // Reference greedy: every token reads out the last loop (threshold 1).
    let mut args = base.to_vec();
    args.extend(["--exit-threshold", "1"]);
    let full = json_of(&ouro(&args));
    assert_eq!(ids(&full["prompt_tokens"]), P1_IDS);
    assert_eq!(
        ids(&full["tokens"]),
        [24606, 10147, 2724, 21429, 15453, 36615, 34691, 24948, 21855, 15453, 39761, 15453]
    );
    assert!(ids(&full["loops"]).iter().all(|&l| l == 3));
    let full_evals = full["layer_evals"].as_u64().expect("layer_evals");
    // (5 prompt + 11 fed back) tokens × 3 loops × 3 layers.
    assert_eq!(full_evals, 16 * 3 * 3);
    assert!(full["gen_tok_per_s"].as_f64().expect("rate") > 0.0);

    let mut args = base.to_vec();
    args.extend(["--exit-threshold", "0.5", "--exit-mode", "skip"]);
    let skip = json_of(&ouro(&args));
    let loops = ids(&skip["loops"]);
    assert_eq!(loops.len(), 12);
    assert!(loops.iter().any(|&l| l < 3), "{loops:?}");
    assert!(skip["layer_evals"].as_u64().expect("layer_evals") < full_evals);
}

#[test]
fn generate_parses_special_tokens_in_the_prompt() {
    let model = converted("ouro-tiny-a", "f32");
    let m = model.to_str().expect("utf-8 path");
    let o = ouro(&[
        "generate",
        "-m",
        m,
        "-p",
        P2_TEXT,
        "-n",
        "12",
        "--temp",
        "0",
        "--ignore-eos",
        "--json",
    ]);
    let v = json_of(&o);
    assert_eq!(ids(&v["prompt_tokens"]), P2_IDS);
    assert_eq!(
        ids(&v["tokens"]),
        [33371, 32755, 23643, 810, 41604, 41604, 37328, 14683, 36087, 33371, 13966, 44835]
    );
}

#[test]
fn logits_command_writes_the_reference_readout() {
    let model = converted("ouro-tiny-b", "f32");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("logits.npy");
    let gates = dir.path().join("gates.npy");
    let o = ouro(&[
        "logits",
        "-m",
        model.to_str().expect("utf-8"),
        "--tokens",
        "504,3575,282,4649,314",
        "--out",
        out.to_str().expect("utf-8"),
        "--gates-out",
        gates.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Default = the file's threshold 0.6: the reference's default readout.
    let got = read_npy(&out);
    assert_eq!(got.shape, vec![5, 49152]);
    let want = read_npy(&expected("ouro-tiny-b", "logits_threshold_P1.npy"));
    assert!(max_abs_diff(&got.data, &want.data) < 1e-2);
    let g = read_npy(&gates);
    assert_eq!(g.shape, vec![3, 5]);
    let want = read_npy(&expected("ouro-tiny-b", "gate_P1.npy"));
    assert!(max_abs_diff(&g.data, &want.data) < 1e-5);

    // --loops 3 is the final readout, at f32 precision.
    let o = ouro(&[
        "logits",
        "-m",
        model.to_str().expect("utf-8"),
        "-p",
        P1_TEXT,
        "--loops",
        "3",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = read_npy(&expected("ouro-tiny-b", "logits_final_P1.npy"));
    assert!(max_abs_diff(&read_npy(&out).data, &want.data) < 1e-3);
}

#[test]
fn perplexity_runs_and_prints_a_final_estimate() {
    let model = converted("ouro-tiny-a", "f32");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("t.txt");
    std::fs::write(&text, "The capital of France is Paris. ".repeat(20)).expect("write");
    let o = ouro(&[
        "perplexity",
        "-m",
        model.to_str().expect("utf-8"),
        "-f",
        text.to_str().expect("utf-8"),
        "--ctx",
        "32",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let ppl: f64 = out
        .split("Final estimate: PPL = ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no estimate in {out}"));
    // Random weights: a perplexity above 1 and finite (far from a vocabulary-wide 49152 is
    // not expected either way).
    assert!(ppl.is_finite() && ppl > 1.0, "{ppl}");
}

#[test]
fn bad_inputs_fail_cleanly() {
    let model = converted("ouro-tiny-a", "f32");
    let m = model.to_str().expect("utf-8");
    assert_clean_failure(
        &ouro(&["generate", "-m", m, "-p", P2_TEXT, "--ctx", "8", "-n", "1"]),
        "ctx",
    );
    assert_clean_failure(
        &ouro(&["generate", "-m", m, "-p", "hi", "--loops", "0", "-n", "1"]),
        "loops",
    );
    assert_clean_failure(
        &ouro(&[
            "generate",
            "-m",
            m,
            "-p",
            "hi",
            "--exit-threshold",
            "1.5",
            "-n",
            "1",
        ]),
        "threshold",
    );
    assert_clean_failure(
        &ouro(&[
            "generate",
            "-m",
            m,
            "-p",
            "hi",
            "--exit-threshold",
            "-0.1",
            "-n",
            "1",
        ]),
        "threshold",
    );
    assert_clean_failure(
        &ouro(&["generate", "-m", "/nonexistent/model.gguf", "-p", "hi"]),
        "not found",
    );
    assert_clean_failure(
        &ouro(&[
            "logits",
            "-m",
            m,
            "--tokens",
            "1,99999999",
            "--out",
            "/dev/null",
        ]),
        "out of range",
    );
}

/// `OURO_SIMD` naming no path is refused before any work, with the valid names in the message;
/// the always-available `scalar` path is honoured and gives the same greedy answer.
#[test]
fn ouro_simd_override_is_checked() {
    let model = converted("ouro-tiny-a", "f32");
    let m = model.to_str().unwrap();
    let run = |simd: &str| {
        Command::new(env!("CARGO_BIN_EXE_ouro"))
            .env("OURO_SIMD", simd)
            .args([
                "generate", "-m", m, "-p", "Hello", "-n", "4", "--temp", "0", "--json",
            ])
            .output()
            .expect("run ouro")
    };
    assert_clean_failure(&run("sse9"), "ouro_simd=\"sse9\" is not a kernel path");
    let scalar = json_of(&run("scalar"));
    assert_eq!(scalar["simd"], "scalar");
    let best = json_of(&ouro(&[
        "generate", "-m", m, "-p", "Hello", "-n", "4", "--temp", "0", "--json",
    ]));
    assert_eq!(ids(&scalar["tokens"]), ids(&best["tokens"]));
}

fn ouro_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ouro"));
    cmd.args(args).env_remove("OURO_MODEL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ouro")
}

/// Each cause is printed once; a directory and a bad `$OURO_MODEL` are named as such.
#[test]
fn model_errors_name_their_cause_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("fake.gguf");
    std::fs::write(&fake, b"hello, this is not a model").expect("write");
    let o = ouro(&["generate", "-m", fake.to_str().unwrap(), "-p", "hi"]);
    assert_clean_failure(&o, "not a gguf file");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("not a GGUF file").count(), 1, "{err}");
    assert_eq!(err.matches("fake.gguf").count(), 1, "{err}");

    let d = dir.path().to_str().unwrap();
    let o = ouro(&["generate", "-m", d, "-p", "hi"]);
    assert_clean_failure(&o, "is a directory");

    let o = ouro_env(
        &["generate", "-p", "hi"],
        &[("OURO_MODEL", "/nonexistent/env-model.gguf")],
    );
    assert_clean_failure(&o, "(from $ouro_model) not found");
    // info, bench, perplexity and logits resolve the model the same way.
    for cmd in [
        &["info"][..],
        &["bench", "-r", "1"],
        &["perplexity", "-f", "Cargo.toml"],
    ] {
        let o = ouro_env(cmd, &[("OURO_MODEL", "/nonexistent/env-model.gguf")]);
        assert_clean_failure(&o, "$ouro_model");
    }
}

/// `-n -1` (llama.cpp's "until the end of the turn") works; `-n 0` is refused by generate and
/// chat with the same message; the sampling options name the bad flag.
#[test]
fn token_counts_and_sampling_options_are_checked_alike() {
    let demo = ["--temp", "0", "-t", "1"];
    let o = ouro_env(
        &[
            &[
                "generate",
                "--chat",
                "-p",
                "What is 2 + 3?",
                "-n",
                "-1",
                "--json",
            ][..],
            &demo,
        ]
        .concat(),
        &[],
    );
    let v = json_of(&o);
    assert_eq!(v["stop_reason"], "stop", "{v}");
    assert!(!ids(&v["tokens"]).is_empty());
    for cmd in ["generate", "chat"] {
        let o = ouro_env(&[cmd, "-p", "hi", "-n", "0"], &[]);
        let o = if cmd == "chat" {
            ouro_env(&[cmd, "-n", "0"], &[])
        } else {
            o
        };
        assert_clean_failure(
            &o,
            "-n must be -1 (until end of turn / context) or a count >= 1, got 0",
        );
        let args: Vec<&str> = if cmd == "chat" {
            vec![cmd, "--top-p", "0"]
        } else {
            vec![cmd, "-p", "hi", "--top-p", "0"]
        };
        assert_clean_failure(&ouro_env(&args, &[]), "--top-p must be in (0, 1], got 0");
    }
}

/// Special tokens are not printed as text unless `--special` asks for them: with
/// `--ignore-eos` the demo model's `<|im_end|>` is generated but hidden.
#[test]
fn special_tokens_are_hidden_unless_asked_for() {
    let base = [
        "generate",
        "--chat",
        "-p",
        "What is 2 + 3?",
        "--temp",
        "0",
        "-t",
        "1",
        "-n",
        "24",
        "--ignore-eos",
    ];
    let hidden = ouro_env(&base, &[]);
    assert!(
        hidden.status.success(),
        "{}",
        String::from_utf8_lossy(&hidden.stderr)
    );
    let shown = ouro_env(&[&base[..], &["--special"]].concat(), &[]);
    assert!(shown.status.success());
    let (hidden, shown) = (
        String::from_utf8_lossy(&hidden.stdout).into_owned(),
        String::from_utf8_lossy(&shown.stdout).into_owned(),
    );
    assert!(shown.contains("<|im_end|>"), "{shown:?}");
    assert!(!hidden.contains("<|im_"), "{hidden:?}");
    assert_eq!(
        hidden,
        shown.replace("<|im_end|>", "").replace("<|im_start|>", "")
    );
}

/// Ctrl-C (SIGINT) during `generate` ends the line, prints the timings so far and exits 130.
#[test]
fn generate_interrupted_prints_newline_and_timings() {
    use std::io::Read;
    let model = converted("ouro-tiny-a", "f32");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ouro"))
        .args(["generate", "-m", model.to_str().unwrap(), "-p", P2_TEXT])
        .args([
            "--temp",
            "0",
            "-n",
            "-1",
            "--ignore-eos",
            "--ctx",
            "60000",
            "-t",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ouro generate");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 16];
    stdout
        .read_exact(&mut first)
        .expect("some text streams first");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(kill.success());
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).expect("read stdout");
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert_eq!(rest.last(), Some(&b'\n'), "the text ends with a newline");
    assert!(err.contains("[interrupted]"), "{err}");
    assert!(
        err.contains("generated: ") && err.contains("tok/s"),
        "{err}"
    );
}

/// A file without an exit gate (as llama.cpp's converter writes Ouro) runs full depth with a
/// one-line note naming `add-gate`; `ouro info` says "exit gate: no".
#[test]
fn a_file_without_exit_gate_runs_full_depth_with_a_note() {
    use ouro::gguf::{GgufFile, GgufWriter};
    let src = converted("ouro-tiny-b", "q8_0");
    let bytes = std::fs::read(&src).expect("read");
    let g = GgufFile::parse(&bytes).expect("parse");
    let dir = tempfile::tempdir().expect("tempdir");
    let bare = dir.path().join("bare.gguf");
    let mut w = GgufWriter::new();
    for (k, v) in &g.metadata {
        if !(k.starts_with("ouro.exit_gate.") || k == "ouro.early_exit_threshold") {
            w.add_kv(k.clone(), v.clone()).expect("kv");
        }
    }
    for t in &g.tensors {
        w.add_tensor(t.name.clone(), &t.dims, t.ty).expect("tensor");
    }
    let mut data = w.begin(&bare).expect("begin");
    for t in &g.tensors {
        data.write_tensor(&t.name, g.tensor_data(t)).expect("write");
    }
    data.finish().expect("finish");
    let m = bare.to_str().unwrap();
    let o = ouro(&[
        "generate", "-m", m, "-p", "hi", "-n", "3", "--temp", "0", "--json",
    ]);
    let v = json_of(&o);
    assert!(ids(&v["loops"]).iter().all(|&l| l == 3), "{v}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("has no exit gate") && err.contains("add-gate"),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.contains("exit gate")).count(),
        1,
        "{err}"
    );
    let info = ouro(&["info", m]);
    assert!(String::from_utf8_lossy(&info.stdout).contains("exit gate"));
}
