"""Aggregate decode throughput of a running `ouro serve` for several concurrent clients (not a
test: `ouro serve` README table). Each client sends one /v1/completions request with
`ignore_eos` and a fixed `max_tokens`; aggregate tok/s = all generated tokens / wall time of
the round (prefill of the short prompts included). Usage:
    python3 serve_bench.py BASE_URL MAX_TOKENS CLIENTS [CLIENTS ...]
"""

import json
import sys
import threading
import time
import urllib.request

base, max_tokens, counts = sys.argv[1], int(sys.argv[2]), [int(c) for c in sys.argv[3:]]


def one(i, out):
    body = json.dumps({"prompt": f"Sort {i}, 7, 31", "max_tokens": max_tokens, "ignore_eos": True,
                       "temperature": 0}).encode()
    req = urllib.request.Request(base + "/v1/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        v = json.load(r)
    out[i] = (v["usage"]["completion_tokens"], v["timings"]["predicted_per_second"])


for n in counts:
    out = [None] * n
    t0 = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i, out)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    tokens = sum(o[0] for o in out)
    per = sum(o[1] for o in out) / n
    print(f"clients {n}: {tokens} tokens in {wall:.2f} s = {tokens / wall:.2f} tok/s aggregate, "
          f"{per:.2f} tok/s per client (server timings)", flush=True)
