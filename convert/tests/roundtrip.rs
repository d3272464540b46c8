//! synth → hf2gguf → read back; `quantize` keeps metadata and matches direct conversion; plain
//! Llama checkpoints; and (OURO_LARGE_TESTS=1) a full-size 1.4B synth → Q4_0 conversion.

mod common;

use common::*;
use ouro::gguf::Value;
use ouro_simd::GgmlType;
use safetensors::tensor::TensorView;
use std::collections::BTreeMap;

#[test]
fn synth_tiny_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    run_ok(&[
        "synth",
        "--preset",
        "tiny",
        "-o",
        dir.to_str().unwrap(),
        "--seed",
        "5",
        "--loops",
        "3",
    ]);
    let cfg = config(&dir);
    assert_eq!(cfg["model_type"], "ouro");
    assert_eq!(cfg["total_ut_steps"], 3);
    let out = tmp.path().join("tiny.gguf");
    hf2gguf(&dir, &out, "q8_0");
    let file = Gguf::open(&out);
    let g = file.file();
    assert_eq!(g.architecture(), Some("ouro"));
    assert_eq!(get(&g, "ouro.num_loops"), &Value::U32(3));
    assert_eq!(get(&g, "ouro.block_count"), &Value::U32(2));
    assert_eq!(get(&g, "ouro.attention.head_count_kv"), &Value::U32(2));
    assert_eq!(
        get(&g, "ouro.exit_gate.weight").as_array().unwrap().len(),
        64
    );
    assert!(get(&g, "tokenizer.chat_template")
        .as_str()
        .unwrap()
        .contains("<|im_start|>"));
    assert_eq!(g.tensors.len(), 3 + 11 * 2);
    let vocab = cfg_usize(&cfg, "vocab_size");
    assert_eq!(
        get(&g, "tokenizer.ggml.tokens").as_array().unwrap().len(),
        vocab
    );
    let t = g.tensor("token_embd.weight").unwrap();
    assert_eq!(t.dims, vec![64, vocab as u64]);
    assert_eq!(t.ty, GgmlType::Q8_0);
    gguf_py_check(&out, &dir, "q8_0");
}

#[test]
fn synth_is_deterministic_per_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let path = |name: &str| tmp.path().join(name);
    for (name, seed) in [("a", "1"), ("b", "1"), ("c", "2")] {
        run_ok(&[
            "synth",
            "--preset",
            "tiny",
            "-o",
            path(name).to_str().unwrap(),
            "--seed",
            seed,
        ]);
    }
    let weights = |name: &str| std::fs::read(path(name).join("model.safetensors")).unwrap();
    assert_eq!(weights("a"), weights("b"));
    assert_ne!(weights("a"), weights("c"));
}

#[test]
fn quantize_matches_direct_conversion_and_keeps_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    copy_fixture("ouro-tiny-b", &dir);
    let f32_path = tmp.path().join("b-f32.gguf");
    hf2gguf(&dir, &f32_path, "f32");
    for ty in ["q8_0", "q4_0"] {
        let direct = tmp.path().join(format!("direct-{ty}.gguf"));
        hf2gguf(&dir, &direct, ty);
        let requant = tmp.path().join(format!("requant-{ty}.gguf"));
        let o = run_ok(&[
            "quantize",
            f32_path.to_str().unwrap(),
            requant.to_str().unwrap(),
            "--type",
            ty,
        ]);
        assert!(o.stderr.is_empty(), "no warning for a float source");
        let (a, b) = (Gguf::open(&direct), Gguf::open(&requant));
        let (a, b) = (a.file(), b.file());
        // Same keys and values; as llama-quantize does, quantize moves
        // general.quantization_version and general.file_type to the end.
        let moved = ["general.quantization_version", "general.file_type"];
        let mut expected: Vec<_> = a
            .metadata
            .iter()
            .filter(|(k, _)| !moved.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in moved {
            expected.push((key.to_owned(), get(&a, key).clone()));
        }
        assert_eq!(b.metadata, expected, "{ty}: metadata");
        // Same tensors; quantize writes them in llama.cpp's loader order (blocks by index).
        assert_eq!(a.tensors.len(), b.tensors.len());
        let names: Vec<&str> = b.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names[..3],
            ["output.weight", "output_norm.weight", "token_embd.weight"]
        );
        assert!(names[3].starts_with("blk.0."), "{names:?}");
        for x in &a.tensors {
            let y = b.tensor(&x.name).unwrap();
            assert_eq!((&x.name, &x.dims, x.ty), (&y.name, &y.dims, y.ty));
            assert_eq!(a.tensor_data(x), b.tensor_data(y), "{ty}: {}", x.name);
        }
    }
    // A quantized source is dequantized first, with a warning; 1-D tensors stay f32.
    let q8 = tmp.path().join("direct-q8_0.gguf");
    let q5 = tmp.path().join("q5_1.gguf");
    let o = run_ok(&[
        "quantize",
        q8.to_str().unwrap(),
        q5.to_str().unwrap(),
        "--type",
        "q5_1",
    ]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("warning"),
        "expected a warning"
    );
    let file = Gguf::open(&q5);
    let g = file.file();
    assert_eq!(get(&g, "general.file_type"), &Value::U32(9));
    assert_eq!(g.tensor("blk.0.attn_q.weight").unwrap().ty, GgmlType::Q5_1);
    assert_eq!(g.tensor("blk.0.ffn_norm.weight").unwrap().ty, GgmlType::F32);
    assert_eq!(g.tensor("output.weight").unwrap().ty, GgmlType::Q8_0);
}

/// Fixture A turned into a plain Llama (no sandwich post-norms, no gate, no loop keys); with
/// `tied`, also without lm_head and with tie_word_embeddings (as SmolLM2 ships).
fn llama_checkpoint(tied: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("llama");
    copy_fixture("ouro-tiny-a", &dir);
    let mut cfg = config(&dir);
    let obj = cfg.as_object_mut().unwrap();
    obj.insert("model_type".into(), "llama".into());
    obj.insert(
        "architectures".into(),
        serde_json::json!(["LlamaForCausalLM"]),
    );
    obj.insert("tie_word_embeddings".into(), tied.into());
    for k in ["total_ut_steps", "early_exit_threshold", "auto_map"] {
        obj.remove(k);
    }
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: BTreeMap<String, TensorView> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| !n.contains("early_exit_gate") && !n.contains("layernorm_2"))
        .filter(|(n, _)| !(tied && n == "lm_head.weight"))
        .collect();
    let out_st = tmp.path().join("model.safetensors");
    safetensors::serialize_to_file(kept, None, &out_st).unwrap();
    drop(st);
    std::fs::rename(&out_st, &path).unwrap();

    let out = tmp.path().join("llama.gguf");
    hf2gguf(&dir, &out, "f32");
    let file = Gguf::open(&out);
    let g = file.file();
    assert_eq!(g.architecture(), Some("llama"));
    assert!(g.metadata.iter().all(|(k, _)| !k.starts_with("ouro.")));
    assert_eq!(get(&g, "llama.block_count"), &Value::U32(2));
    assert!(g.get("llama.num_loops").is_none());
    let n_global = if tied { 2 } else { 3 };
    assert_eq!(g.tensors.len(), n_global + 9 * 2);
    assert_eq!(g.tensor("output.weight").is_some(), !tied);
    assert!(g.tensor("blk.0.post_ffw_norm.weight").is_none());
    // Q rows are permuted exactly as for Ouro.
    let src = read_checkpoint(&dir);
    let q = g.tensor("blk.1.attn_q.weight").unwrap();
    let mut vals = vec![0f32; 64 * 64];
    ouro_simd::dequantize_row(GgmlType::F32, g.tensor_data(q), &mut vals);
    assert_eq!(
        unpermute_rows(&vals, 64, 64, 4),
        src["model.layers.1.self_attn.q_proj.weight"].data
    );
    gguf_py_check(&out, &dir, "f32");
}

#[test]
fn llama_untied() {
    llama_checkpoint(false);
}

#[test]
fn llama_tied_embeddings() {
    llama_checkpoint(true);
}

/// `synth --tokenizer-from` copies the real tokenizer; the file then carries its 49152 tokens.
#[test]
fn synth_with_a_copied_tokenizer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    let src = fixture("ouro-tiny-a");
    run_ok(&[
        "synth",
        "--preset",
        "tiny",
        "-o",
        dir.to_str().unwrap(),
        "--tokenizer-from",
        src.to_str().unwrap(),
    ]);
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "merges.txt",
    ] {
        assert_eq!(
            std::fs::read(dir.join(f)).unwrap(),
            std::fs::read(src.join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(cfg_usize(&config(&dir), "vocab_size"), 49152);
    let out = tmp.path().join("tiny.gguf");
    hf2gguf(&dir, &out, "q4_0");
    let file = Gguf::open(&out);
    let g = file.file();
    assert_eq!(
        get(&g, "tokenizer.ggml.tokens").as_array().unwrap().len(),
        49152
    );
    assert_eq!(get(&g, "tokenizer.ggml.eos_token_id"), &Value::U32(2));
    assert_eq!(g.tensor("output.weight").unwrap().dims, vec![64, 49152]);
}

/// Full-size Ouro-1.4B noise → Q4_0. Run with OURO_LARGE_TESTS=1 (needs ~4 GB of disk).
#[test]
fn large_1_4b_to_q4_0() {
    if std::env::var("OURO_LARGE_TESTS").as_deref() != Ok("1") {
        eprintln!("skipping: set OURO_LARGE_TESTS=1 to run the 1.4B conversion");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ouro-1.4b");
    run_ok(&[
        "synth",
        "--preset",
        "ouro-1.4b",
        "-o",
        dir.to_str().unwrap(),
    ]);
    let st_len = std::fs::metadata(dir.join("model.safetensors"))
        .unwrap()
        .len();
    // 1,434,652,673 bf16 parameters plus a ~31 KB header (ouro-spec.md §2).
    assert!(
        (2_869_305_346..2_869_305_346 + 64 * 1024).contains(&st_len),
        "{st_len}"
    );
    let out = tmp.path().join("ouro-1.4b-q4_0.gguf");
    hf2gguf(&dir, &out, "q4_0");
    let file = Gguf::open(&out);
    let g = file.file();
    assert_eq!(g.tensors.len(), 3 + 11 * 24);
    assert_eq!(get(&g, "ouro.num_loops"), &Value::U32(4));
    assert_eq!(g.tensor("token_embd.weight").unwrap().ty, GgmlType::Q8_0);
    assert_eq!(
        g.tensor("blk.23.ffn_down.weight").unwrap().ty,
        GgmlType::Q4_0
    );
    let data: u64 = g.tensors.iter().map(|t| t.n_bytes).sum();
    // 2 × 49152·2048 in Q8_0 + 24 layers of 51,380,224 Q4_0 weights + f32 norms.
    let expected = 2 * 49152 * 2048 / 32 * 34 + 24 * 51_380_224 / 32 * 18 + (24 * 4 + 1) * 2048 * 4;
    assert_eq!(data, expected as u64);
}

/// `ouro info` (the runtime's reader) on a converted file shows the loops, the gate and the
/// template. The `ouro` binary is looked up beside `ouro-convert` (built by
/// `cargo test --workspace`); when it was not built, the check is skipped with a message.
#[test]
fn ouro_info_reads_a_converted_file() {
    let ouro = std::path::Path::new(BIN).with_file_name("ouro");
    if !ouro.is_file() {
        eprintln!(
            "skipping: {} not built (run cargo test --workspace)",
            ouro.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    run_ok(&[
        "synth",
        "--preset",
        "tiny",
        "-o",
        dir.to_str().unwrap(),
        "--loops",
        "3",
    ]);
    let out = tmp.path().join("tiny.gguf");
    hf2gguf(&dir, &out, "q4_0");
    let o = std::process::Command::new(&ouro)
        .arg("info")
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "ouro info failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {name:?} line in:\n{text}"))
    };
    assert_eq!(field("architecture:"), "ouro");
    assert_eq!(field("loops:"), "3");
    assert_eq!(field("layers:"), "2");
    assert_eq!(field("exit gate:"), "yes");
    assert_eq!(field("chat template:"), "yes");
    assert_eq!(
        field("early exit threshold:").parse::<f32>().ok(),
        Some(1.0)
    );
}
