//! Rotary position embedding, interleaved ("NORM") form: dimensions (2i, 2i+1) of each head
//! rotate by pos · base^(−2i/rope_dim). GGUF files store Q/K rows permuted (as llama.cpp's
//! converter does), which makes this equal to HF's rotate-half form on the original rows.

/// cos/sin of every rotated pair at `pos`, computed in f32 like the reference.
pub fn rope_table(pos: usize, rope_dim: usize, base: f32) -> Vec<(f32, f32)> {
    (0..rope_dim / 2)
        .map(|i| {
            let inv_freq = 1.0 / base.powf((2 * i) as f32 / rope_dim as f32);
            let angle = pos as f32 * inv_freq;
            (angle.cos(), angle.sin())
        })
        .collect()
}

/// Rotate every `head_dim`-wide head of `x` in place with `table` (from [`rope_table`]).
pub fn rope_interleaved(x: &mut [f32], head_dim: usize, table: &[(f32, f32)]) {
    for head in x.chunks_exact_mut(head_dim) {
        for (pair, &(c, s)) in head.chunks_exact_mut(2).zip(table) {
            let (a, b) = (pair[0], pair[1]);
            pair[0] = a * c - b * s;
            pair[1] = a * s + b * c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HF rotate-half RoPE on one head: dimension j pairs with j + d/2.
    fn rope_rotate_half(x: &mut [f32], table: &[(f32, f32)]) {
        let half = x.len() / 2;
        for (j, &(c, s)) in table.iter().enumerate() {
            let (a, b) = (x[j], x[j + half]);
            x[j] = a * c - b * s;
            x[j + half] = b * c + a * s;
        }
    }

    /// llama.cpp's converter permutation of one head's rows: row (2i) ← i, row (2i+1) ← i + d/2.
    fn permute(x: &[f32]) -> Vec<f32> {
        let half = x.len() / 2;
        (0..x.len())
            .map(|r| {
                if r % 2 == 0 {
                    x[r / 2]
                } else {
                    x[half + r / 2]
                }
            })
            .collect()
    }

    #[test]
    fn interleaved_on_permuted_rows_equals_rotate_half() {
        let d = 16;
        let x: Vec<f32> = (0..d).map(|i| (i as f32 * 0.37).sin() + 0.1).collect();
        for pos in [0usize, 1, 7, 1000] {
            let t = rope_table(pos, d, 10000.0);
            let mut hf = x.clone();
            rope_rotate_half(&mut hf, &t);
            let mut ours = permute(&x);
            rope_interleaved(&mut ours, d, &t);
            let expect = permute(&hf);
            for (a, b) in ours.iter().zip(&expect) {
                assert!((a - b).abs() < 1e-6, "pos {pos}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn position_zero_is_identity_and_norm_is_kept() {
        let mut x = vec![1.0f32, 2.0, 3.0, 4.0];
        rope_interleaved(&mut x, 4, &rope_table(0, 4, 1e6));
        assert_eq!(x, vec![1.0, 2.0, 3.0, 4.0]);
        rope_interleaved(&mut x, 4, &rope_table(5, 4, 1e6));
        let n: f32 = x.iter().map(|v| v * v).sum();
        assert!((n - 30.0).abs() < 1e-4);
        assert!((x[0] - (5f32.cos() - 2.0 * 5f32.sin())).abs() < 1e-5);
    }
}
