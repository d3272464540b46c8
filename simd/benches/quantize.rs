//! Row quantizers (what `ouro-convert` spends its time in), single-threaded, reported as input
//! f32 values per second: Q4_0 and Q8_0 (one pass), Q4_K / Q5_K (a 21 / 16-candidate scale
//! search per sub-block) and Q6_K (an 18-candidate search per group of 16).
//!
//! `cargo bench -p ouro-simd --bench quantize` (add `-- --quick` or a filter such as `q4_k`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ouro_simd::{quantize_k, quantize_row, GgmlType};

/// One 2048 × 256 slab: 512 K values, about what a 2048-wide matrix row group holds.
const VALUES: usize = 2048 * 256;

fn quantize(c: &mut Criterion) {
    // Weight-like values: a bell-shaped spread with a few outliers, from a fixed LCG.
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let src: Vec<f32> = (0..VALUES)
        .map(|i| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = |k: u32| ((s >> k) & 0xffff) as f32 / 65536.0 - 0.5;
            let v = (u(16) + u(32) + u(48)) * 0.04;
            if i % 997 == 0 {
                v * 8.0
            } else {
                v
            }
        })
        .collect();
    let mut group = c.benchmark_group("quantize");
    group.sample_size(10);
    group.throughput(Throughput::Elements(VALUES as u64));
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
    ] {
        let mut dst = vec![0u8; ty.row_bytes(VALUES as u64).unwrap() as usize];
        group.bench_function(ty.name().to_lowercase(), |b| {
            b.iter(|| match ty {
                GgmlType::Q4_K => {
                    quantize_k::quantize_row_q4_K(black_box(&src), black_box(&mut dst))
                }
                GgmlType::Q5_K => {
                    quantize_k::quantize_row_q5_K(black_box(&src), black_box(&mut dst))
                }
                GgmlType::Q6_K => {
                    quantize_k::quantize_row_q6_K(black_box(&src), black_box(&mut dst))
                }
                _ => quantize_row(ty, black_box(&src), black_box(&mut dst)),
            })
        });
    }
    group.finish();
}

criterion_group!(benches, quantize);
criterion_main!(benches);
