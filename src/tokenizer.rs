//! Text ↔ token ids. The HF `tokenizers` crate runs `tokenizer.huggingface.json` when the file
//! has it; otherwise a byte-level BPE is built from `tokenizer.ggml.tokens` / `.merges` /
//! `.token_type` (llama.cpp-made files such as SmolLM2's). [`StreamDecoder`] turns a stream of
//! ids into text pieces that are always complete UTF-8.

use serde_json::{json, Value as Json};

use crate::gguf::GgufFile;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("no tokenizer in the file (need tokenizer.huggingface.json or tokenizer.ggml.tokens)")]
    Missing,
    #[error("tokenizer.ggml.model {0:?} without tokenizer.huggingface.json is not supported (only gpt2 byte-level BPE)")]
    UnsupportedModel(String),
    #[error("metadata key {0} is malformed")]
    BadKey(&'static str),
    #[error("cannot build the tokenizer: {0}")]
    Build(String),
    #[error("cannot encode text: {0}")]
    Encode(String),
}

/// A tokenizer with both special-token behaviours ready.
pub struct Tokenizer {
    /// Special tokens in the text become their ids.
    parse_special: tokenizers::Tokenizer,
    /// Special tokens in the text are encoded as plain text.
    literal: tokenizers::Tokenizer,
    vocab_size: usize,
    bos: Option<u32>,
    add_bos: bool,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size)
            .field("bos", &self.bos)
            .field("add_bos", &self.add_bos)
            .finish()
    }
}

fn string_array<'g>(
    g: &'g GgufFile,
    key: &'static str,
) -> Result<Option<Vec<&'g str>>, TokenizerError> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_array()
            .and_then(|a| a.iter().map(|e| e.as_str()).collect::<Option<Vec<_>>>())
            .map(Some)
            .ok_or(TokenizerError::BadKey(key)),
    }
}

/// tokenizer.json text for a GPT-2 byte-level BPE described by `tokenizer.ggml.*`.
fn json_from_ggml(g: &GgufFile) -> Result<String, TokenizerError> {
    let model = g
        .get("tokenizer.ggml.model")
        .and_then(|v| v.as_str())
        .unwrap_or("gpt2");
    if model != "gpt2" {
        return Err(TokenizerError::UnsupportedModel(model.to_owned()));
    }
    let tokens = string_array(g, "tokenizer.ggml.tokens")?.ok_or(TokenizerError::Missing)?;
    let merges = string_array(g, "tokenizer.ggml.merges")?.unwrap_or_default();
    let types: Vec<i64> = match g.get("tokenizer.ggml.token_type") {
        None => Vec::new(),
        Some(v) => v
            .as_array()
            .and_then(|a| a.iter().map(|e| e.as_i64()).collect::<Option<Vec<_>>>())
            .ok_or(TokenizerError::BadKey("tokenizer.ggml.token_type"))?,
    };
    let mut vocab = serde_json::Map::with_capacity(tokens.len());
    let mut added = Vec::new();
    for (id, tok) in tokens.iter().enumerate() {
        vocab.insert((*tok).to_owned(), json!(id));
        // llama.cpp token types: 3 = control, 4 = user-defined.
        let ty = types.get(id).copied().unwrap_or(1);
        if ty == 3 || ty == 4 {
            added.push(json!({
                "id": id, "content": tok, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": ty == 3
            }));
        }
    }
    let pre = g
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    // SmolLM / StarCoder pre-tokenizer: every digit is its own word, then GPT-2's regex.
    let pre_tokenizer = if matches!(pre, "smollm" | "starcoder" | "refact") {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level]})
    } else {
        byte_level
    };
    let doc = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": Json::Object(vocab), "merges": merges
        }
    });
    Ok(doc.to_string())
}

impl Tokenizer {
    pub fn from_gguf(g: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        let hf = g.get("tokenizer.huggingface.json").map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or(TokenizerError::BadKey("tokenizer.huggingface.json"))
        });
        let text = match hf {
            Some(t) => t?,
            None => json_from_ggml(g)?,
        };
        let parse_special = tokenizers::Tokenizer::from_bytes(text.as_bytes())
            .map_err(|e| TokenizerError::Build(e.to_string()))?;
        let mut literal = parse_special.clone();
        literal.set_encode_special_tokens(true);
        let vocab_size = parse_special.get_vocab_size(true);
        let id = |key: &str| {
            g.get(key)
                .and_then(|v| v.as_u64())
                .filter(|&i| (i as usize) < vocab_size)
                .map(|i| i as u32)
        };
        let bos = id("tokenizer.ggml.bos_token_id");
        let add_bos = g
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        Ok(Tokenizer {
            parse_special,
            literal,
            vocab_size,
            bos,
            add_bos,
        })
    }

    /// Token ids of `text`, adding nothing (no BOS). With `parse_special`, special-token text
    /// such as `<|im_start|>` becomes its id; otherwise it is tokenized as plain text.
    pub fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>, TokenizerError> {
        let tk = if parse_special {
            &self.parse_special
        } else {
            &self.literal
        };
        tk.encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// The BOS id to prepend to a fresh sequence, when the file asks for one
    /// (`tokenizer.ggml.add_bos_token`).
    pub fn bos_to_add(&self) -> Option<u32> {
        if self.add_bos {
            self.bos
        } else {
            None
        }
    }

    /// Text of `ids`, special tokens included; unknown ids are dropped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let known: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&i| (i as usize) < self.vocab_size)
            .collect();
        self.parse_special.decode(&known, false).unwrap_or_default()
    }

    /// The vocabulary string of `id` (byte-level form for BPE tokens).
    pub fn token_str(&self, id: u32) -> Option<String> {
        self.parse_special.id_to_token(id)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.parse_special.token_to_id(token)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }
}

/// Incremental detokenizer over the `tokenizers` crate's own `decode_stream`: emits text only
/// when the ids so far decode to complete UTF-8. With `skip_special`, special tokens
/// (`<|im_start|>`, …) produce no text.
pub struct StreamDecoder<'t> {
    tok: &'t Tokenizer,
    inner: tokenizers::DecodeStream<
        't,
        tokenizers::ModelWrapper,
        tokenizers::NormalizerWrapper,
        tokenizers::PreTokenizerWrapper,
        tokenizers::PostProcessorWrapper,
        tokenizers::DecoderWrapper,
    >,
    skip_special: bool,
    /// Ids pushed since the last emitted piece (what `flush` still owes).
    pending: Vec<u32>,
    /// The ids of the last emitted piece (left context for `flush`).
    context: Vec<u32>,
}

impl<'t> StreamDecoder<'t> {
    pub fn new(tok: &'t Tokenizer, skip_special: bool) -> Self {
        StreamDecoder {
            tok,
            inner: tok.parse_special.decode_stream(skip_special),
            skip_special,
            pending: Vec::new(),
            context: Vec::new(),
        }
    }

    /// Add `id`; returns the newly completed text (possibly empty). Ids outside the
    /// vocabulary produce no text.
    pub fn push(&mut self, id: u32) -> String {
        if id as usize >= self.tok.vocab_size {
            return String::new();
        }
        self.pending.push(id);
        match self.inner.step(id) {
            Ok(Some(text)) => {
                self.context = std::mem::take(&mut self.pending);
                text
            }
            Ok(None) => String::new(),
            // The crate refuses a stream whose re-decoded prefix changed (some decoders strip
            // leading spaces); start a fresh stream and emit what the pending ids decode to.
            Err(_) => {
                self.inner = self.tok.parse_special.decode_stream(self.skip_special);
                self.flush()
            }
        }
    }

    /// Whatever is still pending (possibly with replacement characters), at end of stream.
    pub fn flush(&mut self) -> String {
        if self.pending.is_empty() {
            return String::new();
        }
        let decode = |ids: &[u32]| {
            self.tok
                .parse_special
                .decode(ids, self.skip_special)
                .unwrap_or_default()
        };
        let before = decode(&self.context);
        let mut all = self.context.clone();
        all.extend_from_slice(&self.pending);
        let text = decode(&all);
        self.context = std::mem::take(&mut self.pending);
        self.inner = self.tok.parse_special.decode_stream(self.skip_special);
        match text.strip_prefix(before.as_str()) {
            Some(rest) => rest.to_owned(),
            None => decode(&self.context),
        }
    }
}
