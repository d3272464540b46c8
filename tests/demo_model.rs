//! The shipped demo model (models/ouro-demo.gguf, trained by models/train/train.py) through the
//! real CLI: greedy answers to held-out problems must stay at the accuracy recorded in
//! models/ouro-demo-eval.json (written by models/train/eval_gguf.py, quoted in models/README.md),
//! `--exit-mode skip` at the file's threshold must save at least 30 % of the layer evaluations,
//! the README examples must be answered as recorded, and a 10-turn piped `ouro chat --temp 0` session
//! (models/ouro-demo-chat.jsonl, questions never trained on) must get its recorded turns right
//! (issue 19 targets >= 9 of 10; `recorded_figures_meet_the_issue_19_accuracy_targets` holds the
//! recorded figures to those targets).
//! Self-speculative decoding (`--draft-loops D`) must accept drafts as recorded and keep every
//! answer. The recorded CLI figures must in turn agree with the independent PyTorch evaluation of
//! the same weights (TORCH_SUMMARY, written by train.py).

use std::path::{Path, PathBuf};
use std::process::Command;

/// PyTorch's evaluation of the shipped weights (train.py's train-summary.json of that run).
const TORCH_SUMMARY: &str = "models/train/logs/v5-summary.json";

/// Accuracy may fall this much below the recorded figure (4 of 100 items) before the test fails:
/// the recorded run used the same binary logic, so only kernel rounding can move an answer.
const MARGIN: f64 = 0.04;

/// The CLI's recorded accuracy on the 400 test items may differ from PyTorch's on the same items
/// by this much (f32 kernels vs torch: a near-tie argmax can flip; 2 points = 8 items).
const TORCH_TOLERANCE: f64 = 0.02;

/// Draft acceptance (of ~1 000 drafts on the CI items) may differ this much from the recorded one:
/// only kernel rounding can flip a near-tie argmax.
const SPEC_MARGIN: f64 = 0.02;

/// Chat turns (of 10) the shipped model must get right through `ouro chat`: issue 19's target
/// (the v3, v4 and v5 models get all 10).
const CHAT_MIN_RIGHT: usize = 9;

/// Tokens per answer at most; every answer is much shorter, so reaching it means no clean stop.
const N_PREDICT: usize = 40;

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
    /// The answers, in item order.
    texts: Vec<String>,
    /// Self-speculation (with `--draft-loops`): drafts made and accepted.
    drafted: u64,
    accepted: u64,
    /// Answers that ended at the end-of-turn token (before -n).
    stopped: usize,
    layer_evals: u64,
    tokens: usize,
    loops: u64,
}

/// Ask every item greedily with `extra` flags; the model comes from the default path (no -m).
fn run(items: &[Item], extra: &[&str]) -> Run {
    let mut r = Run {
        correct: 0,
        texts: Vec::new(),
        drafted: 0,
        accepted: 0,
        stopped: 0,
        layer_evals: 0,
        tokens: 0,
        loops: 0,
    };
    for it in items {
        let out = Command::new(env!("CARGO_BIN_EXE_ouro"))
            .current_dir(root())
            .env_remove("OURO_MODEL")
            .args(["generate", "--chat", "-p", &it.question])
            .args([
                "--temp",
                "0",
                "-n",
                &N_PREDICT.to_string(),
                "--json",
                "-t",
                "1",
            ])
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
        let text = v["text"].as_str().expect("text").trim();
        if text == it.answer {
            r.correct += 1;
        }
        r.texts.push(text.to_owned());
        if let Some(s) = v["speculation"].as_object() {
            r.drafted += s["drafted"].as_u64().expect("drafted");
            r.accepted += s["accepted"].as_u64().expect("accepted");
        }
        r.layer_evals += v["layer_evals"].as_u64().expect("layer_evals");
        let loops = v["loops"].as_array().expect("loops");
        if loops.len() < N_PREDICT {
            r.stopped += 1;
        }
        r.tokens += loops.len();
        r.loops += loops.iter().map(|l| l.as_u64().expect("loop")).sum::<u64>();
    }
    r
}

fn read_json(rel: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn recorded() -> serde_json::Value {
    read_json("models/ouro-demo-eval.json")
}

fn f(v: &serde_json::Value, what: &str) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("no number at {what}"))
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
    // Skip really cuts computation: at least 30 % fewer layer evaluations than every loop, at
    // nearly the same accuracy (3 of 100 items here; the 400-item recording is held to 1 point
    // in recorded_figures_meet_the_targets_and_match_pytorch).
    assert!(
        (skip.layer_evals as f64) <= 0.7 * full.layer_evals as f64,
        "skip {} layer evals vs {} at full depth",
        skip.layer_evals,
        full.layer_evals
    );
    assert!(
        acc(&skip) >= acc(&full) - 0.03,
        "skip {:.3} vs full depth {:.3}",
        acc(&skip),
        acc(&full)
    );
    // Generation stops cleanly at the end of every answer (at full depth and with early exit).
    for (name, r) in [("depth 4", &full), ("skip", &skip)] {
        assert_eq!(
            r.stopped, n,
            "{name}: {} of {n} answers ended at <|im_end|>",
            r.stopped
        );
    }
}

/// The recorded 400-item figures (eval_gguf.py through the CLI) agree with PyTorch's evaluation
/// of the same weights on the same items (train.py's summary: an independent implementation of
/// the model, evaluated in f32; the shipped file is q8_0, within 0.5 point of f32), and meet the
/// exit targets of issue 19: one loop clearly worse than four, `skip` at the file's threshold at
/// most 1 point below full depth while saving at least 30 % of the layer evaluations, every answer
/// ending at the end-of-turn token.
#[test]
fn recorded_figures_match_pytorch_and_meet_the_exit_targets() {
    let rec = recorded();
    let torch = read_json(TORCH_SUMMARY);
    let s = &rec["settings"];
    let full = f(&s["depth 4"]["accuracy"], "depth 4");
    let skip = f(&s["default threshold, skip"]["accuracy"], "skip");
    assert!(skip >= full - 0.01, "skip {skip} vs full depth {full}");
    let saving = f(&rec["skip_layer_eval_saving"], "skip_layer_eval_saving");
    assert!(
        saving >= 0.30,
        "skip saves {saving} of the layer evaluations"
    );
    assert!(f(&s["depth 1"]["accuracy"], "depth 1") + 0.2 <= full);
    for (name, v) in s.as_object().expect("settings") {
        let stops = f(&v["clean_stops"], name);
        assert_eq!(stops, 1.0, "{name}: share of answers ending at <|im_end|>");
    }
    for k in 1..=4 {
        let cli = f(&s[format!("depth {k}")]["accuracy"], "cli depth");
        let pt = f(
            &torch["test_fixed_depth"][k.to_string()]["accuracy"],
            "torch depth",
        );
        assert!(
            (cli - pt).abs() <= TORCH_TOLERANCE,
            "depth {k}: CLI {cli} vs PyTorch {pt}"
        );
    }
    for (setting, key) in [
        ("default threshold, select", "test_select_default"),
        ("default threshold, skip", "test_skip_default"),
    ] {
        let cli = f(&s[setting]["accuracy"], setting);
        let pt = f(&torch[key]["accuracy"], key);
        assert!(
            (cli - pt).abs() <= TORCH_TOLERANCE,
            "{setting}: CLI {cli} vs PyTorch {pt}"
        );
        // PyTorch counts loops up to an answer's first wrong token (teacher forcing), the CLI
        // over the whole generated answer: equal on the right answers, close overall.
        let (cl, pl) = (
            f(&s[setting]["mean_loops"], setting),
            f(&torch[key]["mean_loops"], key),
        );
        assert!(
            (cl - pl).abs() <= 0.05,
            "{setting}: mean loops CLI {cl} vs PyTorch {pl}"
        );
    }
    // Self-speculation with one draft per verification: the acceptance is the share of generated
    // tokens (after the first) whose loop-D argmax is full depth's; PyTorch measures the same
    // share over all answer tokens. Every answer identical to plain full depth's.
    for d in 1..=3 {
        let sp = &rec["speculation"][format!("draft loops {d}, draft max 1")];
        let cli = f(&sp["acceptance"], "speculation acceptance");
        let pt = f(
            &torch["speculative_acceptance"]["acceptance"][d.to_string()],
            "torch acceptance",
        );
        assert!(
            (cli - pt).abs() <= TORCH_TOLERANCE,
            "draft loops {d}: CLI acceptance {cli} vs PyTorch {pt}"
        );
        for m in [1, 4] {
            let sp = &rec["speculation"][format!("draft loops {d}, draft max {m}")];
            let same = f(&sp["identical_to_full_depth"], "identical_to_full_depth");
            assert_eq!(same, 1.0, "draft loops {d}, draft max {m}: answers changed");
        }
    }
}

/// Self-speculative decoding through the CLI on the CI items (`--draft-loops D --draft-max 4`,
/// D = 1, 2, 3): every answer exactly the plain full-depth one, and drafts accepted at the
/// recorded rate (eval_gguf.py; the same binary logic, so within SPEC_MARGIN).
#[test]
fn demo_model_self_speculation_accepts_as_recorded() {
    let rec = recorded();
    let n = rec["ci_items"].as_u64().expect("ci_items") as usize;
    let items = items(n);
    let full = run(&items, &["--loops", "4"]);
    for d in 1..=3 {
        let r = run(
            &items,
            &["--draft-loops", &d.to_string(), "--draft-max", "4"],
        );
        assert_eq!(r.texts, full.texts, "draft loops {d}: answers changed");
        assert_eq!(r.stopped, n, "draft loops {d}: no clean stop");
        let got = r.accepted as f64 / r.drafted as f64;
        let want = f(
            &rec["speculation"][format!("draft loops {d}, draft max 4")]["ci"]["acceptance"],
            "recorded acceptance",
        );
        eprintln!(
            "draft loops {d}: {} of {} drafts accepted",
            r.accepted, r.drafted
        );
        assert!(
            (got - want).abs() <= SPEC_MARGIN,
            "draft loops {d}: acceptance {got:.3} vs recorded {want:.3}"
        );
    }
}

/// Issue 19's accuracy targets, checked on the recorded figures: >= 95 % at full depth, every
/// task >= 90 %, every README example right, >= 9 of 10 turns of the piped chat (the shipped v5
/// model: 99.0 %, every task >= 96 %, 7 of 7 examples, 10 of 10 turns; models/README.md).
#[test]
fn recorded_figures_meet_the_issue_19_accuracy_targets() {
    let rec = recorded();
    let s = &rec["settings"];
    let full = f(&s["depth 4"]["accuracy"], "depth 4");
    assert!(full >= 0.95, "full-depth accuracy {full}");
    for (task, a) in s["depth 4"]["per_task"].as_object().expect("per_task") {
        let a = f(a, task);
        assert!(a >= 0.90, "full-depth accuracy on {task}: {a}");
    }
    for e in rec["examples"].as_array().expect("examples") {
        assert_eq!(e["got"], e["answer"], "README example {}", e["question"]);
    }
    let chat = rec["chat"]["correct"].as_u64().expect("chat");
    assert!(chat >= 9, "{chat} of 10 chat turns right");
}

/// The questions quoted in models/README.md and scripts/quickstart.sh, through the CLI: exactly
/// the answers recorded in ouro-demo-eval.json (right or wrong), so at least as many right.
#[test]
fn demo_model_answers_the_readme_examples_as_recorded() {
    let rec = recorded();
    let examples = rec["examples"].as_array().expect("examples");
    assert!(examples.len() >= 7);
    for e in examples {
        let item = Item {
            question: e["question"].as_str().expect("question").to_owned(),
            answer: e["got"].as_str().expect("got").to_owned(),
        };
        let r = run(std::slice::from_ref(&item), &[]);
        assert_eq!(
            r.correct, 1,
            "{:?}: the CLI no longer answers {:?} (recorded; the right answer is {:?})",
            item.question, item.answer, e["answer"]
        );
        assert_eq!(r.stopped, 1, "{:?}: no clean stop", item.question);
    }
}

/// Ten questions of mixed tasks piped into one `ouro chat --temp 0` session: each answer depends
/// only on its own question, and the model must ignore the earlier turns. One answer line per
/// question (every answer stopped at the end-of-turn token), at least CHAT_MIN_RIGHT right, and
/// exactly the count eval_gguf.py recorded. (Written against the current `ouro chat`: piped stdin
/// = one user turn per line, stdout = the answers only, `--temp`, `-n`, `-t`.)
#[test]
fn demo_model_holds_a_ten_turn_chat() {
    let text = std::fs::read_to_string(root().join("models/ouro-demo-chat.jsonl"))
        .expect("models/ouro-demo-chat.jsonl");
    let turns: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("jsonl line");
            (
                v["question"].as_str().expect("question").to_owned(),
                v["answer"].as_str().expect("answer").to_owned(),
            )
        })
        .collect();
    assert_eq!(turns.len(), 10);
    let input: String = turns.iter().map(|(q, _)| format!("{q}\n")).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ouro"))
        .current_dir(root())
        .env_remove("OURO_MODEL")
        .args([
            "chat",
            "--temp",
            "0",
            "-n",
            &N_PREDICT.to_string(),
            "-t",
            "1",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ouro chat");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("write questions");
    }
    let out = child.wait_with_output().expect("ouro chat");
    assert!(
        out.status.success(),
        "ouro chat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answers: Vec<&str> = stdout.lines().collect();
    let mut right = 0;
    for (i, (q, a)) in turns.iter().enumerate() {
        let got = answers.get(i).map_or("", |s| s.trim());
        eprintln!(
            "turn {}: {q} -> {got}{}",
            i + 1,
            if got == a { "" } else { "   (wrong)" }
        );
        right += usize::from(got == a);
    }
    assert_eq!(
        answers.len(),
        turns.len(),
        "one answer line per question:\n{stdout}"
    );
    assert!(
        right >= CHAT_MIN_RIGHT,
        "{right} of 10 chat turns right (want >= {CHAT_MIN_RIGHT})"
    );
    let rec = recorded();
    assert_eq!(
        rec["chat"]["correct"].as_u64(),
        Some(right as u64),
        "the recorded chat result (eval_gguf.py) differs"
    );
}
