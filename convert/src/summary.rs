//! The one line every command ends with: what it wrote, how big, which tensor types, how long.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a command wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    pub path: PathBuf,
    /// Bytes on disk (for a directory, of the files written into it).
    pub bytes: u64,
    /// Tensor count per type, most frequent first (then by name): `("q4_0", 168)`.
    pub types: Vec<(String, usize)>,
}

impl Written {
    /// `types` holds one type name per tensor.
    pub fn new(path: PathBuf, bytes: u64, types: impl IntoIterator<Item = String>) -> Written {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for t in types {
            *counts.entry(t).or_default() += 1;
        }
        let mut types: Vec<(String, usize)> = counts.into_iter().collect();
        types.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Written { path, bytes, types }
    }

    pub fn n_tensors(&self) -> usize {
        self.types.iter().map(|(_, n)| n).sum()
    }

    /// `wrote model.gguf: 909.3 MB, 170 tensors (q4_0 168, f32 2), 4.1 s`.
    pub fn line(&self, seconds: f64) -> String {
        let types: Vec<String> = self.types.iter().map(|(t, n)| format!("{t} {n}")).collect();
        format!(
            "wrote {}: {}, {} tensors ({}), {seconds:.1} s",
            self.path.display(),
            human_bytes(self.bytes),
            self.n_tensors(),
            types.join(", ")
        )
    }
}

/// Decimal units, as `ls -h --si` and download sizes: `909.3 MB`, `2.94 GB`.
pub fn human_bytes(n: u64) -> String {
    let x = n as f64;
    if n < 1000 {
        format!("{n} B")
    } else if x < 1e6 {
        format!("{:.1} kB", x / 1e3)
    } else if x < 1e9 {
        format!("{:.1} MB", x / 1e6)
    } else {
        format!("{:.2} GB", x / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_most_frequent_first() {
        let types = ["f32", "q4_0", "q8_0", "q4_0", "f32", "q4_0"].map(String::from);
        let w = Written::new("m.gguf".into(), 909_312_000, types);
        assert_eq!(
            w.line(4.06),
            "wrote m.gguf: 909.3 MB, 6 tensors (q4_0 3, f32 2, q8_0 1), 4.1 s"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1000), "1.0 kB");
        assert_eq!(human_bytes(123_456), "123.5 kB");
        assert_eq!(human_bytes(2_940_000_000), "2.94 GB");
    }
}
