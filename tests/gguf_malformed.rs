//! A malformed-input corpus derived from one valid file: every case must be an `Err` of the
//! right kind, never a panic, hang or unbounded allocation; `ouro info` on a sample of them
//! exits with status 1 and a one-line message.

mod gguf_common;

use std::process::Command;

use ouro::gguf::{
    Context, GgmlType, GgufError, GgufFile, GgufWriter, ShapeError, Value, ValueType,
};

/// A GGUF file assembled field by field, so any field can be corrupted.
#[derive(Clone)]
struct Raw {
    magic: [u8; 4],
    version: u32,
    n_tensors: Option<u64>,
    n_kv: Option<u64>,
    /// Encoded entries: key, value type, value.
    kvs: Vec<Vec<u8>>,
    tensors: Vec<RawTensor>,
    alignment: u64,
    data_len: usize,
    /// Zero padding between tensors, relative to the data start.
    gap: std::ops::Range<usize>,
}

#[derive(Clone)]
struct RawTensor {
    name: Vec<u8>,
    n_dims: Option<u32>,
    dims: Vec<u64>,
    ty: u32,
    offset: u64,
}

fn string(s: &[u8]) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(s);
    b
}

fn kv(key: &[u8], ty: u32, value: &[u8]) -> Vec<u8> {
    let mut b = string(key);
    b.extend_from_slice(&ty.to_le_bytes());
    b.extend_from_slice(value);
    b
}

/// An array value: element type, count, then the raw items.
fn array(elem: u32, count: u64, items: &[u8]) -> Vec<u8> {
    let mut b = elem.to_le_bytes().to_vec();
    b.extend_from_slice(&count.to_le_bytes());
    b.extend_from_slice(items);
    b
}

const STRING: u32 = 8;
const ARRAY: u32 = 9;
const U32: u32 = 4;
const U64: u32 = 10;
const BOOL: u32 = 7;

impl Raw {
    fn tensor(name: &str, dims: &[u64], ty: GgmlType, offset: u64) -> RawTensor {
        RawTensor {
            name: name.as_bytes().to_vec(),
            n_dims: None,
            dims: dims.to_vec(),
            ty: ty.id(),
            offset,
        }
    }

    /// The valid base: 5 metadata entries, 3 tensors (F32, Q4_0, F16).
    fn valid() -> Raw {
        let nested = array(
            ARRAY,
            2,
            &[
                array(U32, 1, &7u32.to_le_bytes()),
                array(STRING, 1, &string(b"s")),
            ]
            .concat(),
        );
        Raw {
            magic: *b"GGUF",
            version: 3,
            n_tensors: None,
            n_kv: None,
            kvs: vec![
                kv(b"general.architecture", STRING, &string(b"ouro")),
                kv(b"ouro.block_count", U32, &2u32.to_le_bytes()),
                kv(
                    b"tokenizer.ggml.tokens",
                    ARRAY,
                    &array(STRING, 2, &[string(b"a"), string(b"bc")].concat()),
                ),
                kv(b"nested", ARRAY, &nested),
                kv(b"ouro.rope.freq_base", 6, &10000f32.to_le_bytes()),
            ],
            tensors: vec![
                Raw::tensor("a", &[8, 2], GgmlType::F32, 0),
                Raw::tensor("b", &[64, 2], GgmlType::Q4_0, 64),
                Raw::tensor("c", &[4], GgmlType::F16, 160),
            ],
            alignment: 32,
            // a: [0, 64), b: [64, 136), c: [160, 168).
            data_len: 168,
            gap: 136..160,
        }
    }

    fn build(&self) -> Vec<u8> {
        let mut b = self.magic.to_vec();
        b.extend_from_slice(&self.version.to_le_bytes());
        let n_t = self.n_tensors.unwrap_or(self.tensors.len() as u64);
        b.extend_from_slice(&n_t.to_le_bytes());
        b.extend_from_slice(&self.n_kv.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        for e in &self.kvs {
            b.extend_from_slice(e);
        }
        for t in &self.tensors {
            b.extend_from_slice(&string(&t.name));
            let n_dims = t.n_dims.unwrap_or(t.dims.len() as u32);
            b.extend_from_slice(&n_dims.to_le_bytes());
            for d in &t.dims {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.extend_from_slice(&t.ty.to_le_bytes());
            b.extend_from_slice(&t.offset.to_le_bytes());
        }
        b.resize(
            (b.len() as u64).next_multiple_of(self.alignment) as usize,
            0,
        );
        b.extend((0..self.data_len).map(|i| {
            if self.gap.contains(&i) {
                0
            } else {
                (i * 7 + 3) as u8
            }
        }));
        b
    }

    fn with(&self, f: impl FnOnce(&mut Raw)) -> Vec<u8> {
        let mut r = self.clone();
        f(&mut r);
        r.build()
    }
}

#[test]
fn base_is_valid_and_matches_our_writer() {
    let base = Raw::valid().build();
    let g = GgufFile::parse(&base).unwrap();
    assert_eq!(g.metadata.len(), 5);
    assert_eq!(g.tensors.len(), 3);
    assert_eq!(g.get("ouro.block_count"), Some(&Value::U32(2)));
    let last = &g.tensors[2];
    assert_eq!(g.data_start + last.offset + last.n_bytes, base.len() as u64);

    // Our writer lays the same content out byte for byte (plus padding after the last tensor).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.gguf");
    let mut w = GgufWriter::new();
    for (k, v) in &g.metadata {
        w.add_kv(k.clone(), v.clone()).unwrap();
    }
    for t in &g.tensors {
        w.add_tensor(t.name.clone(), &t.dims, t.ty).unwrap();
    }
    let mut d = w.begin(&path).unwrap();
    for t in &g.tensors {
        d.write_tensor(&t.name, g.tensor_data(t)).unwrap();
    }
    d.finish().unwrap();
    let written = std::fs::read(&path).unwrap();
    let first_diff = written.iter().zip(&base).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "writer and hand-built layouts differ");
    assert_eq!(written.len(), base.len().next_multiple_of(32));
    assert!(written[base.len()..].iter().all(|&b| b == 0));
}

#[test]
fn every_truncation_fails() {
    let base = Raw::valid().build();
    for n in 0..base.len() {
        assert!(
            GgufFile::parse(&base[..n]).is_err(),
            "truncated to {n} of {} bytes parsed",
            base.len()
        );
    }
}

/// (name, bytes, check on the error).
type Case = (&'static str, Vec<u8>, fn(&GgufError) -> bool);

fn corpus() -> Vec<Case> {
    let r = Raw::valid();
    let huge_kv = |key: &'static [u8], ty: u32, value: Vec<u8>| {
        r.with(move |r| r.kvs.push(kv(key, ty, &value)))
    };
    let tensor0 = |f: fn(&mut RawTensor)| r.with(|r| f(&mut r.tensors[0]));
    let mut deep = array(U32, 0, &[]);
    for _ in 0..1000 {
        deep = array(ARRAY, 1, &deep);
    }
    let mut raw_key = (1u64 << 40).to_le_bytes().to_vec();
    raw_key.extend_from_slice(b"general.name");

    use GgufError as E;
    vec![
        ("bad magic", r.with(|r| r.magic = *b"GGUX"), |e| {
            matches!(e, E::BadMagic { offset: 0, .. })
        }),
        ("lowercase magic", r.with(|r| r.magic = *b"gguf"), |e| {
            matches!(e, E::BadMagic { .. })
        }),
        ("version 0", r.with(|r| r.version = 0), |e| {
            matches!(
                e,
                E::UnsupportedVersion {
                    found: 0,
                    offset: 4
                }
            )
        }),
        ("version 1", r.with(|r| r.version = 1), |e| {
            matches!(e, E::UnsupportedVersion { found: 1, .. })
        }),
        ("version 4", r.with(|r| r.version = 4), |e| {
            matches!(e, E::UnsupportedVersion { found: 4, .. })
        }),
        (
            "big-endian v3",
            r.with(|r| r.version = 3u32.swap_bytes()),
            |e| matches!(e, E::UnsupportedVersion { .. }),
        ),
        (
            "2^60 tensors",
            r.with(|r| r.n_tensors = Some(1 << 60)),
            |e| matches!(e, E::CountTooLarge { context: Context::Header, count, .. } if *count == 1 << 60),
        ),
        (
            "u64::MAX tensors",
            r.with(|r| r.n_tensors = Some(u64::MAX)),
            |e| matches!(e, E::CountTooLarge { .. }),
        ),
        (
            "2^60 metadata entries",
            r.with(|r| r.n_kv = Some(1 << 60)),
            |e| {
                matches!(
                    e,
                    E::CountTooLarge {
                        context: Context::Header,
                        ..
                    }
                )
            },
        ),
        (
            "u64::MAX metadata entries",
            r.with(|r| r.n_kv = Some(u64::MAX)),
            |e| matches!(e, E::CountTooLarge { .. }),
        ),
        (
            "one tensor too many",
            r.with(|r| r.n_tensors = Some(4)),
            |e| {
                matches!(
                    e,
                    E::TensorOutOfFile { .. }
                        | E::UnknownTensorType { .. }
                        | E::BadShape { .. }
                        | E::Truncated { .. }
                        | E::InvalidUtf8 { .. }
                )
            },
        ),
        (
            "2^40-byte key",
            r.with(|r| r.kvs.insert(0, raw_key.clone())),
            |e| matches!(e, E::Truncated { context: Context::KeyIndex(0), need, .. } if *need == 1 << 40),
        ),
        (
            "2^40-byte string",
            huge_kv(b"general.name", STRING, (1u64 << 40).to_le_bytes().to_vec()),
            |e| matches!(e, E::Truncated { context: Context::Key(k), .. } if k == "general.name"),
        ),
        (
            "u64::MAX-byte string",
            huge_kv(b"general.name", STRING, u64::MAX.to_le_bytes().to_vec()),
            |e| matches!(e, E::Truncated { .. }),
        ),
        (
            "2^60 u64 array",
            huge_kv(b"big", ARRAY, array(U64, 1 << 60, &[])),
            |e| matches!(e, E::CountTooLarge { context: Context::Key(k), .. } if k == "big"),
        ),
        (
            "u64::MAX u8 array",
            huge_kv(b"big", ARRAY, array(0, u64::MAX, &[])),
            |e| matches!(e, E::CountTooLarge { .. }),
        ),
        (
            "2^59 string array",
            huge_kv(b"big", ARRAY, array(STRING, 1 << 59, &string(b"x"))),
            |e| matches!(e, E::CountTooLarge { .. }),
        ),
        (
            "huge inner array",
            huge_kv(b"big", ARRAY, array(ARRAY, 1, &array(U32, 1 << 61, &[]))),
            |e| matches!(e, E::CountTooLarge { .. }),
        ),
        (
            "array count > items",
            huge_kv(b"short", ARRAY, array(U32, 300, &[0; 1100])),
            |e| matches!(e, E::CountTooLarge { .. } | E::Truncated { .. }),
        ),
        (
            "arrays nested 1000 deep",
            huge_kv(b"deep", ARRAY, deep),
            |e| matches!(e, E::NestingTooDeep { .. }),
        ),
        ("value type 13", huge_kv(b"k", 13, vec![0; 8]), |e| {
            matches!(e, E::UnknownValueType { found: 13, .. })
        }),
        (
            "bool 2",
            huge_kv(b"ouro.flag", BOOL, vec![2]),
            |e| matches!(e, E::BadBool { context: Context::Key(k), found: 2, .. } if k == "ouro.flag"),
        ),
        (
            "bool 255 in an array",
            huge_kv(b"flags", ARRAY, array(BOOL, 3, &[0, 1, 255])),
            |e| matches!(e, E::BadBool { context: Context::Key(k), found: 255, .. } if k == "flags"),
        ),
        (
            "value type u32::MAX",
            huge_kv(b"k", u32::MAX, vec![0; 8]),
            |e| matches!(e, E::UnknownValueType { .. }),
        ),
        (
            "array element type 13",
            huge_kv(b"k", ARRAY, array(13, 1, &[0; 8])),
            |e| matches!(e, E::UnknownValueType { found: 13, .. }),
        ),
        (
            "non-UTF-8 key",
            huge_kv(b"k\xff\xfe", U32, vec![0; 4]),
            |e| {
                matches!(
                    e,
                    E::InvalidUtf8 {
                        context: Context::KeyIndex(5),
                        ..
                    }
                )
            },
        ),
        (
            "non-UTF-8 string",
            huge_kv(b"k", STRING, string(b"\xc3\x28")),
            |e| {
                matches!(
                    e,
                    E::InvalidUtf8 {
                        context: Context::Key(_),
                        ..
                    }
                )
            },
        ),
        (
            "non-UTF-8 tensor name",
            tensor0(|t| t.name = b"\xe2\x82".to_vec()),
            |e| {
                matches!(
                    e,
                    E::InvalidUtf8 {
                        context: Context::TensorIndex(0),
                        ..
                    }
                )
            },
        ),
        (
            "duplicate 100 kB key",
            {
                let key = vec![b'k'; 100_000];
                r.with(|r| {
                    r.kvs.push(kv(&key, U32, &[0; 4]));
                    r.kvs.push(kv(&key, U32, &[0; 4]));
                })
            },
            |e| matches!(e, E::DuplicateKey { key, .. } if key.len() == 100_000),
        ),
        (
            "duplicate key",
            huge_kv(b"ouro.block_count", U32, vec![0; 4]),
            |e| matches!(e, E::DuplicateKey { key, .. } if key == "ouro.block_count"),
        ),
        (
            "alignment 0",
            huge_kv(b"general.alignment", U32, 0u32.to_le_bytes().to_vec()),
            |e| matches!(e, E::BadAlignment { .. }),
        ),
        (
            "alignment 48",
            huge_kv(b"general.alignment", U32, 48u32.to_le_bytes().to_vec()),
            |e| matches!(e, E::BadAlignment { .. }),
        ),
        (
            "alignment as u64",
            huge_kv(b"general.alignment", U64, 32u64.to_le_bytes().to_vec()),
            |e| matches!(e, E::BadAlignment { .. }),
        ),
        (
            "alignment as string",
            huge_kv(b"general.alignment", STRING, string(b"32")),
            |e| matches!(e, E::BadAlignment { .. }),
        ),
        (
            "duplicate tensor",
            r.with(|r| r.tensors[2].name = b"a".to_vec()),
            |e| matches!(e, E::DuplicateTensor { name, .. } if name == "a"),
        ),
        ("tensor type 4", tensor0(|t| t.ty = 4), |e| {
            matches!(e, E::UnknownTensorType { found: 4, .. })
        }),
        ("tensor type 33", tensor0(|t| t.ty = 33), |e| {
            matches!(e, E::UnknownTensorType { found: 33, .. })
        }),
        ("tensor type u32::MAX", tensor0(|t| t.ty = u32::MAX), |e| {
            matches!(e, E::UnknownTensorType { .. })
        }),
        ("n_dims 5", tensor0(|t| t.dims = vec![8, 2, 1, 1, 1]), |e| {
            matches!(
                e,
                E::BadShape {
                    source: ShapeError::TooManyDims(5),
                    ..
                }
            )
        }),
        (
            "n_dims u32::MAX",
            tensor0(|t| t.n_dims = Some(u32::MAX)),
            |e| {
                matches!(
                    e,
                    E::BadShape {
                        source: ShapeError::TooManyDims(_),
                        ..
                    }
                )
            },
        ),
        ("n_dims 0", tensor0(|t| t.dims = vec![]), |e| {
            matches!(
                e,
                E::BadShape {
                    source: ShapeError::NoDims,
                    ..
                }
            )
        }),
        ("zero dim", tensor0(|t| t.dims = vec![8, 0]), |e| {
            matches!(
                e,
                E::BadShape {
                    source: ShapeError::ZeroDim { axis: 1 },
                    ..
                }
            )
        }),
        (
            "partial block",
            r.with(|r| r.tensors[1].dims = vec![48, 2]),
            |e| {
                matches!(
                    e,
                    E::BadShape {
                        source: ShapeError::NotWholeBlocks { ne0: 48, .. },
                        ..
                    }
                )
            },
        ),
        (
            "element count overflow",
            tensor0(|t| t.dims = vec![1 << 32, 1 << 32, 1 << 32]),
            |e| {
                matches!(
                    e,
                    E::BadShape {
                        source: ShapeError::Overflow,
                        ..
                    }
                )
            },
        ),
        (
            "tensor larger than file",
            tensor0(|t| t.dims = vec![1 << 40, 1 << 20]),
            |e| matches!(e, E::TensorOutOfFile { .. }),
        ),
        ("misaligned offset", tensor0(|t| t.offset = 1), |e| {
            matches!(
                e,
                E::MisalignedTensor {
                    tensor_offset: 1,
                    alignment: 32,
                    ..
                }
            )
        }),
        (
            "offset aligned to 16 only",
            r.with(|r| r.tensors[1].offset = 80),
            |e| matches!(e, E::MisalignedTensor { .. }),
        ),
        (
            "offset past the end",
            tensor0(|t| t.offset = 1 << 62),
            |e| matches!(e, E::TensorOutOfFile { .. }),
        ),
        (
            "offset + size overflows u64",
            tensor0(|t| t.offset = u64::MAX - 31),
            |e| matches!(e, E::TensorOutOfFile { .. }),
        ),
        (
            "last tensor one byte short",
            r.with(|r| r.data_len -= 1),
            |e| matches!(e, E::TensorOutOfFile { name, .. } if name == "c"),
        ),
        (
            "offsets misaligned for alignment 64",
            huge_kv(b"general.alignment", U32, 64u32.to_le_bytes().to_vec()),
            |e| matches!(e, E::MisalignedTensor { alignment: 64, .. }),
        ),
    ]
}

/// Longest error message: names from the file are cut, so a hostile 100 kB key cannot
/// produce a 100 kB message.
const MAX_MESSAGE_LEN: usize = 300;

#[test]
fn every_malformed_case_is_the_right_error() {
    for (name, bytes, check) in corpus() {
        match GgufFile::parse(&bytes) {
            Ok(_) => panic!("{name}: parsed"),
            Err(e) => {
                assert!(check(&e), "{name}: unexpected error {e:?}");
                let msg = e.to_string();
                assert!(!msg.contains('\n'), "{name}: multi-line message {msg:?}");
                assert!(msg.contains("byte "), "{name}: no byte offset in {msg:?}");
                assert!(msg.len() < MAX_MESSAGE_LEN, "{name}: {} bytes", msg.len());
            }
        }
    }
}

/// Address space allowed to `ouro info` on a malformed file (KiB): the binary, its libraries
/// and a tiny map need a few tens of MiB.
const VMEM_LIMIT_KIB: u64 = 512 * 1024;

#[test]
fn ouro_info_fails_cleanly_on_malformed_files() {
    let dir = tempfile::tempdir().unwrap();
    let base = Raw::valid().build();
    let mut files: Vec<(String, Vec<u8>)> = corpus()
        .into_iter()
        .step_by(3)
        .map(|(n, b, _)| (n.to_owned(), b))
        .collect();
    for n in [0, 3, 20, 60, base.len() / 2, base.len() - 1] {
        files.push((format!("truncated to {n}"), base[..n].to_vec()));
    }
    let bin = env!("CARGO_BIN_EXE_ouro");
    for (i, (name, bytes)) in files.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.gguf"));
        std::fs::write(&path, bytes).unwrap();
        // Under an address-space limit: an attempt to allocate what a hostile count claims
        // aborts the process instead of passing unnoticed on an overcommitting kernel.
        let script = format!("ulimit -v {VMEM_LIMIT_KIB} && exec \"$0\" info \"$1\"");
        let out = Command::new("sh")
            .args(["-c", &script, bin])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: status, stderr {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr:?}");
        assert!(stderr.starts_with("error: "), "{name}: {stderr}");
        assert!(out.stdout.is_empty(), "{name}: stdout not empty");
    }
}

#[test]
fn bools_0_and_1_parse() {
    let bytes = Raw::valid().with(|r| {
        r.kvs.push(kv(b"no", BOOL, &[0]));
        r.kvs.push(kv(b"yes", BOOL, &[1]));
        r.kvs.push(kv(b"both", ARRAY, &array(BOOL, 2, &[1, 0])));
    });
    let g = GgufFile::parse(&bytes).unwrap();
    assert_eq!(g.get("no"), Some(&Value::Bool(false)));
    assert_eq!(g.get("yes"), Some(&Value::Bool(true)));
    assert_eq!(
        g.get("both"),
        Some(&Value::Array(
            ValueType::Bool,
            vec![Value::Bool(true), Value::Bool(false)]
        ))
    );
}

#[test]
fn bad_bool_message_names_the_key_value_and_offset() {
    let bytes = Raw::valid().with(|r| r.kvs.push(kv(b"ouro.flag", BOOL, &[2])));
    let value_at = bytes.windows(9).position(|w| w == b"ouro.flag").unwrap() + 9 + 4;
    let e = GgufFile::parse(&bytes).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("key \"ouro.flag\" at byte {value_at}: BOOL value 2 is neither 0 nor 1")
    );
}

/// Every cause in a chain is printed once by anyhow's `{:#}`: no error's message repeats the
/// message of its `source()`.
fn assert_each_cause_once(e: &(dyn std::error::Error + 'static), name: &str) {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(src) = err.source() {
            let (msg, src_msg) = (err.to_string(), src.to_string());
            assert!(
                !msg.contains(&src_msg),
                "{name}: {msg:?} repeats its source {src_msg:?}"
            );
        }
        cur = err.source();
    }
}

#[test]
fn error_chains_print_each_cause_once() {
    for (name, bytes, _) in corpus() {
        let e = GgufFile::parse(&bytes).unwrap_err();
        assert_each_cause_once(&e, name);
    }

    // A reader error inside a binary's context, as `ouro generate -m fake.gguf` prints it.
    let e = GgufFile::parse(b"hello, not a GGUF file").unwrap_err();
    let shown = format!(
        "{:#}",
        anyhow::Error::new(e).context("cannot load fake.gguf")
    );
    assert_eq!(
        shown,
        "cannot load fake.gguf: not a GGUF file: magic \"hell\" at byte 0, expected \"GGUF\""
    );

    // A shape error (a `source`) appears once, after the tensor's own message.
    let bytes = Raw::valid().with(|r| r.tensors[0].dims = vec![8, 2, 1, 1, 1]);
    let e = GgufFile::parse(&bytes).unwrap_err();
    let shown = format!("{:#}", anyhow::Error::new(e));
    assert!(
        shown.starts_with("tensor \"a\" at byte ")
            && shown.ends_with(": bad shape: 5 dims (at most 4 allowed)"),
        "{shown}"
    );
    assert_eq!(shown.matches("5 dims").count(), 1, "{shown}");

    // A writer I/O error: the path once, the OS error once.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("no/such/dir/m.gguf");
    let e = GgufWriter::new().begin(&target).err().unwrap();
    assert_each_cause_once(&e, "begin in a missing directory");
    let shown = format!("{:#}", anyhow::Error::new(e));
    assert_eq!(
        shown.matches("No such file or directory").count(),
        1,
        "{shown}"
    );
    assert_eq!(shown.matches("no/such/dir/").count(), 1, "{shown}");
}

#[test]
fn metadata_element_budget_is_enforced() {
    use ouro::gguf::MAX_ARRAY_ELEMENTS;
    let n = MAX_ARRAY_ELEMENTS / 2 + 1;
    let big = array(0, n, &vec![1u8; n as usize]);
    let one = Raw::valid().with(|r| r.kvs.push(kv(b"one", ARRAY, &big)));
    assert!(GgufFile::parse(&one).is_ok(), "half the budget is fine");
    let two = Raw::valid().with(|r| {
        r.kvs.push(kv(b"one", ARRAY, &big));
        r.kvs.push(kv(b"two", ARRAY, &big));
    });
    match GgufFile::parse(&two) {
        Err(GgufError::TooManyElements {
            context: Context::Key(k),
            ..
        }) => assert_eq!(k, "two"),
        other => panic!("expected TooManyElements, got {other:?}"),
    }
}

#[test]
fn value_type_ids_used_here_are_the_real_ones() {
    assert_eq!(ValueType::String.id(), STRING);
    assert_eq!(ValueType::Array.id(), ARRAY);
    assert_eq!(ValueType::U32.id(), U32);
    assert_eq!(ValueType::U64.id(), U64);
}
