//! GEMV on Ouro-1.4B shapes for Q4_0, Q8_0, Q4_K and Q6_K weights on every kernel path this
//! CPU runs, single-threaded, reported as weight bytes per second; plus a plain memory read
//! bandwidth figure to compare against, and batched (prefill) products of 16 vectors.
//!
//! `cargo bench -p ouro-simd --bench gemv` (add `-- --quick` or a filter such as `q4_0`).

mod common;

use std::hint::black_box;

use common::weights;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ouro_simd::{GgmlType, Path};

/// (rows, cols): attention 2048×2048, ffn up/gate 5632×2048, ffn down 2048×5632, output head.
const SHAPES: &[(usize, usize)] = &[(2048, 2048), (5632, 2048), (2048, 5632), (49152, 2048)];
const TYPES: &[GgmlType] = &[
    GgmlType::Q4_0,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q6_K,
];
/// Bytes read by the bandwidth benchmark: far larger than any cache.
const BANDWIDTH_BYTES: usize = 512 << 20;

fn gemv(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for &ty in TYPES {
        let mut group = c.benchmark_group(format!("gemv_{}", ty.name().to_lowercase()));
        group.sample_size(10);
        for &(rows, cols) in SHAPES {
            let w = weights(ty, rows, cols);
            let x: Vec<f32> = (0..cols)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let mut y = vec![0f32; rows];
            group.throughput(Throughput::Bytes(w.len() as u64));
            let mut variants: Vec<(String, ouro_simd::Kernels)> = Path::available()
                .into_iter()
                .map(|p| (p.name().to_owned(), p.kernels().unwrap()))
                .collect();
            // The best path once more without its four-row GEMV kernels (one row per call).
            if let Some((name, k)) = variants.last().cloned() {
                if k.vec_dot_r4(ty).is_some() {
                    let mut one_row = k;
                    one_row.vec_dot_q4_0_q8_0_r4 = None;
                    one_row.vec_dot_q8_0_q8_0_r4 = None;
                    variants.push((format!("{name}-1row"), one_row));
                }
            }
            for (name, k) in variants {
                group.bench_function(format!("{name}/{rows}x{cols}"), |b| {
                    pool.install(|| {
                        b.iter(|| {
                            ouro_simd::matmul_with(
                                &k,
                                ty,
                                black_box(&w),
                                rows,
                                cols,
                                &x,
                                1,
                                &mut y,
                            );
                            black_box(&y);
                        })
                    })
                });
            }
        }
        group.finish();
    }
}

/// Vectors per batched product (a prefill chunk).
const GEMM_VECS: usize = 16;

/// Batched products (prefill): throughput counts weight bytes × vectors, so it compares with
/// the GEMV figures as "weight bytes consumed per second".
fn gemm(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let (rows, cols) = (5632, 2048);
    for &ty in TYPES {
        let mut group = c.benchmark_group(format!("gemm{GEMM_VECS}_{}", ty.name().to_lowercase()));
        group.sample_size(10);
        let w = weights(ty, rows, cols);
        let x: Vec<f32> = (0..GEMM_VECS * cols)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let mut y = vec![0f32; GEMM_VECS * rows];
        group.throughput(Throughput::Bytes((w.len() * GEMM_VECS) as u64));
        for path in Path::available().into_iter().skip(1) {
            let k = path.kernels().unwrap();
            group.bench_function(format!("{}/{rows}x{cols}", path.name()), |b| {
                pool.install(|| {
                    b.iter(|| {
                        ouro_simd::matmul_with(
                            &k,
                            ty,
                            black_box(&w),
                            rows,
                            cols,
                            &x,
                            GEMM_VECS,
                            &mut y,
                        );
                        black_box(&y);
                    })
                })
            });
        }
        group.finish();
    }
}

fn read_bandwidth(c: &mut Criterion) {
    let data: Vec<u64> = (0..BANDWIDTH_BYTES / 8).map(|i| i as u64).collect();
    let mut group = c.benchmark_group("memory");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(BANDWIDTH_BYTES as u64));
    group.bench_function("read_1_thread", |b| {
        b.iter(|| {
            let lanes = black_box(&data)
                .chunks_exact(8)
                .fold([0u64; 8], |mut acc, c| {
                    for (a, v) in acc.iter_mut().zip(c) {
                        *a = a.wrapping_add(*v);
                    }
                    acc
                });
            black_box(lanes)
        })
    });
    group.finish();
}

criterion_group!(benches, read_bandwidth, gemv, gemm);
criterion_main!(benches);
