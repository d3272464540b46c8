//! The q8_0 KV-cache row kernels (`dot_q8_0_f32`: Q8_0 key range · f32 query;
//! `mad_q8_0_f32`: f32 += a · Q8_0 value range) on every path this CPU can run against the
//! scalar twins, over ranges that start and end inside blocks, whole blocks, and the usual
//! head sizes; on rows quantized from random data and on random bytes (quants down to −128,
//! any finite scale). Under QEMU (scripts/neon-ci.sh) this runs the NEON versions.
//!
//! Only the f32 summation order differs between paths (the quants are widened to f32
//! exactly): |Δdot| ≤ 1e-5 · Σ|d·q·y| + 1e-30, the scalar one also against an f64 sum; each
//! mad element within one rounding of the two-step scalar result (FMA vs multiply + add):
//! |Δ| ≤ 2⁻²³ · (|y| + |a·d·q|).

mod common;

use common::Rng;
use ouro_simd::{GgmlType, Kernels, Path};

fn paths() -> Vec<(Path, Kernels)> {
    Path::available()
        .into_iter()
        .map(|p| (p, p.kernels().expect("available path builds")))
        .collect()
}

/// (d, q) of value `e` of a Q8_0 row.
fn value(x: &[u8], e: usize) -> (f64, f64) {
    let b = &x[e / 32 * 34..];
    let d = half::f16::from_le_bytes([b[0], b[1]]).to_f64();
    (d, b[2 + e % 32] as i8 as f64)
}

fn check_row(x: &[u8], rng: &mut Rng, ranges: &[(usize, usize)]) {
    let all = paths();
    for &(off, n) in ranges {
        let y: Vec<f32> = (0..n).map(|_| rng.normal(1.0)).collect();
        let (mut exact, mut scale) = (0f64, 0f64);
        for (i, &yi) in y.iter().enumerate() {
            let (d, q) = value(x, off + i);
            exact += d * q * yi as f64;
            scale += (d * q * yi as f64).abs();
        }
        let want = ouro_simd::scalar::dot_q8_0_f32(x, off, &y);
        assert!(
            (want as f64 - exact).abs() <= 1e-5 * scale + 1e-30,
            "scalar dot {off}+{n}: {want} vs {exact}"
        );
        let a = rng.normal(0.5);
        let mut want_y = y.clone();
        ouro_simd::scalar::mad_q8_0_f32(&mut want_y, a, x, off);
        for (i, (&w, &yi)) in want_y.iter().zip(&y).enumerate() {
            let (d, q) = value(x, off + i);
            let e = yi as f64 + a as f64 * d * q;
            assert!(
                (w as f64 - e).abs() <= 2.0 * f32::EPSILON as f64 * (yi.abs() as f64 + e.abs()),
                "scalar mad {off}+{n} at {i}"
            );
        }
        for (p, k) in &all {
            let got = (k.dot_q8_0_f32)(x, off, &y);
            assert!(
                (got as f64 - want as f64).abs() <= 1e-5 * scale + 1e-30,
                "{p:?} dot {off}+{n}: {got} vs {want}"
            );
            let mut got_y = y.clone();
            (k.mad_q8_0_f32)(&mut got_y, a, x, off);
            for i in 0..n {
                let (d, q) = value(x, off + i);
                let ad = a * d as f32;
                let tol = f32::EPSILON * (y[i].abs() + (ad * q as f32).abs());
                assert!(
                    (got_y[i] - want_y[i]).abs() <= tol,
                    "{p:?} mad {off}+{n} at {i}: {} vs {}",
                    got_y[i],
                    want_y[i]
                );
            }
        }
    }
}

/// Ranges over a row of `nb` blocks: heads of 64 / 80 / 128 values at aligned and unaligned
/// starts, ranges inside one block, crossing one boundary, and the whole row.
fn ranges(nb: usize) -> Vec<(usize, usize)> {
    let len = nb * 32;
    let mut r = vec![
        (0, len),
        (0, 1),
        (31, 1),
        (31, 2),
        (5, 20),
        (3, 29),
        (33, 7),
    ];
    for hd in [8usize, 9, 16, 17, 40, 64, 80, 128] {
        for start in [0usize, 7, 16, 32, 40, 64] {
            if start + hd <= len {
                r.push((start, hd));
            }
        }
    }
    if len >= 17 {
        r.push((len - 17, 17));
    }
    r.retain(|&(off, n)| off + n <= len);
    r
}

#[test]
fn q8_0_kv_kernels_match_scalar_on_quantized_rows() {
    let mut rng = Rng::new(21);
    for nb in [1usize, 2, 3, 5, 8] {
        let x: Vec<f32> = (0..nb * 32).map(|_| rng.normal(2.0)).collect();
        let mut row = vec![0u8; nb * 34];
        ouro_simd::quantize_row(GgmlType::Q8_0, &x, &mut row);
        check_row(&row, &mut rng, &ranges(nb));
    }
}

#[test]
fn q8_0_kv_kernels_match_scalar_on_random_bytes() {
    let mut rng = Rng::new(22);
    for nb in [1usize, 4, 8] {
        let mut row = rng.bytes(nb * 34);
        for b in row.chunks_exact_mut(34) {
            // Finite scales up to 2^3: no inf/NaN products.
            b[..2].copy_from_slice(&rng.f16_with_max_exp(18));
        }
        check_row(&row, &mut rng, &ranges(nb));
    }
}

/// A range past the end of the row is a panic with the kernel's name, on every path.
#[test]
fn q8_0_kv_kernels_reject_a_range_past_the_row() {
    let row = vec![0u8; 34];
    for (p, k) in paths() {
        let r = std::panic::catch_unwind(|| (k.dot_q8_0_f32)(&row, 16, &[0.0; 17]));
        assert!(r.is_err(), "{p:?} dot past the row");
        let r = std::panic::catch_unwind(|| {
            let mut y = [0f32; 33];
            (k.mad_q8_0_f32)(&mut y, 1.0, &row, 0)
        });
        assert!(r.is_err(), "{p:?} mad past the row");
    }
}
