//! `ouro info`: the real SmolLM2-135M GGUF, files we write (ouro and llama architectures, key
//! fallbacks), `--tensors`, and exit statuses.

mod gguf_common;

use std::path::Path;
use std::process::{Command, Output};

use gguf_common::smollm2_gguf;
use ouro::gguf::{GgmlType, GgufWriter, Value, ValueType};
use serde_json::Value as Json;

fn ouro(args: &[&str], file: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ouro"));
    cmd.args(args);
    if let Some(f) = file {
        cmd.arg(f);
    }
    cmd.output().unwrap()
}

fn info_json(path: &Path, extra: &[&str]) -> Json {
    let mut args = vec!["info", "--json"];
    args.extend_from_slice(extra);
    let out = ouro(&args, Some(path));
    assert!(
        out.status.success(),
        "ouro info failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one JSON object on one line");
    serde_json::from_str(&text).unwrap()
}

/// Writes a model-shaped file: `kv` metadata and `tensors` (zero data).
fn write_model(path: &Path, kv: Vec<(&str, Value)>, tensors: &[(&str, &[u64], GgmlType)]) {
    let mut w = GgufWriter::new();
    for (k, v) in kv {
        w.add_kv(k, v).unwrap();
    }
    for (name, dims, ty) in tensors {
        w.add_tensor(*name, dims, *ty).unwrap();
    }
    let mut d = w.begin(path).unwrap();
    for (name, dims, ty) in tensors {
        let n = ouro::gguf::tensor_n_bytes(dims, *ty).unwrap();
        d.write_tensor(name, &vec![0; n as usize]).unwrap();
    }
    d.finish().unwrap();
}

#[test]
fn smollm2_135m_summary() {
    let Some(path) = smollm2_gguf("smollm2_135m_summary") else {
        return;
    };
    let j = info_json(&path, &[]);
    // SmolLM2-135M's published config: 30 layers, hidden 576, 9 heads (3 KV), MLP 1536,
    // vocab 49152, 8192 context; the Q4_1 GGUF holds 272 tensors.
    assert_eq!(j["architecture"], "llama");
    assert_eq!(j["n_layers"], 30);
    assert_eq!(j["n_tensors"], 272);
    assert_eq!(j["n_loops"], 1);
    assert_eq!(j["dim"], 576);
    assert_eq!(j["n_heads"], 9);
    assert_eq!(j["n_kv_heads"], 3);
    assert_eq!(j["head_dim"], 64);
    assert_eq!(j["ffn_dim"], 1536);
    assert_eq!(j["vocab_size"], 49152);
    assert_eq!(j["context_length"], 8192);
    assert_eq!(j["exit_gate"], false);
    assert_eq!(j["early_exit_threshold"], Json::Null);
    assert_eq!(j["chat_template"], true);
    assert_eq!(j["tokenizer_model"], "gpt2");
    assert!(j["rope_freq_base"].as_f64().unwrap() > 0.0);
    let counted: u64 = j["tensor_types"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(counted, 272);
    assert!(j["tensor_types"]["Q4_1"].as_u64().unwrap() > 0);
    // The tensor data fills the file after the header.
    let file_len = std::fs::metadata(&path).unwrap().len();
    let bytes = j["tensor_bytes"].as_u64().unwrap();
    assert!(
        bytes < file_len && bytes > file_len * 9 / 10,
        "{bytes} of {file_len}"
    );

    let listed = info_json(&path, &["--tensors"]);
    let rows = listed["tensors"].as_array().unwrap();
    assert_eq!(rows.len(), 272);
    let sum: u64 = rows.iter().map(|r| r["bytes"].as_u64().unwrap()).sum();
    assert_eq!(sum, bytes);
    let embd = rows
        .iter()
        .find(|r| r["name"] == "token_embd.weight")
        .unwrap();
    assert_eq!(embd["dims"], serde_json::json!([576, 49152]));
}

#[test]
fn ouro_file_reports_loops_gate_and_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-ouro.gguf");
    let gate = Value::Array(ValueType::F32, vec![Value::F32(0.0); 64]);
    write_model(
        &path,
        vec![
            ("general.architecture", Value::String("ouro".into())),
            ("general.name", Value::String("tiny ouro".into())),
            ("general.file_type", Value::U32(2)),
            ("ouro.block_count", Value::U32(2)),
            ("ouro.num_loops", Value::U32(4)),
            ("ouro.embedding_length", Value::U32(64)),
            ("ouro.attention.head_count", Value::U32(4)),
            ("ouro.attention.head_count_kv", Value::U32(2)),
            ("ouro.attention.key_length", Value::U32(32)),
            ("ouro.feed_forward_length", Value::U32(128)),
            ("ouro.vocab_size", Value::U32(100)),
            ("ouro.context_length", Value::U32(256)),
            ("ouro.rope.freq_base", Value::F32(10000.0)),
            ("ouro.exit_gate.weight", gate),
            ("ouro.exit_gate.bias", Value::F32(0.5)),
            ("ouro.early_exit_threshold", Value::F32(0.75)),
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.chat_template", Value::String("{{ x }}".into())),
        ],
        &[
            ("token_embd.weight", &[64, 100], GgmlType::Q4_0),
            ("output_norm.weight", &[64], GgmlType::F32),
            ("blk.0.attn_q.weight", &[64, 64], GgmlType::Q8_0),
        ],
    );
    let j = info_json(&path, &[]);
    assert_eq!(j["architecture"], "ouro");
    assert_eq!(j["name"], "tiny ouro");
    assert_eq!(j["n_layers"], 2);
    assert_eq!(j["n_loops"], 4);
    assert_eq!(j["dim"], 64);
    assert_eq!(j["n_heads"], 4);
    assert_eq!(j["n_kv_heads"], 2);
    assert_eq!(j["head_dim"], 32, "key_length wins over dim / n_heads");
    assert_eq!(j["ffn_dim"], 128);
    assert_eq!(j["vocab_size"], 100);
    assert_eq!(j["context_length"], 256);
    assert_eq!(j["rope_freq_base"], 10000.0);
    assert_eq!(j["file_type"], 2);
    assert_eq!(j["file_type_name"], "MOSTLY_Q4_0");
    assert_eq!(j["exit_gate"], true);
    assert_eq!(j["early_exit_threshold"], 0.75);
    assert_eq!(j["chat_template"], true);
    assert_eq!(j["n_tensors"], 3);
    assert_eq!(
        j["tensor_types"],
        serde_json::json!({"F32": 1, "Q4_0": 1, "Q8_0": 1})
    );
    // Q4_0 64x100: 2 blocks of 18 bytes per row; F32 64: 256; Q8_0 64x64: 2 x 34 per row.
    assert_eq!(j["tensor_bytes"], 2 * 18 * 100 + 4 * 64 + 2 * 34 * 64);
    let simd = j["simd"].as_str().unwrap();
    assert!(
        [
            "avx512-amx",
            "avx512-vnni",
            "avx2",
            "neon-i8mm",
            "neon-dotprod",
            "neon",
            "scalar"
        ]
        .contains(&simd),
        "{simd}"
    );
}

#[test]
fn llama_file_falls_back_for_missing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-llama.gguf");
    let base = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.block_count", Value::U32(1)),
        ("llama.embedding_length", Value::U32(64)),
        ("llama.attention.head_count", Value::U32(4)),
    ];
    let tensors: &[(&str, &[u64], GgmlType)] = &[("output.weight", &[64, 50], GgmlType::F16)];
    write_model(&path, base.clone(), tensors);
    let j = info_json(&path, &[]);
    assert_eq!(j["n_loops"], 1);
    assert_eq!(j["n_kv_heads"], 4, "defaults to n_heads");
    assert_eq!(j["head_dim"], 16, "dim / n_heads");
    assert_eq!(j["vocab_size"], 50, "rows of output.weight");
    assert_eq!(j["exit_gate"], false);
    assert_eq!(j["early_exit_threshold"], Json::Null);
    assert_eq!(j["chat_template"], false);
    assert_eq!(j["ffn_dim"], Json::Null);
    assert_eq!(j["tokenizer_model"], Json::Null);

    // The tokenizer's token list wins over the output matrix.
    let tokens = Value::Array(
        ValueType::String,
        (0..7).map(|i| Value::String(format!("t{i}"))).collect(),
    );
    let mut kv = base;
    kv.push(("tokenizer.ggml.tokens", tokens));
    write_model(&path, kv, tensors);
    assert_eq!(info_json(&path, &[])["vocab_size"], 7);
}

#[test]
fn text_output_and_tensor_listing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    write_model(
        &path,
        vec![("general.architecture", Value::String("llama".into()))],
        &[
            ("token_embd.weight", &[32, 10], GgmlType::Q8_0),
            ("output_norm.weight", &[32], GgmlType::F32),
        ],
    );
    let out = ouro(&["info", "--tensors"], Some(&path));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("architecture:"), "{text}");
    assert!(text
        .lines()
        .any(|l| l.starts_with("tensors:") && l.ends_with(" 2")));
    let row = text
        .lines()
        .find(|l| l.starts_with("token_embd.weight"))
        .unwrap();
    assert!(
        row.contains("[32, 10]") && row.contains("Q8_0") && row.ends_with(" 340"),
        "{row}"
    );
    assert!(text
        .lines()
        .any(|l| l.starts_with("output_norm.weight") && l.ends_with(" 128")));
}

#[test]
fn usage_errors_exit_2_and_runtime_errors_exit_1() {
    for args in [&["no-such-command"][..], &["info", "--bogus", "x"], &[]] {
        let out = ouro(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // Without a path `info` describes the demo model, as generate and chat use it.
    let out = Command::new(env!("CARGO_BIN_EXE_ouro"))
        .arg("info")
        .env_remove("OURO_MODEL")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run ouro info");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ouro"));
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.gguf");
    let out = ouro(&["info"], Some(&missing));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: model file ") && stderr.contains("missing.gguf not found"),
        "{stderr}"
    );
    let out = ouro(&["info"], Some(dir.path()));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a directory is not a model file"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("is a directory, not a GGUF file"),
        "{stderr}"
    );
}
