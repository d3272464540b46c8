//! Writer → reader round trips: every metadata value type (nested and empty arrays included),
//! tensors of every ggml type, alignment, atomic replacement, writer state errors.

mod gguf_common;

use std::path::Path;

use gguf_common::{bytes, enc};
use ouro::gguf::{
    GgmlType, GgufError, GgufFile, GgufWriter, ShapeError, Value, ValueType, MAX_ARRAY_DEPTH,
    MAX_NAME_LEN,
};
use ouro::mmap::Mmap;
use proptest::prelude::*;

fn every_value() -> Vec<(String, Value)> {
    use Value as V;
    let scalars = vec![
        V::U8(0),
        V::U8(u8::MAX),
        V::I8(i8::MIN),
        V::U16(u16::MAX),
        V::I16(i16::MIN),
        V::U32(u32::MAX),
        V::I32(-1),
        V::F32(f32::from_bits(0x7fc0_1234)), // NaN with a payload: compared by bits
        V::F32(-0.0),
        V::F32(f32::from_bits(1)),
        V::Bool(true),
        V::Bool(false),
        V::String(String::new()),
        V::String("tokens \u{0}\n\"ünï\" 🦀".into()),
        V::U64(u64::MAX),
        V::I64(i64::MIN),
        V::F64(f64::NEG_INFINITY),
        V::F64(std::f64::consts::E),
    ];
    let mut kv: Vec<(String, Value)> = scalars
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("scalar.{i}.{}", v.value_type()), v.clone()))
        .collect();
    for ty in ValueType::ALL {
        let items: Vec<Value> = scalars
            .iter()
            .filter(|v| v.value_type() == ty)
            .cloned()
            .collect();
        if ty != ValueType::Array {
            kv.push((format!("array.{ty}"), V::Array(ty, items)));
        }
        kv.push((format!("empty.{ty}"), V::Array(ty, vec![])));
    }
    kv.push((
        "nested.mixed".into(),
        V::Array(
            ValueType::Array,
            vec![
                V::Array(ValueType::U32, vec![V::U32(1), V::U32(2)]),
                V::Array(ValueType::String, vec![V::String("a".into())]),
                V::Array(ValueType::F64, vec![]),
                V::Array(
                    ValueType::Array,
                    vec![V::Array(ValueType::Bool, vec![V::Bool(true)])],
                ),
            ],
        ),
    ));
    let mut deepest = V::Array(ValueType::I8, vec![V::I8(5)]);
    for _ in 1..MAX_ARRAY_DEPTH {
        deepest = V::Array(ValueType::Array, vec![deepest]);
    }
    kv.push(("nested.deepest_allowed".into(), deepest));
    kv
}

fn parse_file<R>(path: &Path, check: impl FnOnce(&GgufFile<'_>, &[u8]) -> R) -> R {
    let map = Mmap::open(path).unwrap();
    let g = GgufFile::parse(&map).unwrap();
    check(&g, &map)
}

#[test]
fn every_value_type_and_tensor_type_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.gguf");
    let kv = every_value();
    let mut w = GgufWriter::new();
    for (k, v) in &kv {
        w.add_kv(k.clone(), v.clone()).unwrap();
    }
    // Every type the writer accepts, with 1 to 4 dims.
    let mut tensors = Vec::new();
    for (i, ty) in GgmlType::all().enumerate() {
        let bs = ty.block_size() as u64;
        let dims: Vec<u64> = [3 * bs, 2, 1, 2][..1 + i % 4].to_vec();
        let n_bytes = 3 * ty.type_size() * dims[1..].iter().product::<u64>() as usize;
        let name = format!("blk.{i}.{}", ty.name());
        w.add_tensor(name.clone(), &dims, ty).unwrap();
        tensors.push((name, dims, ty, bytes(i as u64 + 1, n_bytes)));
    }
    let mut d = w.begin(&path).unwrap();
    for (name, _, _, data) in &tensors {
        d.write_tensor(name, data).unwrap();
    }
    d.finish().unwrap();

    parse_file(&path, |g, map| {
        assert_eq!(g.version, 3);
        assert_eq!(g.alignment, 32);
        assert_eq!(g.data_start % 32, 0);
        assert_eq!(g.metadata.len(), kv.len());
        for ((k, v), (rk, rv)) in kv.iter().zip(&g.metadata) {
            assert_eq!(k, rk);
            assert_eq!(enc(v), enc(rv), "{k}");
            assert_eq!(enc(g.get(k).unwrap()), enc(v), "get({k})");
        }
        assert_eq!(g.tensors.len(), tensors.len());
        let mut end = 0;
        for ((name, dims, ty, data), t) in tensors.iter().zip(&g.tensors) {
            assert_eq!(&t.name, name);
            assert_eq!(&t.dims, dims, "{name}");
            assert_eq!(t.ty, *ty, "{name}");
            assert_eq!(t.n_bytes, data.len() as u64, "{name}");
            assert_eq!(t.n_elements(), dims.iter().product::<u64>(), "{name}");
            assert_eq!(t.offset % 32, 0, "{name} aligned");
            assert!(t.offset >= end, "{name} overlaps the previous tensor");
            end = t.offset + t.n_bytes;
            let got = g.tensor_data(t);
            assert_eq!(got, &data[..], "{name} data");
            // Zero-copy: the slice points into the map at data_start + offset.
            let at = got.as_ptr() as usize - map.as_ptr() as usize;
            assert_eq!(
                at as u64,
                g.data_start + t.offset,
                "{name} borrowed from the map"
            );
            assert_eq!(g.tensor(name), Some(t));
        }
        // Padding after the last tensor too, and nothing else.
        assert_eq!(map.len() as u64, g.data_start + end.next_multiple_of(32));
        assert!(map[(g.data_start + end) as usize..].iter().all(|&b| b == 0));
        assert_eq!(g.architecture(), None);
        assert_eq!(g.tensor("missing"), None);
    });
}

#[test]
fn custom_alignment_places_every_tensor() {
    for alignment in [1u32, 8, 64, 4096] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.gguf");
        let mut w = GgufWriter::new();
        w.add_kv("general.architecture", Value::String("llama".into()))
            .unwrap();
        w.add_kv("general.alignment", Value::U32(alignment))
            .unwrap();
        let shapes: [(&str, &[u64], GgmlType); 3] = [
            ("a", &[3], GgmlType::F32),
            ("b", &[32, 3], GgmlType::Q4_0),
            ("c", &[5, 1, 1], GgmlType::I8),
        ];
        for (n, dims, ty) in shapes {
            w.add_tensor(n, dims, ty).unwrap();
        }
        let mut d = w.begin(&path).unwrap();
        let data = [bytes(1, 12), bytes(2, 54), bytes(3, 5)];
        for ((n, _, _), data) in shapes.iter().zip(&data) {
            d.write_tensor(n, data).unwrap();
        }
        d.finish().unwrap();
        parse_file(&path, |g, map| {
            let a = u64::from(alignment);
            assert_eq!(g.alignment, a);
            assert_eq!(g.architecture(), Some("llama"));
            assert_eq!(g.data_start % a, 0);
            let mut next = 0;
            for (t, data) in g.tensors.iter().zip(&data) {
                assert_eq!(t.offset, next, "{} at the next aligned offset", t.name);
                assert_eq!(g.tensor_data(t), &data[..]);
                next = (t.offset + t.n_bytes).next_multiple_of(a);
            }
            assert_eq!(map.len() as u64, g.data_start + next);
        });
    }
}

#[test]
fn version_2_files_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.gguf");
    let mut w = GgufWriter::new();
    w.add_kv("k", Value::Array(ValueType::U16, vec![Value::U16(7)]))
        .unwrap();
    w.add_tensor("t", &[4, 2], GgmlType::F16).unwrap();
    let mut d = w.begin(&path).unwrap();
    d.write_tensor("t", &bytes(9, 16)).unwrap();
    d.finish().unwrap();
    let mut v2 = std::fs::read(&path).unwrap();
    v2[4..8].copy_from_slice(&2u32.to_le_bytes());
    let g2 = GgufFile::parse(&v2).unwrap();
    parse_file(&path, |g3, _| {
        assert_eq!(g3.version, 3);
        assert_eq!(g2.version, 2);
        assert_eq!(g2.metadata, g3.metadata);
        assert_eq!(g2.tensors, g3.tensors);
        assert_eq!(g2.tensor_data(&g2.tensors[0]), &bytes(9, 16)[..]);
    });
}

#[test]
fn writer_rejects_bad_metadata_and_shapes() {
    let mut w = GgufWriter::new();
    w.add_kv("k", Value::U8(1)).unwrap();
    assert!(matches!(
        w.add_kv("k", Value::U8(2)),
        Err(GgufError::DuplicateKeyAdded { key }) if key == "k"
    ));
    let mixed = Value::Array(ValueType::U32, vec![Value::U32(1), Value::I32(2)]);
    assert!(matches!(
        w.add_kv("mixed", mixed),
        Err(GgufError::MixedArray {
            expected: ValueType::U32,
            found: ValueType::I32,
            ..
        })
    ));
    let nested_mixed = Value::Array(
        ValueType::Array,
        vec![Value::Array(ValueType::U8, vec![Value::Bool(true)])],
    );
    assert!(matches!(
        w.add_kv("nested", nested_mixed),
        Err(GgufError::MixedArray {
            found: ValueType::Bool,
            ..
        })
    ));
    for bad in [
        Value::U32(0),
        Value::U32(48),
        Value::U64(32),
        Value::String("32".into()),
    ] {
        assert!(
            matches!(
                w.add_kv("general.alignment", bad.clone()),
                Err(GgufError::BadAlignmentValue { .. })
            ),
            "{bad:?}"
        );
    }

    let mut too_deep = Value::Array(ValueType::U8, vec![]);
    for _ in 0..MAX_ARRAY_DEPTH {
        too_deep = Value::Array(ValueType::Array, vec![too_deep]);
    }
    assert!(matches!(
        w.add_kv("deep", too_deep),
        Err(GgufError::NestingTooDeepAdded { .. })
    ));

    w.add_tensor("t", &[32], GgmlType::Q8_0).unwrap();
    w.add_tensor("n".repeat(MAX_NAME_LEN), &[1], GgmlType::F32)
        .unwrap();
    assert!(matches!(
        w.add_tensor("n".repeat(MAX_NAME_LEN + 1), &[1], GgmlType::F32),
        Err(GgufError::TensorNameTooLong { len: 64, .. })
    ));
    assert!(matches!(
        w.add_tensor("t", &[32], GgmlType::Q8_0),
        Err(GgufError::DuplicateTensorAdded { .. })
    ));
    let cases: [(&[u64], GgmlType, ShapeError); 5] = [
        (&[1, 1, 1, 1, 1], GgmlType::F32, ShapeError::TooManyDims(5)),
        (&[], GgmlType::F32, ShapeError::NoDims),
        (&[4, 0], GgmlType::F32, ShapeError::ZeroDim { axis: 1 }),
        (
            &[48],
            GgmlType::Q4_K,
            ShapeError::NotWholeBlocks {
                ne0: 48,
                ty: GgmlType::Q4_K,
                block_size: 256,
            },
        ),
        (
            &[1 << 32, 1 << 32, 1 << 32],
            GgmlType::F32,
            ShapeError::Overflow,
        ),
    ];
    for (dims, ty, want) in cases {
        match w.add_tensor("x", dims, ty) {
            Err(GgufError::BadTensor { source, .. }) => assert_eq!(source, want, "{dims:?}"),
            other => panic!("{dims:?}: expected BadTensor, got {other:?}"),
        }
    }
    // Sizes whose padded sum overflows fail at begin, before any file is created.
    let dir = tempfile::tempdir().unwrap();
    let mut w = GgufWriter::new();
    for name in ["a", "b", "c", "d"] {
        w.add_tensor(name, &[1 << 62], GgmlType::I8).unwrap();
    }
    assert!(w.begin(&dir.path().join("big.gguf")).is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

fn two_tensor_writer() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.add_tensor("first", &[4], GgmlType::F32).unwrap();
    w.add_tensor("second", &[32], GgmlType::Q8_0).unwrap();
    w
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn data_writer_enforces_order_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    let mut d = two_tensor_writer().begin(&path).unwrap();
    assert!(matches!(
        d.write_tensor("second", &[0; 34]),
        Err(GgufError::TensorOrder { .. })
    ));
    assert!(matches!(
        d.write_tensor("first", &[0; 15]),
        Err(GgufError::TensorSize {
            expected: 16,
            found: 15,
            ..
        })
    ));
    d.write_tensor("first", &[1; 16]).unwrap();
    d.write_tensor("second", &[2; 34]).unwrap();
    assert!(matches!(
        d.write_tensor("third", &[0; 4]),
        Err(GgufError::TensorOrder { .. })
    ));
    d.finish().unwrap();
    assert_eq!(dir_entries(dir.path()), ["m.gguf"]);
}

#[test]
fn unfinished_writer_leaves_the_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, b"old contents").unwrap();

    // Dropped mid-way: no temp file left, old file intact.
    let mut d = two_tensor_writer().begin(&path).unwrap();
    assert_eq!(
        dir_entries(dir.path()).len(),
        2,
        "temp file beside the target"
    );
    d.write_tensor("first", &[1; 16]).unwrap();
    drop(d);
    assert_eq!(dir_entries(dir.path()), ["m.gguf"]);
    assert_eq!(std::fs::read(&path).unwrap(), b"old contents");

    // finish() with a tensor missing: an error, and the same clean state.
    let mut d = two_tensor_writer().begin(&path).unwrap();
    d.write_tensor("first", &[1; 16]).unwrap();
    match d.finish() {
        Err(GgufError::MissingTensors {
            written: 1,
            declared: 2,
            next,
        }) => assert_eq!(next, "second"),
        other => panic!("expected MissingTensors, got {other:?}"),
    }
    assert_eq!(dir_entries(dir.path()), ["m.gguf"]);
    assert_eq!(std::fs::read(&path).unwrap(), b"old contents");

    // A complete write replaces the file atomically.
    let mut d = two_tensor_writer().begin(&path).unwrap();
    d.write_tensor("first", &[1; 16]).unwrap();
    d.write_tensor("second", &[2; 34]).unwrap();
    d.finish().unwrap();
    assert_eq!(dir_entries(dir.path()), ["m.gguf"]);
    parse_file(&path, |g, _| assert_eq!(g.tensors.len(), 2));
}

#[test]
fn begin_into_a_missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/m.gguf");
    assert!(matches!(
        GgufWriter::new().begin(&path),
        Err(GgufError::Io { .. })
    ));
}

#[test]
fn empty_file_maps_and_fails_to_parse() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.gguf");
    std::fs::write(&path, b"").unwrap();
    let map = Mmap::open(&path).unwrap();
    assert!(map.as_bytes().is_empty());
    assert!(matches!(
        GgufFile::parse(&map),
        Err(GgufError::Truncated { offset: 0, .. })
    ));
}

#[test]
fn value_accessors_convert_only_what_fits() {
    use Value as V;
    assert_eq!(V::U8(7).as_u64(), Some(7));
    assert_eq!(V::I32(7).as_u64(), Some(7));
    assert_eq!(V::I32(-7).as_u64(), None);
    assert_eq!(V::U64(u64::MAX).as_u64(), Some(u64::MAX));
    assert_eq!(V::U64(u64::MAX).as_i64(), None);
    assert_eq!(V::I8(-3).as_i64(), Some(-3));
    assert_eq!(V::F32(1.0).as_u64(), None);
    assert_eq!(V::F32(0.5).as_f64(), Some(0.5));
    assert_eq!(V::F64(0.25).as_f32(), Some(0.25));
    assert_eq!(V::U32(1).as_f32(), None);
    assert_eq!(V::Bool(true).as_bool(), Some(true));
    assert_eq!(V::U8(1).as_bool(), None);
    assert_eq!(V::String("s".into()).as_str(), Some("s"));
    let arr = V::Array(ValueType::U8, vec![V::U8(1)]);
    assert_eq!(arr.as_array(), Some(&[V::U8(1)][..]));
    assert_eq!(arr.value_type(), ValueType::Array);
    for ty in ValueType::ALL {
        assert_eq!(ValueType::from_id(ty.id()), Some(ty));
    }
    assert_eq!(ValueType::from_id(13), None);
    assert_eq!(V::U32(48).describe(), "UINT32 48");
    assert_eq!(
        V::String("x".repeat(100)).describe(),
        format!("STRING {:?}...", "x".repeat(40))
    );
    let big = V::Array(ValueType::U8, vec![V::U8(0); 1000]);
    assert_eq!(big.describe(), "ARRAY of 1000 UINT8");
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u8>().prop_map(Value::U8),
        any::<i8>().prop_map(Value::I8),
        any::<u16>().prop_map(Value::U16),
        any::<i16>().prop_map(Value::I16),
        any::<u32>().prop_map(Value::U32),
        any::<i32>().prop_map(Value::I32),
        any::<u32>().prop_map(|b| Value::F32(f32::from_bits(b))),
        any::<bool>().prop_map(Value::Bool),
        ".{0,12}".prop_map(Value::String),
        any::<u64>().prop_map(Value::U64),
        any::<i64>().prop_map(Value::I64),
        any::<u64>().prop_map(|b| Value::F64(f64::from_bits(b))),
    ]
}

/// Homogeneous arrays (nested up to 3 deep) built from one leaf type.
fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        (inner, 0usize..6).prop_map(|(proto, n)| {
            let ty = proto.value_type();
            Value::Array(ty, vec![proto; n])
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_metadata_round_trips(values in prop::collection::vec(value(), 0..8)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.gguf");
        let mut w = GgufWriter::new();
        for (i, v) in values.iter().enumerate() {
            w.add_kv(format!("k{i}"), v.clone()).unwrap();
        }
        w.begin(&path).unwrap().finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let g = GgufFile::parse(&bytes).unwrap();
        prop_assert_eq!(g.metadata.len(), values.len());
        for (v, (_, r)) in values.iter().zip(&g.metadata) {
            prop_assert_eq!(enc(v), enc(r));
        }
    }
}
