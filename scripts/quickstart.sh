#!/usr/bin/env bash
# The main job on a fresh machine: build ouro, ask the shipped demo LoopLM (models/ouro-demo.gguf,
# models/README.md) a few questions with the exit gate cutting loops, then convert a Hugging Face
# Ouro checkpoint to GGUF and run it. The checkpoint is the first argument, by default the
# reference fixture ../shared/fixtures/ouro-tiny-b (exact Hugging Face layout, random weights).
# A checkpoint given on the command line must exist; only the default is skipped when absent.
set -euo pipefail
cd "$(dirname "$0")/.."
DEFAULT_HF=../shared/fixtures/ouro-tiny-b
HF="${1:-$DEFAULT_HF}"
OUT="${OURO_QUICKSTART_OUT:-target/quickstart/$(basename "$HF")-q8_0.gguf}"
if [ $# -gt 0 ] && [ ! -f "$HF/config.json" ]; then
    echo "error: $HF is not a Hugging Face checkpoint directory (no config.json)" >&2
    exit 1
fi
mkdir -p "$(dirname "$OUT")"
echo "== building ouro and ouro-convert (release; about 4 minutes the first time) ..."
cargo build --release -q -p ouro -p ouro-convert
echo "== the demo LoopLM (models/ouro-demo.gguf)"
target/release/ouro info models/ouro-demo.gguf
for q in "What is 347 + 589?" "Which is larger, 96 or 318?" "Reverse the digits of 3081."; do
    echo "> $q"
    target/release/ouro generate --chat -p "$q" --temp 0 --exit-mode skip
done
printf 'What is 905 - 487?\n' | target/release/ouro chat --temp 0 --show-depth
if [ -d "$HF" ]; then
    echo "== converting $HF to GGUF (q8_0)"
    target/release/ouro-convert hf2gguf "$HF" -o "$OUT" --type q8_0
    # The reference fixtures and `ouro-convert synth` checkpoints carry random weights.
    if [ "$HF" = "$DEFAULT_HF" ] || grep -q '"synthetic_noise"' "$HF/config.json" 2>/dev/null; then
        echo "== running it: $(basename "$HF") has RANDOM weights, so the text below is" \
            "gibberish; this step only shows that the converted file loads and runs"
    else
        echo "== running $OUT"
    fi
    target/release/ouro generate -m "$OUT" -p "The capital of France is" -n 16 --temp 0 \
        --exit-mode skip --exit-threshold 0.5 --json
else
    echo "== skipping the conversion: the reference fixture $DEFAULT_HF is not here" \
        "(pass a Hugging Face Ouro checkpoint directory as the first argument)"
fi
