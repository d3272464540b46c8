#!/usr/bin/env bash
# The main job on a fresh machine: build ouro, convert the reference Ouro checkpoint
# ../shared/fixtures/ouro-tiny-b (exact Hugging Face layout: 3 physical layers x 3 loops, GQA,
# exit gate) to GGUF, show what is in it, and run it with the exit gate cutting loops.
set -euo pipefail
cd "$(dirname "$0")/.."
HF="${1:-../shared/fixtures/ouro-tiny-b}"
OUT="${OURO_QUICKSTART_OUT:-target/quickstart/ouro-tiny-b-q8_0.gguf}"
mkdir -p "$(dirname "$OUT")"
cargo build --release -q -p ouro -p ouro-convert
target/release/ouro-convert hf2gguf "$HF" -o "$OUT" --type q8_0
target/release/ouro info "$OUT"
target/release/ouro generate -m "$OUT" -p "The capital of France is" -n 16 --temp 0 \
    --exit-mode skip --exit-threshold 0.5 --json
