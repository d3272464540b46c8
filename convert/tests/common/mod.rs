//! Helpers shared by the converter's integration tests: run the binary, copy fixtures, read
//! safetensors sources and GGUF outputs, and the gguf-py oracle.
#![allow(dead_code)]

use ouro::gguf::{GgufFile, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_ouro-convert");

/// `OURO_FIXTURES/NAME`, default `../shared/fixtures/NAME` beside the repository.
pub fn fixture(name: &str) -> PathBuf {
    let root = std::env::var_os("OURO_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    root.join(name)
        .canonicalize()
        .unwrap_or_else(|e| panic!("fixture {name} not found under {}: {e}", root.display()))
}

/// Copies the checkpoint files of a fixture (not `expected/`) into `dst` (fixtures are read-only).
pub fn copy_fixture(name: &str, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            let to = dst.join(entry.file_name());
            std::fs::copy(entry.path(), &to).unwrap();
            let mut perm = std::fs::metadata(&to).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&to, perm).unwrap();
        }
    }
}

pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run ouro-convert")
}

/// Runs and asserts success.
pub fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "ouro-convert {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn hf2gguf(dir: &Path, out: &Path, ty: &str) {
    run_ok(&[
        "hf2gguf",
        dir.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--type",
        ty,
    ]);
}

/// A source tensor: HF shape and f32 values.
pub struct SrcTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Every tensor of a checkpoint (single file or shards), decoded to f32.
pub fn read_checkpoint(dir: &Path) -> BTreeMap<String, SrcTensor> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    let mut all = BTreeMap::new();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for (name, view) in st.tensors() {
            let raw = view.data();
            let data: Vec<f32> = match view.dtype() {
                safetensors::Dtype::BF16 => raw
                    .chunks_exact(2)
                    .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                    .collect(),
                safetensors::Dtype::F32 => raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                other => panic!("unexpected dtype {other:?}"),
            };
            all.insert(
                name,
                SrcTensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
    }
    all
}

pub fn config(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap()
}

pub fn cfg_usize(cfg: &serde_json::Value, key: &str) -> usize {
    cfg[key].as_u64().unwrap_or_else(|| panic!("config {key}")) as usize
}

/// A parsed GGUF that owns its bytes.
pub struct Gguf {
    pub bytes: Vec<u8>,
}

impl Gguf {
    pub fn open(path: &Path) -> Gguf {
        Gguf {
            bytes: std::fs::read(path).unwrap(),
        }
    }

    pub fn file(&self) -> GgufFile<'_> {
        GgufFile::parse(&self.bytes).expect("our reader parses the file")
    }
}

pub fn get<'a>(g: &'a GgufFile, key: &str) -> &'a Value {
    g.get(key).unwrap_or_else(|| panic!("missing key {key}"))
}

/// The gguf-py oracle: `tests/py/check_gguf.py GGUF HF_DIR TYPE`. Returns false when Python or
/// gguf-py is missing locally (the caller prints why); panics on a failed check, and when the
/// oracle is missing on CI (CI=true).
pub fn gguf_py_check(gguf: &Path, hf_dir: &Path, ty: &str) -> bool {
    if !python_has_gguf() {
        return false;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/check_gguf.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(gguf)
        .arg(hf_dir)
        .arg(ty)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "gguf-py check of {} ({ty}) failed:\n{}\n{}",
        gguf.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

pub fn python_has_gguf() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import gguf, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("python3 with the `gguf` and `numpy` packages is required on CI");
        }
        eprintln!("skipping the gguf-py checks: python3 with `gguf` and `numpy` not found");
    }
    ok
}

/// llama.cpp's `permute` for one row index: output row `h*hd + 2i + j` takes source row
/// `h*hd + j*hd/2 + i` (reshape(n_head, 2, hd/2, cols).swapaxes(1, 2)).
pub fn unpermute_rows(data: &[f32], rows: usize, cols: usize, n_head: usize) -> Vec<f32> {
    let hd = rows / n_head;
    let mut out = vec![0f32; data.len()];
    for h in 0..n_head {
        for i in 0..hd / 2 {
            for j in 0..2 {
                let file_row = h * hd + 2 * i + j;
                let hf_row = h * hd + j * (hd / 2) + i;
                out[hf_row * cols..(hf_row + 1) * cols]
                    .copy_from_slice(&data[file_row * cols..(file_row + 1) * cols]);
            }
        }
    }
    out
}

/// Files left in a directory (to check that a failed run left nothing behind).
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
