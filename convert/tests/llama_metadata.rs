//! The metadata llama.cpp's converter derives from the tokenizer files and the tensor count —
//! special-token ids (gguf-py `SpecialVocab`), `tokenizer.ggml.add_space_prefix` and
//! `general.size_label` — held against gguf-py itself (`tests/py/llama_metadata.py`) on both
//! fixtures and on variants of fixture A's tokenizer files that exercise every fallback.

mod common;

use common::*;
use ouro::gguf::Value;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const SPECIAL_KEYS: [&str; 7] = [
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.seperator_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.mask_token_id",
    "tokenizer.ggml.cls_token_id",
];

fn oracle(args: &[&str]) -> Option<String> {
    if !python_has_gguf() {
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/llama_metadata.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "llama_metadata.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// Converts `dir` (f32) and returns the special-token ids written.
fn written_ids(dir: &Path, tmp: &Path) -> (BTreeMap<String, u64>, Gguf) {
    let out = tmp.join(format!(
        "{}.gguf",
        dir.file_name().unwrap().to_string_lossy()
    ));
    hf2gguf(dir, &out, "f32");
    let file = Gguf::open(&out);
    let g = file.file();
    let mut ids = BTreeMap::new();
    for key in SPECIAL_KEYS {
        if let Some(v) = g.get(key) {
            assert!(matches!(v, Value::U32(_)), "{key} must be u32");
            ids.insert(key.to_owned(), v.as_u64().unwrap());
        }
    }
    (ids, file)
}

fn check_against_special_vocab(dir: &Path, ids: &BTreeMap<String, u64>) {
    if let Some(text) = oracle(&["special", dir.to_str().unwrap()]) {
        let expected: BTreeMap<String, u64> = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(
            ids,
            &expected,
            "{}: ours vs gguf-py SpecialVocab",
            dir.display()
        );
    }
}

fn edit_tokenizer_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Json>)) {
    let path = dir.join("tokenizer_config.json");
    let mut cfg: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(cfg.as_object_mut().unwrap());
    std::fs::write(&path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
}

fn id(ids: &BTreeMap<String, u64>, key: &str) -> Option<u64> {
    ids.get(&format!("tokenizer.ggml.{key}")).copied()
}

#[test]
fn fixtures_special_tokens_match_special_vocab() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["ouro-tiny-a", "ouro-tiny-b"] {
        let dir = tmp.path().join(name);
        copy_fixture(name, &dir);
        let (ids, file) = written_ids(&dir, tmp.path());
        // What the issue reports llama.cpp writing: bos <|im_start|> 1, eos = pad <|im_end|> 2,
        // and unk <|endoftext|> 0 (config.json says 0 for bos/eos/pad: only a fallback).
        assert_eq!(id(&ids, "bos_token_id"), Some(1), "{name}");
        assert_eq!(id(&ids, "eos_token_id"), Some(2), "{name}");
        assert_eq!(id(&ids, "padding_token_id"), Some(2), "{name}");
        assert_eq!(id(&ids, "unknown_token_id"), Some(0), "{name}");
        assert_eq!(ids.len(), 4, "{name}: {ids:?}");
        check_against_special_vocab(&dir, &ids);
        let g = file.file();
        // eot (our addition, the ChatML end of turn) and add_space_prefix (tokenizer_config's
        // add_prefix_space = false, written as llama.cpp's Llama-family converter does).
        assert_eq!(get(&g, "tokenizer.ggml.eot_token_id"), &Value::U32(2));
        assert_eq!(
            get(&g, "tokenizer.ggml.add_space_prefix"),
            &Value::Bool(false)
        );
    }
}

#[test]
fn special_token_fallbacks_match_special_vocab() {
    let tmp = tempfile::tempdir().unwrap();
    let variant = |name: &str| {
        let dir = tmp.path().join(name);
        copy_fixture("ouro-tiny-a", &dir);
        dir
    };

    // 1. bos/pad missing from tokenizer_config → config.json's 0; unk given as {content};
    //    add_prefix_space true is carried over.
    let dir = variant("no-bos-pad");
    edit_tokenizer_config(&dir, |c| {
        c.remove("bos_token");
        c.remove("pad_token");
        c.insert(
            "unk_token".into(),
            json!({"content": "<|endoftext|>", "lstrip": false}),
        );
        c.insert("add_prefix_space".into(), json!(true));
    });
    let (ids, file) = written_ids(&dir, tmp.path());
    assert_eq!(id(&ids, "bos_token_id"), Some(0));
    assert_eq!(id(&ids, "padding_token_id"), Some(0));
    assert_eq!(id(&ids, "unknown_token_id"), Some(0));
    assert_eq!(
        get(&file.file(), "tokenizer.ggml.add_space_prefix"),
        &Value::Bool(true)
    );
    check_against_special_vocab(&dir, &ids);

    // 2. cls stands in for a missing bos; sep is written as the separator but does not replace an
    //    eos entry that is present, even one that is not an added token (SpecialVocab looks only
    //    at added_tokens): eos then falls back to config.json's 0. mask as {content}.
    let dir = variant("cls-sep");
    edit_tokenizer_config(&dir, |c| {
        c.remove("bos_token");
        c.insert("cls_token".into(), json!("<repo_name>"));
        c.insert("sep_token".into(), json!("<file_sep>"));
        c.insert("eos_token".into(), json!("not-a-token"));
        c.insert("mask_token".into(), json!({"content": "<reponame>"}));
        c.remove("add_prefix_space");
    });
    let (ids, file) = written_ids(&dir, tmp.path());
    assert_eq!(id(&ids, "bos_token_id"), Some(3));
    assert_eq!(id(&ids, "eos_token_id"), Some(0));
    assert_eq!(id(&ids, "mask_token_id"), Some(4));
    assert!(id(&ids, "seperator_token_id").is_some());
    assert!(id(&ids, "cls_token_id").is_none());
    assert!(file.file().get("tokenizer.ggml.add_space_prefix").is_none());
    check_against_special_vocab(&dir, &ids);

    // 3. eos missing, sep present → eos is the separator token.
    let dir = variant("sep-as-eos");
    edit_tokenizer_config(&dir, |c| {
        c.remove("eos_token");
        c.insert("sep_token".into(), json!("<file_sep>"));
    });
    let (ids, _) = written_ids(&dir, tmp.path());
    assert_eq!(
        id(&ids, "eos_token_id"),
        id(&ids, "seperator_token_id"),
        "{ids:?}"
    );
    check_against_special_vocab(&dir, &ids);

    // 4. No tokenizer_config.json at all: everything from config.json (bos = eos = pad = 0).
    let dir = variant("no-tokenizer-config");
    std::fs::remove_file(dir.join("tokenizer_config.json")).unwrap();
    let (ids, _) = written_ids(&dir, tmp.path());
    assert_eq!(id(&ids, "bos_token_id"), Some(0));
    assert_eq!(id(&ids, "eos_token_id"), Some(0));
    assert_eq!(id(&ids, "padding_token_id"), Some(0));
    assert_eq!(id(&ids, "unknown_token_id"), None);
    check_against_special_vocab(&dir, &ids);
}

#[test]
fn size_label_matches_gguf_py() {
    // Edge cases of the rounding (ties, the unit boundaries, fewer than two digits) and real sizes.
    let counts: [u64; 24] = [
        0,
        1,
        499,
        500,
        1_250,
        9_950,
        99_500,
        999_999,
        1_000_000,
        1_000_001,
        1_250_000,
        2_500_000,
        9_950_000,
        134_515_008,
        999_999_999,
        1_000_000_000,
        1_000_000_001,
        1_250_000_000,
        1_447_453_184,
        2_500_000_000,
        9_950_000_000,
        70_553_706_496,
        1_000_000_000_001,
        12_345_678_901_234,
    ];
    let ours: Vec<String> = counts
        .iter()
        .map(|&n| ouro_convert::size_label::size_label(n))
        .collect();
    let args: Vec<String> = std::iter::once("size-label".to_owned())
        .chain(counts.iter().map(u64::to_string))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if let Some(text) = oracle(&args) {
        let theirs: Vec<&str> = text.lines().collect();
        assert_eq!(ours, theirs);
    }
}

#[test]
fn fixtures_size_label_is_gguf_py_of_the_tensor_count() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["ouro-tiny-a", "ouro-tiny-b"] {
        let out = tmp.path().join(format!("{name}.gguf"));
        hf2gguf(&fixture(name), &out, "q8_0");
        let file = Gguf::open(&out);
        let g = file.file();
        // Every element of every tensor (dims as stored), whatever the type.
        let n: u64 = g
            .tensors
            .iter()
            .map(|t| t.dims.iter().product::<u64>())
            .sum();
        let label = get(&g, "general.size_label").as_str().unwrap().to_owned();
        assert_eq!(label, ouro_convert::size_label::size_label(n), "{name}");
        if let Some(text) = oracle(&["size-label", &n.to_string()]) {
            assert_eq!(label, text.trim(), "{name}: {n} parameters");
        }
    }
}
