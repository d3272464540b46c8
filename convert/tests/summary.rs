//! Every command that writes ends with one line on stdout: output path, size, tensor count with a
//! per-type histogram, seconds: `wrote model.gguf: 909.3 MB, 170 tensors (q4_0 168, f32 2), 4.1 s`.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;

/// The size as the converter prints it (decimal units).
fn human(n: u64) -> String {
    match n {
        0..=999 => format!("{n} B"),
        1_000..=999_999 => format!("{:.1} kB", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

/// "q4_0 14, f32 9, q8_0 2": most frequent first, then by name.
fn histogram(types: impl IntoIterator<Item = String>) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in types {
        *counts.entry(t).or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks stdout is exactly `wrote PATH: SIZE, N tensors (HIST), S s` and returns S.
fn check_line(stdout: &[u8], path: &Path, bytes: u64, n: usize, hist: &str) -> f64 {
    let text = String::from_utf8(stdout.to_vec()).unwrap();
    assert_eq!(text.lines().count(), 1, "{text:?}");
    let prefix = format!(
        "wrote {}: {}, {n} tensors ({hist}), ",
        path.display(),
        human(bytes)
    );
    let rest = text
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("expected {prefix:?}..., got {text:?}"));
    let secs: f64 = rest
        .strip_suffix(" s\n")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no seconds in {text:?}"));
    assert!((0.0..60.0).contains(&secs), "{text}");
    secs
}

fn gguf_types(path: &Path) -> Vec<String> {
    let g = Gguf::open(path);
    let f = g.file();
    f.tensors
        .iter()
        .map(|t| t.ty.to_string().to_ascii_lowercase())
        .collect()
}

#[test]
fn synth_hf2gguf_and_quantize_end_with_one_summary_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    let o = run_ok(&["synth", "--preset", "tiny", "-o", dir.to_str().unwrap()]);
    let files = dir_entries(&dir);
    assert_eq!(files.len(), 6, "{files:?}");
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).unwrap().len())
        .sum();
    let n = read_checkpoint(&dir).len();
    assert_eq!(n, 27);
    check_line(&o.stdout, &dir, bytes, n, "bf16 27");

    let out = tmp.path().join("tiny-q4_0.gguf");
    let o = run_ok(&[
        "hf2gguf",
        dir.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--type",
        "q4_0",
    ]);
    let types = gguf_types(&out);
    let hist = histogram(types.clone());
    // Norms f32, 64-wide weights q4_0, the embeddings q8_0 (see --help).
    assert_eq!(hist, "q4_0 14, f32 9, q8_0 2");
    let bytes = std::fs::metadata(&out).unwrap().len();
    check_line(&o.stdout, &out, bytes, types.len(), &hist);

    let q8 = tmp.path().join("tiny-q8_0.gguf");
    let o = run_ok(&[
        "quantize",
        out.to_str().unwrap(),
        q8.to_str().unwrap(),
        "--type",
        "q8_0",
    ]);
    let types = gguf_types(&q8);
    assert_eq!(histogram(types.clone()), "q8_0 16, f32 9");
    let bytes = std::fs::metadata(&q8).unwrap().len();
    check_line(&o.stdout, &q8, bytes, types.len(), "q8_0 16, f32 9");
}

#[test]
fn dry_run_prints_the_plan_and_no_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    copy_fixture("ouro-tiny-a", &dir);
    let o = run_ok(&["hf2gguf", dir.to_str().unwrap(), "--dry-run"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("total: 25 tensors"), "{text}");
    assert!(!text.contains("wrote "), "{text}");
}
