//! Every tensor the forward pass uses, resolved by GGUF name and shape-checked once at load.
//! Matrices stay in the map (byte ranges); norm weights and the exit gate are copied to f32.

use crate::gguf::{GgufFile, TensorInfo};
use crate::tensor::WeightTensor;

use super::{Config, ModelError};

/// One physical layer (shared by every loop).
#[derive(Debug)]
pub struct Layer {
    /// [dim]
    pub attn_norm: Vec<f32>,
    /// [q_dim × dim], rows permuted for interleaved RoPE
    pub attn_q: WeightTensor,
    /// [kv_dim × dim], rows permuted for interleaved RoPE
    pub attn_k: WeightTensor,
    /// [kv_dim × dim]
    pub attn_v: WeightTensor,
    /// [dim × q_dim]
    pub attn_output: WeightTensor,
    /// [dim], ouro only
    pub post_attention_norm: Option<Vec<f32>>,
    /// [dim], the pre-MLP norm
    pub ffn_norm: Vec<f32>,
    /// [hidden_dim × dim]
    pub ffn_gate: WeightTensor,
    /// [hidden_dim × dim]
    pub ffn_up: WeightTensor,
    /// [dim × hidden_dim]
    pub ffn_down: WeightTensor,
    /// [dim], ouro only
    pub post_ffw_norm: Option<Vec<f32>>,
}

impl Layer {
    /// The layer's seven matrices.
    pub fn matrices(&self) -> [&WeightTensor; 7] {
        [
            &self.attn_q,
            &self.attn_k,
            &self.attn_v,
            &self.attn_output,
            &self.ffn_gate,
            &self.ffn_up,
            &self.ffn_down,
        ]
    }

    /// [`Layer::matrices`], mutable (same order).
    pub fn matrices_mut(&mut self) -> [&mut WeightTensor; 7] {
        [
            &mut self.attn_q,
            &mut self.attn_k,
            &mut self.attn_v,
            &mut self.attn_output,
            &mut self.ffn_gate,
            &mut self.ffn_up,
            &mut self.ffn_down,
        ]
    }
}

/// The exit gate λ = sigmoid(weight · h + bias), from metadata.
#[derive(Clone, Debug)]
pub struct ExitGate {
    /// [dim]
    pub weight: Vec<f32>,
    pub bias: f32,
}

#[derive(Debug)]
pub struct Weights {
    /// [vocab_size × dim]
    pub token_embd: WeightTensor,
    /// [dim]
    pub output_norm: Vec<f32>,
    /// [vocab_size × dim]; `token_embd` when the file has no `output`
    pub output: WeightTensor,
    pub layers: Vec<Layer>,
    pub exit_gate: Option<ExitGate>,
}

struct Resolver<'g, 'a> {
    g: &'g GgufFile<'a>,
}

impl Resolver<'_, '_> {
    fn info(&self, name: &str) -> Result<&TensorInfo, ModelError> {
        self.g
            .tensor(name)
            .ok_or_else(|| ModelError::MissingTensor(name.to_owned()))
    }

    fn check_dims(t: &TensorInfo, expected: &[u64]) -> Result<(), ModelError> {
        if t.dims != expected {
            return Err(ModelError::TensorShape {
                name: t.name.clone(),
                expected: expected.to_vec(),
                found: t.dims.clone(),
            });
        }
        Ok(())
    }

    /// A matrix of `rows` rows of `cols` (GGUF dims `[cols, rows]`).
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<WeightTensor, ModelError> {
        let t = self.info(name)?;
        Self::check_dims(t, &[cols as u64, rows as u64])?;
        if !ouro_simd::is_weight_type(t.ty) || t.ty.row_bytes(cols as u64).is_none() {
            return Err(ModelError::TensorType {
                name: name.to_owned(),
                ty: t.ty,
            });
        }
        Ok(WeightTensor {
            name: name.to_owned(),
            ty: t.ty,
            rows,
            cols,
            offset: (self.g.data_start + t.offset) as usize,
            n_bytes: t.n_bytes as usize,
            resident: None,
        })
    }

    /// A vector of `n` elements, dequantized to f32.
    fn vector(&self, name: &str, n: usize) -> Result<Vec<f32>, ModelError> {
        let t = self.info(name)?;
        Self::check_dims(t, &[n as u64])?;
        if !ouro_simd::is_supported(t.ty) || t.ty.row_bytes(n as u64).is_none() {
            return Err(ModelError::TensorType {
                name: name.to_owned(),
                ty: t.ty,
            });
        }
        let mut out = vec![0.0f32; n];
        ouro_simd::dequantize_row(t.ty, self.g.tensor_data(t), &mut out);
        Ok(out)
    }
}

fn exit_gate(g: &GgufFile, c: &Config) -> Result<Option<ExitGate>, ModelError> {
    let a = c.arch.name();
    let wkey = format!("{a}.exit_gate.weight");
    let bkey = format!("{a}.exit_gate.bias");
    let Some(wv) = g.get(&wkey) else {
        return Ok(None);
    };
    let weight: Option<Vec<f32>> = wv
        .as_array()
        .and_then(|arr| arr.iter().map(|v| v.as_f32()).collect());
    let weight = match weight {
        Some(w) if w.len() == c.dim && w.iter().all(|x| x.is_finite()) => w,
        _ => {
            return Err(ModelError::BadKey {
                key: wkey,
                expected: format!("an array of {} finite f32", c.dim),
                found: format!("{:?}", wv.value_type() as u32),
            })
        }
    };
    let bv = g.get(&bkey).ok_or(ModelError::MissingKey(bkey.clone()))?;
    let bias = bv
        .as_f32()
        .or_else(|| match bv.as_array() {
            Some([one]) => one.as_f32(),
            _ => None,
        })
        .filter(|b| b.is_finite())
        .ok_or_else(|| ModelError::BadKey {
            key: bkey,
            expected: "a finite f32".to_owned(),
            found: format!("{bv:?}").chars().take(60).collect(),
        })?;
    Ok(Some(ExitGate { weight, bias }))
}

impl Weights {
    /// Repack every matrix the kernel path keeps in resident panels (Q4_0 / Q8_0 on AVX-512:
    /// `ouro_simd::resident_enabled`) — the layers' seven and `output`; the embedding stays in
    /// the map, it is read a row at a time — and release the file pages each one replaces, so
    /// resident memory stays the file's size. `OURO_REPACK=0` keeps everything in the map.
    pub fn make_resident(&mut self, map: &crate::mmap::Mmap) {
        let file = map.as_bytes();
        let layers = self.layers.iter_mut().flat_map(Layer::matrices_mut);
        // `output` first: while a tensor is packed both its pages and its copy are resident,
        // and the largest one is cheapest to double before anything else is resident.
        let mut released = Vec::new();
        for t in std::iter::once(&mut self.output).chain(layers) {
            if ouro_simd::resident_enabled(t.ty) {
                let r = ouro_simd::Resident::pack(t.ty, t.data(file), t.rows, t.cols);
                t.resident = Some(std::sync::Arc::new(r));
                map.release(t.offset, t.n_bytes);
                released.push((t.offset, t.n_bytes));
            }
        }
        // Once more at the end: the kernel maps up to 64 KiB of cached pages around each page
        // fault ("fault-around"), so reading the start of one tensor maps the tail of the one
        // released before it again (≈ 13 MB over SmolLM2's 211 matrices).
        for (offset, n) in released {
            map.release(offset, n);
        }
    }

    /// Bytes held by resident panels (0 when nothing was repacked).
    pub fn resident_bytes(&self) -> u64 {
        let layers = self.layers.iter().flat_map(Layer::matrices);
        layers
            .chain(std::iter::once(&self.output))
            .filter_map(|t| t.resident.as_ref())
            .map(|r| r.bytes() as u64)
            .sum()
    }

    /// Resolve every tensor of `c`'s architecture; the first missing or misshapen one is an error
    /// naming it.
    pub fn resolve(g: &GgufFile, c: &Config) -> Result<Weights, ModelError> {
        let r = Resolver { g };
        let (dim, q_dim, kv_dim, hidden) = (c.dim, c.q_dim(), c.kv_dim(), c.hidden_dim);
        let token_embd = r.matrix("token_embd.weight", c.vocab_size, dim)?;
        let output = if g.tensor("output.weight").is_some() {
            r.matrix("output.weight", c.vocab_size, dim)?
        } else {
            token_embd.clone()
        };
        let output_norm = r.vector("output_norm.weight", dim)?;
        let mut layers = Vec::with_capacity(c.n_layers);
        for l in 0..c.n_layers {
            let n = |s: &str| format!("blk.{l}.{s}.weight");
            let post = |s: &str| -> Result<Option<Vec<f32>>, ModelError> {
                if c.has_post_norms {
                    Ok(Some(r.vector(&n(s), dim)?))
                } else {
                    Ok(None)
                }
            };
            layers.push(Layer {
                attn_norm: r.vector(&n("attn_norm"), dim)?,
                attn_q: r.matrix(&n("attn_q"), q_dim, dim)?,
                attn_k: r.matrix(&n("attn_k"), kv_dim, dim)?,
                attn_v: r.matrix(&n("attn_v"), kv_dim, dim)?,
                attn_output: r.matrix(&n("attn_output"), dim, q_dim)?,
                post_attention_norm: post("post_attention_norm")?,
                ffn_norm: r.vector(&n("ffn_norm"), dim)?,
                ffn_gate: r.matrix(&n("ffn_gate"), hidden, dim)?,
                ffn_up: r.matrix(&n("ffn_up"), hidden, dim)?,
                ffn_down: r.matrix(&n("ffn_down"), dim, hidden)?,
                post_ffw_norm: post("post_ffw_norm")?,
            });
        }
        Ok(Weights {
            token_embd,
            output_norm,
            output,
            layers,
            exit_gate: exit_gate(g, c)?,
        })
    }
}
