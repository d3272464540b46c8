//! Which kernel path dispatch picks, checked against what scripts/neon-ci.sh expects for the CPU
//! model QEMU emulates: `OURO_EXPECT_SIMD=<name>` (e.g. "neon" on cortex-a72, "neon-dotprod" on
//! cortex-a76), or `OURO_EXPECT_INIT_ERROR=<forced path>` when `OURO_SIMD` forces a path the CPU
//! lacks (init() must refuse it, and the kernels that do run must not die of SIGILL).
//! Without those variables the tests check what holds on any machine.

use ouro_simd::GgmlType;

/// Every path name `selected()` may return.
const PATH_NAMES: &[&str] = &[
    "avx512-amx",
    "avx512-vnni",
    "avx2",
    "neon-i8mm",
    "neon-dotprod",
    "neon",
    "scalar",
];

/// Relative tolerance of a Q8_0 × Q8_0 dot against the f32 dot of the dequantized rows: the
/// activation is rounded to 8 bits (relative error ≤ 1/254 per element, here on same-sign data).
const DOT_REL_TOL: f32 = 1.0e-2;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[test]
fn selected_path_is_the_expected_one() {
    let selected = ouro_simd::selected();
    assert!(
        PATH_NAMES.contains(&selected),
        "selected() = {selected:?} is not a known path"
    );
    match (env("OURO_EXPECT_SIMD"), env("OURO_EXPECT_INIT_ERROR")) {
        (Some(want), _) => {
            assert_eq!(selected, want, "selected() on this CPU");
            assert_eq!(
                ouro_simd::init().ok(),
                Some(want.as_str()),
                "init() on this CPU"
            );
        }
        (None, Some(forced)) => {
            let err = match ouro_simd::init() {
                Ok(path) => {
                    panic!("init() accepted OURO_SIMD={forced:?} as {path:?}; this CPU lacks it")
                }
                Err(e) => e.to_string(),
            };
            assert!(
                err.contains(&forced),
                "init() error should name the forced path {forced:?}: {err}"
            );
            let refused = ouro_simd::Path::from_name(&forced).expect("a path name");
            assert_ne!(
                selected,
                refused.name(),
                "{forced} selected on a CPU without it"
            );
            assert_eq!(selected, ouro_simd::Path::best().name());
        }
        (None, None) => {
            if env("OURO_SIMD").is_none() {
                assert_eq!(ouro_simd::init().ok(), Some(selected));
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
#[test]
fn dotprod_and_i8mm_are_selected_exactly_when_the_cpu_has_them() {
    if env("OURO_SIMD").is_some() {
        return;
    }
    let dotprod = std::arch::is_aarch64_feature_detected!("dotprod");
    let want = match (dotprod, std::arch::is_aarch64_feature_detected!("i8mm")) {
        (true, true) => "neon-i8mm",
        (true, false) => "neon-dotprod",
        (false, _) => "neon",
    };
    assert_eq!(ouro_simd::selected(), want);
    // The dotprod and i8mm tables carry the Q4_0 / Q8_0 prefill tiles; plain NEON has none.
    let k = ouro_simd::kernels();
    for ty in [GgmlType::Q4_0, GgmlType::Q8_0] {
        assert_eq!(k.tile_4x4(ty).is_some(), dotprod, "{ty} tile on {want}");
    }
}

/// A Q8_0 matrix-vector product through whatever path was selected (a forced path the CPU lacks
/// included): it must run, and match the f32 dot of the dequantized rows.
#[test]
fn selected_path_computes_a_q8_0_matvec() {
    let (rows, cols) = (3, 256);
    let w_f32: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0)
        .collect();
    let x: Vec<f32> = (0..cols)
        .map(|i| 0.25 + (i * 13 % 29) as f32 / 7.0)
        .collect();
    let row_bytes = cols / 32 * GgmlType::Q8_0.type_size();
    let mut w = vec![0u8; rows * row_bytes];
    for (src, dst) in w_f32.chunks(cols).zip(w.chunks_mut(row_bytes)) {
        ouro_simd::quantize_row(GgmlType::Q8_0, src, dst);
    }
    let mut y = vec![0f32; rows];
    ouro_simd::matmul(GgmlType::Q8_0, &w, rows, cols, &x, 1, &mut y);
    for (r, got) in y.iter().enumerate() {
        let mut wr = vec![0f32; cols];
        ouro_simd::dequantize_row(
            GgmlType::Q8_0,
            &w[r * row_bytes..(r + 1) * row_bytes],
            &mut wr,
        );
        let want: f32 = wr.iter().zip(&x).map(|(a, b)| a * b).sum();
        let scale: f32 = wr.iter().zip(&x).map(|(a, b)| (a * b).abs()).sum();
        assert!(
            (got - want).abs() <= DOT_REL_TOL * scale,
            "row {r}: {got} vs {want} (path {})",
            ouro_simd::selected()
        );
    }
}
