#!/usr/bin/env bash
# Builds the fuzz targets with the flags `cargo fuzz build` uses (nightly, SanitizerCoverage for
# libFuzzer, AddressSanitizer, debug assertions), for machines without cargo-fuzz installed.
# Binaries: fuzz/target/x86_64-unknown-linux-gnu/release/<target>; run one on a corpus directory:
#   mkdir -p corpus/gguf_reader && target/x86_64-unknown-linux-gnu/release/gguf_reader \
#       -max_total_time=900 -rss_limit_mb=4096 corpus/gguf_reader
#   fuzz/seeds/hf_checkpoint.py corpus/hf_checkpoint   # seeds, then the same with hf_checkpoint
set -euo pipefail
cd "$(dirname "$0")"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Zsanitizer=address \
-Cdebug-assertions -Coverflow-checks -Cforce-frame-pointers"
cargo +nightly build --release --target x86_64-unknown-linux-gnu --bins "$@"
