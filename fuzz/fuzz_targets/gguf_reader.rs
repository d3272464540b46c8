//! Fuzzes the GGUF reader: any input must parse or fail with an error, never panic, and a
//! parsed file's tensor data, lookups and `ouro info` summary must be consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ouro::info::Summary;
use ouro::gguf::GgufFile;

fuzz_target!(|data: &[u8]| {
    let Ok(g) = GgufFile::parse(data) else {
        return;
    };
    for t in &g.tensors {
        assert_eq!(g.tensor_data(t).len() as u64, t.n_bytes);
        assert!(std::ptr::eq(g.tensor(&t.name).unwrap(), t));
        assert_eq!(t.offset % g.alignment, 0);
    }
    for (k, v) in &g.metadata {
        assert!(std::ptr::eq(g.get(k).unwrap(), v));
    }
    let summary = Summary::from_gguf(&g, true);
    assert_eq!(summary.n_tensors, g.tensors.len());
});
