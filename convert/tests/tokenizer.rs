//! The tokenizer stored in a converted file reproduces tokenizer.json's ids: once through
//! `tokenizer.huggingface.json`, once rebuilt from `tokenizer.ggml.tokens` / `merges` / `token_type`.

mod common;

use common::*;
use ouro::gguf::{GgufFile, Value};
use serde_json::json;
use tokenizers::Tokenizer;

/// Specials, digits, whitespace runs, accents, CJK, emoji, code, ChatML.
const CORPUS: &[&str] = &[
    "The capital of France is",
    "<|im_start|>user\nWrite a haiku about loops.<|im_end|>\n<|im_start|>assistant\n",
    "Numbers: 1234567890, 3.14159, -42, 1e-6 and 65536 tokens.",
    "    four leading spaces,\t\ttabs,\n\n\nnewlines   and   runs      of spaces   ",
    "Crème brûlée, naïve café, Ångström, São Paulo, Dvořák, Łódź.",
    "中文分词测试：循环语言模型。日本語のテキスト、한국어 텍스트.",
    "Emoji: 🙂🚀👩‍💻 🇫🇷 and ✓ ✗ — “quotes” ‘single’ …",
    "<|endoftext|><repo_name>ouro<file_sep>src/main.rs<|endoftext|>",
    "fn main() { println!(\"{}\", x.iter().map(|v| v * 2).sum::<i32>()); }",
    "",
    " ",
    "<|im_end|><|im_end|>text<|im_start|>",
];

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect()
}

/// A `tokenizers` JSON built only from the `tokenizer.ggml.*` keys.
fn rebuild_from_ggml(g: &GgufFile) -> Tokenizer {
    let tokens = strings(get(g, "tokenizer.ggml.tokens"));
    let types: Vec<i64> = get(g, "tokenizer.ggml.token_type")
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    let merges = strings(get(g, "tokenizer.ggml.merges"));
    assert_eq!(get(g, "tokenizer.ggml.model").as_str(), Some("gpt2"));
    let pre = match get(g, "tokenizer.ggml.pre").as_str() {
        Some("smollm") => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]}),
        other => panic!("pre-tokenizer {other:?} not covered by this test"),
    };
    let mut vocab = serde_json::Map::new();
    let mut added = Vec::new();
    for (id, (tok, ty)) in tokens.iter().zip(&types).enumerate() {
        match ty {
            1 => {
                vocab.insert(tok.clone(), json!(id));
            }
            3 | 4 => {
                vocab.insert(tok.clone(), json!(id));
                added.push(
                    json!({"id": id, "content": tok, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": *ty == 3}),
                );
            }
            5 => {}
            other => panic!("token type {other}"),
        }
    }
    let doc = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added, "normalizer": null, "pre_tokenizer": pre, "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": false, "vocab": vocab, "merges": merges}
    });
    Tokenizer::from_bytes(serde_json::to_vec(&doc).unwrap()).expect("rebuilt tokenizer loads")
}

fn ids(t: &Tokenizer, text: &str) -> Vec<u32> {
    t.encode(text, false).unwrap().get_ids().to_vec()
}

fn check_corpus(hf_dir: &std::path::Path, gguf: &std::path::Path) {
    let reference = Tokenizer::from_file(hf_dir.join("tokenizer.json")).unwrap();
    let file = Gguf::open(gguf);
    let g = file.file();
    let embedded = Tokenizer::from_bytes(
        get(&g, "tokenizer.huggingface.json")
            .as_str()
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let rebuilt = rebuild_from_ggml(&g);
    let mut n_ids = 0;
    for text in CORPUS {
        let want = ids(&reference, text);
        assert_eq!(
            ids(&embedded, text),
            want,
            "embedded tokenizer.json on {text:?}"
        );
        assert_eq!(
            ids(&rebuilt, text),
            want,
            "tokenizer.ggml.* rebuild on {text:?}"
        );
        assert_eq!(
            rebuilt.decode(&want, false).unwrap(),
            *text,
            "decode of {text:?}"
        );
        n_ids += want.len();
    }
    assert!(n_ids > 200, "corpus too small: {n_ids} ids");
}

#[test]
fn fixture_tokenizer_ids_survive_conversion() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    copy_fixture("ouro-tiny-a", &dir);
    let out = tmp.path().join("a.gguf");
    hf2gguf(&dir, &out, "q8_0");
    check_corpus(&dir, &out);
    // The fixture README's prompts, as a cross-check of the reference itself.
    let reference = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    assert_eq!(ids(&reference, CORPUS[0]), vec![504, 3575, 282, 4649, 314]);
    assert_eq!(
        ids(&reference, CORPUS[1]),
        vec![1, 4093, 198, 19161, 253, 421, 30614, 563, 18087, 30, 2, 198, 1, 520, 9531, 198]
    );
}

#[test]
fn synth_tokenizer_ids_survive_conversion() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    run_ok(&["synth", "--preset", "tiny", "-o", dir.to_str().unwrap()]);
    let out = tmp.path().join("tiny.gguf");
    hf2gguf(&dir, &out, "f32");
    check_corpus(&dir, &out);
}
