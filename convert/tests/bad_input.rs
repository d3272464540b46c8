//! Every bad input gets a one-line error, exit status 1 and no output file (not even a temp file).

mod common;

use common::*;
use safetensors::tensor::TensorView;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

struct Case {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    out_dir: PathBuf,
}

impl Case {
    fn new(fixture_name: &str) -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("hf");
        copy_fixture(fixture_name, &dir);
        let out_dir = tmp.path().join("out");
        std::fs::create_dir(&out_dir).unwrap();
        Case {
            _tmp: tmp,
            dir,
            out_dir,
        }
    }

    fn out(&self) -> PathBuf {
        self.out_dir.join("model.gguf")
    }

    fn edit_config(&self, f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
        let mut cfg = config(&self.dir);
        f(cfg.as_object_mut().unwrap());
        std::fs::write(self.dir.join("config.json"), cfg.to_string()).unwrap();
    }

    /// Rewrites the single-file checkpoint through `f` (name → (shape, bf16 bytes)).
    fn edit_tensors(&self, f: impl FnOnce(&mut BTreeMap<String, (Vec<usize>, Vec<u8>)>)) {
        let path = self.dir.join("model.safetensors");
        let bytes = std::fs::read(&path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut map: BTreeMap<String, (Vec<usize>, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, (v.shape().to_vec(), v.data().to_vec())))
            .collect();
        f(&mut map);
        let views: Vec<(String, TensorView)> = map
            .iter()
            .map(|(n, (shape, data))| {
                (
                    n.clone(),
                    TensorView::new(safetensors::Dtype::BF16, shape.clone(), data).unwrap(),
                )
            })
            .collect();
        std::fs::remove_file(&path).unwrap();
        safetensors::serialize_to_file(views, None, &path).unwrap();
    }

    fn convert(&self) -> Output {
        Command::new(BIN).args(self.args()).output().unwrap()
    }

    fn args(&self) -> Vec<String> {
        let out = self.out();
        [
            "hf2gguf",
            self.dir.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--type",
            "q8_0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Exit status 1, one line on stderr starting with "error:" and containing every `needles`,
    /// nothing on stdout, and an empty output directory.
    fn expect_error(&self, out: Output, needles: &[&str]) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "exit status; stderr: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        for n in needles {
            assert!(stderr.contains(n), "expected {n:?} in: {stderr}");
        }
        assert!(out.stdout.is_empty());
        assert!(!self.out().exists());
        assert_eq!(
            dir_entries(&self.out_dir),
            Vec::<String>::new(),
            "left behind"
        );
    }
}

#[test]
fn missing_config() {
    let c = Case::new("ouro-tiny-a");
    std::fs::remove_file(c.dir.join("config.json")).unwrap();
    c.expect_error(c.convert(), &["config.json"]);
}

#[test]
fn missing_hf_dir() {
    let c = Case::new("ouro-tiny-a");
    std::fs::remove_dir_all(&c.dir).unwrap();
    c.expect_error(c.convert(), &["config.json"]);
}

#[test]
fn unreadable_tokenizer() {
    let c = Case::new("ouro-tiny-a");
    std::fs::remove_file(c.dir.join("tokenizer.json")).unwrap();
    std::fs::create_dir(c.dir.join("tokenizer.json")).unwrap();
    c.expect_error(c.convert(), &["cannot read", "tokenizer.json"]);
}

#[test]
fn missing_tokenizer() {
    let c = Case::new("ouro-tiny-a");
    std::fs::remove_file(c.dir.join("tokenizer.json")).unwrap();
    c.expect_error(c.convert(), &["tokenizer.json"]);
}

#[test]
fn missing_weights() {
    let c = Case::new("ouro-tiny-a");
    std::fs::remove_file(c.dir.join("model.safetensors")).unwrap();
    c.expect_error(c.convert(), &["model.safetensors"]);
}

#[test]
fn missing_shard() {
    let c = Case::new("ouro-tiny-b");
    std::fs::remove_file(c.dir.join("model-00002-of-00002.safetensors")).unwrap();
    c.expect_error(c.convert(), &["model-00002-of-00002.safetensors"]);
}

#[test]
fn truncated_weights() {
    let c = Case::new("ouro-tiny-a");
    let path = c.dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1000]).unwrap();
    c.expect_error(c.convert(), &["model.safetensors"]);
}

#[test]
fn not_ouro_or_llama() {
    let c = Case::new("ouro-tiny-a");
    c.edit_config(|cfg| {
        cfg.insert("model_type".into(), "mistral".into());
        cfg.insert(
            "architectures".into(),
            serde_json::json!(["MistralForCausalLM"]),
        );
    });
    c.expect_error(c.convert(), &["unsupported model_type", "mistral"]);
}

#[test]
fn zero_loops() {
    let c = Case::new("ouro-tiny-a");
    c.edit_config(|cfg| {
        cfg.insert("total_ut_steps".into(), 0.into());
    });
    c.expect_error(c.convert(), &["total_ut_steps", ">= 1", "0"]);
}

#[test]
fn missing_tensor_is_named() {
    let c = Case::new("ouro-tiny-a");
    c.edit_tensors(|m| {
        m.remove("model.layers.1.input_layernorm_2.weight");
    });
    c.expect_error(
        c.convert(),
        &["missing tensors", "model.layers.1.input_layernorm_2.weight"],
    );
}

#[test]
fn extra_tensor_is_named() {
    let c = Case::new("ouro-tiny-a");
    c.edit_tensors(|m| {
        m.insert(
            "model.layers.0.self_attn.q_proj.bias".into(),
            (vec![64], vec![0u8; 128]),
        );
    });
    c.expect_error(
        c.convert(),
        &["unexpected tensors", "model.layers.0.self_attn.q_proj.bias"],
    );
}

#[test]
fn shape_mismatch_says_expected_and_found() {
    let c = Case::new("ouro-tiny-a");
    c.edit_config(|cfg| {
        cfg.insert("intermediate_size".into(), 192.into());
    });
    c.expect_error(
        c.convert(),
        &["shape mismatch", "mlp.gate_proj", "[192, 64]", "[128, 64]"],
    );
}

#[test]
fn tokenizer_larger_than_vocab() {
    let c = Case::new("ouro-tiny-a");
    let path = c.dir.join("tokenizer.json");
    let mut tok: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    tok["added_tokens"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": 49160, "content": "<extra>", "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true
        }));
    std::fs::write(&path, tok.to_string()).unwrap();
    c.expect_error(c.convert(), &["vocab size mismatch", "49160", "49152"]);
}

#[test]
fn disk_full_leaves_nothing() {
    // A file-size limit makes writes fail (EFBIG) like a full disk; SIGXFSZ is ignored so the
    // write returns an error instead of killing the process.
    let c = Case::new("ouro-tiny-a");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 2048; exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(c.args());
    c.expect_error(cmd.output().unwrap(), &["model.gguf"]);
}

#[test]
fn bad_type_is_rejected_by_the_parser() {
    let c = Case::new("ouro-tiny-a");
    let out = run(&[
        "hf2gguf",
        c.dir.to_str().unwrap(),
        "-o",
        c.out().to_str().unwrap(),
        "--type",
        "q4-0",
    ]);
    assert_eq!(out.status.code(), Some(2), "clap usage errors exit 2");
    assert!(String::from_utf8_lossy(&out.stderr).contains("q4_0"));
    assert!(!c.out().exists());
}

#[test]
fn output_in_a_missing_directory_names_each_cause_once() {
    let c = Case::new("ouro-tiny-a");
    let out = c.out_dir.join("no/such/dir/x.gguf");
    let o = run(&[
        "hf2gguf",
        c.dir.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let os_error = std::io::Error::from_raw_os_error(2).to_string();
    assert_eq!(stderr.matches(&os_error).count(), 1, "{stderr}");
    assert_eq!(stderr.matches("cannot create").count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot create {}: ", out.display())),
        "{stderr}"
    );
    assert!(!c.out_dir.join("no").exists());
}

#[test]
fn missing_input_file_names_each_cause_once() {
    let c = Case::new("ouro-tiny-a");
    let input = c.out_dir.join("absent.gguf");
    let o = run(&[
        "quantize",
        input.to_str().unwrap(),
        c.out().to_str().unwrap(),
        "--type",
        "q8_0",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    c.expect_error(o, &["cannot open", "absent.gguf"]);
    let os_error = std::io::Error::from_raw_os_error(2).to_string();
    assert_eq!(stderr.matches(&os_error).count(), 1, "{stderr}");
    assert_eq!(stderr.matches("absent.gguf").count(), 1, "{stderr}");
}

#[test]
fn not_a_gguf_names_each_cause_once() {
    let c = Case::new("ouro-tiny-a");
    let input = c.dir.join("fake.gguf");
    std::fs::write(&input, b"hello, world").unwrap();
    let o = run(&[
        "quantize",
        input.to_str().unwrap(),
        c.out().to_str().unwrap(),
        "--type",
        "q8_0",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    c.expect_error(o, &["fake.gguf", "not a GGUF file"]);
    assert_eq!(stderr.matches("not a GGUF file").count(), 1, "{stderr}");
}

#[test]
fn non_finite_exit_gate_is_rejected() {
    // Found by the hf_checkpoint fuzz target: the gate becomes metadata, which the runtime only
    // loads when finite, so the converter rejects it instead of writing an unloadable file.
    let c = Case::new("ouro-tiny-a");
    c.edit_tensors(|m| {
        let (_, data) = m.get_mut("model.early_exit_gate.weight").unwrap();
        data[6..8].copy_from_slice(&0x7fc0u16.to_le_bytes()); // bf16 NaN
    });
    c.expect_error(
        c.convert(),
        &[
            "model.early_exit_gate.weight",
            "1 of 64 values are not finite",
        ],
    );
    let c = Case::new("ouro-tiny-a");
    c.edit_tensors(|m| {
        let (_, data) = m.get_mut("model.early_exit_gate.bias").unwrap();
        data.copy_from_slice(&0xff80u16.to_le_bytes()); // bf16 -inf
    });
    c.expect_error(
        c.convert(),
        &["model.early_exit_gate.bias", "1 of 1 values are not finite"],
    );
}
