//! The model: configuration from GGUF keys, weights resolved once at load, the KV cache,
//! the exit-gate CDF math and the looped forward pass.

pub mod config;
pub mod exit;
pub mod forward;
pub mod kv_cache;
pub mod multi;
pub mod weights;

use std::path::{Path, PathBuf};

use crate::chat_template::{ChatError, ChatTemplate, END_OF_TURN_STRINGS};
use crate::gguf::{GgmlType, GgufError, GgufFile};
use crate::mmap::Mmap;
use crate::tokenizer::{Tokenizer, TokenizerError};

pub use crate::tensor::WeightTensor;
pub use config::{Arch, Config};
pub use kv_cache::{KvCache, KvType};
pub use weights::Weights;

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    // The io error is shown in the message and deliberately not exposed as `source()`, so a
    // `{:#}` chain prints it once.
    #[error("cannot open model file {path}: {error}")]
    Open {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("missing metadata key {0}")]
    MissingKey(String),
    #[error("metadata key {key}: expected {expected}, found {found}")]
    BadKey {
        key: String,
        expected: String,
        found: String,
    },
    #[error("unsupported architecture {0:?} (supported: ouro, nanbeige, llama)")]
    UnsupportedArch(String),
    #[error(
        "this `ouro` file has no `ouro.num_loops` key: it would run each layer once and produce \
         garbage; re-convert it with a loop-aware converter"
    )]
    MissingNumLoops,
    #[error("missing tensor {0}")]
    MissingTensor(String),
    #[error("tensor {name}: expected dims {expected:?}, found {found:?}")]
    TensorShape {
        name: String,
        expected: Vec<u64>,
        found: Vec<u64>,
    },
    #[error("tensor {name}: type {ty} is not supported here")]
    TensorType { name: String, ty: GgmlType },
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("context full: {needed} tokens needed but the context holds {ctx} (raise --ctx)")]
    ContextFull { needed: usize, ctx: usize },
    #[error("token id {id} is out of range (vocab size {vocab_size})")]
    BadToken { id: u32, vocab_size: usize },
    #[error("invalid option: {0}")]
    InvalidOption(String),
}

/// A loaded model: the file map, its configuration, resolved weights and tokenizer.
pub struct Model {
    map: Mmap,
    config: Config,
    weights: Weights,
    tokenizer: Tokenizer,
    stop_tokens: Vec<u32>,
    chat_template: Option<String>,
    /// `bos_token` / `eos_token` strings for the chat template.
    bos_text: String,
    eos_text: String,
}

impl Model {
    /// Map `path`, parse it and resolve every tensor. Nothing is copied except norm weights.
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let map = Mmap::open(path).map_err(|error| ModelError::Open {
            path: path.to_path_buf(),
            error,
        })?;
        let g = GgufFile::parse(map.as_bytes())?;
        let config = Config::from_gguf(&g)?;
        let mut weights = Weights::resolve(&g, &config)?;
        weights.make_resident(&map);
        let tokenizer = Tokenizer::from_gguf(&g)?;
        let stop_tokens = stop_tokens(&g, &tokenizer);
        let chat_template = g
            .get("tokenizer.chat_template")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let token_text = |key: &str| {
            g.get(key)
                .and_then(|v| v.as_u64())
                .and_then(|id| u32::try_from(id).ok())
                .and_then(|id| tokenizer.token_str(id))
                .unwrap_or_default()
        };
        let bos_text = token_text("tokenizer.ggml.bos_token_id");
        let eos_text = token_text("tokenizer.ggml.eos_token_id");
        drop(g);
        Ok(Model {
            map,
            config,
            weights,
            tokenizer,
            stop_tokens,
            chat_template,
            bos_text,
            eos_text,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// The whole mapped file; tensors index into it.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_bytes()
    }

    /// Token ids that end generation, computed once at load: eos and eot from the metadata,
    /// `<|endoftext|>`, and every end-of-turn marker of the chat formats we know
    /// ([`END_OF_TURN_STRINGS`]: ChatML's `<|im_end|>`, Llama 3, Phi, Gemma) that is a single
    /// token in the vocabulary.
    pub fn stop_tokens(&self) -> &[u32] {
        &self.stop_tokens
    }

    /// The Jinja source of `tokenizer.chat_template`, if the file has one.
    pub fn chat_template_source(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The model's chat template compiled (ChatML when the file has none, with a one-line
    /// notice to show), with the file's bos / eos strings.
    pub fn chat_template(&self) -> Result<(ChatTemplate, Option<&'static str>), ChatError> {
        ChatTemplate::from_source_or_chatml(
            self.chat_template.as_deref(),
            &self.bos_text,
            &self.eos_text,
        )
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
}

fn stop_tokens(g: &GgufFile, tok: &Tokenizer) -> Vec<u32> {
    let mut out = Vec::new();
    for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"] {
        if let Some(id) = g.get(key).and_then(|v| v.as_u64()) {
            out.push(id as u32);
        }
    }
    for special in END_OF_TURN_STRINGS.iter().chain(&["<|endoftext|>"]) {
        out.extend(tok.token_to_id(special));
    }
    out.retain(|&id| (id as usize) < tok.vocab_size());
    out.sort_unstable();
    out.dedup();
    out
}
