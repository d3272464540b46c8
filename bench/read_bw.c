/* Read bandwidth with T threads (OpenMP): each thread sums its share of a buffer far larger than
 * any cache (vectorized sum). Prints the median GB/s (10^9 bytes/s) of PASSES
 * passes on the last line.   cc -O3 -march=native -fopenmp read_bw.c -o read_bw && ./read_bw 2 */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BYTES ((size_t)1 << 30)
#define PASSES 15

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1) {
        fprintf(stderr, "usage: read_bw THREADS\n");
        return 2;
    }
    omp_set_num_threads(threads);
    size_t n = BYTES / sizeof(uint64_t);
    uint64_t *a = aligned_alloc(64, BYTES);
    if (!a) {
        fprintf(stderr, "read_bw: cannot allocate %zu bytes\n", BYTES);
        return 1;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = i;
    double gbs[PASSES];
    uint64_t sink = 0;
    for (int p = 0; p < PASSES; p++) {
        double t0 = omp_get_wtime();
        uint64_t total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total)
        for (size_t i = 0; i < n; i++) total += a[i];
        double dt = omp_get_wtime() - t0;
        sink += total;
        gbs[p] = (double)BYTES / dt / 1e9;
    }
    qsort(gbs, PASSES, sizeof(double), cmp);
    fprintf(stderr, "read_bw: %d threads, min %.1f max %.1f GB/s (checksum %llu)\n", threads, gbs[0],
            gbs[PASSES - 1], (unsigned long long)sink);
    printf("%.2f\n", gbs[PASSES / 2]);
    free(a);
    return 0;
}
