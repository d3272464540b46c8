//! `general.size_label` as llama.cpp's converter computes it from the parameter count: gguf-py
//! `size_label` → `model_weight_count_rounded_notation(total, min_digits=2)` (no experts here).
//!
//! The count is every element of every tensor written to the file (gguf-py's
//! `GGUFWriter.get_total_parameter_count`): weights are counted once, whatever the loop count, and
//! the Ouro exit gate, stored as metadata rather than a tensor (llama.cpp's converter drops it), is
//! not counted. (llama.cpp first tries to read a label from the model card or the repository /
//! directory name, e.g. "Ouro-1.4B"; that heuristic is not reproduced — on real checkpoints it
//! agrees with the count.)

/// gguf-py's rounded notation: thousands, millions, billions or trillions with at least two
/// significant digits ("135M", "1.4B", "16K", "0.5K" never: a count of 500 is "0.50K").
pub fn size_label(n_params: u64) -> String {
    let n = n_params as f64;
    // Same float operations as the Python (a multiplication by 1e-N, not a division).
    let (scaled, suffix) = if n > 1e12 {
        (n * 1e-12, "T")
    } else if n > 1e9 {
        (n * 1e-9, "B")
    } else if n > 1e6 {
        (n * 1e-6, "M")
    } else {
        (n * 1e-3, "K")
    };
    // len(str(round(scaled)).lstrip('0')): Python rounds half to even.
    let rounded = scaled.round_ties_even() as u64;
    let digits = if rounded == 0 {
        0
    } else {
        rounded.to_string().len()
    };
    let fix = 2usize.saturating_sub(digits);
    format!("{scaled:.fix$}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::size_label;

    #[test]
    fn known_labels() {
        assert_eq!(size_label(134_515_008), "135M");
        assert_eq!(size_label(1_447_000_000), "1.4B");
        assert_eq!(size_label(2_600_000), "2.6M");
        assert_eq!(size_label(500), "0.50K");
        assert_eq!(size_label(0), "0.00K");
        assert_eq!(size_label(12_000_000_000_000), "12T");
    }
}
