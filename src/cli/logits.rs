//! `ouro logits`: the readout at every position of one no-cache pass, as float32 .npy.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::common::{kv_type, load_model, KvTypeArg, RunArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// GGUF model file (default: $OURO_MODEL, else the demo model models/ouro-demo.gguf).
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
    /// Prompt text (special tokens are parsed).
    #[arg(
        short = 'p',
        long,
        conflicts_with = "tokens",
        required_unless_present = "tokens"
    )]
    pub prompt: Option<String>,
    /// Token ids, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub tokens: Option<Vec<u32>>,
    /// Output: float32 [n_tokens, vocab_size].
    #[arg(long)]
    pub out: PathBuf,
    /// Optional output: gate values float32 [loops, n_tokens] (NaN where not computed).
    #[arg(long)]
    pub gates_out: Option<PathBuf>,
    /// KV cache element type (f32 keeps the pass at reference precision).
    #[arg(long, value_enum, default_value_t = KvTypeArg::F32)]
    pub kv_type: KvTypeArg,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Write a little-endian float32 C-order .npy file.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_txt}, }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + data.len() * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let mut f =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(&bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

pub fn run(args: Args) -> Result<()> {
    let (model, _) = load_model(args.model.as_deref())?;
    let ids: Vec<u32> = match (&args.prompt, &args.tokens) {
        (Some(p), _) => {
            let tok = model.tokenizer();
            let mut ids: Vec<u32> = tok.bos_to_add().into_iter().collect();
            ids.extend(tok.encode(p, true)?);
            ids
        }
        (None, Some(t)) => t.clone(),
        (None, None) => bail!("give -p TEXT or --tokens IDS"),
    };
    if ids.is_empty() {
        bail!("no tokens to evaluate");
    }
    let opts = args
        .run
        .session_options(&model, ids.len(), kv_type(args.kv_type))?;
    let mut session = args.run.session(&model, opts)?;
    let out = session.evaluate(&ids)?;
    let vocab = model.config().vocab_size;
    write_npy_f32(&args.out, &[ids.len(), vocab], &out.logits)?;
    if let Some(g) = &args.gates_out {
        write_npy_f32(g, &[out.loops, ids.len()], &out.gates)?;
    }
    let loops: Vec<String> = out.exit_loops.iter().map(|e| e.to_string()).collect();
    eprintln!(
        "{} tokens, exit loops [{}], layer evals {}",
        ids.len(),
        loops.join(","),
        session.stats().layer_evals
    );
    Ok(())
}
