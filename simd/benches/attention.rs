//! Decode attention's row kernels on an Ouro-1.4B-shaped f16 KV cache (16 heads × 128, rows of
//! 2048 values): one head's scores over `keys` cached keys and its value sum over as many
//! values, single-threaded, as the per-row kernels (`dot_f16_f32` / `mad_f16_f32`, one call a
//! key) and as the rows kernels (`dot_f16_f32_rows` / `mad_f16_f32_rows`, one call a head:
//! output in registers, keys prefetched), on every path. The cache (96 layer passes × `keys`
//! rows; keys head 0, values head 8) is larger than the caches, as in decode; reported as KV
//! bytes read per second. The same for a q8_0 cache (`dot_q8_0_f32[_rows]` /
//! `mad_q8_0_f32[_rows]`, rows kernels prefetching the same way).
//!
//! `cargo bench -p ouro-simd --bench attention` (add `-- --quick`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use half::f16;
use ouro_simd::Path;

const HEADS: usize = 16;
const HEAD_DIM: usize = 128;
const ROW: usize = HEADS * HEAD_DIM;
/// Layer passes of one Ouro-1.4B token (24 layers × 4 loops).
const PASSES: usize = 96;
/// The "values" are head 8 of the same rows (other lines than the keys' head 0).
const V: usize = 8 * HEAD_DIM;

fn attention_rows(c: &mut Criterion) {
    for keys in [512usize, 2048] {
        let mut group = c.benchmark_group(format!("attention_rows_{keys}_keys"));
        group.sample_size(10);
        let cache: Vec<f16> = (0..PASSES * keys * ROW)
            .map(|i| f16::from_f32(((i * 7919) % 1000) as f32 / 500.0 - 1.0))
            .collect();
        let q: Vec<f32> = (0..HEAD_DIM).map(|i| (i as f32 * 0.37).sin()).collect();
        // One head of every pass (scores then value sum): 2 × keys × 256 bytes per pass.
        group.throughput(Throughput::Bytes((PASSES * 2 * keys * HEAD_DIM * 2) as u64));
        let mut scores = vec![0f32; keys];
        let mut out = vec![0f32; HEAD_DIM];
        for path in Path::available() {
            let k = path.kernels().unwrap();
            let pass = |p: usize| &cache[p * keys * ROW..][..keys * ROW];
            group.bench_function(format!("{}/per-row", path.name()), |b| {
                b.iter(|| {
                    for p in 0..PASSES {
                        let kv = pass(p);
                        for (j, s) in scores.iter_mut().enumerate() {
                            *s = (k.dot_f16_f32)(&kv[j * ROW..][..HEAD_DIM], &q);
                        }
                        for (j, &s) in scores.iter().enumerate() {
                            (k.mad_f16_f32)(&mut out, s * 1e-3, &kv[j * ROW + V..][..HEAD_DIM]);
                        }
                    }
                    black_box(&out);
                })
            });
            group.bench_function(format!("{}/rows", path.name()), |b| {
                b.iter(|| {
                    for p in 0..PASSES {
                        let kv = pass(p);
                        (k.dot_f16_f32_rows)(kv, ROW, &q, &mut scores);
                        for s in scores.iter_mut() {
                            *s *= 1e-3;
                        }
                        (k.mad_f16_f32_rows)(&mut out, &scores, &kv[V..], ROW);
                    }
                    black_box(&out);
                })
            });
        }
        // The same shape as a q8_0 cache (`--kv-type q8_0`): 34 bytes per 32 values.
        let row_bytes = ROW / 32 * 34;
        let cache8: Vec<u8> = (0..PASSES * keys * row_bytes)
            .map(|i| match i % 34 {
                0 => 0x00,
                1 => 0x1c, // d = 2^-8 as f16
                _ => (i * 7919 % 251) as u8,
            })
            .collect();
        group.throughput(Throughput::Bytes(
            (PASSES * 2 * keys * HEAD_DIM / 32 * 34) as u64,
        ));
        for path in Path::available() {
            let k = path.kernels().unwrap();
            let pass = |p: usize| &cache8[p * keys * row_bytes..][..keys * row_bytes];
            group.bench_function(format!("{}/q8_0-per-row", path.name()), |b| {
                b.iter(|| {
                    for p in 0..PASSES {
                        let kv = pass(p);
                        for (j, s) in scores.iter_mut().enumerate() {
                            *s = (k.dot_q8_0_f32)(kv, j * ROW, &q);
                        }
                        for (j, &s) in scores.iter().enumerate() {
                            (k.mad_q8_0_f32)(&mut out, s * 1e-3, kv, j * ROW + V);
                        }
                    }
                    black_box(&out);
                })
            });
            group.bench_function(format!("{}/q8_0-rows", path.name()), |b| {
                b.iter(|| {
                    for p in 0..PASSES {
                        let kv = pass(p);
                        (k.dot_q8_0_f32_rows)(kv, 0, ROW, &q, &mut scores);
                        for s in scores.iter_mut() {
                            *s *= 1e-3;
                        }
                        (k.mad_q8_0_f32_rows)(&mut out, &scores, kv, V, ROW);
                    }
                    black_box(&out);
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, attention_rows);
criterion_main!(benches);
