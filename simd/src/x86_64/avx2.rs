//! 256-bit kernels, written once and compiled twice by [`kernels_256!`]: for AVX2 + FMA + F16C
//! (int8 products with `vpmaddubsw` + `vpmaddwd`) and for AVX-512 VL + VNNI (`vpdpbusd`).
//!
//! Technique (as ggml's x86 kernels): 4/5/6-bit weights are unpacked to bytes in registers,
//! activations stay int8 in [-127, 127] (what our quantizers produce), per-block integer sums
//! are converted to f32 once and accumulated with FMA. A signed×signed int8 product uses
//! |x| (unsigned) times y with x's sign moved onto y.

/// A safe `fn(&[u8], &[u8]) -> f32` calling the `#[target_feature]` kernel `$inner`.
macro_rules! entry {
    ($entry:ident, $inner:ident) => {
        fn $entry(w: &[u8], a: &[u8]) -> f32 {
            // SAFETY: only reachable through `kernels()`, whose caller guarantees `$feat`.
            unsafe { $inner(w, a) }
        }
    };
}

pub(crate) use entry;

/// Generates `pub(crate) mod $name` with the kernels and a `fn kernels() -> Kernels`.
/// `$dot` names a function `(u: __m256i /* u8 */, s: __m256i /* i8 */) -> __m256i` giving the
/// eight i32 sums of four adjacent u8·i8 products, compiled with `$feat`.
macro_rules! kernels_256 {
    ($name:ident, $feat:literal, $dot:path) => {
        pub(crate) mod $name {
            use std::arch::x86_64::*;

            use crate::blocks::{
                as_blocks, as_blocks_mut, unpack_scales_mins_k4, BlockQ4_0, BlockQ4_1, BlockQ4_K,
                BlockQ5_0, BlockQ5_1, BlockQ5_K, BlockQ6_K, BlockQ8_0, BlockQ8_1, BlockQ8_K, Half,
            };
            use crate::dispatch::Kernels;

            #[target_feature(enable = $feat)]
            #[inline]
            fn dot_u8i8(u: __m256i, s: __m256i) -> __m256i {
                $dot(u, s)
            }

            /// Σ x·y of 32 signed bytes each, as eight i32 partial sums.
            #[target_feature(enable = $feat)]
            #[inline]
            fn dot_i8(x: __m256i, y: __m256i) -> __m256i {
                dot_u8i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
            }

            #[target_feature(enable = $feat)]
            #[inline]
            fn hsum_ps(v: __m256) -> f32 {
                let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
                let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
                let s = _mm_add_ss(s, _mm_movehdup_ps(s));
                _mm_cvtss_f32(s)
            }

            #[target_feature(enable = $feat)]
            #[inline]
            fn f16(h: Half) -> f32 {
                super::F16_TO_F32[h.bits() as usize]
            }

            /// An f16 scale broadcast to 8 lanes straight from the table (a load, no shuffle).
            #[target_feature(enable = $feat)]
            #[inline]
            fn f16x8(h: Half) -> __m256 {
                _mm256_broadcast_ss(&super::F16_TO_F32[h.bits() as usize])
            }

            #[target_feature(enable = $feat)]
            #[inline]
            fn load16(b: &[u8; 16]) -> __m128i {
                // SAFETY: reads exactly the 16 bytes of `b` (unaligned load).
                unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
            }

            #[target_feature(enable = $feat)]
            #[inline]
            fn load32(b: &[u8]) -> __m256i {
                assert!(b.len() >= 32);
                // SAFETY: `b` has at least 32 bytes (asserted); unaligned load.
                unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
            }

            #[target_feature(enable = $feat)]
            #[inline]
            fn load32_i8(b: &[i8]) -> __m256i {
                assert!(b.len() >= 32);
                // SAFETY: `b` has at least 32 bytes (asserted); unaligned load.
                unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
            }

            /// 16 bytes of nibbles → 32 bytes: low nibbles (elements 0..16) then high.
            #[target_feature(enable = $feat)]
            #[inline]
            fn nibbles(b: &[u8; 16]) -> __m256i {
                // Both halves from one broadcast load, the upper one shifted by 4 (no
                // cross-lane shuffle).
                let x = _mm256_broadcastsi128_si256(load16(b));
                let x = _mm256_srlv_epi64(x, _mm256_set_epi64x(4, 4, 0, 0));
                _mm256_and_si256(x, _mm256_set1_epi8(0x0F))
            }

            /// Byte j = 0xFF where bit j of the little-endian u32 is set, else 0.
            #[target_feature(enable = $feat)]
            #[inline]
            fn bits_to_bytes(qh: [u8; 4]) -> __m256i {
                let spread = _mm256_shuffle_epi8(
                    _mm256_set1_epi32(i32::from_le_bytes(qh)),
                    _mm256_set_epi64x(
                        0x0303_0303_0303_0303,
                        0x0202_0202_0202_0202,
                        0x0101_0101_0101_0101,
                        0,
                    ),
                );
                let others = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe_u64 as i64);
                _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi64x(-1))
            }

            /// Σ over blocks of `step`: even blocks into one accumulator, odd blocks into
            /// another (two independent FMA chains), added at the end.
            #[target_feature(enable = $feat)]
            #[inline]
            fn sum_blocks<X, Y>(
                x: &[X],
                y: &[Y],
                mut step: impl FnMut(__m256, &X, &Y) -> __m256,
            ) -> f32 {
                assert_eq!(x.len(), y.len());
                let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
                let mut i = 0;
                while i + 2 <= x.len() {
                    crate::x86_64::prefetch_rows_ahead(x, i, 2);
                    a0 = step(a0, &x[i], &y[i]);
                    a1 = step(a1, &x[i + 1], &y[i + 1]);
                    i += 2;
                }
                if i < x.len() {
                    a0 = step(a0, &x[i], &y[i]);
                }
                hsum_ps(_mm256_add_ps(a0, a1))
            }

            /// `sum_blocks` for one weight row and four activation rows: `step` updates the
            /// four accumulators of one parity, so each vector sees `sum_blocks`'s order.
            #[target_feature(enable = $feat)]
            #[inline]
            fn sum_blocks_x4<X, Y>(
                x: &[X],
                y: [&[Y]; 4],
                step: impl Fn(&mut [__m256; 4], &X, [&Y; 4]),
            ) -> [f32; 4] {
                assert!(y.iter().all(|y| y.len() == x.len()));
                let mut a0 = [_mm256_setzero_ps(); 4];
                let mut a1 = [_mm256_setzero_ps(); 4];
                let at = |i: usize| [&y[0][i], &y[1][i], &y[2][i], &y[3][i]];
                let mut i = 0;
                while i + 2 <= x.len() {
                    step(&mut a0, &x[i], at(i));
                    step(&mut a1, &x[i + 1], at(i + 1));
                    i += 2;
                }
                if i < x.len() {
                    step(&mut a0, &x[i], at(i));
                }
                std::array::from_fn(|v| hsum_ps(_mm256_add_ps(a0[v], a1[v])))
            }

            /// acc + d_x·d_y · Σ x·y for signed bytes `qx` (the weight) and the block `y`.
            #[target_feature(enable = $feat)]
            #[inline]
            fn fma_block_i8(acc: __m256, qx: __m256i, dx: __m256, y: &BlockQ8_0) -> __m256 {
                let s = _mm256_cvtepi32_ps(dot_i8(qx, load32_i8(&y.qs)));
                _mm256_fmadd_ps(_mm256_mul_ps(dx, f16x8(y.d)), s, acc)
            }

            /// `fma_block_i8` for four activation blocks, with |qx| computed once.
            #[target_feature(enable = $feat)]
            #[inline]
            fn fma_block_i8_x4(acc: &mut [__m256; 4], qx: __m256i, dx: __m256, y: [&BlockQ8_0; 4]) {
                let ax = _mm256_sign_epi8(qx, qx);
                for (acc, y) in acc.iter_mut().zip(y) {
                    let sy = _mm256_sign_epi8(load32_i8(&y.qs), qx);
                    let s = _mm256_cvtepi32_ps(dot_u8i8(ax, sy));
                    *acc = _mm256_fmadd_ps(_mm256_mul_ps(dx, f16x8(y.d)), s, *acc);
                }
            }

            /// Q4_0 weights as signed bytes q − 8.
            #[target_feature(enable = $feat)]
            #[inline]
            fn q4_0_bytes(x: &BlockQ4_0) -> __m256i {
                _mm256_sub_epi8(nibbles(&x.qs), _mm256_set1_epi8(8))
            }

            #[target_feature(enable = $feat)]
            fn q4_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
                let (x, y) = (as_blocks::<BlockQ4_0>(w), as_blocks::<BlockQ8_0>(a));
                sum_blocks(x, y, |acc, x, y| {
                    fma_block_i8(acc, q4_0_bytes(x), f16x8(x.d), y)
                })
            }

            /// `q4_0_q8_0` for four activation rows, each weight block unpacked once; the
            /// per-vector operations and their order are those of `q4_0_q8_0`.
            #[target_feature(enable = $feat)]
            fn q4_0_q8_0_x4(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
                let x = as_blocks::<BlockQ4_0>(w);
                sum_blocks_x4(x, a.map(as_blocks::<BlockQ8_0>), |acc, x, y| {
                    fma_block_i8_x4(acc, q4_0_bytes(x), f16x8(x.d), y)
                })
            }

            #[target_feature(enable = $feat)]
            fn q8_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
                let (x, y) = (as_blocks::<BlockQ8_0>(w), as_blocks::<BlockQ8_0>(a));
                sum_blocks(x, y, |acc, x, y| {
                    fma_block_i8(acc, load32_i8(&x.qs), f16x8(x.d), y)
                })
            }

            /// `q8_0_q8_0` for four activation rows (same operations, same order).
            #[target_feature(enable = $feat)]
            fn q8_0_q8_0_x4(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
                let x = as_blocks::<BlockQ8_0>(w);
                sum_blocks_x4(x, a.map(as_blocks::<BlockQ8_0>), |acc, x, y| {
                    fma_block_i8_x4(acc, load32_i8(&x.qs), f16x8(x.d), y)
                })
            }

            #[target_feature(enable = $feat)]
            fn q5_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
                let (x, y) = (as_blocks::<BlockQ5_0>(w), as_blocks::<BlockQ8_0>(a));
                let high = _mm256_set1_epi8(0xF0u8 as i8);
                sum_blocks(x, y, |acc, x, y| {
                    // q − 16 as a signed byte: a clear fifth bit puts 0xF0 over the nibble.
                    let minus = _mm256_andnot_si256(bits_to_bytes(x.qh), high);
                    let qx = _mm256_or_si256(nibbles(&x.qs), minus);
                    fma_block_i8(acc, qx, f16x8(x.d), y)
                })
            }

            /// acc + d_x·d_y · Σ q·y for unsigned bytes `q` (≤ 31) and a Q8_1 block.
            #[target_feature(enable = $feat)]
            #[inline]
            fn fma_block_u8(acc: __m256, q: __m256i, dx: __m256, y: &BlockQ8_1) -> __m256 {
                let s = _mm256_cvtepi32_ps(dot_u8i8(q, load32_i8(&y.qs)));
                _mm256_fmadd_ps(_mm256_mul_ps(dx, f16x8(y.d)), s, acc)
            }

            #[target_feature(enable = $feat)]
            fn q4_1_q8_1(w: &[u8], a: &[u8]) -> f32 {
                let (x, y) = (as_blocks::<BlockQ4_1>(w), as_blocks::<BlockQ8_1>(a));
                let mut mins = 0f32;
                let sum = sum_blocks(x, y, |acc, x, y| {
                    mins += f16(x.m) * f16(y.s);
                    fma_block_u8(acc, nibbles(&x.qs), f16x8(x.d), y)
                });
                sum + mins
            }

            #[target_feature(enable = $feat)]
            fn q5_1_q8_1(w: &[u8], a: &[u8]) -> f32 {
                let (x, y) = (as_blocks::<BlockQ5_1>(w), as_blocks::<BlockQ8_1>(a));
                let bit4 = _mm256_set1_epi8(0x10);
                let mut mins = 0f32;
                let sum = sum_blocks(x, y, |acc, x, y| {
                    mins += f16(x.m) * f16(y.s);
                    let hi = _mm256_and_si256(bits_to_bytes(x.qh), bit4);
                    fma_block_u8(acc, _mm256_or_si256(nibbles(&x.qs), hi), f16x8(x.d), y)
                });
                sum + mins
            }

            /// Σ_j bsums[j] · mins[j / 2] as eight i32 lanes.
            #[target_feature(enable = $feat)]
            #[inline]
            fn mins_times_bsums(mins: [u8; 8], y: &BlockQ8_K) -> __m256i {
                let m = _mm_cvtsi64_si128(i64::from_le_bytes(mins));
                let m = _mm_shuffle_epi8(
                    m,
                    _mm_set_epi8(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0),
                );
                let bsums = load32(y.bsums.as_flattened());
                _mm256_madd_epi16(bsums, _mm256_cvtepu8_epi16(m))
            }

            /// Scale `j` of the 8 (u8, ≤ 63) in `scv`'s low bytes, as 16 i16 lanes: one
            /// in-lane byte shuffle (the high byte of each lane comes from index 0x80 = zero).
            #[target_feature(enable = $feat)]
            #[inline]
            fn scale_k4(scv: __m256i, j: usize) -> __m256i {
                _mm256_shuffle_epi8(scv, _mm256_set1_epi16((0x8000 | j) as u16 as i16))
            }

            /// u8·i8 products of 32 bytes summed in pairs, times a per-vector i16 scale.
            #[target_feature(enable = $feat)]
            #[inline]
            fn scaled_dot(q: __m256i, y: __m256i, scale: __m256i) -> __m256i {
                _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), scale)
            }

            /// A Q4_K / Q5_K super-block unpacked for any number of activation rows: 8 vectors
            /// of 32 values (element order), their scales as i16 lanes, the 8 mins, d, dmin.
            type UnpackedK4 = ([__m256i; 8], [__m256i; 8], [u8; 8], f32, f32);

            #[target_feature(enable = $feat)]
            #[inline]
            fn q4_K_unpack(x: &BlockQ4_K) -> UnpackedK4 {
                let m4 = _mm256_set1_epi8(0x0F);
                let (sc, mins) = unpack_scales_mins_k4(&x.scales);
                let scv = _mm256_broadcastsi128_si256(_mm_cvtsi64_si128(i64::from_le_bytes(sc)));
                let mut q = [_mm256_setzero_si256(); 8];
                for j in 0..4 {
                    let b = load32(&x.qs[32 * j..]);
                    q[2 * j] = _mm256_and_si256(b, m4);
                    q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
                }
                let s = std::array::from_fn(|i| scale_k4(scv, i));
                (q, s, mins, f16(x.d), f16(x.dmin))
            }

            #[target_feature(enable = $feat)]
            #[inline]
            fn q5_K_unpack(x: &BlockQ5_K) -> UnpackedK4 {
                let m4 = _mm256_set1_epi8(0x0F);
                let one = _mm256_set1_epi8(1);
                let two = _mm256_set1_epi8(2);
                let (sc, mins) = unpack_scales_mins_k4(&x.scales);
                let scv = _mm256_broadcastsi128_si256(_mm_cvtsi64_si128(i64::from_le_bytes(sc)));
                let mut h = load32(&x.qh);
                let mut q = [_mm256_setzero_si256(); 8];
                for j in 0..4 {
                    let b = load32(&x.qs[32 * j..]);
                    let h0 = _mm256_slli_epi16(_mm256_and_si256(h, one), 4);
                    let h1 = _mm256_slli_epi16(_mm256_and_si256(h, two), 3);
                    h = _mm256_srli_epi16(h, 2);
                    q[2 * j] = _mm256_or_si256(_mm256_and_si256(b, m4), h0);
                    q[2 * j + 1] =
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4), h1);
                }
                let s = std::array::from_fn(|i| scale_k4(scv, i));
                (q, s, mins, f16(x.d), f16(x.dmin))
            }

            /// Σ over super-blocks of Q4_K / Q5_K weights · N Q8_K rows; per row:
            /// d·Σ_i scale_i·(q_i·y_i) accumulated apart from dmin·Σ mins·bsums.
            #[target_feature(enable = $feat)]
            #[inline]
            fn k4_dot<B, const N: usize>(
                x: &[B],
                y: [&[BlockQ8_K]; N],
                unpack: impl Fn(&B) -> UnpackedK4,
            ) -> [f32; N] {
                assert!(y.iter().all(|y| y.len() == x.len()));
                let mut acc = [_mm256_setzero_ps(); N];
                let mut acc_m = [_mm256_setzero_ps(); N];
                for (b, xb) in x.iter().enumerate() {
                    crate::x86_64::prefetch_rows_ahead(x, b, 1);
                    let (q, s, mins, xd, xdmin) = unpack(xb);
                    for v in 0..N {
                        let y = &y[v][b];
                        let mut sumi = _mm256_setzero_si256();
                        for i in 0..8 {
                            let yv = load32_i8(&y.qs[32 * i..]);
                            sumi = _mm256_add_epi32(sumi, scaled_dot(q[i], yv, s[i]));
                        }
                        let yd = y.d();
                        let d = _mm256_set1_ps(xd * yd);
                        let dmin = _mm256_set1_ps(xdmin * yd);
                        acc[v] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc[v]);
                        let m = _mm256_cvtepi32_ps(mins_times_bsums(mins, y));
                        acc_m[v] = _mm256_fmadd_ps(dmin, m, acc_m[v]);
                    }
                }
                std::array::from_fn(|v| hsum_ps(acc[v]) - hsum_ps(acc_m[v]))
            }

            #[target_feature(enable = $feat)]
            fn q4_K_q8_K(w: &[u8], a: &[u8]) -> f32 {
                let x = as_blocks::<BlockQ4_K>(w);
                k4_dot(x, [as_blocks::<BlockQ8_K>(a)], |x| q4_K_unpack(x))[0]
            }

            #[target_feature(enable = $feat)]
            fn q4_K_q8_K_x4(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
                let x = as_blocks::<BlockQ4_K>(w);
                k4_dot(x, a.map(as_blocks::<BlockQ8_K>), |x| q4_K_unpack(x))
            }

            #[target_feature(enable = $feat)]
            fn q5_K_q8_K(w: &[u8], a: &[u8]) -> f32 {
                let x = as_blocks::<BlockQ5_K>(w);
                k4_dot(x, [as_blocks::<BlockQ8_K>(a)], |x| q5_K_unpack(x))[0]
            }

            #[target_feature(enable = $feat)]
            fn q5_K_q8_K_x4(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
                let x = as_blocks::<BlockQ5_K>(w);
                k4_dot(x, a.map(as_blocks::<BlockQ8_K>), |x| q5_K_unpack(x))
            }

            /// Σ over Q6_K super-blocks · N Q8_K rows. Values are unpacked once per
            /// super-block (unsigned, +32), scales as i16 lanes × 256 (one shuffle each).
            #[target_feature(enable = $feat)]
            #[inline]
            fn q6_K_dot<const N: usize>(x: &[BlockQ6_K], y: [&[BlockQ8_K]; N]) -> [f32; N] {
                assert!(y.iter().all(|y| y.len() == x.len()));
                let m4 = _mm256_set1_epi8(0x0F);
                let m2 = _mm256_set1_epi8(0x03);
                let mc = _mm256_set1_epi8(0x0C);
                let m30 = _mm256_set1_epi8(0x30);
                let mut acc = [_mm256_setzero_ps(); N];
                for (b, xb) in x.iter().enumerate() {
                    crate::x86_64::prefetch_rows_ahead(x, b, 1);
                    let x = xb;
                    // SAFETY: reads exactly the 16 scale bytes.
                    let scales = unsafe { _mm_loadu_si128(x.scales.as_ptr().cast()) };
                    let scales2 = _mm256_broadcastsi128_si256(scales);
                    let scales16 = _mm256_cvtepi8_epi16(scales);
                    let mut q = [_mm256_setzero_si256(); 8];
                    for n in 0..2 {
                        let ql0 = load32(&x.ql[64 * n..]);
                        let ql1 = load32(&x.ql[64 * n + 32..]);
                        let qh = load32(&x.qh[32 * n..]);
                        q[4 * n] = _mm256_or_si256(
                            _mm256_and_si256(ql0, m4),
                            _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4),
                        );
                        q[4 * n + 1] = _mm256_or_si256(
                            _mm256_and_si256(ql1, m4),
                            _mm256_slli_epi16(_mm256_and_si256(qh, mc), 2),
                        );
                        q[4 * n + 2] = _mm256_or_si256(
                            _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                            _mm256_and_si256(qh, m30),
                        );
                        q[4 * n + 3] = _mm256_or_si256(
                            _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                            _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30),
                        );
                    }
                    // Vector i holds sub-blocks 2i and 2i + 1 (16 elements each): i16 lanes
                    // s_2i · 256 (low half) and s_2i+1 · 256 (high half), the i8 scale shuffled
                    // into the high byte.
                    let s: [__m256i; 8] = std::array::from_fn(|i| {
                        let pick = _mm256_set_m128i(
                            _mm_set1_epi16((((2 * i + 1) as u16) << 8 | 0x80) as i16),
                            _mm_set1_epi16((((2 * i) as u16) << 8 | 0x80) as i16),
                        );
                        _mm256_shuffle_epi8(scales2, pick)
                    });
                    let xd = f16(x.d);
                    for v in 0..N {
                        let y = &y[v][b];
                        let mut sumi = _mm256_setzero_si256();
                        for i in 0..8 {
                            let yv = load32_i8(&y.qs[32 * i..]);
                            // |pair · s · 256| < 2^30 fits; the shift back is exact.
                            let p = _mm256_srai_epi32(scaled_dot(q[i], yv, s[i]), 8);
                            sumi = _mm256_add_epi32(sumi, p);
                        }
                        // The values are stored +32: subtract 32 · Σ_j scale_j · bsum_j.
                        let bsums = load32(y.bsums.as_flattened());
                        let offs = _mm256_madd_epi16(bsums, scales16);
                        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(offs, 5));
                        let d = _mm256_set1_ps(xd * y.d());
                        acc[v] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc[v]);
                    }
                }
                acc.map(|v| hsum_ps(v))
            }

            #[target_feature(enable = $feat)]
            fn q6_K_q8_K(w: &[u8], a: &[u8]) -> f32 {
                q6_K_dot(as_blocks::<BlockQ6_K>(w), [as_blocks::<BlockQ8_K>(a)])[0]
            }

            #[target_feature(enable = $feat)]
            fn q6_K_q8_K_x4(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
                q6_K_dot(as_blocks::<BlockQ6_K>(w), a.map(as_blocks::<BlockQ8_K>))
            }

            /// Bytes of `w` as f32 · `x`, for the f32-family dots: `load` widens 8 weights.
            #[target_feature(enable = $feat)]
            #[inline]
            fn dot_f32_with(
                w: &[u8],
                a: &[u8],
                wsize: usize,
                load: impl Fn(&[u8]) -> __m256,
                scalar: impl Fn(&[u8]) -> f32,
            ) -> f32 {
                let n = a.len() / 4;
                debug_assert_eq!(w.len(), n * wsize);
                let mut acc = [_mm256_setzero_ps(); 4];
                let body = n / 32 * 32;
                for i in (0..body).step_by(32) {
                    for (k, acc) in acc.iter_mut().enumerate() {
                        let e = i + 8 * k;
                        let wv = load(&w[e * wsize..(e + 8) * wsize]);
                        // SAFETY: elements e..e + 8 of `a` (4 bytes each) are in bounds.
                        let av = unsafe { _mm256_loadu_ps(a[e * 4..(e + 8) * 4].as_ptr().cast()) };
                        *acc = _mm256_fmadd_ps(wv, av, *acc);
                    }
                }
                let mut sum = hsum_ps(_mm256_add_ps(
                    _mm256_add_ps(acc[0], acc[1]),
                    _mm256_add_ps(acc[2], acc[3]),
                ));
                for e in body..n {
                    let av = &a[e * 4..e * 4 + 4];
                    sum += scalar(&w[e * wsize..(e + 1) * wsize])
                        * f32::from_le_bytes([av[0], av[1], av[2], av[3]]);
                }
                sum
            }

            #[target_feature(enable = $feat)]
            fn f32_f32(w: &[u8], a: &[u8]) -> f32 {
                dot_f32_with(
                    w,
                    a,
                    4,
                    // SAFETY: the caller passes exactly 32 bytes.
                    |b| unsafe { _mm256_loadu_ps(b.as_ptr().cast()) },
                    |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                )
            }

            #[target_feature(enable = $feat)]
            fn f16_f32(w: &[u8], a: &[u8]) -> f32 {
                dot_f32_with(
                    w,
                    a,
                    2,
                    // SAFETY: the caller passes exactly 16 bytes.
                    |b| unsafe { _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().cast())) },
                    |b| Half([b[0], b[1]]).to_f32(),
                )
            }

            #[target_feature(enable = $feat)]
            fn bf16_f32(w: &[u8], a: &[u8]) -> f32 {
                dot_f32_with(
                    w,
                    a,
                    2,
                    // SAFETY: the caller passes exactly 16 bytes.
                    |b| unsafe {
                        let h = _mm256_cvtepu16_epi32(_mm_loadu_si128(b.as_ptr().cast()));
                        _mm256_castsi256_ps(_mm256_slli_epi32(h, 16))
                    },
                    |b| crate::scalar::bf16_to_f32(u16::from_le_bytes([b[0], b[1]])),
                )
            }

            /// Eight f16 of `x` from `at`, widened (F16C; exact).
            #[target_feature(enable = $feat)]
            #[inline]
            fn load8_f16(x: &[half::f16], at: usize) -> __m256 {
                let x = &x[at..at + 8];
                // SAFETY: exactly the 8 halves (16 bytes) of the checked subslice.
                unsafe { _mm256_cvtph_ps(_mm_loadu_si128(x.as_ptr().cast())) }
            }

            /// Attention q·k: four 8-lane FMA chains over 32 elements per step, then 8 at a
            /// time, then a scalar tail.
            #[target_feature(enable = $feat)]
            #[inline]
            fn dot_f16(x: &[half::f16], y: &[f32]) -> f32 {
                assert_eq!(x.len(), y.len(), "dot_f16_f32: row lengths differ");
                let n = x.len();
                let mut acc = [_mm256_setzero_ps(); 4];
                let body = n / 32 * 32;
                for i in (0..body).step_by(32) {
                    for (k, acc) in acc.iter_mut().enumerate() {
                        let e = i + 8 * k;
                        *acc = _mm256_fmadd_ps(load8_f16(x, e), load8(y, e), *acc);
                    }
                }
                let body8 = n / 8 * 8;
                for e in (body..body8).step_by(8) {
                    acc[0] = _mm256_fmadd_ps(load8_f16(x, e), load8(y, e), acc[0]);
                }
                let mut sum = hsum_ps(_mm256_add_ps(
                    _mm256_add_ps(acc[0], acc[1]),
                    _mm256_add_ps(acc[2], acc[3]),
                ));
                for e in body8..n {
                    sum += x[e].to_f32() * y[e];
                }
                sum
            }

            /// Attention's value sum: y += a·x, eight lanes per FMA.
            #[target_feature(enable = $feat)]
            fn mad_f16(y: &mut [f32], a: f32, x: &[half::f16]) {
                assert_eq!(x.len(), y.len(), "mad_f16_f32: row lengths differ");
                let n = x.len();
                let av = _mm256_set1_ps(a);
                let body8 = n / 8 * 8;
                for e in (0..body8).step_by(8) {
                    let r = _mm256_fmadd_ps(load8_f16(x, e), av, load8(y, e));
                    let out = &mut y[e..e + 8];
                    // SAFETY: exactly the 8 f32 of the checked subslice.
                    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), r) };
                }
                for e in body8..n {
                    y[e] += a * x[e].to_f32();
                }
            }

            fn dot_f16_f32(x: &[half::f16], y: &[f32]) -> f32 {
                // SAFETY: only reachable through `kernels()`, whose caller guarantees `$feat`.
                unsafe { dot_f16(x, y) }
            }

            use $crate::x86_64::KV_ROWS_AHEAD as ROWS_AHEAD;

            /// [`dot_f16`] of each row (the same function, so the same bits), prefetching
            /// `ROWS_AHEAD` rows ahead.
            #[target_feature(enable = $feat)]
            fn dot_f16_rows(x: &[half::f16], stride: usize, y: &[f32], out: &mut [f32]) {
                let n = y.len();
                let ahead = |at: usize| {
                    let at = at + ROWS_AHEAD * stride;
                    $crate::x86_64::prefetch_l2(x, at, at + n)
                };
                $crate::scalar::f16_dot_rows_by(x, stride, y, out, ahead, |x, y| dot_f16(x, y));
            }

            /// [`mad_f16`] row after row with `y` held in registers 64 values at a time: every
            /// element gets the same FMAs in the same row order (then the same scalar tail), so
            /// the same bits, without a load and a store of `y` per row.
            #[target_feature(enable = $feat)]
            fn mad_f16_rows(y: &mut [f32], a: &[f32], x: &[half::f16], stride: usize) {
                let n = y.len();
                $crate::scalar::check_rows(x.len(), stride, a.len(), n, "mad_f16_f32_rows");
                let body8 = n / 8 * 8;
                for e0 in (0..body8).step_by(64) {
                    let lanes = (body8 - e0).min(64) / 8;
                    let mut acc = [_mm256_setzero_ps(); 8];
                    for (j, acc) in acc.iter_mut().enumerate().take(lanes) {
                        *acc = load8(y, e0 + 8 * j);
                    }
                    for (r, &ar) in a.iter().enumerate() {
                        let at = (r + ROWS_AHEAD) * stride + e0;
                        $crate::x86_64::prefetch_l2(x, at, at + 8 * lanes);
                        let av = _mm256_set1_ps(ar);
                        let row = r * stride + e0;
                        for (j, acc) in acc.iter_mut().enumerate().take(lanes) {
                            *acc = _mm256_fmadd_ps(load8_f16(x, row + 8 * j), av, *acc);
                        }
                    }
                    for (j, acc) in acc.iter().enumerate().take(lanes) {
                        let out = &mut y[e0 + 8 * j..e0 + 8 * j + 8];
                        // SAFETY: exactly the 8 f32 of the checked subslice.
                        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), *acc) };
                    }
                }
                for (r, &ar) in a.iter().enumerate() {
                    for e in body8..n {
                        y[e] += ar * x[r * stride + e].to_f32();
                    }
                }
            }

            fn dot_f16_f32_rows(x: &[half::f16], stride: usize, y: &[f32], out: &mut [f32]) {
                // SAFETY: only reachable through `kernels()`, whose caller guarantees `$feat`.
                unsafe { dot_f16_rows(x, stride, y, out) }
            }

            fn mad_f16_f32_rows(y: &mut [f32], a: &[f32], x: &[half::f16], stride: usize) {
                // SAFETY: only reachable through `kernels()`, whose caller guarantees `$feat`.
                unsafe { mad_f16_rows(y, a, x, stride) }
            }

            fn mad_f16_f32(y: &mut [f32], a: f32, x: &[half::f16]) {
                // SAFETY: only reachable through `kernels()`, whose caller guarantees `$feat`.
                unsafe { mad_f16(y, a, x) }
            }

            /// Eight f32 of `x` from `at`.
            #[target_feature(enable = $feat)]
            #[inline]
            fn load8(x: &[f32], at: usize) -> __m256 {
                let x = &x[at..at + 8];
                // SAFETY: exactly the 8 f32 of the checked subslice.
                unsafe { _mm256_loadu_ps(x.as_ptr()) }
            }

            #[target_feature(enable = $feat)]
            #[inline]
            fn abs_ps(v: __m256) -> __m256 {
                _mm256_andnot_ps(_mm256_set1_ps(-0.0), v)
            }

            /// max |x| over four vectors (order-free, so equal to the scalar fold).
            #[target_feature(enable = $feat)]
            #[inline]
            fn absmax(v: &[__m256; 4]) -> f32 {
                let m = _mm256_max_ps(
                    _mm256_max_ps(abs_ps(v[0]), abs_ps(v[1])),
                    _mm256_max_ps(abs_ps(v[2]), abs_ps(v[3])),
                );
                let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
                let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
                _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)))
            }

            /// round(v · id) half away from zero (C `roundf`), as trunc + (|frac| ≥ ½ ? ±1 : 0).
            #[target_feature(enable = $feat)]
            #[inline]
            fn round_away(v: __m256, id: __m256) -> __m256i {
                let s = _mm256_mul_ps(v, id);
                let t = _mm256_round_ps(s, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
                let up =
                    _mm256_cmp_ps(abs_ps(_mm256_sub_ps(s, t)), _mm256_set1_ps(0.5), _CMP_GE_OQ);
                let step =
                    _mm256_or_ps(_mm256_and_ps(s, _mm256_set1_ps(-0.0)), _mm256_set1_ps(1.0));
                _mm256_cvtps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, step)))
            }

            /// 32 i32 (each in i8 range) → 32 bytes in order.
            #[target_feature(enable = $feat)]
            #[inline]
            fn pack_i8(q: [__m256i; 4], out: &mut [i8]) {
                assert!(out.len() >= 32);
                let p01 = _mm256_packs_epi32(q[0], q[1]);
                let p23 = _mm256_packs_epi32(q[2], q[3]);
                let p = _mm256_packs_epi16(p01, p23);
                let p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
                // SAFETY: `out` has at least 32 bytes (asserted).
                unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), p) };
            }

            /// Σ of eight i32 lanes.
            #[target_feature(enable = $feat)]
            #[inline]
            fn hsum_epi32(v: __m256i) -> i32 {
                let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
                let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
                let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
                _mm_cvtsi128_si32(s)
            }

            /// Bit-identical to `scalar::quantize_row_q8_0`: same amax, same 1/d, same rounding.
            #[target_feature(enable = $feat)]
            fn quantize_q8_0(src: &[f32], dst: &mut [u8]) {
                let blocks = as_blocks_mut::<BlockQ8_0>(dst);
                assert_eq!(blocks.len() * 32, src.len());
                for (b, x) in blocks.iter_mut().zip(src.chunks_exact(32)) {
                    let v: [__m256; 4] = std::array::from_fn(|k| load8(x, 8 * k));
                    let d = absmax(&v) / 127.0;
                    let id = _mm256_set1_ps(if d != 0.0 { 1.0 / d } else { 0.0 });
                    b.d = Half::from_f32(d);
                    pack_i8(v.map(|v| round_away(v, id)), &mut b.qs);
                }
            }

            /// Bit-identical to `scalar::quantize_row_q8_1` (Q8_0 plus s = d · Σq).
            #[target_feature(enable = $feat)]
            fn quantize_q8_1(src: &[f32], dst: &mut [u8]) {
                let blocks = as_blocks_mut::<BlockQ8_1>(dst);
                assert_eq!(blocks.len() * 32, src.len());
                for (b, x) in blocks.iter_mut().zip(src.chunks_exact(32)) {
                    let v: [__m256; 4] = std::array::from_fn(|k| load8(x, 8 * k));
                    let d = absmax(&v) / 127.0;
                    let id = _mm256_set1_ps(if d != 0.0 { 1.0 / d } else { 0.0 });
                    let q = v.map(|v| round_away(v, id));
                    let sum = hsum_epi32(_mm256_add_epi32(
                        _mm256_add_epi32(q[0], q[1]),
                        _mm256_add_epi32(q[2], q[3]),
                    ));
                    b.d = Half::from_f32(d);
                    b.s = Half::from_f32(sum as f32 * d);
                    pack_i8(q, &mut b.qs);
                }
            }

            /// Bit-identical to `scalar::quantize_row_q8_K`: the scale comes from the first
            /// element of largest magnitude, values round half to even, capped at 127.
            #[target_feature(enable = $feat)]
            fn quantize_q8_K(src: &[f32], dst: &mut [u8]) {
                let blocks = as_blocks_mut::<BlockQ8_K>(dst);
                assert_eq!(blocks.len() * 256, src.len());
                for (b, x) in blocks.iter_mut().zip(src.chunks_exact(256)) {
                    let amax = (0..8)
                        .map(|g| absmax(&std::array::from_fn(|k| load8(x, 32 * g + 8 * k))))
                        .fold(0f32, f32::max);
                    if amax == 0.0 {
                        b.d = 0f32.to_le_bytes();
                        b.qs = [0; 256];
                        b.bsums = [[0; 2]; 16];
                        continue;
                    }
                    let first = x.iter().position(|v| v.abs() == amax).unwrap_or(0);
                    let iscale = -127.0 / x[first];
                    let iv = _mm256_set1_ps(iscale);
                    let cap = _mm256_set1_epi32(127);
                    for g in 0..8 {
                        let q: [__m256i; 4] = std::array::from_fn(|k| {
                            let s = _mm256_mul_ps(iv, load8(x, 32 * g + 8 * k));
                            let r =
                                _mm256_round_ps(s, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                            _mm256_min_epi32(_mm256_cvtps_epi32(r), cap)
                        });
                        for h in 0..2 {
                            let sum = hsum_epi32(_mm256_add_epi32(q[2 * h], q[2 * h + 1]));
                            b.bsums[2 * g + h] = (sum as i16).to_le_bytes();
                        }
                        pack_i8(q, &mut b.qs[32 * g..32 * g + 32]);
                    }
                    b.d = (1.0 / iscale).to_le_bytes();
                }
            }

            // Safe table entries: `kernels` is only called by dispatch after detecting every
            // feature in `$feat` on this CPU.
            $crate::x86_64::avx2::entry!(vec_dot_q4_0_q8_0, q4_0_q8_0);
            $crate::x86_64::avx2::entry!(vec_dot_q8_0_q8_0, q8_0_q8_0);
            $crate::x86_64::avx2::entry!(vec_dot_q4_1_q8_1, q4_1_q8_1);
            $crate::x86_64::avx2::entry!(vec_dot_q5_0_q8_0, q5_0_q8_0);
            $crate::x86_64::avx2::entry!(vec_dot_q5_1_q8_1, q5_1_q8_1);
            $crate::x86_64::avx2::entry!(vec_dot_q4_K_q8_K, q4_K_q8_K);
            $crate::x86_64::avx2::entry!(vec_dot_q5_K_q8_K, q5_K_q8_K);
            $crate::x86_64::avx2::entry!(vec_dot_q6_K_q8_K, q6_K_q8_K);
            $crate::x86_64::avx2::entry!(vec_dot_f32, f32_f32);
            $crate::x86_64::avx2::entry!(vec_dot_f16_f32, f16_f32);
            $crate::x86_64::avx2::entry!(vec_dot_bf16_f32, bf16_f32);

            fn vec_dot_q4_0_q8_0_x4(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
                // SAFETY: only reachable through `kernels()`, whose caller guarantees `$feat`.
                unsafe { q4_0_q8_0_x4(w, a) }
            }

            fn vec_dot_q8_0_q8_0_x4(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
                // SAFETY: only reachable through `kernels()`, whose caller guarantees `$feat`.
                unsafe { q8_0_q8_0_x4(w, a) }
            }

            fn vec_dot_q4_K_q8_K_x4(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
                // SAFETY: only reachable through `kernels()`, whose caller guarantees `$feat`.
                unsafe { q4_K_q8_K_x4(w, a) }
            }

            fn vec_dot_q5_K_q8_K_x4(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
                // SAFETY: only reachable through `kernels()`, whose caller guarantees `$feat`.
                unsafe { q5_K_q8_K_x4(w, a) }
            }

            fn vec_dot_q6_K_q8_K_x4(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
                // SAFETY: only reachable through `kernels()`, whose caller guarantees `$feat`.
                unsafe { q6_K_q8_K_x4(w, a) }
            }

            fn quantize_row_q8_0(src: &[f32], dst: &mut [u8]) {
                // SAFETY: only reachable through `kernels()`, whose caller guarantees `$feat`.
                unsafe { quantize_q8_0(src, dst) }
            }

            fn quantize_row_q8_1(src: &[f32], dst: &mut [u8]) {
                // SAFETY: only reachable through `kernels()`, whose caller guarantees `$feat`.
                unsafe { quantize_q8_1(src, dst) }
            }

            fn quantize_row_q8_K(src: &[f32], dst: &mut [u8]) {
                // SAFETY: only reachable through `kernels()`, whose caller guarantees `$feat`.
                unsafe { quantize_q8_K(src, dst) }
            }

            /// Every kernel of this module (a complete table).
            ///
            /// # Safety
            /// The CPU must have the features `$feat`: every entry calls a
            /// `#[target_feature(enable = $feat)]` function without checking.
            pub(crate) unsafe fn kernels() -> Kernels {
                Kernels {
                    quantize_row_q8_0,
                    quantize_row_q8_1,
                    quantize_row_q8_K,
                    vec_dot_q4_0_q8_0,
                    vec_dot_q8_0_q8_0,
                    vec_dot_q4_1_q8_1,
                    vec_dot_q5_0_q8_0,
                    vec_dot_q5_1_q8_1,
                    vec_dot_q4_K_q8_K,
                    vec_dot_q5_K_q8_K,
                    vec_dot_q6_K_q8_K,
                    vec_dot_f32,
                    vec_dot_f16_f32,
                    vec_dot_bf16_f32,
                    vec_dot_q4_0_q8_0_x4: Some(vec_dot_q4_0_q8_0_x4),
                    vec_dot_q8_0_q8_0_x4: Some(vec_dot_q8_0_q8_0_x4),
                    vec_dot_q4_K_q8_K_x4: Some(vec_dot_q4_K_q8_K_x4),
                    vec_dot_q5_K_q8_K_x4: Some(vec_dot_q5_K_q8_K_x4),
                    vec_dot_q6_K_q8_K_x4: Some(vec_dot_q6_K_q8_K_x4),
                    vec_dot_q4_0_q8_0_r4: None,
                    vec_dot_q8_0_q8_0_r4: None,
                    panel_gemm: None,
                    gemm_q4_0_q8_0_4x4: None,
                    gemm_q8_0_q8_0_4x4: None,
                    gemm_q4_K_q8_K_4x4: None,
                    gemm_q5_K_q8_K_4x4: None,
                    gemm_q6_K_q8_K_4x4: None,
                    dot_f16_f32,
                    mad_f16_f32,
                    dot_f16_f32_rows,
                    mad_f16_f32_rows,
                    ..Kernels::SCALAR
                }
            }
        }
    };
}

pub(crate) use kernels_256;

use std::arch::x86_64::*;

/// Four adjacent u8·i8 products summed into i32 lanes: `vpmaddubsw` then `vpmaddwd` by 1.
/// Exact while a pair of products fits i16 (u ≤ 128 with |s| ≤ 127, or u ≤ 63).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn dot_u8i8_avx2(u: __m256i, s: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
}

/// Every f16 bit pattern as f32: a scale becomes one load (broadcast straight into a vector)
/// instead of an insert + convert + broadcast on the shuffle port, the bottleneck of GEMV.
pub(crate) static F16_TO_F32: [f32; 65536] = {
    let mut t = [0f32; 65536];
    let mut i = 0;
    while i < 65536 {
        t[i] = half::f16::from_bits(i as u16).to_f32_const();
        i += 1;
    }
    t
};

kernels_256!(k, "avx2,fma,f16c", super::dot_u8i8_avx2);

pub(crate) use k::kernels;
