//! `ouro-convert add-gate MODEL.gguf --from HF_DIR -o OUT.gguf`: give a GGUF that has no exit
//! gate (llama.cpp's converter stores none) the gate and threshold of its Hugging Face
//! checkpoint, as metadata, without touching a tensor. Keys are written where `hf2gguf` writes
//! them (after `{arch}.skip_loop_final_norm`, else after `{arch}.num_loops`, else at the end), so
//! a file stripped of its gate and given it back is byte-identical to the original.

use crate::config::HfConfig;
use crate::interrupt::{self, Kind, Pending};
use crate::source::{read_exact_at, Source};
use crate::summary::Written;
use anyhow::{bail, Context, Result};
use ouro::gguf::{GgufFile, GgufWriter, Value, ValueType};
use ouro::mmap::Mmap;
use std::fs::File;
use std::path::Path;

pub fn run(input: &Path, hf_dir: &Path, output: &Path) -> Result<Written> {
    let map = Mmap::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let g = GgufFile::parse(map.as_bytes()).with_context(|| format!("{}", input.display()))?;
    let arch = g.architecture().unwrap_or_default().to_owned();
    if arch != "ouro" {
        bail!(
            "{}: architecture {arch:?} has no exit gate (only ouro)",
            input.display()
        );
    }
    let cfg = HfConfig::load(hf_dir)?;
    let source = Source::open(hf_dir)?;
    let (weight, bias) = crate::hf2gguf::read_gate(&cfg, &source)?;
    let dim = g
        .get(&format!("{arch}.embedding_length"))
        .and_then(Value::as_u64)
        .context("missing metadata key ouro.embedding_length")?;
    if dim != weight.len() as u64 {
        bail!(
            "the checkpoint's gate has {} weights but {} has embedding_length {dim}: not the same model",
            weight.len(),
            input.display()
        );
    }

    let gate_keys = [
        format!("{arch}.exit_gate.weight"),
        format!("{arch}.exit_gate.bias"),
        format!("{arch}.early_exit_threshold"),
    ];
    let mut gate = vec![
        (
            gate_keys[0].clone(),
            Value::Array(ValueType::F32, weight.into_iter().map(Value::F32).collect()),
        ),
        (gate_keys[1].clone(), Value::F32(bias)),
    ];
    if let Some(t) = cfg.early_exit_threshold {
        gate.push((gate_keys[2].clone(), Value::F32(t)));
    }
    // Existing gate keys are replaced; the new ones go after the loop keys.
    let kept: Vec<&(String, Value)> = g
        .metadata
        .iter()
        .filter(|(k, _)| !gate_keys.contains(k))
        .collect();
    let anchor = [
        format!("{arch}.skip_loop_final_norm"),
        format!("{arch}.num_loops"),
    ]
    .iter()
    .find_map(|a| kept.iter().position(|(k, _)| k == a))
    .map_or(kept.len(), |i| i + 1);
    let mut w = GgufWriter::new();
    for (i, (key, value)) in kept.iter().enumerate() {
        if i == anchor {
            for (k, v) in &gate {
                w.add_kv(k.clone(), v.clone())?;
            }
        }
        w.add_kv(key.clone(), value.clone())?;
    }
    if anchor == kept.len() {
        for (k, v) in gate {
            w.add_kv(k, v)?;
        }
    }
    for t in &g.tensors {
        w.add_tensor(t.name.clone(), &t.dims, t.ty)?;
    }

    let file = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let tmp = GgufWriter::temp_path(output)?;
    let (pending, mut data) = Pending::create(&tmp, Kind::File, || {
        w.begin_at(output, &tmp)
            .with_context(|| format!("cannot create {}", output.display()))
    })?;
    for t in &g.tensors {
        let mut bytes = vec![0u8; t.n_bytes as usize];
        read_exact_at(&file, &mut bytes, g.data_start + t.offset)
            .with_context(|| format!("cannot read {}", input.display()))?;
        data.write_tensor(&t.name, &bytes)
            .with_context(|| format!("writing {}", output.display()))?;
        interrupt::tensor_done();
    }
    pending.commit(|| {
        data.finish()
            .with_context(|| format!("writing {}", output.display()))
    })?;
    let bytes = std::fs::metadata(output)
        .with_context(|| format!("cannot stat {}", output.display()))?
        .len();
    let types = g
        .tensors
        .iter()
        .map(|t| t.ty.to_string().to_ascii_lowercase());
    Ok(Written::new(output.to_path_buf(), bytes, types))
}
