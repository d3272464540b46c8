//! Batched products (prefill, speculative verification, several requests) against the
//! machine's int8 peak.
//!
//! * `int8_peak/*`: independent chains of `vpdpbusd` zmm and ymm (and the AVX2 path's
//!   `vpmaddubsw` + `vpmaddwd` + `vpaddd`) on 1 and 2 threads; throughput = int8
//!   multiply-adds per second, the ceiling every GEMM below is a fraction of.
//! * `gemm_<type>/<path>/n=<n>`: `matmul_with` on the Ouro-1.4B ffn-down shape
//!   (2048 rows × 5632 columns) for n = 1, 2, 4, 8, 16, 32, 128, 512 vectors, on every path this
//!   CPU runs (scalar only up to n = 4), in a rayon pool of `OURO_BENCH_THREADS` threads
//!   (default 2); throughput = weight multiply-adds (rows · cols · n) per second. A path with a
//!   4×4 tile for the type runs again as `<path>-notile` without it (same-run A/B), and a path
//!   with a resident kernel runs the same weights repacked as `<path>-resident` (what the
//!   loader uses for Q4_0 / Q8_0 / Q4_K / Q6_K there).
//!
//! `cargo bench -p ouro-simd --bench gemm` (add a filter such as `q4_k` or `int8_peak`).
//! Estimates land in target/criterion/<group>/<bench>/new/estimates.json.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::weights;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ouro_simd::{GgmlType, Path};

const ROWS: usize = 2048;
const COLS: usize = 5632;
const NS: &[usize] = &[1, 2, 4, 8, 16, 32, 128, 512];
/// The scalar path is ~100× slower: only the small batches.
const SCALAR_MAX_N: usize = 4;
const TYPES: &[GgmlType] = &[
    GgmlType::Q4_0,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

fn threads() -> usize {
    std::env::var("OURO_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

#[cfg(target_arch = "x86_64")]
fn int8_peak(c: &mut Criterion) {
    use ouro_simd::{int8_peak, PeakKind};
    /// Rounds per thread and call (≈ 10 ms of `vpdpbusd zmm` on a 3 GHz core).
    const ITERS: u64 = 2_000_000;
    let mut group = c.benchmark_group("int8_peak");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for (kind, name) in [
        (PeakKind::VnniZmm, "vpdpbusd_zmm"),
        (PeakKind::VnniYmm, "vpdpbusd_ymm"),
        (PeakKind::MaddubsYmm, "maddubs_ymm"),
    ] {
        let Some(macs) = int8_peak(kind, ITERS) else {
            continue;
        };
        for t in [1u64, 2] {
            group.throughput(Throughput::Elements(macs * t));
            group.bench_function(format!("{name}/threads={t}"), |b| {
                b.iter(|| {
                    std::thread::scope(|s| {
                        for _ in 0..t {
                            s.spawn(|| black_box(int8_peak(kind, black_box(ITERS))));
                        }
                    })
                })
            });
        }
    }
    group.finish();
}

#[cfg(not(target_arch = "x86_64"))]
fn int8_peak(_: &mut Criterion) {}

fn gemm(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads())
        .build()
        .unwrap();
    for &ty in TYPES {
        let mut group = c.benchmark_group(format!("gemm_{}", ty.name().to_lowercase()));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        let w = weights(ty, ROWS, COLS);
        let resident = ouro_simd::Resident::supports(ty)
            .then(|| ouro_simd::Resident::pack(ty, &w, ROWS, COLS));
        for &n in NS {
            let x: Vec<f32> = (0..n * COLS)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let mut y = vec![0f32; n * ROWS];
            group.throughput(Throughput::Elements((ROWS * COLS * n) as u64));
            let mut variants: Vec<(String, ouro_simd::Kernels)> = Path::available()
                .into_iter()
                .filter(|&p| p != Path::Scalar || n <= SCALAR_MAX_N)
                .map(|p| (p.name().to_owned(), p.kernels().unwrap()))
                .collect();
            // A/B in the same run: each path with a 4x4 tile once more without it (the
            // one-row × four-vector kernels, else single dots).
            for (name, k) in variants.clone() {
                if n >= 4 && k.tile_4x4(ty).is_some() {
                    let mut k = k;
                    k.gemm_q4_0_q8_0_4x4 = None;
                    k.gemm_q8_0_q8_0_4x4 = None;
                    k.gemm_q4_K_q8_K_4x4 = None;
                    k.gemm_q5_K_q8_K_4x4 = None;
                    k.gemm_q6_K_q8_K_4x4 = None;
                    variants.push((format!("{name}-notile"), k));
                }
            }
            for (name, k) in variants {
                group.bench_function(format!("{name}/n={n}"), |b| {
                    pool.install(|| {
                        b.iter(|| {
                            ouro_simd::matmul_with(
                                &k,
                                ty,
                                black_box(&w),
                                ROWS,
                                COLS,
                                &x,
                                n,
                                &mut y,
                            );
                            black_box(&y);
                        })
                    })
                });
                // The same weights repacked into resident panels (what the loader uses where
                // the path has the kernel).
                if let (Some(_), Some(r)) = (k.resident, resident.as_ref()) {
                    group.bench_function(format!("{name}-resident/n={n}"), |b| {
                        pool.install(|| {
                            b.iter(|| {
                                ouro_simd::matmul_resident_with(&k, black_box(r), &x, n, &mut y);
                                black_box(&y);
                            })
                        })
                    });
                }
            }
        }
        group.finish();
    }
}

criterion_group!(benches, int8_peak, gemm);
criterion_main!(benches);
