//! Resident panels keep memory honest: loading a Q8_0 model whose matrices are repacked at load
//! grows resident memory by about the repacked bytes — the mapped pages they replace are
//! released — not by twice that. One test in this binary, so no other test's allocations
//! disturb the measurement.

mod common;
mod gguf_common;

use std::process::Command;

use gguf_common::rss_bytes;
use ouro::model::Model;

/// Resident bytes of this process's mappings of `path` (from /proc/self/smaps).
fn mapped_rss(path: &std::path::Path) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let name = path.to_str().unwrap();
    let mut total = 0;
    let mut inside = false;
    for line in smaps.lines() {
        let head = line.split_whitespace().next().unwrap_or("");
        if head.contains('-') && !head.ends_with(':') {
            inside = line.ends_with(name);
        } else if inside && head == "Rss:" {
            let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            total += kib * 1024;
        }
    }
    total
}

#[test]
fn repacked_weights_replace_their_mapped_pages() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("skipping: no /proc/self/status on this OS");
        return;
    }
    if !ouro_simd::resident_enabled(ouro_simd::GgmlType::Q8_0) {
        eprintln!(
            "skipping: the {} path keeps Q8_0 in the map (no resident kernel, or OURO_REPACK=0)",
            ouro_simd::selected()
        );
        return;
    }
    let Some(src) = common::smollm2_gguf() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let q8 = dir.path().join("smollm2-q8_0.gguf");
    let o = Command::new(common::converter())
        .args(["quantize", "--type", "q8_0"])
        .arg(&src)
        .arg(&q8)
        .output()
        .expect("run ouro-convert");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let file = std::fs::metadata(&q8).unwrap().len();

    let before = rss_bytes();
    let model = Model::load(&q8).expect("load");
    let grown = rss_bytes().saturating_sub(before);
    eprintln!(
        "file {file}, RSS grown {grown}, file pages resident {}",
        mapped_rss(&q8)
    );
    let repacked = model.weights().resident_bytes();
    // SmolLM2-135M at Q8_0: ~145 MB, of which the 30 layers' matrices and the (tied) output are
    // repacked. Without the release, growth would be ≈ 2 × repacked.
    assert!(
        repacked > file / 2,
        "repacked {repacked} of a {file}-byte file"
    );
    // The map keeps only what was not repacked (metadata, norms, the embedding rows read at
    // load: none) — the repacked tensors' pages were read once and released.
    let mapped = mapped_rss(&q8);
    assert!(
        mapped <= file - repacked + (4 << 20),
        "{mapped} bytes of the {file}-byte file stay resident after repacking {repacked}"
    );
    let slack = 64 << 20; // the tokenizer's strings, the norms, allocator slack
    assert!(
        grown <= repacked + repacked / 10 + slack,
        "load grew RSS by {grown} bytes for {repacked} repacked bytes (file {file})"
    );
    assert!(
        grown >= repacked * 8 / 10,
        "load grew RSS by only {grown} bytes for {repacked} repacked bytes: is RSS measured?"
    );
}
