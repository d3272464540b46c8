//! K-quant quantizers (Q4_K, Q5_K, Q6_K) against ggml: exact bytes on committed golden blocks
//! recorded from ggml's `ggml_quantize_chunk` (scripts/record-kquant-golden.sh), value-exact
//! dequantization by gguf-py, and round-trip error bounds through our scalar dequantizer.
//! `OURO_KQUANT_DRIVER=path/to/kquant-driver` adds a large randomized comparison against ggml.

mod common;

use ouro_simd::quantize_k::{quantize_row_q4_K, quantize_row_q5_K, quantize_row_q6_K};
use ouro_simd::GgmlType;
use std::path::{Path, PathBuf};
use std::process::Command;

const COLS: usize = 512;

type Quantize = fn(&[f32], &mut [u8]);

const TYPES: [(GgmlType, &str, Quantize); 3] = [
    (GgmlType::Q4_K, "q4_K", quantize_row_q4_K),
    (GgmlType::Q5_K, "q5_K", quantize_row_q5_K),
    (GgmlType::Q6_K, "q6_K", quantize_row_q6_K),
];

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Quantizes `x` (rows of `cols`) row by row, as the converter does.
fn quantize_rows(ty: GgmlType, q: Quantize, x: &[f32], cols: usize) -> Vec<u8> {
    let row_bytes = ty.row_bytes(cols as u64).unwrap() as usize;
    let mut out = vec![0u8; x.len() / cols * row_bytes];
    for (src, dst) in x.chunks_exact(cols).zip(out.chunks_exact_mut(row_bytes)) {
        q(src, dst);
    }
    out
}

/// Asserts equality, naming the first differing block.
fn assert_same_blocks(ty: GgmlType, ours: &[u8], theirs: &[u8], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{ty} {what}: length");
    let bs = ty.type_size();
    if let Some(i) = (0..ours.len() / bs).find(|&i| ours[i * bs..][..bs] != theirs[i * bs..][..bs])
    {
        panic!(
            "{ty} {what}: block {i} (row {}) differs from ggml\n ours:  {:?}\n ggml: {:?}",
            i * ty.block_size() / COLS,
            &ours[i * bs..][..bs],
            &theirs[i * bs..][..bs]
        );
    }
}

#[test]
fn kquant_bytes_match_ggml_golden() {
    let x = read_f32(&golden("kquant-input.f32"));
    assert_eq!(x.len(), 16 * COLS);
    for (ty, name, q) in TYPES {
        let theirs = std::fs::read(golden(&format!("kquant-{name}.bin"))).unwrap();
        assert_same_blocks(ty, &quantize_rows(ty, q, &x, COLS), &theirs, "golden");
    }
}

/// Relative RMS error of the round trip through our scalar dequantizer, on the golden input's
/// Gaussian-like rows (0–3, 11, 14, 15). Bounds are ~1.5× what ggml's quantizers reach there.
#[test]
fn kquant_round_trip_error_bounds() {
    let x = read_f32(&golden("kquant-input.f32"));
    let bounds = [
        (GgmlType::Q4_K, 0.12),
        (GgmlType::Q5_K, 0.06),
        (GgmlType::Q6_K, 0.03),
    ];
    for ((ty, _, q), (bty, bound)) in TYPES.into_iter().zip(bounds) {
        assert_eq!(ty, bty);
        for r in [0, 1, 2, 3, 11, 14, 15] {
            let row = &x[r * COLS..(r + 1) * COLS];
            let bytes = quantize_rows(ty, q, row, COLS);
            let mut back = vec![0f32; COLS];
            ouro_simd::dequantize_row(ty, &bytes, &mut back);
            let err: f64 = row
                .iter()
                .zip(&back)
                .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                .sum();
            let norm: f64 = row.iter().map(|&a| (a as f64).powi(2)).sum();
            let rel = (err / norm).sqrt();
            assert!(
                rel < bound,
                "{ty} row {r}: relative RMS error {rel:.4} ≥ {bound}"
            );
        }
        // Zero and constant rows come back exactly.
        for r in [6, 8] {
            let row = &x[r * COLS..(r + 1) * COLS];
            let mut back = vec![0f32; COLS];
            ouro_simd::dequantize_row(ty, &quantize_rows(ty, q, row, COLS), &mut back);
            let worst = row
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst <= 2e-3, "{ty} row {r}: max error {worst}");
        }
    }
}

/// gguf-py dequantizes our blocks to exactly the values our scalar dequantizer gives.
#[test]
fn gguf_py_dequantizes_our_kquant_bytes() {
    if !common::python_has_gguf() {
        return;
    }
    let x = read_f32(&golden("kquant-input.f32"));
    let dir = tempfile::tempdir().unwrap();
    for (ty, name, q) in TYPES {
        let bytes = quantize_rows(ty, q, &x, COLS);
        let mut ours = vec![0f32; x.len()];
        for (src, dst) in bytes
            .chunks_exact(ty.row_bytes(COLS as u64).unwrap() as usize)
            .zip(ours.chunks_exact_mut(COLS))
        {
            ouro_simd::dequantize_row(ty, src, dst);
        }
        let qpath = dir.path().join(format!("{name}.bin"));
        let dpath = dir.path().join(format!("{name}.f32"));
        std::fs::write(&qpath, &bytes).unwrap();
        let script = "import sys, numpy as np, gguf\n\
            from gguf.quants import dequantize\n\
            t = getattr(gguf.GGMLQuantizationType, sys.argv[1])\n\
            q = np.fromfile(sys.argv[2], dtype=np.uint8).reshape(-1, int(sys.argv[4]))\n\
            dequantize(q, t).astype('<f4').tofile(sys.argv[3])\n";
        let row_bytes = ty.row_bytes(COLS as u64).unwrap().to_string();
        let out = Command::new("python3")
            .args(["-c", script, &name.to_ascii_uppercase()])
            .arg(&qpath)
            .arg(&dpath)
            .arg(&row_bytes)
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "gguf-py dequantize {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = read_f32(&dpath);
        assert_eq!(theirs.len(), ours.len());
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!(
                a.to_bits() == b.to_bits() || (a - b).abs() <= 1e-6 * a.abs().max(1e-30),
                "{ty} element {i}: ours {a}, gguf-py {b}"
            );
        }
    }
}

/// With `OURO_KQUANT_DRIVER` (scripts/record-kquant-golden.sh builds it): 2048 more rows of
/// varied data, quantized by ggml itself, must match byte for byte.
#[test]
fn kquant_bytes_match_ggml_driver_when_available() {
    let Some(driver) = std::env::var_os("OURO_KQUANT_DRIVER") else {
        eprintln!("skipping: OURO_KQUANT_DRIVER not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.f32");
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/kquant_input.py");
    let status = Command::new("python3")
        .arg(&gen)
        .arg(&input)
        .args(["2048", &COLS.to_string(), "7"])
        .status()
        .expect("run python3");
    assert!(status.success());
    let x = read_f32(&input);
    for (ty, name, q) in TYPES {
        let out = dir.path().join(format!("{name}.bin"));
        let status = Command::new(&driver)
            .arg(ty.id().to_string())
            .arg(COLS.to_string())
            .arg(&input)
            .arg(&out)
            .status()
            .expect("run the kquant driver");
        assert!(status.success());
        let theirs = std::fs::read(&out).unwrap();
        assert_same_blocks(ty, &quantize_rows(ty, q, &x, COLS), &theirs, "driver");
    }
}

/// `hf2gguf --type q4_k_m` of the tiny Ouro fixture equals `quantize --type q4_k_m` of its f32
/// conversion tensor for tensor (the two commands share the plan and the quantizers), the plan
/// follows llama-quantize's fallbacks for 64-wide rows, and `general.file_type` is 15.
#[test]
fn hf2gguf_and_quantize_agree_on_q4_k_m() {
    let dir = tempfile::tempdir().unwrap();
    let src = common::fixture("ouro-tiny-a");
    let (f32_path, direct, requant) = (
        dir.path().join("f32.gguf"),
        dir.path().join("direct.gguf"),
        dir.path().join("requant.gguf"),
    );
    common::hf2gguf(&src, &f32_path, "f32");
    common::hf2gguf(&src, &direct, "q4_k_m");
    common::run_ok(&[
        "quantize",
        f32_path.to_str().unwrap(),
        requant.to_str().unwrap(),
        "--type",
        "q4_k_m",
    ]);
    let (a, b) = (common::Gguf::open(&direct), common::Gguf::open(&requant));
    let (a, b) = (a.file(), b.file());
    assert_eq!(a.tensors.len(), b.tensors.len());
    for t in &a.tensors {
        let u = b.tensor(&t.name).unwrap();
        assert_eq!((t.ty, &t.dims), (u.ty, &u.dims), "{}", t.name);
        assert!(
            a.tensor_data(t) == b.tensor_data(u),
            "{}: bytes differ",
            t.name
        );
        // Rows of 64 / 128: Q4_K → Q5_0, Q6_K → Q8_0. attn_v counts 2 layers (use_more_bits
        // picks layer 1: 7·2/8 = 1); ffn_down counts 2 × 4 loops = 8 (picks layer 0: 0 < 8/8).
        let expected = match t.name.as_str() {
            n if t.dims.len() < 2 || n.ends_with("norm.weight") => GgmlType::F32,
            "output.weight" | "blk.1.attn_v.weight" | "blk.0.ffn_down.weight" => GgmlType::Q8_0,
            _ => GgmlType::Q5_0,
        };
        assert_eq!(t.ty, expected, "{}", t.name);
    }
    assert_eq!(
        common::get(&a, "general.file_type").as_u64(),
        Some(15),
        "LLAMA_FTYPE_MOSTLY_Q4_K_M"
    );
    let plan = common::run_ok(&[
        "hf2gguf",
        src.to_str().unwrap(),
        "--type",
        "q4_k_m",
        "--dry-run",
    ]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("output.weight") && l.contains("Q8_0")),
        "{text}"
    );
}
