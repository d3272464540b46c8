//! `ouro-convert add-gate`: a file stripped of its exit gate gets it back from the checkpoint,
//! byte for byte what `hf2gguf` wrote; wrong inputs are one-line errors.

mod common;

use common::*;
use ouro::gguf::{GgufFile, GgufWriter};

/// `path` rewritten without the `ouro.exit_gate.*` / `ouro.early_exit_threshold` keys (as
/// llama.cpp's converter writes Ouro files), tensors unchanged.
fn strip_gate(path: &std::path::Path, out: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap();
    let g = GgufFile::parse(&bytes).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in &g.metadata {
        if !(k.starts_with("ouro.exit_gate.") || k == "ouro.early_exit_threshold") {
            w.add_kv(k.clone(), v.clone()).unwrap();
        }
    }
    for t in &g.tensors {
        w.add_tensor(t.name.clone(), &t.dims, t.ty).unwrap();
    }
    let mut data = w.begin(out).unwrap();
    for t in &g.tensors {
        data.write_tensor(&t.name, g.tensor_data(t)).unwrap();
    }
    data.finish().unwrap();
}

#[test]
fn add_gate_restores_the_file_hf2gguf_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full.gguf");
    let bare = tmp.path().join("bare.gguf");
    let back = tmp.path().join("back.gguf");
    let dir = fixture("ouro-tiny-b");
    hf2gguf(&dir, &full, "q8_0");
    strip_gate(&full, &bare);
    let bare_bytes = std::fs::read(&bare).unwrap();
    let g = GgufFile::parse(&bare_bytes).unwrap();
    assert!(g.get("ouro.exit_gate.weight").is_none());
    let out = run_ok(&[
        "add-gate",
        bare.to_str().unwrap(),
        "--from",
        dir.to_str().unwrap(),
        "-o",
        back.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("wrote "));
    assert!(
        std::fs::read(&back).unwrap() == std::fs::read(&full).unwrap(),
        "add-gate output differs from hf2gguf's file"
    );
    // A second add-gate replaces the keys instead of duplicating them.
    let again = tmp.path().join("again.gguf");
    run_ok(&[
        "add-gate",
        back.to_str().unwrap(),
        "--from",
        dir.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&again).unwrap() == std::fs::read(&full).unwrap());
}

#[test]
fn add_gate_refuses_another_models_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("b.gguf");
    hf2gguf(&fixture("ouro-tiny-b"), &full, "q8_0");
    let out_path = tmp.path().join("x.gguf");
    let out = run(&[
        "add-gate",
        full.to_str().unwrap(),
        "--from",
        fixture("ouro-tiny-a").to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not the same model"), "{err}");
    assert!(!out_path.exists());
}
