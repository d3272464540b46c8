//! The panel GEMM (`ouro_simd::panel`): every path's kernel is bit-identical to the scalar
//! twin, and the twin equals the row-at-a-time scalar dots within the dot tolerance (only the
//! order of float additions differs), for every format, partial panels, 1–8 vectors per call,
//! and random and adversarial blocks.

mod common;

use common::{error_scale, random_blocks, Rng};
use ouro_simd::panel::{gemm_scalar, Panel, PanelActs, PanelFormat, PANEL_ROWS};
use ouro_simd::{GgmlType, GgmlType::*, Kernels, Path, TILES_MIN_VECS};

/// Relative tolerance against the scalar dot, of the error scale Σ|a|·(|w| + |w'|): the
/// integer group sums are exact; the f32 accumulation differs in order (and, for K-quants,
/// in where the sub-block scales are applied: in f32 here, in i32 in the dot).
const REL_TOL: f64 = 2e-6;

const FORMATS: &[(GgmlType, PanelFormat)] = &[
    (Q4_0, PanelFormat::Q4_0),
    (Q8_0, PanelFormat::Q8_0),
    (Q4_K, PanelFormat::Q4_K),
    (Q5_K, PanelFormat::Q5_K),
    (Q6_K, PanelFormat::Q6_K),
];

fn quantize(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; ty.row_bytes(x.len() as u64).unwrap() as usize];
    (Kernels::SCALAR.quantize_activation(ty).unwrap())(x, &mut out);
    out
}

/// Rows of `nb` blocks: random moderate, random near the f16 limit, and fills with the largest
/// finite scale (all 0x80 bytes, all 0xFF, all 0).
fn weight_rows(rng: &mut Rng, ty: GgmlType, nb: usize, rows: usize) -> Vec<Vec<u8>> {
    (0..rows)
        .map(|r| match r % 5 {
            0..=1 => random_blocks(rng, ty, nb, 16),
            2 => random_blocks(rng, ty, nb, 28),
            f => {
                let fill = [0x80u8, 0xFF, 0x00][f - 3 + (r / 5) % 2];
                let mut b = vec![fill; nb * ty.type_size()];
                for blk in b.chunks_exact_mut(ty.type_size()) {
                    for &o in common::f16_fields(ty) {
                        blk[o..o + 2].copy_from_slice(&0x7BFFu16.to_le_bytes());
                    }
                }
                b
            }
        })
        .collect()
}

#[test]
fn panel_kernels_equal_the_scalar_twin_and_the_row_dots() {
    let mut rng = Rng::new(0x9a7e1);
    let paths: Vec<(Path, Kernels)> = Path::available()
        .into_iter()
        .map(|p| (p, p.kernels().unwrap()))
        .collect();
    let mut simd_checked = 0;
    for &(ty, fmt) in FORMATS {
        let a_type = ouro_simd::vec_dot_type(ty);
        let per = if fmt.q8k() { 256 } else { 32 };
        for (nb, rows, n) in [(1, 16, 8), (3, 5, 3), (2, 16, 11), (5, 13, 1)] {
            let k = nb * per / ty.block_size() * ty.block_size();
            let w = weight_rows(&mut rng, ty, k / ty.block_size(), rows);
            let xs: Vec<Vec<f32>> = (0..n)
                .map(|v| match v % 3 {
                    0 => (0..k).map(|_| rng.normal(1.0)).collect(),
                    1 => (0..k)
                        .map(|i| if i % 2 == 0 { 1e3 } else { -1e3 })
                        .collect(),
                    _ => vec![3.5; k],
                })
                .collect();
            let acts: Vec<Vec<u8>> = xs.iter().map(|x| quantize(a_type, x)).collect();
            let flat: Vec<u8> = acts.concat();
            let mut panel = Panel::default();
            let w_row = w[0].len();
            let w_flat = w.concat();
            panel.pack(fmt, k, &w_flat, w_row, rows);
            let mut pa = PanelActs::default();
            pa.prepare(fmt, k, &flat, n);
            // The scalar twin, up to 8 vectors per call.
            let mut want = vec![0f32; n * PANEL_ROWS];
            for v0 in (0..n).step_by(8) {
                let nv = 8.min(n - v0);
                gemm_scalar(&panel, &pa, v0, nv, &mut want[v0 * PANEL_ROWS..]);
            }
            for v in 0..n {
                for r in 0..PANEL_ROWS {
                    let got = want[v * PANEL_ROWS + r] as f64;
                    if r >= rows {
                        assert_eq!(got, 0.0, "{ty}: padding row {r} must be 0");
                        continue;
                    }
                    let dot = (Kernels::SCALAR.vec_dot(ty).unwrap())(&w[r], &acts[v]) as f64;
                    let tol = REL_TOL * error_scale(ty, &w[r], a_type, &acts[v], k) + 1e-30;
                    assert!(
                        (got - dot).abs() <= tol,
                        "{ty} k={k} row {r} vec {v}: panel {got:e} vs dot {dot:e} (tol {tol:e})"
                    );
                }
            }
            // Every SIMD path's kernel: bit for bit, with every split of the vectors.
            for (path, kern) in &paths {
                let Some(pk) = kern.panel_gemm else { continue };
                // The path's pack: the same panel, word for word.
                let mut packed = Panel::default();
                (pk.pack)(&mut packed, fmt, k, &w_flat, w_row, rows);
                assert_eq!(
                    packed.q,
                    panel.q,
                    "{ty} k={k} rows={rows}: {} pack",
                    path.name()
                );
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&packed.scale),
                    bits(&panel.scale),
                    "{ty}: {} scales",
                    path.name()
                );
                assert_eq!(
                    bits(&packed.min),
                    bits(&panel.min),
                    "{ty}: {} mins",
                    path.name()
                );
                let f = pk.gemm;
                for step in [1, 3, 8] {
                    let mut got = vec![f32::NAN; n * PANEL_ROWS];
                    for v0 in (0..n).step_by(step) {
                        let nv = step.min(n - v0);
                        f(&panel, &pa, v0, nv, &mut got[v0 * PANEL_ROWS..]);
                    }
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "{ty} k={k} path {} step {step} differs from the twin",
                        path.name()
                    );
                    simd_checked += 1;
                }
            }
        }
    }
    if Path::available()
        .iter()
        .any(|p| p.kernels().unwrap().panel_gemm.is_some())
    {
        assert!(simd_checked > 0);
    }
}

#[test]
#[should_panic(expected = "panel and activations of one format")]
fn panel_refuses_mismatched_activations() {
    let w = vec![0u8; 18];
    let mut panel = Panel::default();
    panel.pack(PanelFormat::Q4_0, 32, &w, 18, 1);
    let mut pa = PanelActs::default();
    pa.prepare(PanelFormat::Q8_0, 32, &[0u8; 34], 1);
    gemm_scalar(&panel, &pa, 0, 1, &mut [0f32; 16]);
}

/// Resident panels (`ouro_simd::resident`): the repacked Q4_0 / Q8_0 weights give, through
/// the scalar twin, bit for bit what the on-the-fly panel's twin gives for the same rows; every
/// path's `matmul_resident` gives the same bits; and each vector alone gives the bits it gets
/// inside the batch (decode = verification).
#[test]
fn resident_panels_equal_the_panel_twin_bit_for_bit() {
    use ouro_simd::resident::{self, Resident};
    let mut rng = Rng::new(0x5e51d);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut simd_checked = 0;
    let mut tiles_checked = 0;
    let formats = [
        (Q4_0, PanelFormat::Q4_0),
        (Q8_0, PanelFormat::Q8_0),
        (Q4_K, PanelFormat::Q4_K),
        (Q6_K, PanelFormat::Q6_K),
    ];
    for (ty, fmt) in formats {
        // n ≥ 16: whole tiles of 16 vectors (AMX) and what is left after them.
        let shapes = [
            (1, 16, 8),
            (3, 5, 3),
            (2, 37, 11),
            (5, 13, 1),
            (8, 48, 17),
            (4, 40, 16),
            (3, 21, 35),
        ];
        for (nb, rows, n) in shapes {
            if fmt.q8k() && nb > 3 {
                continue;
            }
            let k = nb * if fmt.q8k() { 256 } else { 32 };
            let w = weight_rows(&mut rng, ty, nb, rows);
            let w_flat = w.concat();
            let w_row = w[0].len();
            let x: Vec<f32> = (0..n * k)
                .map(|i| match (i / k) % 3 {
                    0 => rng.normal(1.0),
                    1 => {
                        if i % 2 == 0 {
                            1e3
                        } else {
                            -1e3
                        }
                    }
                    _ => 3.5,
                })
                .collect();
            let a_type = ouro_simd::vec_dot_type(ty);
            let acts: Vec<u8> = x
                .chunks_exact(k)
                .flat_map(|x| quantize(a_type, x))
                .collect();
            let mut pa = PanelActs::default();
            pa.prepare(fmt, k, &acts, n);
            let res = Resident::pack(ty, &w_flat, rows, k);
            // The file's size (Q4_K: its 12 bytes of 6-bit scales and mins kept as 16).
            let extra = if ty == Q4_K { 4 * nb } else { 0 };
            assert_eq!(
                res.bytes(),
                res.panels() * PANEL_ROWS * (w_row + extra),
                "size"
            );
            // Twin against twin, panel by panel: want[v][r].
            let mut want = vec![0f32; n * rows];
            for p in 0..res.panels() {
                let r0 = p * PANEL_ROWS;
                let r1 = rows.min(r0 + PANEL_ROWS);
                let mut panel = Panel::default();
                panel.pack(fmt, k, &w_flat[r0 * w_row..r1 * w_row], w_row, r1 - r0);
                for v0 in (0..n).step_by(8) {
                    let nv = 8.min(n - v0);
                    let mut a = vec![0f32; nv * PANEL_ROWS];
                    let mut b = vec![f32::NAN; nv * PANEL_ROWS];
                    gemm_scalar(&panel, &pa, v0, nv, &mut a);
                    resident::gemm_scalar(&res, p, &pa, v0, nv, &mut b);
                    assert_eq!(bits(&a), bits(&b), "{ty} k={k} rows={rows} panel {p}");
                    for j in 0..nv {
                        for r in r0..r1 {
                            want[(v0 + j) * rows + r] = a[j * PANEL_ROWS + r - r0];
                        }
                    }
                }
            }
            // Every path (the scalar table runs the twin), the batch and each vector alone.
            for (path, kern) in Path::available()
                .into_iter()
                .map(|p| (p, p.kernels().unwrap()))
            {
                let mut y = vec![f32::NAN; n * rows];
                ouro_simd::matmul_resident_with(&kern, &res, &x, n, &mut y);
                assert_eq!(bits(&y), bits(&want), "{ty} k={k} {} batch", path.name());
                for v in 0..n {
                    let mut y1 = vec![f32::NAN; rows];
                    ouro_simd::matmul_resident_with(&kern, &res, &x[v * k..][..k], 1, &mut y1);
                    assert_eq!(
                        bits(&y1),
                        bits(&want[v * rows..][..rows]),
                        "{ty} k={k} {} vector {v} alone",
                        path.name()
                    );
                }
                simd_checked += kern.resident.is_some() as usize;
                tiles_checked += (kern.resident_tiles.is_some() && n >= TILES_MIN_VECS) as usize;
            }
        }
    }
    if Path::available()
        .iter()
        .any(|p| p.kernels().unwrap().resident.is_some())
    {
        assert!(simd_checked > 0);
    }
    // On a machine with AMX, the tiles ran for Q4_0 and Q8_0 (2 shapes each at least).
    if Path::Amx.is_available() {
        assert!(tiles_checked >= 4, "{tiles_checked}");
    }
}
