// How fast could an AMX int8 tile path run a Q8_0 GEMM here? (Issue 15, item 2: a measurement
// for the design, not the runtime's kernel.) C[m][n] = Σ_b da[m][b] · dw[n][b] · Σ_{k in block b}
// a[m][k] · w[n][k] with ggml Q8_0's 32-value blocks: the block scales forbid summing int32
// across blocks, so each 32-byte block is one TDPBSSD (tiles of 16 tokens × 32 bytes and
// 8 × 64 bytes of 16 weight rows), then the 16 × 16 int32 tile is stored, converted and scaled
// by the outer product of the two scale columns into f32 accumulators (AVX-512) — the epilogue
// that bounds this design. Weights pre-packed in AMX's B layout (K/4 × 16·4 bytes per block),
// as a resident repack would store them. Checks every output against a scalar twin, then times
// M tokens × N rows × K on one thread (run two copies for two cores). Linux must grant the tile
// state first (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA; without it the first tile
// instruction raises SIGILL): the program says so and exits 1 when it is refused.
//
//   cc -O2 -march=native bench/amx_q8_0_gemm.c -o /tmp/amx_gemm -lm && /tmp/amx_gemm [M N K reps]
//
// Measured on the Intel Xeon VM of 2026-12-01 (idle, 04:15 UTC), ffn-down shape N = 2048 rows ×
// K = 5632: M = 32 / 128 / 512 tokens 308 / 268 / 267 G MAC/s on one thread; two copies at once
// 268 + 263 = 531 G MAC/s. Same run, `cargo bench -p ouro-simd --bench gemm` on 2 threads:
// vpdpbusd zmm peak 692 G MAC/s, our avx512-vnni resident Q8_0 n = 128 / 512 231 / 239 G MAC/s
// (Q4_0 175 / 166): this tile design is ≈ 2.2× the resident kernel at prefill batch sizes, and
// its epilogue is the resident contract's (acc = fma(f32(isum), dw · da, acc) per block, exact
// int32 block sums), so an AMX path can keep decode = verification = prefill bit for bit.
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// a: M × K int8 (row-major), da: M × K/32; wp: per 16-row group g, per block b, 8 × 64 bytes
// (wp[((g * nb + b) * 8 + k4) * 64 + n * 4 + j] = w[16g + n][32b + 4k4 + j]); dwp: per group,
// per block, the 16 rows' scales (dwp[(g * nb + b) * 16 + n] = dw[16g + n][b]).
// Blocking: 32 tokens × 32 rows per step (tiles: C 0-3, A 4-5, B 6-7), four TDPBSSD per block.
static void gemm_amx(int M, int N, int K, const int8_t *a, const float *da, const int8_t *wp,
                     const float *dwp, float *c) {
    int nb = K / 32;
    int32_t t[4][16][16] __attribute__((aligned(64)));
    for (int m0 = 0; m0 < M; m0 += 32)
        for (int g = 0; g < N / 16; g += 2) {
            __m512 acc[4][16];
            for (int q = 0; q < 4; q++)
                for (int i = 0; i < 16; i++) acc[q][i] = _mm512_setzero_ps();
            for (int b = 0; b < nb; b++) {
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
                _tile_loadd(4, a + (size_t)m0 * K + 32 * b, K);
                _tile_loadd(5, a + (size_t)(m0 + 16) * K + 32 * b, K);
                _tile_loadd(6, wp + ((size_t)g * nb + b) * 512, 64);
                _tile_loadd(7, wp + ((size_t)(g + 1) * nb + b) * 512, 64);
                _tile_dpbssd(0, 4, 6);
                _tile_dpbssd(1, 4, 7);
                _tile_dpbssd(2, 5, 6);
                _tile_dpbssd(3, 5, 7);
                _tile_stored(0, t[0], 64);
                _tile_stored(1, t[1], 64);
                _tile_stored(2, t[2], 64);
                _tile_stored(3, t[3], 64);
                __m512 sw0 = _mm512_loadu_ps(dwp + ((size_t)g * nb + b) * 16);
                __m512 sw1 = _mm512_loadu_ps(dwp + ((size_t)(g + 1) * nb + b) * 16);
                for (int q = 0; q < 4; q++) {
                    __m512 sw = q & 1 ? sw1 : sw0;
                    const float *dam = da + (size_t)(m0 + 16 * (q >> 1)) * nb + b;
                    for (int i = 0; i < 16; i++) {
                        __m512 sc = _mm512_mul_ps(sw, _mm512_set1_ps(dam[(size_t)i * nb]));
                        __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512(t[q][i]));
                        acc[q][i] = _mm512_fmadd_ps(v, sc, acc[q][i]);
                    }
                }
            }
            for (int q = 0; q < 4; q++)
                for (int i = 0; i < 16; i++)
                    _mm512_storeu_ps(c + (size_t)(m0 + 16 * (q >> 1) + i) * N + 16 * (g + (q & 1)),
                                     acc[q][i]);
        }
}

int main(int argc, char **argv) {
    int M = argc > 1 ? atoi(argv[1]) : 128, N = argc > 2 ? atoi(argv[2]) : 2048;
    int K = argc > 3 ? atoi(argv[3]) : 2048, reps = argc > 4 ? atoi(argv[4]) : 20;
    if (M % 32 || N % 32 || K % 32) return fprintf(stderr, "M, N, K multiples of 32\n"), 2;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA))
        return fprintf(stderr, "the kernel refuses AMX tile data\n"), 1;
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 4; i++) cfg.rows[i] = 16, cfg.colsb[i] = 64;  // C: 16 tokens × 16 int32
    for (int i = 4; i < 6; i++) cfg.rows[i] = 16, cfg.colsb[i] = 32;  // A: 16 tokens × one block
    for (int i = 6; i < 8; i++) cfg.rows[i] = 8, cfg.colsb[i] = 64;   // B: 8 × (16 rows × 4 B)
    _tile_loadconfig(&cfg);
    int nb = K / 32;
    int8_t *a = aligned_alloc(64, (size_t)M * K), *w = aligned_alloc(64, (size_t)N * K);
    int8_t *wp = aligned_alloc(64, (size_t)N * K);
    float *da = malloc(sizeof(float) * M * nb), *dw = malloc(sizeof(float) * N * nb);
    float *dwp = malloc(sizeof(float) * N * nb);
    float *c = aligned_alloc(64, sizeof(float) * M * N);
    uint32_t s = 1;
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (int8_t)((s = s * 1664525 + 1013904223) >> 24);
    for (size_t i = 0; i < (size_t)N * K; i++) w[i] = (int8_t)((s = s * 1664525 + 1013904223) >> 24);
    for (int i = 0; i < M * nb; i++) da[i] = ((s = s * 1664525 + 1013904223) >> 8) * 1e-9f + 1e-3f;
    for (int i = 0; i < N * nb; i++) dw[i] = ((s = s * 1664525 + 1013904223) >> 8) * 1e-9f + 1e-3f;
    for (int g = 0; g < N / 16; g++)
        for (int b = 0; b < nb; b++)
            for (int k4 = 0; k4 < 8; k4++)
                for (int n = 0; n < 16; n++)
                    for (int j = 0; j < 4; j++)
                        wp[(((size_t)g * nb + b) * 8 + k4) * 64 + n * 4 + j] =
                            w[(size_t)(16 * g + n) * K + 32 * b + 4 * k4 + j];
    for (int g = 0; g < N / 16; g++)
        for (int b = 0; b < nb; b++)
            for (int n = 0; n < 16; n++) dwp[((size_t)g * nb + b) * 16 + n] = dw[(size_t)(16 * g + n) * nb + b];
    gemm_amx(M, N, K, a, da, wp, dwp, c);
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double want = 0, mag = 0;
            for (int b = 0; b < nb; b++) {
                int32_t t = 0;
                for (int k = 32 * b; k < 32 * b + 32; k++) t += a[(size_t)m * K + k] * w[(size_t)n * K + k];
                want += (double)da[m * nb + b] * dw[n * nb + b] * t;
                mag += fabs((double)da[m * nb + b] * dw[n * nb + b] * t);
            }
            double e = fabs(c[(size_t)m * N + n] - want) / (mag + 1e-30);
            if (e > worst) worst = e;
        }
    printf("max error vs scalar (relative to sum of |terms|): %.2e %s\n", worst, worst < 1e-6 ? "ok" : "WRONG");
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        gemm_amx(M, N, K, a, da, wp, dwp, c);
        double t = now() - t0;
        if (t < best) best = t;
    }
    double macs = (double)M * N * K;
    printf("M=%d N=%d K=%d: %.3f ms, %.1f G MAC/s (one thread, best of %d)\n", M, N, K, best * 1e3,
           macs / best * 1e-9, reps);
    _tile_release();
    return worst < 1e-6 ? 0 : 3;
}
