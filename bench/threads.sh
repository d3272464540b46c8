#!/usr/bin/env bash
# How much of a prefill and of a decode token the worker threads spend waiting (issue 15 item 4).
# Runs `ouro bench` under /usr/bin/time (busy share = CPU time / (wall time × threads): the rest
# is time a worker was parked) and `perf record` (the share of on-CPU samples inside rayon's
# idle/spin/sleep code and futex/yield syscalls: time a worker was awake but not working).
# Includes loading and the warm-up run (small next to -r 3 on a 1.4B model).
#   bench/threads.sh MODEL.gguf [THREADS=2] [LOOPS=4]
# Needs perf (linux-perf). Not part of CI; run it on an idle machine.
set -euo pipefail
MODEL="$1"; THREADS="${2:-2}"; LOOPS="${3:-4}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OURO="${OURO:-$ROOT/target/release/ouro}"
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
for test in "pp128:-p 128 -n 0" "tg32:-p 0 -n 32"; do
    name="${test%%:*}"; args="${test#*:}"
    # shellcheck disable=SC2086
    /usr/bin/time -f "%e %U %S" -o "$TMP/time" "$OURO" bench -m "$MODEL" -t "$THREADS" --loops "$LOOPS" $args -r 3 > /dev/null
    busy="$(awk -v t="$THREADS" '{ printf "%.1f", 100 * ($2 + $3) / ($1 * t) }' "$TMP/time")"
    # shellcheck disable=SC2086
    perf record -q -g -o "$TMP/perf.data" "$OURO" bench -m "$MODEL" -t "$THREADS" --loops "$LOOPS" $args -r 3 >/dev/null 2>&1
    idle="$(perf report -i "$TMP/perf.data" --stdio --no-children --sort sym 2>/dev/null \
        | awk '/^ +[0-9.]+%/ { p=$1; sub("%","",p); if ($0 ~ /rayon_core::(sleep|registry::WorkerThread::wait|latch)|futex|sched_yield|crossbeam|park|__schedule|do_syscall/) s+=p } END { printf "%.1f", s }')"
    echo "$name: threads busy ${busy}% of wall × $THREADS; on-CPU samples in rayon wait/spin/sleep and futex/yield: ${idle}% (loops $LOOPS)"
done
