//! `ouro perplexity`: llama.cpp-style perplexity. The text is cut into chunks of `ctx` tokens,
//! each evaluated from an empty cache; the second half of each chunk is scored.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::common::{kv_type, load_model, KvTypeArg, RunArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// GGUF model file (default: $OURO_MODEL, else the demo model models/ouro-demo.gguf).
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
    /// Text file to score.
    #[arg(short = 'f', long)]
    pub file: PathBuf,
    /// Tokens per chunk.
    #[arg(long, default_value_t = 512)]
    pub ctx: usize,
    /// KV cache element type.
    #[arg(long, value_enum, default_value_t = KvTypeArg::F16)]
    pub kv_type: KvTypeArg,
    #[command(flatten)]
    pub run: RunArgs,
}

/// −log softmax(logits)[target], in f64.
fn nll(logits: &[f32], target: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    sum.ln() - (logits[target] as f64 - max)
}

pub fn run(args: Args) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let (model, _) = load_model(args.model.as_deref())?;
    let opts = args
        .run
        .session_options(&model, args.ctx, kv_type(args.kv_type))?;
    let tok = model.tokenizer();
    let bos = tok.bos_to_add();
    let mut tokens: Vec<u32> = bos.into_iter().collect();
    tokens.extend(tok.encode(&text, false)?);
    let ctx = args.ctx;
    if ctx < 2 {
        bail!("--ctx must be at least 2");
    }
    if tokens.len() < 2 * ctx {
        bail!(
            "the text has {} tokens; perplexity needs at least 2 × ctx = {}",
            tokens.len(),
            2 * ctx
        );
    }
    let n_chunks = tokens.len() / ctx;
    let vocab = model.config().vocab_size;
    let mut session = args.run.session(&model, opts)?;
    let first = ctx / 2;
    let (mut sum, mut sum2, mut count) = (0.0f64, 0.0f64, 0usize);
    eprintln!(
        "perplexity: {} tokens, {n_chunks} chunks of {ctx}",
        tokens.len()
    );
    for i in 0..n_chunks {
        let mut chunk = tokens[i * ctx..(i + 1) * ctx].to_vec();
        if let Some(b) = bos {
            chunk[0] = b;
        }
        session.reset();
        let out = session.evaluate(&chunk)?;
        for j in first..ctx - 1 {
            let v = nll(&out.logits[j * vocab..][..vocab], chunk[j + 1] as usize);
            sum += v;
            sum2 += v * v;
            count += 1;
        }
        print!("[{}]{:.4},", i + 1, (sum / count as f64).exp());
        use std::io::Write;
        std::io::stdout().flush()?;
    }
    println!();
    let mean = sum / count as f64;
    let ppl = mean.exp();
    let var = sum2 / count as f64 - mean * mean;
    let unc = if var > 0.0 && count > 1 {
        (var / (count - 1) as f64).sqrt() * ppl
    } else {
        0.0
    };
    println!("Final estimate: PPL = {ppl:.4} +/- {unc:.5}");
    let s = session.stats();
    eprintln!(
        "{} tokens evaluated at {:.1} tok/s, layer evals {}",
        s.prompt_tokens,
        s.prompt_tok_per_s(),
        s.layer_evals
    );
    Ok(())
}
