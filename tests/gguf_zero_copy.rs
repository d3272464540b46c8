//! Opening and parsing a model maps it without reading its tensor data: resident memory grows
//! by the metadata, not by the file size. One test in this binary, so no other test's
//! allocations disturb the measurement.

mod gguf_common;

use gguf_common::rss_bytes;
use ouro::gguf::GgufFile;
use ouro::mmap::Mmap;

/// Most resident growth allowed for mapping and parsing the 94 MiB SmolLM2 file (its
/// metadata, mostly 49k tokens and 48k merges as Strings, is a few MiB).
const PARSE_RSS_LIMIT: u64 = 24 << 20;
/// Touching every tensor byte must then show most of the file as resident (proves the
/// measurement sees mapped pages).
const TOUCH_RSS_MIN_FRACTION: f64 = 0.8;

#[test]
fn parsing_does_not_read_tensor_data() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("skipping: no /proc/self/status on this OS");
        return;
    }
    let Some(path) = gguf_common::smollm2_gguf("parsing_does_not_read_tensor_data") else {
        return;
    };
    let before = rss_bytes();
    let map = Mmap::open(&path).unwrap();
    let g = GgufFile::parse(&map).unwrap();
    let total: u64 = g
        .tensors
        .iter()
        .map(|t| g.tensor_data(t).len() as u64)
        .sum();
    let parsed = rss_bytes();
    assert!(
        parsed.saturating_sub(before) < PARSE_RSS_LIMIT,
        "RSS grew by {} bytes on parse (file {} bytes)",
        parsed - before,
        map.len()
    );

    let mut checksum = 0u64;
    for t in &g.tensors {
        for chunk in g.tensor_data(t).chunks(4096) {
            checksum = checksum.wrapping_add(u64::from(chunk[0]));
        }
    }
    let touched = rss_bytes();
    assert!(
        (touched.saturating_sub(parsed)) as f64 > TOUCH_RSS_MIN_FRACTION * total as f64,
        "touching {total} tensor bytes grew RSS by only {} (checksum {checksum})",
        touched.saturating_sub(parsed)
    );
}
