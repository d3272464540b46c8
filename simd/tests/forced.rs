//! `OURO_SIMD` forcing: each path name is honoured when the CPU has it and refused by
//! `init()` (with the best path still running) when it does not. The choice is made once per
//! process, so every case runs this test binary again as a child with the variable set.

use ouro_simd::Path;

/// Relative tolerance of the one-block check below (two roundings of f32 products).
const REL_TOL: f32 = 1e-6;

/// Set in the child processes: the `OURO_SIMD` value under test.
const CHILD_VAR: &str = "OURO_SIMD_TEST_CHILD";

/// Runs the child; `false` if this binary cannot be re-executed (under qemu-user without
/// binfmt_misc an aarch64 child is "exec format error"; tests/neon_expect.rs covers that case).
fn run_child(value: &str) -> bool {
    let out = match std::process::Command::new(std::env::current_exe().unwrap())
        .args(["forced_path_is_used_or_refused", "--exact", "--nocapture"])
        .env("OURO_SIMD", value)
        .env(CHILD_VAR, value)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.raw_os_error() == Some(8) => {
            eprintln!("skipping OURO_SIMD child runs: cannot re-execute the test binary ({e})");
            return false;
        }
        Err(e) => panic!("spawn the test binary: {e}"),
    };
    assert!(
        out.status.success(),
        "OURO_SIMD={value}: child failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "OURO_SIMD={value}: the child did not run the test"
    );
    true
}

fn check_in_child(value: &str) {
    let best = Path::best().name();
    match Path::from_name(value) {
        Some(p) if p.is_available() => {
            assert_eq!(ouro_simd::init(), Ok(p.name()));
            assert_eq!(ouro_simd::selected(), p.name());
        }
        Some(p) => {
            let e = ouro_simd::init().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("OURO_SIMD={}: this CPU lacks ", p.env_name())),
                "{e}"
            );
            assert_eq!(ouro_simd::selected(), best);
        }
        None => {
            let e = ouro_simd::init().unwrap_err().to_string();
            assert!(e.contains("is not a kernel path"), "{e}");
            assert_eq!(ouro_simd::selected(), best);
        }
    }
    // Whatever was chosen computes: a 1×32 Q8_0 product of ones with ones.
    let mut w = vec![0u8; 34];
    ouro_simd::quantize_row(ouro_simd::GgmlType::Q8_0, &[1.0; 32], &mut w);
    let mut y = [0f32];
    ouro_simd::matmul(ouro_simd::GgmlType::Q8_0, &w, 1, 32, &[1.0; 32], 1, &mut y);
    let d = half::f16::from_f32(1.0 / 127.0).to_f32();
    let want = 32.0 * (127.0 * d) * (127.0 * d);
    assert!((y[0] - want).abs() <= REL_TOL * want, "{} vs {want}", y[0]);
}

#[test]
fn forced_path_is_used_or_refused() {
    if let Ok(value) = std::env::var(CHILD_VAR) {
        check_in_child(&value);
        return;
    }
    for value in Path::ALL
        .map(|p| p.env_name())
        .iter()
        .chain(&["AVX512-VNNI", "sse9"])
    {
        if !run_child(value) {
            return;
        }
    }
}
