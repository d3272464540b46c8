// Test oracle for scripts/record-kquant-golden.sh: quantizes raw f32 rows with ggml's
// ggml_quantize_chunk (the call llama-quantize makes; no importance matrix) and writes the blocks.
//   kquant-driver GGML_TYPE_ID N_PER_ROW IN.f32 OUT.bin
#include <stdio.h>
#include <stdlib.h>
#include "ggml.h"

int main(int argc, char ** argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: kquant-driver GGML_TYPE_ID N_PER_ROW IN.f32 OUT.bin\n");
        return 2;
    }
    const enum ggml_type type = (enum ggml_type) atoi(argv[1]);
    const long n_per_row = atol(argv[2]);
    FILE * in = fopen(argv[3], "rb");
    if (!in || n_per_row <= 0) { fprintf(stderr, "cannot read %s\n", argv[3]); return 1; }
    fseek(in, 0, SEEK_END);
    const long n_bytes = ftell(in);
    fseek(in, 0, SEEK_SET);
    float * x = malloc(n_bytes);
    if (fread(x, 1, n_bytes, in) != (size_t) n_bytes) { fprintf(stderr, "short read\n"); return 1; }
    fclose(in);
    const long n_rows = n_bytes / 4 / n_per_row;
    void * y = calloc(n_rows, ggml_row_size(type, n_per_row));
    const size_t n_out = ggml_quantize_chunk(type, x, y, 0, n_rows, n_per_row, NULL);
    FILE * out = fopen(argv[4], "wb");
    if (!out || fwrite(y, 1, n_out, out) != n_out) { fprintf(stderr, "cannot write %s\n", argv[4]); return 1; }
    fclose(out);
    return 0;
}
