//! Helpers shared by the integration tests: a seeded generator and the gguf-py oracle.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// SplitMix64: small, seeded, portable.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Roughly normal (sum of uniforms), scaled.
    pub fn normal(&mut self, scale: f32) -> f32 {
        (self.unit() + self.unit() + self.unit()) * scale
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// A random finite f16 bit pattern (exponent not all ones).
    pub fn finite_f16(&mut self) -> [u8; 2] {
        loop {
            let b = self.next_u64() as u16;
            if b & 0x7C00 != 0x7C00 {
                return b.to_le_bytes();
            }
        }
    }

    /// A random finite f16 bit pattern of magnitude at most 2^(max_exp - 15) · 2.
    pub fn f16_with_max_exp(&mut self, max_exp: u16) -> [u8; 2] {
        loop {
            let b = self.next_u64() as u16;
            if (b >> 10) & 0x1F <= max_exp {
                return b.to_le_bytes();
            }
        }
    }
}

/// Whether python3 with gguf + numpy is usable. Locally a missing oracle skips the test
/// (printing why); with CI=true it fails.
pub fn have_gguf_py(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import gguf, numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let msg = format!("{test}: python3 with the `gguf` and `numpy` packages is not available");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg} (required when CI=true)");
        }
        eprintln!("skipping {msg}");
    }
    ok
}

pub fn oracle_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/oracle.py")
}

/// Run the oracle script with `args`; panics with its stderr on failure. Returns stdout.
pub fn oracle(args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(oracle_script())
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "oracle {:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn f32_bytes(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn f32_from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Byte offsets of the f16 fields in one block of `ty` (scales that must be finite).
pub fn f16_fields(ty: ouro_simd::GgmlType) -> &'static [usize] {
    use ouro_simd::GgmlType::*;
    match ty {
        Q4_0 | Q5_0 | Q8_0 => &[0],
        Q4_1 | Q5_1 | Q8_1 | Q4_K | Q5_K => &[0, 2],
        Q6_K => &[208],
        _ => &[],
    }
}

/// `n_blocks` valid blocks of `ty` made of random bytes, with every f16 scale finite and of
/// binary exponent at most `max_exp - 15` (31 would allow infinities; 30 is the f16 maximum).
pub fn random_blocks(
    rng: &mut Rng,
    ty: ouro_simd::GgmlType,
    n_blocks: usize,
    max_exp: u16,
) -> Vec<u8> {
    use ouro_simd::GgmlType::*;
    let size = ty.type_size();
    let mut b = rng.bytes(n_blocks * size);
    match ty {
        F32 => {
            for c in b.chunks_exact_mut(4) {
                c.copy_from_slice(&rng.normal(1.0).to_le_bytes());
            }
        }
        F16 => {
            for c in b.chunks_exact_mut(2) {
                c.copy_from_slice(&rng.f16_with_max_exp(max_exp.min(30)));
            }
        }
        BF16 => {
            for c in b.chunks_exact_mut(2) {
                // exponent field at most 127 + (max_exp - 15): finite and bounded
                let v = loop {
                    let v = rng.next_u64() as u16;
                    if ((v >> 7) & 0xFF) <= 112 + max_exp.min(30) {
                        break v;
                    }
                };
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        _ => {
            for blk in b.chunks_exact_mut(size) {
                for &o in f16_fields(ty) {
                    blk[o..o + 2].copy_from_slice(&rng.f16_with_max_exp(max_exp.min(30)));
                }
            }
        }
    }
    b
}

pub fn dequantize(ty: ouro_simd::GgmlType, b: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    ouro_simd::dequantize_row(ty, b, &mut out);
    out
}

/// The error scale of a dot product: Σ|a_i|·(|w_i| + |w'_i|), w' = the weight without its
/// min term (which bounds the two parts a K-quant / Q4_1 / Q5_1 dot subtracts).
pub fn error_scale(
    ty: ouro_simd::GgmlType,
    w: &[u8],
    a_type: ouro_simd::GgmlType,
    a: &[u8],
    n: usize,
) -> f64 {
    let wv = dequantize(ty, w, n);
    let av = dequantize(a_type, a, n);
    let mut w_nomin = w.to_vec();
    if matches!(
        ty,
        ouro_simd::GgmlType::Q4_1
            | ouro_simd::GgmlType::Q5_1
            | ouro_simd::GgmlType::Q4_K
            | ouro_simd::GgmlType::Q5_K
    ) {
        for blk in w_nomin.chunks_exact_mut(ty.type_size()) {
            blk[2..4].copy_from_slice(&[0, 0]);
        }
    }
    let wn = dequantize(ty, &w_nomin, n);
    (0..n)
        .map(|i| (av[i].abs() as f64) * (wv[i].abs() as f64 + wn[i].abs() as f64))
        .sum()
}

/// Every kernel path this CPU runs, slowest (scalar) first, with its table.
pub fn paths() -> Vec<(ouro_simd::Path, ouro_simd::Kernels)> {
    let avail = ouro_simd::Path::available();
    assert_eq!(avail[0], ouro_simd::Path::Scalar);
    avail
        .into_iter()
        .map(|p| (p, p.kernels().expect("available path builds")))
        .collect()
}

/// `x` quantized to `ty` with the activation quantizer of table `k`.
pub fn quantize(k: &ouro_simd::Kernels, ty: ouro_simd::GgmlType, x: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; ty.row_bytes(x.len() as u64).unwrap() as usize];
    (k.quantize_activation(ty).unwrap())(x, &mut out);
    out
}

/// Activation rows: random, constant, alternating ±1e3, one spike among small values.
pub fn activations(rng: &mut Rng, n: usize) -> Vec<Vec<f32>> {
    vec![
        (0..n).map(|_| rng.normal(1.0)).collect(),
        vec![3.5; n],
        (0..n)
            .map(|i| if i % 2 == 0 { 1e3 } else { -1e3 })
            .collect(),
        (0..n)
            .map(|i| {
                if i == n / 2 {
                    5e4
                } else {
                    1e-3 * (i % 7) as f32
                }
            })
            .collect(),
    ]
}
