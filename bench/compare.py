#!/usr/bin/env python3
"""Helpers of bench/compare-llama.sh (standard library + gguf-py only).

  compare.py set-loops FILE K            set {arch}.num_loops = K in place (same type, same size)
  compare.py measure OUT.json -- CMD...  run CMD, store its JSON stdout and its peak RSS
  compare.py table RESULTS_DIR BW_GBS    print the markdown tables from the stored runs

Result files are named `{pass}-{engine}-{type}-L{loops}.json`, engine one of
`llama` (llama-bench on the nanbeige file), `ours-nb` (ouro bench on the same nanbeige file) and
`ours-ouro` (ouro bench on the ouro file, which has two more norm vectors per layer).
"""
from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ENGINES = ("llama", "ours-nb", "ours-ouro")


def set_loops(path: str, loops: int) -> None:
    import gguf

    reader = gguf.GGUFReader(path, "r+")
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
    field = reader.get_field(f"{arch}.num_loops")
    if field is None:
        raise SystemExit(f"{path}: no {arch}.num_loops key")
    field.parts[field.data[0]][0] = loops
    reader.data.flush()


def measure(out: str, cmd: list[str]) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    doc = {"cmd": cmd, "peak_rss_bytes": peak, "result": json.loads(proc.stdout)}
    Path(out).write_text(json.dumps(doc))


def samples(engine: str, doc: dict) -> dict[str, list[float]]:
    """tok/s samples per test ("pp" / "tg") of one run."""
    r = doc["result"]
    if engine == "llama":
        out = {}
        for t in r:
            key = "pp" if t["n_prompt"] > 0 and t["n_gen"] == 0 else "tg"
            out[key] = list(t["samples_ts"])
        return out
    return {k: list(r[f"{k}_tok_per_s"]["samples"]) for k in ("pp", "tg") if r.get(f"{k}_tok_per_s")}


def si(b: float) -> str:
    return f"{b / 1e9:.2f} GB" if b >= 1e8 else f"{b / 1e6:.2f} MB"


def fmt(xs: list[float]) -> str:
    if not xs:
        return "–"
    m = statistics.fmean(xs)
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    digits = 2 if m < 100 else 1
    return f"{m:.{digits}f} ± {sd:.{digits}f}"


def ratio(a: list[float], b: list[float]) -> str:
    if not a or not b:
        return "–"
    return f"**{statistics.fmean(a) / statistics.fmean(b):.2f}×**"


def table(results: str, bw_gbs: float) -> None:
    runs: dict[tuple, dict] = defaultdict(lambda: {"pp": [], "tg": [], "rss": [], "doc": None})
    for f in sorted(Path(results).glob("*-*-*-L*.json")):
        stem = f.stem
        _pass, rest = stem.split("-", 1)
        engine = next(e for e in ENGINES if rest.startswith(e + "-"))
        ty, loops = rest[len(engine) + 1:].rsplit("-L", 1)
        doc = json.loads(f.read_text())
        run = runs[(ty, int(loops), engine)]
        for k, v in samples(engine, doc).items():
            run[k].extend(v)
        run["rss"].append(doc["peak_rss_bytes"])
        run["doc"] = doc
    keys = sorted({(ty, loops) for ty, loops, _ in runs}, key=lambda k: (k[0], -k[1]))
    any_ours = next(r["doc"]["result"] for (_, _, e), r in runs.items() if e != "llama")
    threads, simd = any_ours["threads"], any_ours["simd"]
    print(f"tok/s, mean ± sd over all repetitions of all passes; {threads} threads; "
          f"ours on the {simd} path; ratio = ours / llama.cpp (> 1: ours faster)\n")
    print("| model | test | llama.cpp | ours, same nanbeige file | ratio | ours, ouro file | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for ty, loops in keys:
        g = lambda e, t: runs.get((ty, loops, e), {}).get(t, [])
        depth = any_ours.get("n_depth", 0)
        at = f" @ d{depth}" if depth else ""
        for t, n in (("pp", any_ours["n_prompt"]), ("tg", any_ours["n_gen"])):
            ll, nb, ou = g("llama", t), g("ours-nb", t), g("ours-ouro", t)
            if not (ll or nb or ou):
                continue
            print(f"| {ty.upper()}, {loops} loop{'s' if loops > 1 else ''} | {t}{n}{at} | {fmt(ll)} | "
                  f"{fmt(nb)} | {ratio(nb, ll)} | {fmt(ou)} | {ratio(ou, ll)} |")
    print(f"\nDecode bandwidth (weight bytes per token × tg tok/s) as a share of the measured "
          f"{bw_gbs:.1f} GB/s read bandwidth ({threads} threads), and peak RSS:\n")
    print("| model | weights/token | llama.cpp | ours, nanbeige file | ours, ouro file "
          "| peak RSS llama.cpp | ours nb | ours ouro |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for ty, loops in keys:
        nb = runs.get((ty, loops, "ours-nb"))
        ou = runs.get((ty, loops, "ours-ouro"))
        if nb is None:
            continue
        bpt = nb["doc"]["result"]["weight_bytes_per_token"]

        def bw(run: dict | None, bytes_per_token: int) -> str:
            if run is None or not run["tg"]:
                return "–"
            gbs = bytes_per_token * statistics.fmean(run["tg"]) / 1e9
            return f"{gbs:.1f} GB/s = {100 * gbs / bw_gbs:.0f} %"

        def rss(run: dict | None) -> str:
            return "–" if run is None else si(max(run["rss"]))

        ou_bpt = ou["doc"]["result"]["weight_bytes_per_token"] if ou else 0
        print(f"| {ty.upper()}, {loops} loop{'s' if loops > 1 else ''} | {si(bpt)} | "
              f"{bw(runs.get((ty, loops, 'llama')), bpt)} | {bw(nb, bpt)} | {bw(ou, ou_bpt)} | "
              f"{rss(runs.get((ty, loops, 'llama')))} | {rss(nb)} | {rss(ou)} |")


def main() -> None:
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "set-loops":
        set_loops(a[1], int(a[2]))
    elif len(a) >= 4 and a[0] == "measure" and a[2] == "--":
        measure(a[1], a[3:])
    elif len(a) == 3 and a[0] == "table":
        table(a[1], float(a[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
