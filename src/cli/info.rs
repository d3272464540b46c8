//! `ouro info MODEL.gguf [--json] [--tensors]`: what a GGUF file holds, from its metadata and
//! tensor index alone (no tensor data is read; `ouro::info` builds the summary).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use ouro::gguf::GgufFile;
use ouro::info::Summary;
use ouro::mmap::Mmap;

use super::common::resolve_model;

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The GGUF model file (default: $OURO_MODEL, else the demo model models/ouro-demo.gguf).
    pub model: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also list every tensor: name, dims, type, bytes.
    #[arg(long)]
    pub tensors: bool,
}

pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    let (path, what) = resolve_model(args.model.as_deref())?;
    let map = Mmap::open(&path).with_context(|| format!("cannot open {what}"))?;
    let g = GgufFile::parse(&map).with_context(|| what.clone())?;
    let summary = Summary::from_gguf(&g, args.tensors);
    let text = if args.json {
        let mut s = serde_json::to_string(&summary).context("serializing the summary")?;
        s.push('\n');
        s
    } else {
        summary.to_text()
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}
