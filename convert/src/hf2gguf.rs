//! `ouro-convert hf2gguf`: a Hugging Face Ouro or Llama checkpoint → GGUF, tensor by tensor.

use crate::config::{Arch, HfConfig};
use crate::interrupt::{self, Kind, Pending};
use crate::kquant_plan::{self, FileShape};
use crate::names::{self, TensorSpec};
use crate::plan::{self, FileType};
use crate::progress::Progress;
use crate::size_label::size_label;
use crate::source::{decode_f32, Source, SrcTensor};
use crate::summary::Written;
use crate::tokmeta;
use anyhow::{anyhow, bail, Context, Result};
use ouro::gguf::{GgufDataWriter, GgufWriter, Value, ValueType};
use ouro_simd::GgmlType;
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::mpsc;

/// Alignment of tensor data in the files we write (ggml's default).
const ALIGNMENT: u32 = 32;

pub struct Options<'a> {
    pub dir: &'a Path,
    pub out: Option<&'a Path>,
    pub ftype: FileType,
    pub dry_run: bool,
    pub name: Option<&'a str>,
}

/// One planned output tensor.
struct Planned<'s> {
    spec: TensorSpec,
    src: &'s SrcTensor,
    ty: GgmlType,
    n_bytes: u64,
}

/// Converts (or with `dry_run` prints the plan and returns `None`).
pub fn run(opts: &Options) -> Result<Option<Written>> {
    let cfg = HfConfig::load(opts.dir)?;
    let source = Source::open(opts.dir)?;
    let specs = names::tensor_specs(&cfg);
    let planned = plan_tensors(&cfg, &source, &specs, opts.ftype)?;
    let gate = match cfg.arch {
        Arch::Ouro => Some(read_gate(&cfg, &source)?),
        Arch::Llama => None,
    };
    // Read the tokenizer before anything is written: its errors are input errors too.
    let tokenizer_kv = tokmeta::tokenizer_metadata(opts.dir, &cfg)?;

    if opts.dry_run {
        print_plan(&planned);
        return Ok(None);
    }
    let out = opts
        .out
        .ok_or_else(|| anyhow!("an output file is required (-o OUT.gguf) unless --dry-run"))?;

    let mut w = GgufWriter::new();
    let n_params: u64 = planned.iter().map(|p| p.spec.n_elements() as u64).sum();
    for (key, value) in general_metadata(&cfg, opts, n_params) {
        w.add_kv(key, value)?;
    }
    for (key, value) in model_metadata(&cfg, gate) {
        w.add_kv(key, value)?;
    }
    for (key, value) in tokenizer_kv {
        w.add_kv(key, value)?;
    }
    for p in &planned {
        w.add_tensor(p.spec.gguf_name.clone(), &p.spec.gguf_dims(), p.ty)?;
    }
    let tmp = GgufWriter::temp_path(out)?;
    let (pending, data) = Pending::create(&tmp, Kind::File, || {
        w.begin_at(out, &tmp)
            .with_context(|| format!("cannot create {}", out.display()))
    })?;
    let total: u64 = planned.iter().map(|p| p.n_bytes).sum();
    let progress = Progress::new(total);
    let data = pipeline(&source, &planned, data, &progress, out)?;
    pending.commit(move || {
        data.finish()
            .with_context(|| format!("writing {}", out.display()))
    })?;
    progress.finish();
    let bytes = std::fs::metadata(out)
        .with_context(|| format!("cannot stat {}", out.display()))?
        .len();
    let types = planned
        .iter()
        .map(|p| p.ty.to_string().to_ascii_lowercase());
    Ok(Some(Written::new(out.to_path_buf(), bytes, types)))
}

/// Checks the tensor set and shapes against config.json and chooses each output type.
fn plan_tensors<'s>(
    cfg: &HfConfig,
    source: &'s Source,
    specs: &[TensorSpec],
    ftype: FileType,
) -> Result<Vec<Planned<'s>>> {
    let missing: Vec<&str> = specs
        .iter()
        .map(|s| s.hf_name.as_str())
        .chain(match cfg.arch {
            Arch::Ouro => vec![names::GATE_WEIGHT, names::GATE_BIAS],
            Arch::Llama => vec![],
        })
        .filter(|n| source.get(n).is_none())
        .collect();
    if !missing.is_empty() {
        bail!("missing tensors: {}", name_list(&missing));
    }
    let mut known: BTreeSet<&str> = specs.iter().map(|s| s.hf_name.as_str()).collect();
    if cfg.arch == Arch::Ouro {
        known.extend([names::GATE_WEIGHT, names::GATE_BIAS]);
    }
    if cfg.tie_word_embeddings {
        // Some tied checkpoints still store a copy of the embedding as lm_head.
        known.insert("lm_head.weight");
    }
    let extra: Vec<&str> = source
        .tensors()
        .keys()
        .map(String::as_str)
        .filter(|n| !known.contains(n) && !names::is_ignored(n))
        .collect();
    if !extra.is_empty() {
        bail!("unexpected tensors: {}", name_list(&extra));
    }
    // llama.cpp's n_layer_all: an Ouro file loads as block_count × num_loops logical layers.
    let n_layer_all = match cfg.arch {
        Arch::Ouro => cfg.n_layers * cfg.n_loops.max(1),
        Arch::Llama => cfg.n_layers,
    };
    let shape = FileShape::from_names(specs.iter().map(|s| s.gguf_name.as_str()), n_layer_all);
    let mut planned = Vec::with_capacity(specs.len());
    for spec in specs {
        let src = source
            .get(&spec.hf_name)
            .ok_or_else(|| anyhow!("missing tensor {}", spec.hf_name))?;
        if src.shape != spec.shape {
            bail!(
                "tensor {}: shape mismatch: expected {:?} (from config.json), found {:?}",
                spec.hf_name,
                spec.shape,
                src.shape
            );
        }
        let ty = plan::tensor_type_in(
            ftype,
            &shape,
            &spec.gguf_name,
            spec.role,
            spec.shape.len(),
            spec.row_len(),
        );
        let n_bytes = plan::tensor_bytes(ty, spec.n_elements(), spec.row_len())
            .ok_or_else(|| anyhow!("tensor {}: size overflow", spec.gguf_name))?;
        planned.push(Planned {
            spec: spec.clone(),
            src,
            ty,
            n_bytes,
        });
    }
    Ok(planned)
}

/// At most 8 names, then "… (N more)", so the error stays one line.
fn name_list(names: &[&str]) -> String {
    let shown: Vec<&str> = names.iter().take(8).copied().collect();
    let mut s = shown.join(", ");
    if names.len() > shown.len() {
        s.push_str(&format!(" … ({} more)", names.len() - shown.len()));
    }
    s
}

pub(crate) fn read_gate(cfg: &HfConfig, source: &Source) -> Result<(Vec<f32>, f32)> {
    let check = |name: &str, expected: &[usize]| -> Result<&SrcTensor> {
        let t = source
            .get(name)
            .ok_or_else(|| anyhow!("missing tensors: {name}"))?;
        if t.shape != expected {
            bail!("tensor {name}: shape mismatch: expected {expected:?} (from config.json), found {:?}", t.shape);
        }
        Ok(t)
    };
    // The gate is stored as metadata, which the runtime (and llama.cpp) only accept finite.
    let finite = |name: &str, values: Vec<f32>| -> Result<Vec<f32>> {
        let bad = values.iter().filter(|x| !x.is_finite()).count();
        if bad > 0 {
            bail!(
                "tensor {name}: {bad} of {} values are not finite (NaN or infinite)",
                values.len()
            );
        }
        Ok(values)
    };
    let w = finite(
        names::GATE_WEIGHT,
        source.read_f32(check(names::GATE_WEIGHT, &[1, cfg.dim])?)?,
    )?;
    let b = finite(
        names::GATE_BIAS,
        source.read_f32(check(names::GATE_BIAS, &[1])?)?,
    )?;
    Ok((w, b[0]))
}

fn print_plan(planned: &[Planned]) {
    let mut total = 0u64;
    println!(
        "{:<32} {:>16} {:>6} {:>14}",
        "tensor", "shape", "type", "bytes"
    );
    for p in planned {
        let shape = p
            .spec
            .gguf_dims()
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("x");
        println!(
            "{:<32} {:>16} {:>6} {:>14}",
            p.spec.gguf_name, shape, p.ty, p.n_bytes
        );
        total += p.n_bytes;
    }
    println!(
        "total: {} tensors, {} bytes ({:.1} MiB) of tensor data",
        planned.len(),
        total,
        total as f64 / (1024.0 * 1024.0)
    );
}

/// `n_params`: elements of all tensors written (for `general.size_label`, as llama.cpp counts them).
fn general_metadata(cfg: &HfConfig, opts: &Options, n_params: u64) -> Vec<(String, Value)> {
    let name = opts
        .name
        .map(str::to_owned)
        .or_else(|| {
            cfg.name_or_path
                .as_deref()
                .and_then(|p| p.rsplit('/').next())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
        .or_else(|| {
            opts.dir
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        })
        .unwrap_or_else(|| cfg.arch.name().to_owned());
    let mut kv = vec![
        (
            "general.architecture".to_owned(),
            Value::String(cfg.arch.name().into()),
        ),
        ("general.type".to_owned(), Value::String("model".into())),
        ("general.name".to_owned(), Value::String(name)),
        (
            "general.size_label".to_owned(),
            Value::String(size_label(n_params)),
        ),
        (
            "general.file_type".to_owned(),
            Value::U32(opts.ftype.llama_ftype()),
        ),
        ("general.quantization_version".to_owned(), Value::U32(2)),
        ("general.alignment".to_owned(), Value::U32(ALIGNMENT)),
    ];
    // A Hub id such as "ByteDance/Ouro-1.4B" (never a local path).
    if let Some(repo) = cfg
        .name_or_path
        .as_deref()
        .filter(|p| p.split('/').count() == 2 && !p.starts_with('/') && !p.starts_with('.'))
    {
        kv.push((
            "general.source.huggingface.repository".to_owned(),
            Value::String(repo.to_owned()),
        ));
    }
    kv
}

fn model_metadata(cfg: &HfConfig, gate: Option<(Vec<f32>, f32)>) -> Vec<(String, Value)> {
    let a = cfg.arch.name();
    let u = |n: usize| Value::U32(n as u32);
    let mut kv = vec![
        (format!("{a}.block_count"), u(cfg.n_layers)),
        (format!("{a}.context_length"), u(cfg.context_length)),
        (format!("{a}.embedding_length"), u(cfg.dim)),
        (format!("{a}.feed_forward_length"), u(cfg.hidden_dim)),
        (format!("{a}.attention.head_count"), u(cfg.n_heads)),
        (format!("{a}.attention.head_count_kv"), u(cfg.n_kv_heads)),
        (format!("{a}.attention.key_length"), u(cfg.head_dim)),
        (format!("{a}.attention.value_length"), u(cfg.head_dim)),
        (
            format!("{a}.attention.layer_norm_rms_epsilon"),
            Value::F32(cfg.rms_eps),
        ),
        (
            format!("{a}.rope.freq_base"),
            Value::F32(cfg.rope_freq_base),
        ),
        (format!("{a}.rope.dimension_count"), u(cfg.head_dim)),
        (format!("{a}.vocab_size"), u(cfg.vocab_size)),
    ];
    if cfg.arch == Arch::Ouro {
        kv.push((format!("{a}.num_loops"), u(cfg.n_loops)));
        kv.push((format!("{a}.skip_loop_final_norm"), Value::Bool(false)));
        if let Some((w, b)) = gate {
            kv.push((
                format!("{a}.exit_gate.weight"),
                Value::Array(ValueType::F32, w.into_iter().map(Value::F32).collect()),
            ));
            kv.push((format!("{a}.exit_gate.bias"), Value::F32(b)));
        }
        if let Some(t) = cfg.early_exit_threshold {
            kv.push((format!("{a}.early_exit_threshold"), Value::F32(t)));
        }
    }
    kv
}

/// Converts every planned tensor in three overlapped stages: a reader thread reads the next
/// tensor's source bytes, this thread converts the current one (in parallel over rows, rayon),
/// a writer thread writes the previous one. Each channel holds one tensor, so at most two source
/// tensors and three converted ones are in memory (the largest, token_embd, first).
fn pipeline(
    source: &Source,
    planned: &[Planned],
    mut data: GgufDataWriter,
    progress: &Progress,
    out: &Path,
) -> Result<GgufDataWriter> {
    std::thread::scope(|s| {
        let (src_tx, src_rx) = mpsc::sync_channel::<Result<Vec<u8>>>(1);
        let (out_tx, out_rx) = mpsc::sync_channel::<(&Planned, Vec<u8>)>(1);
        s.spawn(move || {
            for p in planned {
                let bytes = source.read_bytes(p.src);
                let failed = bytes.is_err();
                if src_tx.send(bytes).is_err() || failed {
                    break;
                }
            }
        });
        let writer = s.spawn(move || -> Result<GgufDataWriter> {
            for (p, bytes) in out_rx {
                data.write_tensor(&p.spec.gguf_name, &bytes)
                    .with_context(|| format!("writing {}", out.display()))?;
                progress.inc(p.n_bytes);
                interrupt::tensor_done();
            }
            Ok(data)
        });
        for p in planned {
            let src = src_rx
                .recv()
                .map_err(|_| anyhow!("the reader thread stopped"))??;
            let bytes = convert_tensor(&src, p)?;
            drop(src);
            if out_tx.send((p, bytes)).is_err() {
                break; // the writer failed: its error is returned below
            }
        }
        drop(out_tx);
        match writer.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Converts one tensor's source bytes to its planned type (rows permuted for Q/K), in parallel
/// over rows.
fn convert_tensor(src: &[u8], p: &Planned) -> Result<Vec<u8>> {
    let row_len = p.spec.row_len();
    let rows = p.spec.n_elements() / row_len.max(1);
    let out_row_bytes = p.ty.row_bytes(row_len as u64).ok_or_else(|| {
        anyhow!(
            "tensor {}: rows do not split into {} blocks",
            p.spec.gguf_name,
            p.ty
        )
    })? as usize;
    let in_row_bytes = row_len * p.src.ty.size();
    let mut out = vec![0u8; out_row_bytes * rows];
    let permute = p.spec.permute_heads;
    let (src_ty, ty) = (p.src.ty, p.ty);
    out.par_chunks_mut(out_row_bytes).enumerate().for_each_init(
        || vec![0f32; row_len],
        |buf, (r, dst)| {
            let s = match permute {
                Some(n_head) => names::permuted_source_row(r, rows, n_head),
                None => r,
            };
            decode_f32(src_ty, &src[s * in_row_bytes..(s + 1) * in_row_bytes], buf);
            kquant_plan::quantize_row(ty, buf, dst);
        },
    );
    Ok(out)
}
