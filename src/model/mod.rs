//! The model: configuration from GGUF keys, weights resolved once at load, the KV cache,
//! the exit-gate CDF math and the looped forward pass.

pub mod config;
pub mod exit;
pub mod forward;
pub mod kv_cache;
pub mod weights;

use std::path::{Path, PathBuf};

use crate::gguf::{GgmlType, GgufError, GgufFile};
use crate::mmap::Mmap;
use crate::tokenizer::{Tokenizer, TokenizerError};

pub use config::{Arch, Config};
pub use kv_cache::{KvCache, KvType};
pub use weights::{WeightTensor, Weights};

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot open model file {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
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
    #[error("tokenizer: {0}")]
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
}

impl Model {
    /// Map `path`, parse it and resolve every tensor. Nothing is copied except norm weights.
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let map = Mmap::open(path).map_err(|source| ModelError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let (config, weights, tokenizer, stop_tokens, chat_template) = {
            let g = GgufFile::parse(map.as_bytes())?;
            let config = Config::from_gguf(&g)?;
            let weights = Weights::resolve(&g, &config)?;
            let tokenizer = Tokenizer::from_gguf(&g)?;
            let stop_tokens = stop_tokens(&g, &tokenizer);
            let chat_template = g
                .get("tokenizer.chat_template")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            (config, weights, tokenizer, stop_tokens, chat_template)
        };
        Ok(Model {
            map,
            config,
            weights,
            tokenizer,
            stop_tokens,
            chat_template,
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

    /// Token ids that end generation: eos, eot and `<|im_end|>` when the vocabulary has them.
    pub fn stop_tokens(&self) -> &[u32] {
        &self.stop_tokens
    }

    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
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
    for special in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>"] {
        out.extend(tok.token_to_id(special));
    }
    out.retain(|&id| (id as usize) < tok.vocab_size());
    out.sort_unstable();
    out.dedup();
    out
}
