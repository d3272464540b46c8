//! The 4×4 prefill tiles (`Kernels::tile_4x4`) of every path this CPU runs, for every weight
//! type that has one: each tile equals sixteen calls of the same table's single-row dot bit
//! for bit, on several row lengths (1, 2, 3 and 7 blocks or super-blocks; odd block counts of
//! Q4_0 / Q8_0 may be refused) and random and adversarial data; and `matmul_with` on each
//! path (rows and vector counts that are not multiples of 4, so the driver's edges run too)
//! equals the path's single dots bit for bit and the scalar path within the dot tolerance.

mod common;

use common::{paths, quantize, random_blocks, Rng};
use ouro_simd::{GgmlType, GgmlType::*, Kernels, Path};

/// Types with (possibly) a 4×4 tile.
const TILE_TYPES: &[GgmlType] = &[Q4_0, Q8_0, Q4_K, Q5_K, Q6_K];
/// Blocks (super-blocks for K-quants) per row.
const BLOCKS: &[usize] = &[1, 2, 3, 7];
/// As tests/paths.rs: relative tolerance against the error scale Σ|a|·(|w| + |w without min|).
const DOT_REL_TOL: f64 = 5e-5;
const DOT_ABS_TOL: f64 = 1e-30;

/// Activation rows: the shared ones ([`common::activations`]) and a row whose Q8_K sub-sums
/// are extreme (all −1e3 in the first half).
fn activations(rng: &mut Rng, n: usize) -> Vec<Vec<f32>> {
    let mut rows = common::activations(rng, n);
    rows.push(
        (0..n)
            .map(|i| if i < n / 2 { -1e3 } else { rng.normal(1.0) })
            .collect(),
    );
    rows
}

/// Weight rows: random (moderate and near-limit scales) and adversarial bytes (0x80, 0xFF,
/// 0x00) with the largest finite f16 scales.
fn weights(rng: &mut Rng, ty: GgmlType, nb: usize) -> Vec<Vec<u8>> {
    let mut out = vec![
        random_blocks(rng, ty, nb, 16),
        random_blocks(rng, ty, nb, 30),
        random_blocks(rng, ty, nb, 12),
    ];
    for fill in [0x80u8, 0xFF, 0x00] {
        let mut b = vec![fill; nb * ty.type_size()];
        for blk in b.chunks_exact_mut(ty.type_size()) {
            for &o in common::f16_fields(ty) {
                blk[o..o + 2].copy_from_slice(&0x7BFFu16.to_le_bytes()); // 65504
            }
        }
        out.push(b);
    }
    out
}

#[test]
fn tiles_equal_single_dots_bit_for_bit() {
    let mut rng = Rng::new(0x711e);
    let mut checked = 0usize;
    for (path, k) in paths() {
        for &ty in TILE_TYPES {
            let (Some(t), Some(dot)) = (k.tile_4x4(ty), k.vec_dot(ty)) else {
                continue;
            };
            let a_type = ouro_simd::vec_dot_type(ty);
            for &nb in BLOCKS {
                let n = nb * ty.block_size();
                let a_row = a_type.row_bytes(n as u64).unwrap() as usize;
                let Some(pb) = (t.prepared_bytes)(a_row) else {
                    assert!(
                        matches!(ty, Q4_0 | Q8_0) && nb % 2 == 1,
                        "{ty} {}: tile refused {nb} blocks",
                        path.name()
                    );
                    continue;
                };
                let a: Vec<Vec<u8>> = activations(&mut rng, n)
                    .iter()
                    .map(|x| quantize(&k, a_type, x))
                    .collect();
                let pa: Vec<Vec<u8>> = a
                    .iter()
                    .map(|a| {
                        let mut out = vec![0u8; pb];
                        (t.prepare)(a, &mut out);
                        out
                    })
                    .collect();
                let w = weights(&mut rng, ty, nb);
                // Every window of four weight rows against two windows of four vectors.
                for rows in w.windows(4) {
                    let mut pw = vec![0u8; (t.prepared_w_bytes)(rows[0].len())];
                    (t.prepare_w)([&rows[0], &rows[1], &rows[2], &rows[3]], &mut pw);
                    for vs in [[0, 1, 2, 3], [4, 3, 2, 1]] {
                        let got = (t.tile)(&pw, vs.map(|v| pa[v].as_slice()));
                        for r in 0..4 {
                            for (j, &v) in vs.iter().enumerate() {
                                let want = dot(&rows[r], &a[v]);
                                assert_eq!(
                                    got[r][j].to_bits(),
                                    want.to_bits(),
                                    "{ty} path {} blocks {nb} row {r} vec {v}: {} vs {want}",
                                    path.name(),
                                    got[r][j]
                                );
                                checked += 1;
                            }
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

/// The error scale of one dot (see DOT_REL_TOL).
fn error_scale(ty: GgmlType, w: &[u8], x: &[f32]) -> f64 {
    let n = x.len();
    let mut wv = vec![0f32; n];
    ouro_simd::dequantize_row(ty, w, &mut wv);
    let mut w_nomin = w.to_vec();
    if matches!(ty, Q4_K | Q5_K) {
        for blk in w_nomin.chunks_exact_mut(ty.type_size()) {
            blk[2..4].copy_from_slice(&[0, 0]);
        }
    }
    let mut wn = vec![0f32; n];
    ouro_simd::dequantize_row(ty, &w_nomin, &mut wn);
    (0..n)
        .map(|i| x[i].abs() as f64 * 1.01 * (wv[i].abs() as f64 + wn[i].abs() as f64))
        .sum()
}

/// `matmul_with` on every path: rows 4, 7 and 13, vectors 2..=9, 1 and 3 (super-)blocks:
/// equal to the path's own single dots bit for bit, close to the scalar path.
#[test]
fn matmul_on_every_path_equals_its_dots_and_is_close_to_scalar() {
    let mut rng = Rng::new(0x6e33);
    let all = paths();
    for &ty in TILE_TYPES {
        let a_type = ouro_simd::vec_dot_type(ty);
        for nb in [2usize, 3] {
            let cols = nb * ty.block_size();
            let row = ty.row_bytes(cols as u64).unwrap() as usize;
            for rows in [4usize, 7, 13] {
                let w = random_blocks(&mut rng, ty, rows * nb, 15);
                for n_vecs in [2usize, 4, 5, 8, 9] {
                    let x: Vec<f32> = (0..n_vecs * cols).map(|_| rng.normal(1.0)).collect();
                    let mut want = vec![0f32; n_vecs * rows];
                    ouro_simd::matmul_with(
                        &Kernels::SCALAR,
                        ty,
                        &w,
                        rows,
                        cols,
                        &x,
                        n_vecs,
                        &mut want,
                    );
                    for (path, k) in &all {
                        let mut y = vec![0f32; n_vecs * rows];
                        ouro_simd::matmul_with(k, ty, &w, rows, cols, &x, n_vecs, &mut y);
                        let dot = k.vec_dot(ty).unwrap();
                        for v in 0..n_vecs {
                            let xv = &x[v * cols..(v + 1) * cols];
                            let a = quantize(k, a_type, xv);
                            for r in 0..rows {
                                let wr = &w[r * row..(r + 1) * row];
                                let (g, e) = (y[v * rows + r], dot(wr, &a));
                                assert_eq!(
                                    g.to_bits(),
                                    e.to_bits(),
                                    "{ty} path {} {rows}x{cols} n={n_vecs} vec {v} row {r}: \
                                     matmul {g} vs single dot {e}",
                                    path.name()
                                );
                                let s = want[v * rows + r] as f64;
                                let tol = DOT_REL_TOL * error_scale(ty, wr, xv) + DOT_ABS_TOL;
                                assert!(
                                    (g as f64 - s).abs() <= tol,
                                    "{ty} path {} {rows}x{cols} n={n_vecs} vec {v} row {r}: \
                                     {g} vs scalar {s} (tolerance {tol:e})",
                                    path.name()
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
