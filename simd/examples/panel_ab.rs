use ouro_simd::{matmul_with, GgmlType, Kernels};
use std::time::Instant;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ty = match args.get(1).map(|s| s.as_str()).unwrap_or("q4_0") {
        "q8_0" => GgmlType::Q8_0,
        "q4_k" => GgmlType::Q4_K,
        "q5_k" => GgmlType::Q5_K,
        "q6_k" => GgmlType::Q6_K,
        _ => GgmlType::Q4_0,
    };
    let n: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(128);
    let (rows, cols) = (2048usize, 5632usize);
    let mut seed = 1u64;
    let mut rnd = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let wf: Vec<f32> = (0..rows * cols).map(|_| rnd()).collect();
    let rb = ty.row_bytes(cols as u64).unwrap() as usize;
    let mut w = vec![0u8; rows * rb];
    for r in 0..rows {
        let dst = &mut w[r * rb..(r + 1) * rb];
        match ty {
            GgmlType::Q4_K => {
                ouro_simd::quantize_k::quantize_row_q4_K(&wf[r * cols..(r + 1) * cols], dst)
            }
            GgmlType::Q5_K => {
                ouro_simd::quantize_k::quantize_row_q5_K(&wf[r * cols..(r + 1) * cols], dst)
            }
            GgmlType::Q6_K => {
                ouro_simd::quantize_k::quantize_row_q6_K(&wf[r * cols..(r + 1) * cols], dst)
            }
            _ => ouro_simd::quantize_row(ty, &wf[r * cols..(r + 1) * cols], dst),
        }
    }
    let x: Vec<f32> = (0..n * cols).map(|_| rnd()).collect();
    let mut y = vec![0f32; n * rows];
    let k = *ouro_simd::kernels();
    let nopanel = Kernels {
        panel_gemm: None,
        ..k
    };
    for round in 0..4 {
        for (name, kk) in [("panel", &k), ("tiles", &nopanel)] {
            let t = Instant::now();
            let reps = 3;
            for _ in 0..reps {
                matmul_with(kk, ty, &w, rows, cols, &x, n, &mut y);
            }
            let s = t.elapsed().as_secs_f64() / reps as f64;
            let macs = (rows * cols * n) as f64;
            println!(
                "round {round} {ty} n={n} {name}: {:.2} ms  {:.1} GMAC/s",
                s * 1e3,
                macs / s / 1e9
            );
        }
    }
}
