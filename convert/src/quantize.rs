//! `ouro-convert quantize`: rewrite a GGUF's tensors in another type, keeping every metadata key
//! (only `general.file_type` changes). Tensors already in the target type are copied byte for byte;
//! quantized sources are dequantized first (with a warning: the error adds up).
//!
//! The output is laid out as llama-quantize lays out its own, so that the same input gives the
//! same file byte for byte: keys in the input's order, then `general.quantization_version` and
//! `general.file_type` moved to the end (ggml's `gguf_set_val` removes and appends), split keys
//! dropped; tensors in llama.cpp's loader order (`weight_name_comparer`: tensors outside blocks
//! first, then by block index, by name within each).
//!
//! The header is parsed from a map; tensor data is read with positioned reads, one tensor at a
//! time, so the input's pages do not stay resident (a map's touched pages count as RSS: mapped,
//! a 2.9 GB f16 input peaked at 2.8 GB RSS).

use crate::interrupt::{self, Kind, Pending};
use crate::kquant_plan::{self, FileShape};
use crate::plan::{self, FileType};
use crate::progress::Progress;
use crate::summary::Written;
use anyhow::{anyhow, bail, Context, Result};
use ouro::gguf::{GgufFile, GgufWriter, TensorInfo, Value};
use ouro::mmap::Mmap;
use ouro_simd::GgmlType;
use rayon::prelude::*;
use std::fs::File;
use std::path::Path;

fn is_float(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16)
}

pub fn run(input: &Path, output: &Path, ftype: FileType) -> Result<Written> {
    let map = Mmap::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let g = GgufFile::parse(map.as_bytes()).with_context(|| format!("{}", input.display()))?;
    let file = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;

    let shape = FileShape::from_names(g.tensors.iter().map(|t| t.name.as_str()), n_layers(&g));
    let mut plan: Vec<(&TensorInfo, GgmlType)> = Vec::with_capacity(g.tensors.len());
    let mut requantized = Vec::new();
    let mut ordered: Vec<&TensorInfo> = g.tensors.iter().collect();
    ordered.sort_by(|a, b| llama_weight_order(&a.name, &b.name));
    for t in ordered {
        let row_len = t.dims.first().copied().unwrap_or(1) as usize;
        let role = plan::role_of(&t.name, t.dims.len());
        let ty = plan::tensor_type_in(ftype, &shape, &t.name, role, t.dims.len(), row_len);
        if ty != t.ty {
            if !ouro_simd::is_supported(t.ty) {
                bail!(
                    "tensor {}: cannot convert from {} (unsupported type)",
                    t.name,
                    t.ty
                );
            }
            if !is_float(t.ty) {
                requantized.push(t.name.as_str());
            }
        }
        plan.push((t, ty));
    }
    if !requantized.is_empty() {
        eprintln!(
            "warning: {} tensors (e.g. {}) are already quantized; they are dequantized and \
             quantized again, which adds to their error",
            requantized.len(),
            requantized[0]
        );
    }

    let mut w = GgufWriter::new();
    const MOVED: [&str; 5] = [
        "general.quantization_version",
        "general.file_type",
        "split.no",
        "split.count",
        "split.tensors.count",
    ];
    for (key, value) in &g.metadata {
        if !MOVED.contains(&key.as_str()) {
            w.add_kv(key.clone(), value.clone())?;
        }
    }
    w.add_kv("general.quantization_version", Value::U32(2))?;
    w.add_kv("general.file_type", Value::U32(ftype.llama_ftype()))?;
    for (t, ty) in &plan {
        w.add_tensor(t.name.clone(), &t.dims, *ty)?;
    }
    let tmp = GgufWriter::temp_path(output)?;
    let (pending, mut data) = Pending::create(&tmp, Kind::File, || {
        w.begin_at(output, &tmp)
            .with_context(|| format!("cannot create {}", output.display()))
    })?;
    let total: u64 = plan.iter().map(|(t, _)| t.n_bytes).sum();
    let progress = Progress::new(total);
    for (t, ty) in &plan {
        // The reader checked that every tensor lies inside the file, so this fits in memory.
        let mut src = vec![0u8; t.n_bytes as usize];
        crate::source::read_exact_at(&file, &mut src, g.data_start + t.offset)
            .with_context(|| format!("cannot read {}", input.display()))?;
        if *ty == t.ty {
            data.write_tensor(&t.name, &src)
        } else {
            data.write_tensor(&t.name, &convert(t, &src, *ty)?)
        }
        .with_context(|| format!("writing {}", output.display()))?;
        progress.inc(t.n_bytes);
        interrupt::tensor_done();
    }
    pending.commit(|| {
        data.finish()
            .with_context(|| format!("writing {}", output.display()))
    })?;
    progress.finish();
    let bytes = std::fs::metadata(output)
        .with_context(|| format!("cannot stat {}", output.display()))?
        .len();
    let types = plan
        .iter()
        .map(|(_, ty)| ty.to_string().to_ascii_lowercase());
    Ok(Written::new(output.to_path_buf(), bytes, types))
}

/// llama.cpp's `weight_name_comparer` (the order of `llama_model_loader::weights_map`, which
/// llama-quantize writes in): the block index read by `sscanf(name, "blk.%d.")` (−1 without one),
/// then the name bytewise.
fn llama_weight_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn layer(name: &str) -> i64 {
        let Some(rest) = name.strip_prefix("blk.") else {
            return -1;
        };
        // %d: optional sign, then digits (leading whitespace is skipped by scanf too).
        let rest = rest.trim_start();
        let sign_len = usize::from(rest.starts_with(['+', '-']));
        let digits = rest[sign_len..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        rest[..sign_len + digits]
            .parse::<i32>()
            .map_or(-1, i64::from)
    }
    (layer(a), a).cmp(&(layer(b), b))
}

/// llama.cpp's `n_layer_all`: `{arch}.block_count` × `{arch}.num_loops` (looped models load as
/// that many logical layers), else one more than the highest `blk.N` index.
fn n_layers(g: &GgufFile) -> usize {
    let key = |k: &str| {
        g.architecture()
            .and_then(|a| g.get(&format!("{a}.{k}")))
            .and_then(Value::as_u64)
            .map(|n| n as usize)
    };
    let loops = key("num_loops").unwrap_or(1).max(1);
    key("block_count")
        .unwrap_or_else(|| {
            g.tensors
                .iter()
                .filter_map(|t| {
                    t.name
                        .strip_prefix("blk.")?
                        .split('.')
                        .next()?
                        .parse::<usize>()
                        .ok()
                })
                .max()
                .map_or(0, |m| m + 1)
        })
        .saturating_mul(loops)
}

fn convert(t: &TensorInfo, src: &[u8], ty: GgmlType) -> Result<Vec<u8>> {
    let row_len = t.dims.first().copied().unwrap_or(1);
    let bad = || {
        anyhow!(
            "tensor {}: row length {row_len} does not fit its type",
            t.name
        )
    };
    let in_row = t.ty.row_bytes(row_len).ok_or_else(bad)? as usize;
    let out_row = ty.row_bytes(row_len).ok_or_else(bad)? as usize;
    let rows = (t.n_elements() / row_len.max(1)) as usize;
    if rows == 0 || out_row == 0 {
        return Ok(Vec::new());
    }
    if in_row * rows != src.len() {
        bail!(
            "tensor {}: {} data bytes, expected {}",
            t.name,
            src.len(),
            in_row * rows
        );
    }
    let mut out = vec![0u8; out_row * rows];
    out.par_chunks_mut(out_row)
        .zip(src.par_chunks(in_row))
        .for_each_init(
            || vec![0f32; row_len as usize],
            |buf, (dst, s)| {
                ouro_simd::dequantize_row(t.ty, s, buf);
                kquant_plan::quantize_row(ty, buf, dst);
            },
        );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::llama_weight_order;

    /// The order llama-quantize wrote SmolLM2-135M's tensors in (2026-11-30, checked whole-file
    /// against llama-quantize by scripts/record-kquant-golden.sh).
    #[test]
    fn tensors_sort_as_llama_cpp_weights_map() {
        let mut names = vec![
            "token_embd.weight",
            "blk.10.attn_q.weight",
            "blk.0.ffn_down.weight",
            "blk.2.attn_k.weight",
            "output_norm.weight",
            "blk.0.attn_k.weight",
            "blk.1.ffn_up.weight",
            "output.weight",
        ];
        names.sort_by(|a, b| llama_weight_order(a, b));
        assert_eq!(
            names,
            [
                "output.weight",
                "output_norm.weight",
                "token_embd.weight",
                "blk.0.attn_k.weight",
                "blk.0.ffn_down.weight",
                "blk.1.ffn_up.weight",
                "blk.2.attn_k.weight",
                "blk.10.attn_q.weight",
            ]
        );
    }
}
