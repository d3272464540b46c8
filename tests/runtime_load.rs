//! Loader checks on edited copies of a converted fixture: an `ouro` file without
//! `ouro.num_loops` is refused, a misshapen tensor is named, and the streaming detokenizer
//! only emits complete UTF-8.

mod common;

use std::path::Path;

use common::*;
use ouro::gguf::{GgmlType, GgufFile, GgufWriter};
use ouro::mmap::Mmap;
use ouro::model::{Model, ModelError};
use ouro::tokenizer::StreamDecoder;

/// Copy `src` to `dst`, dropping metadata keys for which `keep` is false and swapping the two
/// dims of the tensor named `swap` (same byte size, wrong shape).
fn rewrite(src: &Path, dst: &Path, keep: impl Fn(&str) -> bool, swap: Option<&str>) {
    rewrite_typed(src, dst, keep, swap, None);
}

/// As [`rewrite`], and also re-tag the tensor named by `retype` as the given type (zero bytes
/// of the right size).
fn rewrite_typed(
    src: &Path,
    dst: &Path,
    keep: impl Fn(&str) -> bool,
    swap: Option<&str>,
    retype: Option<(&str, GgmlType)>,
) {
    let map = Mmap::open(src).expect("map");
    let g = GgufFile::parse(map.as_bytes()).expect("parse");
    let mut w = GgufWriter::new();
    for (k, v) in &g.metadata {
        if keep(k) {
            w.add_kv(k.clone(), v.clone()).expect("kv");
        }
    }
    for t in &g.tensors {
        let mut dims = t.dims.clone();
        if Some(t.name.as_str()) == swap {
            dims.reverse();
        }
        let ty = match retype {
            Some((name, ty)) if name == t.name => ty,
            _ => t.ty,
        };
        w.add_tensor(t.name.clone(), &dims, ty).expect("tensor");
    }
    let mut d = w.begin(dst).expect("begin");
    for t in &g.tensors {
        match retype {
            Some((name, ty)) if name == t.name => {
                let n = ty.row_bytes(t.n_elements()).expect("whole blocks") as usize;
                d.write_tensor(&t.name, &vec![0u8; n]).expect("write");
            }
            _ => d.write_tensor(&t.name, g.tensor_data(t)).expect("write"),
        }
    }
    d.finish().expect("finish");
}

#[test]
fn ouro_file_without_num_loops_is_refused() {
    let src = converted("ouro-tiny-b", "f32");
    let dir = tempfile::tempdir().expect("tempdir");
    let dst = dir.path().join("no-loops.gguf");
    rewrite(&src, &dst, |k| k != "ouro.num_loops", None);
    let err = Model::load(&dst).err().expect("must be refused");
    assert!(matches!(err, ModelError::MissingNumLoops), "{err}");
    assert!(err.to_string().contains("ouro.num_loops"));
}

#[test]
fn activation_only_weight_type_is_refused() {
    let src = converted("ouro-tiny-b", "f32");
    let dir = tempfile::tempdir().expect("tempdir");
    let dst = dir.path().join("q8_1-weight.gguf");
    let name = "blk.0.attn_k.weight";
    rewrite_typed(&src, &dst, |_| true, None, Some((name, GgmlType::Q8_1)));
    let err = Model::load(&dst).err().expect("must be refused");
    assert!(matches!(err, ModelError::TensorType { .. }), "{err}");
    assert!(err.to_string().contains(name), "{err}");
}

#[test]
fn misshapen_tensor_is_named() {
    let src = converted("ouro-tiny-b", "f32");
    let dir = tempfile::tempdir().expect("tempdir");
    let dst = dir.path().join("bad-shape.gguf");
    rewrite(&src, &dst, |_| true, Some("blk.1.attn_k.weight"));
    let err = Model::load(&dst).err().expect("must be refused");
    match &err {
        ModelError::TensorShape {
            name,
            expected,
            found,
        } => {
            assert_eq!(name, "blk.1.attn_k.weight");
            assert_eq!(expected, &vec![96, 32]);
            assert_eq!(found, &vec![32, 96]);
        }
        other => panic!("wrong error: {other}"),
    }
    assert!(err.to_string().contains("blk.1.attn_k.weight"));
}

#[test]
fn stream_decoder_emits_only_complete_utf8() {
    let model = Model::load(&converted("ouro-tiny-a", "f32")).expect("load");
    let tok = model.tokenizer();
    let text = "héllo 🌍 wörld — 日本語 <|im_end|> ok";
    let ids = tok.encode(text, true).expect("encode");
    // Multi-byte characters are split over several byte-level tokens.
    assert!(ids.len() > text.chars().count() / 2);
    // With special tokens shown the stream is the text itself, piece by piece.
    let mut dec = StreamDecoder::new(tok, false);
    let mut out = String::new();
    for &id in &ids {
        let piece = dec.push(id);
        assert!(!piece.contains('\u{FFFD}'), "{piece:?}");
        out.push_str(&piece);
    }
    out.push_str(&dec.flush());
    assert_eq!(out, text);
    assert_eq!(out, tok.decode(&ids));
    // Hidden, the control token produces no text and the rest is unchanged.
    let mut dec = StreamDecoder::new(tok, true);
    let mut hidden: String = ids.iter().map(|&id| dec.push(id)).collect();
    hidden.push_str(&dec.flush());
    assert_eq!(hidden, text.replace("<|im_end|>", ""));
}
