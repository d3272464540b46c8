//! Every kernel path this CPU can run against the scalar reference, for every weight type,
//! on 1, 2, 3, 7, 64 and 257 blocks of random and adversarial data; and `matmul` on every
//! path and thread count.

mod common;

use common::{activations, error_scale, paths, quantize, random_blocks, Rng};
use ouro_simd::{GgmlType, GgmlType::*, Kernels, Path};

/// Relative tolerance of a dot product against the scalar one, relative to the error scale
/// Σ|a_i|·(|w_i| + |w'_i|) (w' = the weight without its min term, which bounds the size of
/// the two parts a K-quant / Q4_1 / Q5_1 dot subtracts). Integer block sums are exact on
/// every path; what differs is the f32 accumulation order over up to 257 blocks.
const DOT_REL_TOL: f64 = 5e-5;
/// Absolute floor of that tolerance (for sums that are exactly zero).
const DOT_ABS_TOL: f64 = 1e-30;
/// Block counts tested for every type.
const LENGTHS: &[usize] = &[1, 2, 3, 7, 64, 257];
/// Weight types with a dot product.
const WEIGHT_TYPES: &[GgmlType] = &[
    Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, F32, F16, BF16,
];

/// Weight rows of `nb` blocks: random with moderate scales, random with scales near the f16
/// limit, and adversarial byte patterns (all 0x80 = -128 int8 / all 0xFF max nibbles / all 0)
/// with the largest finite f16 scales.
fn weights(rng: &mut Rng, ty: GgmlType, nb: usize) -> Vec<Vec<u8>> {
    let mut out = vec![
        random_blocks(rng, ty, nb, 16),
        random_blocks(rng, ty, nb, 30),
    ];
    if ty.block_size() > 1 {
        for fill in [0x80u8, 0xFF, 0x00] {
            let mut b = vec![fill; nb * ty.type_size()];
            for blk in b.chunks_exact_mut(ty.type_size()) {
                for &o in common::f16_fields(ty) {
                    blk[o..o + 2].copy_from_slice(&0x7BFFu16.to_le_bytes()); // 65504
                }
            }
            out.push(b);
        }
    }
    out
}

fn check_type(ty: GgmlType) {
    let mut rng = Rng::new(0x5eed ^ ty.id() as u64);
    let a_type = ouro_simd::vec_dot_type(ty);
    let all = paths();
    let scalar = &all[0].1;
    let elems_per_block = if ty.block_size() == 1 {
        32
    } else {
        ty.block_size()
    };
    let mut lengths: Vec<usize> = LENGTHS.iter().map(|nb| nb * elems_per_block).collect();
    if ty.block_size() == 1 {
        // Plain floats: also lengths that leave a tail after the vector body.
        lengths.extend([1, 3, 7, 33, 8223]);
    }
    let mut checked = 0;
    for n in lengths {
        let nb = n / ty.block_size();
        for w in weights(&mut rng, ty, nb) {
            for x in activations(&mut rng, n) {
                let a = quantize(scalar, a_type, &x);
                let want = (scalar.vec_dot(ty).unwrap())(&w, &a) as f64;
                let scale = error_scale(ty, &w, a_type, &a, n);
                for (path, k) in &all[1..] {
                    let got = (k.vec_dot(ty).unwrap())(&w, &a) as f64;
                    let tol = DOT_REL_TOL * scale + DOT_ABS_TOL;
                    assert!(
                        (got - want).abs() <= tol || (got.is_nan() && want.is_nan()),
                        "{ty} n={n} path {}: {got:e} vs scalar {want:e} (tolerance {tol:e})",
                        path.name()
                    );
                    checked += 1;
                }
            }
        }
    }
    if all.len() > 1 {
        assert!(checked > 0);
    }
}

#[test]
fn q4_0_paths_match_scalar() {
    check_type(Q4_0);
}
#[test]
fn q4_1_paths_match_scalar() {
    check_type(Q4_1);
}
#[test]
fn q5_0_paths_match_scalar() {
    check_type(Q5_0);
}
#[test]
fn q5_1_paths_match_scalar() {
    check_type(Q5_1);
}
#[test]
fn q8_0_paths_match_scalar() {
    check_type(Q8_0);
}
#[test]
fn q4_k_paths_match_scalar() {
    check_type(Q4_K);
}
#[test]
fn q5_k_paths_match_scalar() {
    check_type(Q5_K);
}
#[test]
fn q6_k_paths_match_scalar() {
    check_type(Q6_K);
}
#[test]
fn f32_paths_match_scalar() {
    check_type(F32);
}
#[test]
fn f16_paths_match_scalar() {
    check_type(F16);
}
#[test]
fn bf16_paths_match_scalar() {
    check_type(BF16);
}

/// Four-vector tiles equal four single dots bit for bit.
#[test]
fn x4_tiles_equal_single_dots() {
    let mut rng = Rng::new(11);
    let mut checked = 0;
    for (path, k) in paths() {
        for ty in [Q4_0, Q8_0, Q4_K, Q5_K, Q6_K] {
            let (Some(x4), Some(dot)) = (k.vec_dot_x4(ty), k.vec_dot(ty)) else {
                continue;
            };
            let a_type = ouro_simd::vec_dot_type(ty);
            for nb in LENGTHS {
                let n = nb * ty.block_size();
                for w in weights(&mut rng, ty, *nb) {
                    let acts = activations(&mut rng, n);
                    let a: Vec<Vec<u8>> = acts.iter().map(|x| quantize(&k, a_type, x)).collect();
                    let got = x4(&w, [&a[0], &a[1], &a[2], &a[3]]);
                    for v in 0..4 {
                        assert_eq!(
                            got[v].to_bits(),
                            dot(&w, &a[v]).to_bits(),
                            "{ty} path {} n={n} v={v}",
                            path.name()
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    if Path::available().len() > 1 {
        assert!(checked > 0);
    }
}

/// The 4×4 prefill tiles (prepared weights × prepared activations) equal sixteen single dots
/// bit for bit; a tile refuses rows it cannot take (an odd number of blocks).
#[test]
fn tiles_4x4_equal_single_dots() {
    let mut rng = Rng::new(12);
    let mut checked = 0;
    for (path, k) in paths() {
        for ty in [Q4_0, Q8_0] {
            let (Some(t), Some(dot)) = (k.tile_4x4(ty), k.vec_dot(ty)) else {
                continue;
            };
            let a_type = ouro_simd::vec_dot_type(ty);
            for nb in LENGTHS {
                let n = nb * ty.block_size();
                let a_row = a_type.row_bytes(n as u64).unwrap() as usize;
                let Some(pb) = (t.prepared_bytes)(a_row) else {
                    assert!(
                        nb % 2 == 1,
                        "{ty} {}: tile refused {nb} blocks",
                        path.name()
                    );
                    continue;
                };
                // Four of the usual activation rows (random, +max, alternating, spike), then
                // four positive ramps (block sums of many significant bits: they tell the
                // single dots' scale order (s·dx)·dy from s·(dx·dy)), against every window of
                // four of the usual weight rows (random, near-limit scales, adversarial bytes).
                let ramps = (1..5).map(|slope| {
                    (0..n)
                        .map(|i| 1.0 + ((i * slope) % 13) as f32 * 0.07)
                        .collect::<Vec<f32>>()
                });
                let mut w = weights(&mut rng, ty, *nb);
                w.extend(weights(&mut rng, ty, *nb));
                for xs in [activations(&mut rng, n), ramps.collect()] {
                    let a: Vec<Vec<u8>> = xs.iter().map(|x| quantize(&k, a_type, x)).collect();
                    let pa: Vec<Vec<u8>> = a
                        .iter()
                        .map(|a| {
                            let mut out = vec![0u8; pb];
                            (t.prepare)(a, &mut out);
                            out
                        })
                        .collect();
                    for rows in w.windows(4) {
                        let mut pw = vec![0u8; (t.prepared_w_bytes)(rows[0].len())];
                        (t.prepare_w)([&rows[0], &rows[1], &rows[2], &rows[3]], &mut pw);
                        let got = (t.tile)(&pw, [&pa[0], &pa[1], &pa[2], &pa[3]]);
                        for r in 0..4 {
                            for v in 0..4 {
                                assert_eq!(
                                    got[r][v].to_bits(),
                                    dot(&rows[r], &a[v]).to_bits(),
                                    "{ty} path {} n={n} row {r} vec {v}",
                                    path.name()
                                );
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    // The paths with tiles: every Q4_0 and Q8_0 tile was checked (and not all refused).
    let tiled = [Path::Avx512, Path::Amx, Path::Dotprod, Path::I8mm];
    let with_tiles = Path::available()
        .into_iter()
        .filter(|p| tiled.contains(p))
        .count();
    assert!(
        checked >= with_tiles * 2 * 16,
        "{checked} tile outputs checked on {with_tiles} tiled paths"
    );
}

/// `matmul` on every path equals that path's single dots bit for bit (the 4×4 tiles, the
/// four-vector and four-row kernels and the single dots must agree wherever the driver switches
/// between them): rows not a multiple of 4, batches not a multiple of 4, 1 to 9 blocks.
#[test]
fn matmul_equals_single_dots_on_every_shape() {
    let mut rng = Rng::new(21);
    let mut tiled = 0;
    for (path, k) in paths() {
        for ty in [Q4_0, Q8_0, Q4_K, Q6_K] {
            let (dot, a_type) = (k.vec_dot(ty).unwrap(), ouro_simd::vec_dot_type(ty));
            let per_row = if ty.block_size() == 32 { 9 } else { 2 };
            for nb in [1, 2, 3, per_row] {
                let cols = nb * ty.block_size();
                let row = ty.row_bytes(cols as u64).unwrap() as usize;
                for rows in [4usize, 5, 11] {
                    let w = random_blocks(&mut rng, ty, rows * nb, 15);
                    for n_vecs in [2usize, 4, 5, 7, 9] {
                        let x: Vec<f32> = (0..n_vecs * cols).map(|_| rng.normal(1.0)).collect();
                        let mut y = vec![0f32; rows * n_vecs];
                        ouro_simd::matmul_with(&k, ty, &w, rows, cols, &x, n_vecs, &mut y);
                        for v in 0..n_vecs {
                            let a = quantize(&k, a_type, &x[v * cols..(v + 1) * cols]);
                            for r in 0..rows {
                                let want = dot(&w[r * row..(r + 1) * row], &a);
                                assert_eq!(
                                    y[v * rows + r].to_bits(),
                                    want.to_bits(),
                                    "{ty} path {}: {rows}x{cols}, {n_vecs} vectors, row {r} vec {v}",
                                    path.name()
                                );
                            }
                        }
                        if k.tile_4x4(ty).is_some() && n_vecs >= 4 {
                            tiled += 1;
                        }
                    }
                }
            }
        }
    }
    if Path::available()
        .iter()
        .any(|p| matches!(p, Path::Avx512 | Path::Amx | Path::Dotprod | Path::I8mm))
    {
        assert!(tiled > 0);
    }
}

/// Activation quantizers are bit-identical to the scalar reference on every path.
#[test]
fn activation_quantizers_are_bit_identical() {
    let mut rng = Rng::new(99);
    let all = paths();
    for nb in LENGTHS {
        let n = nb * 256;
        for x in activations(&mut rng, n) {
            for ty in [Q8_0, Q8_1, Q8_K] {
                let want = quantize(&all[0].1, ty, &x);
                for (path, k) in &all[1..] {
                    assert!(
                        quantize(k, ty, &x) == want,
                        "{ty} quantizer of path {} differs from scalar (n={n})",
                        path.name()
                    );
                }
            }
        }
    }
}

/// Scalar dots of every row with one vector, and their error scales.
fn reference_row_dots(
    ty: GgmlType,
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
) -> Vec<(f64, f64)> {
    let row = ty.row_bytes(cols as u64).unwrap() as usize;
    let a_type = ouro_simd::vec_dot_type(ty);
    let a = quantize(&Kernels::SCALAR, a_type, x);
    (0..rows)
        .map(|r| {
            let wr = &w[r * row..(r + 1) * row];
            let dot = (Kernels::SCALAR.vec_dot(ty).unwrap())(wr, &a) as f64;
            (dot, error_scale(ty, wr, a_type, &a, cols))
        })
        .collect()
}

#[test]
fn matmul_is_bit_identical_across_threads_and_close_to_scalar() {
    let mut rng = Rng::new(3);
    let (rows, cols) = (67, 512);
    for &ty in WEIGHT_TYPES {
        let w = random_blocks(&mut rng, ty, rows * cols / ty.block_size(), 15);
        for n_vecs in [1usize, 3, 6, 8, 16, 21] {
            let x: Vec<f32> = (0..n_vecs * cols).map(|_| rng.normal(1.0)).collect();
            for (path, k) in paths() {
                let mut first: Option<Vec<f32>> = None;
                for threads in [1, 2, 3] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let mut y = vec![0f32; n_vecs * rows];
                    pool.install(|| {
                        ouro_simd::matmul_with(&k, ty, &w, rows, cols, &x, n_vecs, &mut y)
                    });
                    match &first {
                        None => first = Some(y),
                        Some(f) => assert!(
                            f.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{ty} path {} differs between thread counts",
                            path.name()
                        ),
                    }
                }
                let y = first.unwrap();
                for v in 0..n_vecs {
                    // A vector's outputs do not depend on the batch it came in.
                    let mut single = vec![0f32; rows];
                    let xv = &x[v * cols..(v + 1) * cols];
                    ouro_simd::matmul_with(&k, ty, &w, rows, cols, xv, 1, &mut single);
                    // Except from the panel GEMM (batches ≥ PANEL_MIN_VECS), which sums the
                    // same exact integers in another float order: then only the tolerance
                    // below holds (tests/panel.rs checks the panel's own arithmetic).
                    let panel = n_vecs >= ouro_simd::PANEL_MIN_VECS
                        && k.panel_gemm.is_some()
                        && ouro_simd::panel::PanelFormat::of(ty).is_some();
                    assert!(
                        panel || single.iter().zip(&y[v * rows..(v + 1) * rows]).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{ty} path {}: vector {v} of a batch of {n_vecs} differs from its single product",
                        path.name()
                    );
                    let want = reference_row_dots(ty, &w, rows, cols, &x[v * cols..(v + 1) * cols]);
                    for r in 0..rows {
                        let (g, (e, scale)) = (y[v * rows + r] as f64, want[r]);
                        let tol = DOT_REL_TOL * scale + DOT_ABS_TOL;
                        assert!(
                            (g - e).abs() <= tol,
                            "{ty} path {} vec {v} row {r}: {g} vs {e}",
                            path.name()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn paths_parse_and_unavailable_paths_are_errors() {
    for p in Path::ALL {
        assert_eq!(Path::from_name(p.env_name()), Some(p));
        assert_eq!(Path::from_name(p.name()), Some(p));
    }
    assert_eq!(Path::from_name("sse9"), None);
    assert!(Path::Scalar.is_available());
    #[cfg(target_arch = "x86_64")]
    {
        let e = Path::Neon.kernels().err().expect("no NEON on x86_64");
        assert_eq!(e.to_string(), "OURO_SIMD=neon: this CPU lacks aarch64");
    }
    let best = Path::best();
    assert_eq!(Path::available().last(), Some(&best));
    assert!([
        "avx512-amx",
        "avx512-vnni",
        "avx2",
        "neon-i8mm",
        "neon-dotprod",
        "neon",
        "scalar"
    ]
    .contains(&ouro_simd::selected()));
}

#[test]
#[should_panic(expected = "ouro_simd::dequantize_row: 64 Q4_0 elements need 36 bytes, got 35")]
fn dequantize_row_rejects_a_wrong_length() {
    let mut out = vec![0f32; 64];
    ouro_simd::dequantize_row(Q4_0, &[0u8; 35], &mut out);
}

#[test]
#[should_panic(expected = "not a whole number of Q8_0 blocks")]
fn quantize_row_rejects_a_partial_block() {
    let mut out = vec![0u8; 34];
    ouro_simd::quantize_row(Q8_0, &[0f32; 31], &mut out);
}

/// Four-row GEMV kernels equal four single dots bit for bit (every row a different weight
/// pattern, each activation pattern in turn).
#[test]
fn r4_rows_equal_single_dots() {
    let mut rng = Rng::new(12);
    let mut checked = 0;
    for (path, k) in paths() {
        for ty in [Q4_0, Q8_0] {
            let (Some(r4), Some(dot)) = (k.vec_dot_r4(ty), k.vec_dot(ty)) else {
                continue;
            };
            let a_type = ouro_simd::vec_dot_type(ty);
            for nb in LENGTHS {
                let n = nb * ty.block_size();
                let mut w = weights(&mut rng, ty, *nb);
                w.extend(weights(&mut rng, ty, *nb));
                for x in activations(&mut rng, n) {
                    let a = quantize(&k, a_type, &x);
                    for rows in w.windows(4) {
                        let got = r4([&rows[0], &rows[1], &rows[2], &rows[3]], &a);
                        for r in 0..4 {
                            assert_eq!(
                                got[r].to_bits(),
                                dot(&rows[r], &a).to_bits(),
                                "{ty} path {} n={n} row {r}",
                                path.name()
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    if Path::available().contains(&Path::Avx512) {
        assert!(checked > 0);
    }
}

/// The attention row kernels (f16 key · f32 query, f32 += w · f16 value) on every path against
/// the scalar ones, for lengths around the SIMD widths (8, 16, 32) and the usual head sizes.
/// Only the f32 summation order differs: |Δdot| ≤ 1e-5 · Σ|x·y| + 1e-30 (also against f64), and each mad element within
/// one rounding of the two-step scalar result (|Δ| ≤ 2⁻²³ · (|y| + |a·x|)).
#[test]
fn attention_row_kernels_match_scalar() {
    use half::f16;
    let mut rng = Rng::new(11);
    for n in [
        1usize, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 80, 128, 129, 256,
    ] {
        let x: Vec<f16> = (0..n).map(|_| f16::from_f32(rng.normal(2.0))).collect();
        let y: Vec<f32> = (0..n).map(|_| rng.normal(1.0)).collect();
        let scale: f64 = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a.to_f32() as f64 * *b as f64).abs())
            .sum();
        let want = ouro_simd::scalar::dot_f16_f32(&x, &y);
        let exact: f64 = x
            .iter()
            .zip(&y)
            .map(|(a, b)| a.to_f32() as f64 * *b as f64)
            .sum();
        assert!(
            (want as f64 - exact).abs() <= 1e-5 * scale + 1e-30,
            "scalar n={n}"
        );
        let a = rng.normal(0.5);
        let mut want_y = y.clone();
        ouro_simd::scalar::mad_f16_f32(&mut want_y, a, &x);
        for (p, k) in paths() {
            let got = (k.dot_f16_f32)(&x, &y);
            assert!(
                (got as f64 - want as f64).abs() <= 1e-5 * scale + 1e-30,
                "{p:?} dot n={n}: {got} vs {want}"
            );
            let mut got_y = y.clone();
            (k.mad_f16_f32)(&mut got_y, a, &x);
            for i in 0..n {
                let tol = f32::EPSILON * (y[i].abs() + (a * x[i].to_f32()).abs());
                assert!(
                    (got_y[i] - want_y[i]).abs() <= tol,
                    "{p:?} mad n={n} i={i}: {} vs {}",
                    got_y[i],
                    want_y[i]
                );
            }
        }
    }
}

/// The rows kernels (decode attention: one head's scores over consecutive keys, its value sum
/// over consecutive values) give, on every path, the bits of that path's single-row kernel
/// row after row — the batched schedule uses the single rows, so decode and verification
/// agree bit for bit — for head sizes with and without 8-lane tails, 0 to 33 rows, rows
/// packed and strided as in the cache, and a slice that ends exactly at the last row.
#[test]
fn attention_rows_kernels_equal_their_single_row_kernels() {
    use half::f16;
    let mut rng = Rng::new(12);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for len in [3usize, 8, 40, 64, 72, 128, 136] {
        for (n_rows, stride) in [
            (0usize, len),
            (1, len),
            (9, len),
            (33, 3 * len + 5),
            (17, 16 * len),
        ] {
            let x_len = n_rows.saturating_sub(1) * stride + len;
            let x: Vec<f16> = (0..x_len).map(|_| f16::from_f32(rng.normal(2.0))).collect();
            let y: Vec<f32> = (0..len).map(|_| rng.normal(1.0)).collect();
            let a: Vec<f32> = (0..n_rows).map(|_| rng.normal(0.5)).collect();
            let row = |r: usize| &x[r * stride..][..len];
            for (p, k) in paths() {
                let want: Vec<f32> = (0..n_rows).map(|r| (k.dot_f16_f32)(row(r), &y)).collect();
                let mut got = vec![f32::NAN; n_rows];
                (k.dot_f16_f32_rows)(&x, stride, &y, &mut got);
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "{p:?} dot rows len={len} n={n_rows}"
                );
                let mut want_y = y.clone();
                for (r, &ar) in a.iter().enumerate() {
                    (k.mad_f16_f32)(&mut want_y, ar, row(r));
                }
                let mut got_y = y.clone();
                (k.mad_f16_f32_rows)(&mut got_y, &a, &x, stride);
                assert_eq!(
                    bits(&got_y),
                    bits(&want_y),
                    "{p:?} mad rows len={len} n={n_rows}"
                );
            }
        }
    }
    // A slice one value short of the last row is refused, not read past.
    let x = vec![f16::ZERO; 2 * 8 + 7];
    let refused = std::panic::catch_unwind(|| {
        (ouro_simd::kernels().dot_f16_f32_rows)(&x, 8, &[0.0; 8], &mut [0.0; 3])
    });
    assert!(refused.is_err());
}

/// The q8_0 KV rows kernels (one call per head in decode) give, on every path, the bits of
/// the path's single-row kernels row by row — ranges starting and ending inside blocks
/// included (`off`, `stride` in values; a cached row is a whole number of blocks).
#[test]
fn q8_0_attention_rows_kernels_equal_their_single_row_kernels() {
    let mut rng = Rng::new(13);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (off, len) in [
        (0usize, 32usize),
        (0, 128),
        (64, 64),
        (32, 192),
        (5, 40),
        (33, 7),
        (96, 136),
    ] {
        for (n_rows, stride) in [
            (0usize, 256usize),
            (1, 256),
            (9, 256),
            (70, 512),
            (17, 2048),
        ] {
            let values = (off + n_rows.saturating_sub(1) * stride + len).next_multiple_of(32);
            let v: Vec<f32> = (0..values).map(|_| rng.normal(2.0)).collect();
            let mut x = vec![0u8; values / 32 * 34];
            ouro_simd::quantize_row(GgmlType::Q8_0, &v, &mut x);
            let y: Vec<f32> = (0..len).map(|_| rng.normal(1.0)).collect();
            let a: Vec<f32> = (0..n_rows).map(|_| rng.normal(0.5)).collect();
            for (p, k) in paths() {
                let want: Vec<f32> = (0..n_rows)
                    .map(|r| (k.dot_q8_0_f32)(&x, off + r * stride, &y))
                    .collect();
                let mut got = vec![f32::NAN; n_rows];
                (k.dot_q8_0_f32_rows)(&x, off, stride, &y, &mut got);
                let what = format!("{p:?} off={off} len={len} n={n_rows}");
                assert_eq!(bits(&got), bits(&want), "dot rows {what}");
                let mut want_y = y.clone();
                for (r, &ar) in a.iter().enumerate() {
                    (k.mad_q8_0_f32)(&mut want_y, ar, &x, off + r * stride);
                }
                let mut got_y = y.clone();
                (k.mad_q8_0_f32_rows)(&mut got_y, &a, &x, off, stride);
                assert_eq!(bits(&got_y), bits(&want_y), "mad rows {what}");
            }
        }
    }
    // Blocks one short of the last row's end are refused, not read past.
    let x = vec![0u8; 3 * 34];
    for (off, n) in [(0, 3), (40, 2)] {
        let refused = std::panic::catch_unwind(|| {
            (ouro_simd::kernels().dot_q8_0_f32_rows)(&x, off, 32, &[0.0; 40], &mut vec![0.0; n])
        });
        assert!(refused.is_err(), "off={off} n={n}");
    }
}
