#!/usr/bin/env bash
# The main job on a fresh machine: build ouro, ask the shipped demo LoopLM (models/ouro-demo.gguf,
# models/README.md) a few questions with the exit gate cutting loops, then convert the reference
# Ouro checkpoint ../shared/fixtures/ouro-tiny-b (exact Hugging Face layout) to GGUF and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
HF="${1:-../shared/fixtures/ouro-tiny-b}"
OUT="${OURO_QUICKSTART_OUT:-target/quickstart/ouro-tiny-b-q8_0.gguf}"
mkdir -p "$(dirname "$OUT")"
cargo build --release -q -p ouro -p ouro-convert
target/release/ouro info models/ouro-demo.gguf
for q in "What is 347 + 589?" "Which is larger, 96 or 318?" "Reverse the digits of 3081."; do
    echo "> $q"
    target/release/ouro generate --chat -p "$q" --temp 0 --exit-mode skip
done
printf 'What is 905 - 487?\n' | target/release/ouro chat --temp 0 --show-depth
if [ -d "$HF" ]; then
    target/release/ouro-convert hf2gguf "$HF" -o "$OUT" --type q8_0
    target/release/ouro generate -m "$OUT" -p "The capital of France is" -n 16 --temp 0 \
        --exit-mode skip --exit-threshold 0.5 --json
fi
