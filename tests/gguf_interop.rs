//! Interop with llama.cpp's gguf-py (PyPI `gguf`), both directions, and the ggml type table
//! against gguf-py's GGML_QUANT_SIZES. Python scripts live in tests/py/.

mod gguf_common;

use gguf_common::{bytes, enc, file_json, python_gguf, run_python};
use ouro::gguf::{GgmlType, GgufFile, GgufWriter, Value, ValueType};
use ouro::mmap::Mmap;
use serde_json::Value as Json;

/// Types whose size gguf-py 0.19 gets wrong: it lists Q8_1 with two f32 (40 bytes per block),
/// ggml's `block_q8_1` has two f16 (36). Q8_1 is an activation type, never stored in files.
const GGUF_PY_STALE: &[(GgmlType, usize)] = &[(GgmlType::Q8_1, 40)];

fn read_python_sample(alignment: Option<u32>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("py.gguf");
    let align_arg = alignment.map(|a| a.to_string());
    let mut args = vec![path.as_path()];
    if let Some(a) = &align_arg {
        args.push(std::path::Path::new(a));
    }
    let expected: Json = serde_json::from_str(&run_python("gguf_write_sample.py", &args)).unwrap();

    let map = Mmap::open(&path).unwrap();
    let g = GgufFile::parse(&map).unwrap();
    let ours = file_json(&g);
    for (key, want) in ["version", "alignment"].iter().map(|k| (k, &expected[k])) {
        assert_eq!(&ours[key], want, "{key}");
    }
    let (ours_kv, want_kv) = (
        ours["kv"].as_array().unwrap(),
        expected["kv"].as_array().unwrap(),
    );
    assert_eq!(ours_kv.len(), want_kv.len(), "metadata count");
    for (o, w) in ours_kv.iter().zip(want_kv) {
        assert_eq!(o, w, "metadata entry");
    }
    let (ours_t, want_t) = (
        ours["tensors"].as_array().unwrap(),
        expected["tensors"].as_array().unwrap(),
    );
    assert_eq!(ours_t.len(), want_t.len(), "tensor count");
    for (o, w) in ours_t.iter().zip(want_t) {
        assert_eq!(o, w, "tensor {}", w["name"]);
    }
    for t in &g.tensors {
        assert_eq!(t.offset % g.alignment, 0, "{} aligned", t.name);
    }
}

#[test]
fn we_read_what_gguf_py_writes() {
    if !python_gguf("we_read_what_gguf_py_writes") {
        return;
    }
    read_python_sample(None);
}

#[test]
fn we_read_what_gguf_py_writes_with_custom_alignment() {
    if !python_gguf("we_read_what_gguf_py_writes_with_custom_alignment") {
        return;
    }
    read_python_sample(Some(64));
}

/// Metadata of every type, including empty and nested arrays (which gguf-py cannot write but
/// must read).
fn sample_metadata() -> Vec<(&'static str, Value)> {
    use Value as V;
    vec![
        ("general.architecture", V::String("ouro".into())),
        ("general.alignment", V::U32(64)),
        ("t.u8", V::U8(200)),
        ("t.i8", V::I8(-7)),
        ("t.u16", V::U16(65535)),
        ("t.i16", V::I16(-300)),
        ("t.u32", V::U32(4_000_000_000)),
        ("t.i32", V::I32(i32::MIN)),
        ("t.f32", V::F32(f32::MIN_POSITIVE / 3.0)),
        ("t.bool", V::Bool(true)),
        ("t.string", V::String("ünïcödé \"\n\" 🦀".into())),
        ("t.u64", V::U64(u64::MAX)),
        ("t.i64", V::I64(i64::MIN)),
        ("t.f64", V::F64(-0.0)),
        ("a.u8", V::Array(ValueType::U8, vec![V::U8(0), V::U8(255)])),
        (
            "a.i16",
            V::Array(ValueType::I16, vec![V::I16(-1), V::I16(1)]),
        ),
        (
            "a.f32",
            V::Array(ValueType::F32, vec![V::F32(1.5), V::F32(f32::INFINITY)]),
        ),
        (
            "a.bool",
            V::Array(ValueType::Bool, vec![V::Bool(false), V::Bool(true)]),
        ),
        (
            "a.string",
            V::Array(
                ValueType::String,
                vec![V::String("".into()), V::String("x".into())],
            ),
        ),
        ("a.u64", V::Array(ValueType::U64, vec![V::U64(1 << 40)])),
        ("a.f64", V::Array(ValueType::F64, vec![V::F64(1e-300)])),
        ("a.empty_u32", V::Array(ValueType::U32, vec![])),
        ("a.empty_string", V::Array(ValueType::String, vec![])),
        (
            "a.nested",
            V::Array(
                ValueType::Array,
                vec![
                    V::Array(ValueType::I64, vec![V::I64(-1), V::I64(2)]),
                    V::Array(ValueType::String, vec![V::String("in".into())]),
                    V::Array(ValueType::U8, vec![]),
                ],
            ),
        ),
    ]
}

#[test]
fn gguf_py_reads_what_we_write() {
    if !python_gguf("gguf_py_reads_what_we_write") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.gguf");
    let mut w = GgufWriter::new();
    for (k, v) in sample_metadata() {
        w.add_kv(k, v).unwrap();
    }
    let mut tensors = Vec::new();
    let types = GgmlType::all().filter(|t| GGUF_PY_STALE.iter().all(|s| s.0 != *t));
    for (i, ty) in types.enumerate() {
        let dims = [2 * ty.block_size() as u64, 3];
        let n = 2 * ty.type_size() * 3;
        let name = format!("t.{}", ty.name().to_lowercase());
        w.add_tensor(name.clone(), &dims, ty).unwrap();
        tensors.push((name, dims, ty, bytes(i as u64, n)));
    }
    let mut d = w.begin(&path).unwrap();
    for (name, _, _, data) in &tensors {
        d.write_tensor(name, data).unwrap();
    }
    d.finish().unwrap();

    let py: Json = serde_json::from_str(&run_python("gguf_dump.py", &[&path])).unwrap();
    assert_eq!(py["version"], 3);
    assert_eq!(py["alignment"], 64);
    let kv = py["kv"].as_array().unwrap();
    let meta = sample_metadata();
    assert_eq!(kv.len(), meta.len());
    for (got, (k, v)) in kv.iter().zip(&meta) {
        assert_eq!(got[0], *k);
        assert_eq!(got[1], enc(v), "{k}");
    }
    let pt = py["tensors"].as_array().unwrap();
    assert_eq!(pt.len(), tensors.len());
    for (got, (name, dims, ty, data)) in pt.iter().zip(&tensors) {
        assert_eq!(got["name"], *name);
        assert_eq!(got["dims"], serde_json::json!(dims), "{name}");
        assert_eq!(got["type"], ty.id(), "{name}");
        assert_eq!(got["n_bytes"], data.len(), "{name}");
        assert_eq!(got["data"], gguf_common::hex(data), "{name}");
    }
}

#[test]
fn ggml_type_table_matches_gguf_py() {
    if !python_gguf("ggml_type_table_matches_gguf_py") {
        return;
    }
    let script = "import json\nfrom gguf import GGML_QUANT_SIZES\n\
        print(json.dumps([[int(t), t.name, b, s] for t, (b, s) in GGML_QUANT_SIZES.items()]))";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py: Vec<(u32, String, usize, usize)> = serde_json::from_slice(&out.stdout).unwrap();
    for (id, name, block, size) in &py {
        let ty = GgmlType::from_id(*id)
            .unwrap_or_else(|| panic!("gguf-py knows type {id} ({name}); GgmlType does not"));
        assert_eq!(ty.name(), name, "id {id}");
        assert_eq!(ty.block_size(), *block, "{name} block size");
        match GGUF_PY_STALE.iter().find(|s| s.0 == ty) {
            Some(&(_, stale)) => assert_eq!(*size, stale, "{name}: gguf-py's size changed"),
            None => assert_eq!(ty.type_size(), *size, "{name} type size"),
        }
    }
    let ours: Vec<u32> = GgmlType::all().map(GgmlType::id).collect();
    let theirs: Vec<u32> = py.iter().map(|e| e.0).collect();
    for id in &ours {
        assert!(
            theirs.contains(id),
            "GgmlType id {id} is unknown to gguf-py"
        );
    }
}
