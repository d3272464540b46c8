//! Fuzzes the converter's Hugging Face side: the input is `config.json`, a NUL byte, then
//! `model.safetensors`; both are written into a scratch checkpoint directory (in /dev/shm when
//! there is one) beside a fixed tokenizer (`ouro-convert synth`'s) and converted by `hf2gguf` to
//! a type chosen by the input length. Any input must convert or fail with an error, never panic;
//! a converted file must parse with the library's reader and load as a model.
//! Seeds: `fuzz/seeds/hf_checkpoint.py corpus/hf_checkpoint`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ouro::gguf::GgufFile;
use ouro_convert::plan::FileType;
use ouro_convert::{hf2gguf, synth};
use std::path::PathBuf;
use std::sync::OnceLock;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("ouro-fuzz-hf-{}", std::process::id()));
        synth::run(&synth::Options {
            preset: synth::preset("tiny").unwrap(),
            out: &dir,
            seed: 0,
            loops: None,
            tokenizer_from: None,
        })
        .expect("scratch checkpoint");
        dir
    })
}

const TYPES: [FileType; 5] = [
    FileType::F32,
    FileType::F16,
    FileType::Bf16,
    FileType::Q8_0,
    FileType::Q4_0,
];

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (config, model) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    std::fs::write(dir.join("config.json"), config).unwrap();
    std::fs::write(dir.join("model.safetensors"), model).unwrap();
    let out = dir.join("out.gguf");
    let opts = hf2gguf::Options {
        dir,
        out: Some(&out),
        ftype: TYPES[data.len() % TYPES.len()],
        dry_run: false,
        name: None,
    };
    let Ok(written) = hf2gguf::run(&opts) else {
        assert!(!out.exists(), "a failed conversion left its output");
        return;
    };
    let written = written.expect("not a dry run");
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(bytes.len() as u64, written.bytes);
    let g = GgufFile::parse(&bytes).expect("a converted file parses");
    assert_eq!(g.tensors.len(), written.n_tensors());
    if let Err(e) = ouro::model::Model::load(&out) {
        panic!("a converted file does not load: {e}");
    }
    std::fs::remove_file(&out).unwrap();
});
