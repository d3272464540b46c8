// Does this machine run AMX int8 tiles for us? (Issue 15, item 2: an AMX tile path where the CPU
// has amx_tile / amx_int8.) Asks Linux for the tile-data state (arch_prctl ARCH_REQ_XCOMP_PERM,
// XFEATURE_XTILEDATA — without it the first tile instruction raises SIGILL), configures three
// 16 × 64-byte tiles, runs one TDPBSSD (C += A · B, int8 → int32, B in AMX's K/4 × N·4 layout)
// and compares it with the scalar product. Not part of CI; needs gcc ≥ 11.
//
//   cc -O2 -mamx-tile -mamx-int8 bench/amx_probe.c -o /tmp/amx_probe && /tmp/amx_probe
//
// On the Intel Xeon VM of 2026-12-01 (amx_tile/amx_int8/amx_bf16 in /proc/cpuinfo) it printed
// "ARCH_REQ_XCOMP_PERM -> 0" and "tdpbssd matches the scalar product", while llama-bench from
// scripts/llama-cpp.sh died with SIGILL on every batched run there.
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

int main(void) {
    long r = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA);
    printf("ARCH_REQ_XCOMP_PERM -> %ld\n", r);
    if (r != 0) return 1;
    tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 3; t++) {
        c.rows[t] = 16;
        c.colsb[t] = 64;
    }
    _tile_loadconfig(&c);
    int8_t a[16][64], b[16][64];
    int32_t got[16][16], want[16][16];
    for (int i = 0; i < 16; i++)
        for (int k = 0; k < 64; k++) {
            a[i][k] = (int8_t)((i * 7 + k * 3) % 11 - 5);
            b[i][k] = (int8_t)((i * 5 + k) % 13 - 6);
        }
    // b[k / 4][n * 4 + k % 4] is B[k][n].
    memset(want, 0, sizeof want);
    for (int i = 0; i < 16; i++)
        for (int n = 0; n < 16; n++)
            for (int k = 0; k < 64; k++) want[i][n] += a[i][k] * b[k / 4][n * 4 + k % 4];
    _tile_zero(0);
    _tile_loadd(1, a, 64);
    _tile_loadd(2, b, 64);
    _tile_dpbssd(0, 1, 2);
    _tile_stored(0, got, 64);
    _tile_release();
    int ok = memcmp(got, want, sizeof got) == 0;
    printf("tdpbssd %s\n", ok ? "matches the scalar product" : "WRONG");
    return ok ? 0 : 2;
}
