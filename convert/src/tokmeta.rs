//! Tokenizer metadata: llama.cpp's `tokenizer.ggml.*` keys rebuilt from `tokenizer.json`, plus the
//! whole `tokenizer.json` text (`tokenizer.huggingface.json`) and the chat template.
//!
//! Choices (documented in `--help`):
//! * tokens are the BPE vocabulary merged with `added_tokens`, ordered by id; ids missing below
//!   `vocab_size` (embedding padding) become `[PAD{id}]` with type UNUSED, as llama.cpp does;
//! * token types: 1 NORMAL, 3 CONTROL (special added tokens), 4 USER_DEFINED (non-special added
//!   tokens), 5 UNUSED (padding);
//! * merges are written as `"a b"` strings;
//! * the special-token ids (bos, eos, unk, sep, pad, mask) follow llama.cpp's converter (gguf-py
//!   `SpecialVocab`): first tokenizer_config.json's `<typ>_token` (a string or `{content}`; `cls`
//!   stands in for a missing bos, `sep` for a missing eos) resolved to the id of the first
//!   `added_tokens` entry of tokenizer.json with that content, then config.json's integer
//!   `<typ>_token_id` (also under `text_config`) for the types still unset. special_tokens_map.json
//!   and generation_config.json are not read, as in llama.cpp. (Not mirrored: the eos/add-token
//!   guesses SpecialVocab makes from a `TemplateProcessing` post-processor.) For the Ouro fixtures
//!   this gives bos 1 `<|im_start|>`, eos = pad 2 `<|im_end|>`, unk 0 `<|endoftext|>`;
//! * `<|im_end|>`, when the vocabulary has it, is also written as `tokenizer.ggml.eot_token_id`
//!   (llama.cpp's runtime finds it by its text anyway), so generation stops at the end of a turn;
//! * `add_bos_token` is tokenizer_config.json's value, false when absent;
//! * `tokenizer.ggml.add_space_prefix` is tokenizer_config.json's `add_prefix_space` when that is
//!   a boolean (what llama.cpp's Llama-family converter writes), absent otherwise.

use crate::config::HfConfig;
use anyhow::{anyhow, bail, Context, Result};
use ouro::gguf::{Value, ValueType};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::path::Path;

const TOKEN_NORMAL: i32 = 1;
const TOKEN_CONTROL: i32 = 3;
const TOKEN_USER_DEFINED: i32 = 4;
const TOKEN_UNUSED: i32 = 5;

/// The end-of-turn token of the ChatML template Ouro and SmolLM use.
pub const IM_END: &str = "<|im_end|>";

fn read_json(path: &Path) -> Result<Json> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

fn read_optional_json(path: &Path) -> Result<Option<Json>> {
    if path.exists() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

fn json_id(v: Option<&Json>) -> Option<u32> {
    let v = v?;
    let v = match v {
        Json::Array(a) => a.first()?,
        other => other,
    };
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// The llama.cpp pre-tokenizer name matching tokenizer.json's `pre_tokenizer`.
fn pre_tokenizer_name(tok: &Json) -> Result<&'static str> {
    let pre = tok.get("pre_tokenizer").unwrap_or(&Json::Null);
    let ty = pre.get("type").and_then(Json::as_str).unwrap_or("");
    let is_byte_level = |p: &Json| {
        p.get("type").and_then(Json::as_str) == Some("ByteLevel")
            && p.get("use_regex").and_then(Json::as_bool).unwrap_or(true)
    };
    if ty == "Sequence" {
        let parts = pre
            .get("pretokenizers")
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if let [digits, byte_level] = parts {
            if digits.get("type").and_then(Json::as_str) == Some("Digits")
                && digits.get("individual_digits").and_then(Json::as_bool) == Some(true)
                && is_byte_level(byte_level)
            {
                return Ok("smollm");
            }
        }
    } else if is_byte_level(pre) {
        return Ok("gpt2");
    }
    bail!("tokenizer.json: unsupported pre_tokenizer {pre} (supported: SmolLM's Digits + ByteLevel, or GPT-2's ByteLevel)")
}

/// Builds every tokenizer key. `cfg.vocab_size` may exceed the tokenizer's size (padding), never the reverse.
pub fn tokenizer_metadata(dir: &Path, cfg: &HfConfig) -> Result<Vec<(String, Value)>> {
    let tok_path = dir.join("tokenizer.json");
    let tok_text = std::fs::read_to_string(&tok_path)
        .with_context(|| format!("cannot read {}", tok_path.display()))?;
    let tok: Json = serde_json::from_str(&tok_text)
        .with_context(|| format!("{} is not valid JSON", tok_path.display()))?;
    let tok_config = read_optional_json(&dir.join("tokenizer_config.json"))?;

    let model = tok
        .get("model")
        .ok_or_else(|| anyhow!("tokenizer.json: no `model`"))?;
    let model_type = model.get("type").and_then(Json::as_str).unwrap_or("");
    if model_type != "BPE" {
        bail!("tokenizer.json: model type {model_type:?} is not supported (only byte-level BPE)");
    }
    let pre = pre_tokenizer_name(&tok)?;
    let vocab = model
        .get("vocab")
        .and_then(Json::as_object)
        .ok_or_else(|| anyhow!("tokenizer.json: model.vocab is not an object"))?;

    // (content, type) by id.
    let mut by_id: HashMap<u32, (String, i32)> = HashMap::with_capacity(vocab.len());
    for (content, id) in vocab {
        let id = json_id(Some(id))
            .ok_or_else(|| anyhow!("tokenizer.json: token {content:?} has a bad id {id}"))?;
        by_id.insert(id, (content.clone(), TOKEN_NORMAL));
    }
    if let Some(added) = tok.get("added_tokens").and_then(Json::as_array) {
        for t in added {
            let id = json_id(t.get("id"))
                .ok_or_else(|| anyhow!("tokenizer.json: added token without an id: {t}"))?;
            let content = t
                .get("content")
                .and_then(Json::as_str)
                .ok_or_else(|| anyhow!("tokenizer.json: added token {id} has no content"))?;
            let special = t.get("special").and_then(Json::as_bool).unwrap_or(false);
            let ty = if special {
                TOKEN_CONTROL
            } else {
                TOKEN_USER_DEFINED
            };
            by_id.insert(id, (content.to_owned(), ty));
        }
    }
    let n_tok = by_id.keys().max().map_or(0, |&m| m as usize + 1);
    if n_tok > cfg.vocab_size {
        bail!(
            "vocab size mismatch: tokenizer.json has ids up to {} but config.json vocab_size is {}",
            n_tok - 1,
            cfg.vocab_size
        );
    }
    let mut tokens = Vec::with_capacity(cfg.vocab_size);
    let mut types = Vec::with_capacity(cfg.vocab_size);
    let mut ids: HashMap<&str, u32> = HashMap::new();
    for id in 0..cfg.vocab_size as u32 {
        match by_id.get(&id) {
            Some((content, ty)) => {
                tokens.push(Value::String(content.clone()));
                types.push(Value::I32(*ty));
                ids.insert(content.as_str(), id);
            }
            None => {
                tokens.push(Value::String(format!("[PAD{id}]")));
                types.push(Value::I32(TOKEN_UNUSED));
            }
        }
    }

    let merges_json = model
        .get("merges")
        .and_then(Json::as_array)
        .ok_or_else(|| anyhow!("tokenizer.json: model.merges is not a list"))?;
    let mut merges = Vec::with_capacity(merges_json.len());
    for m in merges_json {
        let s = match m {
            Json::String(s) => s.clone(),
            Json::Array(pair) => match pair.as_slice() {
                [Json::String(a), Json::String(b)] => format!("{a} {b}"),
                _ => bail!("tokenizer.json: merge {m} is not a pair of strings"),
            },
            _ => bail!("tokenizer.json: merge {m} is not a string or a pair"),
        };
        merges.push(Value::String(s));
    }

    let tc = |key: &str| tok_config.as_ref().and_then(|c| c.get(key));
    let config_json = read_json(&dir.join("config.json"))?;
    let special = special_token_ids(&tok, tok_config.as_ref(), &config_json)?;
    let im_end = ids.get(IM_END).copied();
    let add_bos = tc("add_bos_token").and_then(Json::as_bool).unwrap_or(false);
    let add_eos = tc("add_eos_token").and_then(Json::as_bool);
    let add_space_prefix = tc("add_prefix_space").and_then(Json::as_bool);

    let mut kv: Vec<(String, Value)> = vec![
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String(pre.into())),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(ValueType::String, tokens),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(ValueType::I32, types),
        ),
        (
            "tokenizer.ggml.merges".into(),
            Value::Array(ValueType::String, merges),
        ),
    ];
    let n_vocab = cfg.vocab_size as u32;
    let written = special
        .iter()
        .map(|&(typ, id)| (typ.gguf_key(), id))
        .chain(im_end.map(|id| ("eot_token_id", id)));
    for (key, id) in written {
        if id >= n_vocab {
            bail!("special token {key} = {id} is outside the vocabulary (size {n_vocab})");
        }
        kv.push((format!("tokenizer.ggml.{key}"), Value::U32(id)));
    }
    kv.push(("tokenizer.ggml.add_bos_token".into(), Value::Bool(add_bos)));
    if let Some(add_eos) = add_eos {
        kv.push(("tokenizer.ggml.add_eos_token".into(), Value::Bool(add_eos)));
    }
    if let Some(prefix) = add_space_prefix {
        kv.push((
            "tokenizer.ggml.add_space_prefix".into(),
            Value::Bool(prefix),
        ));
    }
    kv.push(("tokenizer.huggingface.json".into(), Value::String(tok_text)));
    if let Some(template) = chat_template(dir, tc("chat_template"))? {
        kv.push(("tokenizer.chat_template".into(), Value::String(template)));
    }
    Ok(kv)
}

/// A special-token type of gguf-py's `SpecialVocab`, in its order (the first id found for a type wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Special {
    Bos,
    Eos,
    Unk,
    Sep,
    Pad,
    Cls,
    Mask,
}

impl Special {
    const ALL: [Special; 7] = [
        Special::Bos,
        Special::Eos,
        Special::Unk,
        Special::Sep,
        Special::Pad,
        Special::Cls,
        Special::Mask,
    ];

    fn name(self) -> &'static str {
        match self {
            Special::Bos => "bos",
            Special::Eos => "eos",
            Special::Unk => "unk",
            Special::Sep => "sep",
            Special::Pad => "pad",
            Special::Cls => "cls",
            Special::Mask => "mask",
        }
    }

    /// The `tokenizer.ggml.*` key (gguf-py's spelling, "seperator" included); `Cls` has none.
    fn gguf_key(self) -> &'static str {
        match self {
            Special::Bos => "bos_token_id",
            Special::Eos => "eos_token_id",
            Special::Unk => "unknown_token_id",
            Special::Sep => "seperator_token_id",
            Special::Pad => "padding_token_id",
            Special::Cls => "cls_token_id",
            Special::Mask => "mask_token_id",
        }
    }
}

/// gguf-py `SpecialVocab` (llama.cpp's converter): the special-token ids to write, in its order.
/// `cls` is resolved (it can stand in for bos) but not returned: llama.cpp has no key for it.
fn special_token_ids(
    tok: &Json,
    tok_config: Option<&Json>,
    config: &Json,
) -> Result<Vec<(Special, u32)>> {
    let added: &[Json] = tok
        .get("added_tokens")
        .and_then(Json::as_array)
        .map_or(&[], Vec::as_slice);
    let entry = |typ: Special| tok_config.and_then(|c| c.get(format!("{}_token", typ.name())));
    // Python truthiness of the raw entry: None, "" and {} count as missing.
    let present = |v: Option<&Json>| match v {
        None | Some(Json::Null) => false,
        Some(Json::String(s)) => !s.is_empty(),
        Some(Json::Object(o)) => !o.is_empty(),
        Some(Json::Array(a)) => !a.is_empty(),
        Some(Json::Bool(b)) => *b,
        Some(Json::Number(n)) => n.as_f64() != Some(0.0),
    };
    let mut found: Vec<(Special, u32)> = Vec::new();
    let mut set = |typ: Special, id: Option<&Json>| -> Result<()> {
        // Only integers count (Python's isinstance(tid, int)); the first id for a type wins.
        let Some(id) = id.filter(|v| v.is_i64() || v.is_u64()) else {
            return Ok(());
        };
        let id = match id.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => n,
            None => bail!("invalid value for special token type {}: {id}", typ.name()),
        };
        if !found.iter().any(|&(t, _)| t == typ) {
            found.push((typ, id));
        }
        Ok(())
    };
    if tok_config.is_some() {
        for typ in Special::ALL {
            let mut raw = entry(typ);
            if typ == Special::Bos && !present(raw) && present(entry(Special::Cls)) {
                raw = entry(Special::Cls);
            }
            if typ == Special::Eos && !present(raw) && present(entry(Special::Sep)) {
                raw = entry(Special::Sep);
            }
            let content = match raw {
                Some(Json::String(s)) => s.as_str(),
                Some(Json::Object(o)) => match o.get("content") {
                    Some(Json::String(s)) => s.as_str(),
                    _ => continue,
                },
                _ => continue,
            };
            let id = added
                .iter()
                .find(|t| t.get("content").and_then(Json::as_str) == Some(content))
                .and_then(|t| t.get("id"));
            set(typ, id)?;
        }
    }
    for typ in Special::ALL {
        let key = format!("{}_token_id", typ.name());
        let id = match config.get(&key) {
            Some(Json::Null) | None => config.get("text_config").and_then(|t| t.get(&key)),
            some => some,
        };
        set(typ, id)?;
    }
    found.retain(|&(t, _)| t != Special::Cls);
    Ok(found)
}

/// `chat_template.jinja` if present, else tokenizer_config.json's `chat_template` (a string, or a
/// list of `{name, template}` from which "default" is taken).
fn chat_template(dir: &Path, from_config: Option<&Json>) -> Result<Option<String>> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.exists() {
        return std::fs::read_to_string(&jinja)
            .map(Some)
            .with_context(|| format!("cannot read {}", jinja.display()));
    }
    Ok(match from_config {
        Some(Json::String(s)) => Some(s.clone()),
        Some(Json::Array(list)) => list
            .iter()
            .find(|t| t.get("name").and_then(Json::as_str) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(Json::as_str)
            .map(str::to_owned),
        _ => None,
    })
}
