//! Both reference fixtures (A: one file, MHA; B: two shards, GQA, threshold 0.6) converted to
//! f32, f16, q8_0 and q4_0, then read back with our reader and with gguf-py.

mod common;

use common::*;
use ouro::gguf::{GgufFile, Value};
use ouro_simd::GgmlType;
use std::collections::BTreeSet;
use std::path::Path;

/// Q8_0 / Q4_0 round-trip error bound per 32-block: one quantization step, amax/127 or amax/8
/// (the scale is stored in f16, hence the small relative slack).
const Q8_0_STEP_DIV: f32 = 127.0;
const Q4_0_STEP_DIV: f32 = 8.0;
const SCALE_SLACK: f32 = 1.002;

const LAYER_TENSORS: [&str; 11] = [
    "attn_norm",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "post_attention_norm",
    "ffn_norm",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
    "post_ffw_norm",
];

/// HF name of each GGUF tensor (the mapping of design.md decision 1, written out by hand).
fn hf_name(gguf: &str) -> String {
    match gguf {
        "token_embd.weight" => return "model.embed_tokens.weight".into(),
        "output_norm.weight" => return "model.norm.weight".into(),
        "output.weight" => return "lm_head.weight".into(),
        _ => {}
    }
    let rest = gguf.strip_prefix("blk.").unwrap();
    let (layer, part) = rest.split_once('.').unwrap();
    let part = part.strip_suffix(".weight").unwrap();
    let hf = match part {
        "attn_norm" => "input_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "post_attention_norm" => "input_layernorm_2",
        "ffn_norm" => "post_attention_layernorm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "post_ffw_norm" => "post_attention_layernorm_2",
        other => panic!("unexpected tensor part {other}"),
    };
    format!("model.layers.{layer}.{hf}.weight")
}

fn expected_type(ty: &str, gguf_name: &str, n_dims: usize, row_len: usize) -> GgmlType {
    if n_dims == 1 {
        return GgmlType::F32;
    }
    let t = match ty {
        "f32" => GgmlType::F32,
        "f16" => GgmlType::F16,
        "q8_0" => GgmlType::Q8_0,
        "q4_0" if gguf_name == "token_embd.weight" || gguf_name == "output.weight" => {
            GgmlType::Q8_0
        }
        "q4_0" => GgmlType::Q4_0,
        other => panic!("type {other}"),
    };
    if t.block_size() > 1 && !row_len.is_multiple_of(32) {
        GgmlType::F16
    } else {
        t
    }
}

fn ftype(ty: &str) -> u64 {
    match ty {
        "f32" => 0,
        "f16" => 1,
        "q4_0" => 2,
        "q8_0" => 7,
        _ => unreachable!(),
    }
}

fn check_metadata(g: &GgufFile, dir: &Path, ty: &str) {
    let cfg = config(dir);
    let u = |k: &str| {
        get(g, k)
            .as_u64()
            .unwrap_or_else(|| panic!("{k} not an integer"))
    };
    let f = |k: &str| {
        get(g, k)
            .as_f32()
            .unwrap_or_else(|| panic!("{k} not a float"))
    };
    assert_eq!(g.architecture(), Some("ouro"));
    assert_eq!(u("general.file_type"), ftype(ty));
    assert_eq!(u("general.quantization_version"), 2);
    assert_eq!(u("general.alignment"), 32);
    assert!(get(g, "general.name").as_str().is_some());
    for (key, cfg_key) in [
        ("ouro.block_count", "num_hidden_layers"),
        ("ouro.context_length", "max_position_embeddings"),
        ("ouro.embedding_length", "hidden_size"),
        ("ouro.feed_forward_length", "intermediate_size"),
        ("ouro.attention.head_count", "num_attention_heads"),
        ("ouro.attention.head_count_kv", "num_key_value_heads"),
        ("ouro.attention.key_length", "head_dim"),
        ("ouro.attention.value_length", "head_dim"),
        ("ouro.rope.dimension_count", "head_dim"),
        ("ouro.vocab_size", "vocab_size"),
        ("ouro.num_loops", "total_ut_steps"),
    ] {
        assert_eq!(u(key) as usize, cfg_usize(&cfg, cfg_key), "{key}");
        assert!(matches!(get(g, key), Value::U32(_)), "{key} must be u32");
    }
    assert_eq!(get(g, "ouro.skip_loop_final_norm"), &Value::Bool(false));
    assert_eq!(
        f("ouro.attention.layer_norm_rms_epsilon"),
        cfg["rms_norm_eps"].as_f64().unwrap() as f32
    );
    assert_eq!(
        f("ouro.rope.freq_base"),
        cfg["rope_theta"].as_f64().unwrap() as f32
    );
    assert_eq!(
        f("ouro.early_exit_threshold"),
        cfg["early_exit_threshold"].as_f64().unwrap() as f32
    );

    let src = read_checkpoint(dir);
    let gate_w: Vec<f32> = get(g, "ouro.exit_gate.weight")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| match v {
            Value::F32(x) => *x,
            other => panic!("gate weight element {other:?}"),
        })
        .collect();
    assert_eq!(gate_w, src["model.early_exit_gate.weight"].data);
    assert_eq!(
        get(g, "ouro.exit_gate.bias"),
        &Value::F32(src["model.early_exit_gate.bias"].data[0])
    );

    // Tokenizer ids from tokenizer_config.json as llama.cpp reads them (config.json's 0 is only a
    // fallback): bos <|im_start|> 1, eos = eot = pad <|im_end|> 2, unk <|endoftext|> 0.
    assert_eq!(get(g, "tokenizer.ggml.model").as_str(), Some("gpt2"));
    assert_eq!(get(g, "tokenizer.ggml.pre").as_str(), Some("smollm"));
    assert_eq!(u("tokenizer.ggml.bos_token_id"), 1);
    assert_eq!(u("tokenizer.ggml.eos_token_id"), 2);
    assert_eq!(u("tokenizer.ggml.eot_token_id"), 2);
    assert_eq!(u("tokenizer.ggml.padding_token_id"), 2);
    assert_eq!(u("tokenizer.ggml.unknown_token_id"), 0);
    assert_eq!(get(g, "tokenizer.ggml.add_bos_token"), &Value::Bool(false));
    let tok_json = std::fs::read_to_string(dir.join("tokenizer.json")).unwrap();
    assert_eq!(
        get(g, "tokenizer.huggingface.json").as_str(),
        Some(tok_json.as_str())
    );
    let tok_cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer_config.json")).unwrap())
            .unwrap();
    assert_eq!(
        get(g, "tokenizer.chat_template").as_str(),
        tok_cfg["chat_template"].as_str()
    );
    let tokens = get(g, "tokenizer.ggml.tokens").as_array().unwrap();
    let types = get(g, "tokenizer.ggml.token_type").as_array().unwrap();
    assert_eq!(tokens.len(), cfg_usize(&cfg, "vocab_size"));
    assert_eq!(types.len(), tokens.len());
    assert_eq!(tokens[2].as_str(), Some("<|im_end|>"));
    // ids 0..=16 are SmolLM's special added tokens (CONTROL = 3), the rest are NORMAL (1).
    for (id, t) in types.iter().enumerate() {
        let expected = if id <= 16 { 3 } else { 1 };
        assert_eq!(t.as_i64(), Some(expected), "token_type[{id}]");
    }
}

fn check_tensors(g: &GgufFile, dir: &Path, ty: &str) {
    let cfg = config(dir);
    let n_layers = cfg_usize(&cfg, "num_hidden_layers");
    let n_heads = cfg_usize(&cfg, "num_attention_heads");
    let n_kv_heads = cfg_usize(&cfg, "num_key_value_heads");
    let mut expected: BTreeSet<String> =
        ["token_embd.weight", "output_norm.weight", "output.weight"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    for l in 0..n_layers {
        for t in LAYER_TENSORS {
            expected.insert(format!("blk.{l}.{t}.weight"));
        }
    }
    let got: BTreeSet<String> = g.tensors.iter().map(|t| t.name.clone()).collect();
    assert_eq!(got, expected, "tensor set");
    assert_eq!(g.tensors.len(), 3 + 11 * n_layers);

    let src = read_checkpoint(dir);
    for t in &g.tensors {
        let s = &src[&hf_name(&t.name)];
        let hf_dims: Vec<u64> = s.shape.iter().rev().map(|&d| d as u64).collect();
        assert_eq!(t.dims, hf_dims, "{} dims", t.name);
        let row_len = s.shape[s.shape.len() - 1];
        let rows = s.data.len() / row_len;
        assert_eq!(
            t.ty,
            expected_type(ty, &t.name, s.shape.len(), row_len),
            "{} type",
            t.name
        );
        let data = g.tensor_data(t);
        let mut values = vec![0f32; s.data.len()];
        ouro_simd::dequantize_row(t.ty, data, &mut values);
        let permute_heads = if t.name.ends_with("attn_q.weight") {
            Some(n_heads)
        } else if t.name.ends_with("attn_k.weight") {
            Some(n_kv_heads)
        } else {
            None
        };
        if let Some(n) = permute_heads {
            values = unpermute_rows(&values, rows, row_len, n);
        }
        match t.ty {
            // f32 of bf16 values is exact; f16 is exact up to f16's range (small values become
            // f16 subnormals), so compare with the round-to-nearest-even f16 of the source.
            GgmlType::F32 | GgmlType::F16 => {
                let want: Vec<f32> = if t.ty == GgmlType::F16 {
                    s.data
                        .iter()
                        .map(|&x| half::f16::from_f32(x).to_f32())
                        .collect()
                } else {
                    s.data.clone()
                };
                let diff = values
                    .iter()
                    .zip(&want)
                    .position(|(x, y)| x.to_bits() != y.to_bits());
                if let Some(i) = diff {
                    panic!(
                        "{}: element {i}: file {} vs source {}",
                        t.name, values[i], want[i]
                    );
                }
            }
            GgmlType::Q8_0 | GgmlType::Q4_0 => {
                let div = if t.ty == GgmlType::Q8_0 {
                    Q8_0_STEP_DIV
                } else {
                    Q4_0_STEP_DIV
                };
                for (b, (got, want)) in values.chunks(32).zip(s.data.chunks(32)).enumerate() {
                    let amax = want.iter().fold(0f32, |m, x| m.max(x.abs()));
                    let tol = amax / div * SCALE_SLACK;
                    for (x, y) in got.iter().zip(want) {
                        assert!(
                            (x - y).abs() <= tol,
                            "{} block {b}: {x} vs {y} (tol {tol})",
                            t.name
                        );
                    }
                }
            }
            other => panic!("{}: unexpected type {other}", t.name),
        }
    }
}

fn convert_and_check(fixture_name: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(fixture_name);
    copy_fixture(fixture_name, &dir);
    for ty in ["f32", "f16", "q8_0", "q4_0"] {
        let out = tmp.path().join(format!("{fixture_name}-{ty}.gguf"));
        hf2gguf(&dir, &out, ty);
        let file = Gguf::open(&out);
        let g = file.file();
        check_metadata(&g, &dir, ty);
        check_tensors(&g, &dir, ty);
        gguf_py_check(&out, &dir, ty);
    }
}

#[test]
fn fixture_a_single_file_mha() {
    convert_and_check("ouro-tiny-a");
}

#[test]
fn fixture_b_sharded_gqa() {
    convert_and_check("ouro-tiny-b");
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    copy_fixture("ouro-tiny-a", &dir);
    let out = tmp.path().join("a.gguf");
    let o = run_ok(&[
        "hf2gguf",
        dir.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--type",
        "q4_0",
        "--dry-run",
    ]);
    assert!(!out.exists());
    let text = String::from_utf8(o.stdout).unwrap();
    // 64-wide rows: Q4_0 is 18 bytes per 32 values; token_embd is Q8_0 (34 bytes per 32).
    assert!(text.contains("blk.0.attn_q.weight"), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_owned()
    };
    assert!(line("blk.0.attn_q.weight").contains("Q4_0"));
    assert!(line("blk.0.attn_q.weight").ends_with(&(64 * 64 / 32 * 18).to_string()));
    assert!(line("token_embd.weight").contains("Q8_0"));
    assert!(line("token_embd.weight").ends_with(&(49152 * 64 / 32 * 34).to_string()));
    assert!(line("blk.1.post_ffw_norm.weight").contains("F32"));
    assert!(text.contains("total: 25 tensors"), "{text}");
}
