#!/usr/bin/env python3
"""README kernel table from `cargo bench -p ouro-simd --bench gemm` (criterion estimates).

    python3 bench/kernel_table.py [target/criterion]

Rows: weight type × path; columns: n = 1 … 512 vectors per product on the Ouro-1.4B ffn-down
shape (2048 × 5632). Each cell: G multiply-adds per second and the share of the machine's int8
peak (`int8_peak/vpdpbusd_zmm/threads=2`, the independent-`vpdpbusd` microbench, same run), and
the tokens per second that rate would give a whole Ouro-1.4B forward at 4 loops (5.0 G
multiply-adds per token, matmuls only).
"""
import json
import sys
from pathlib import Path

MACS_PER_TOKEN = 5.0e9  # Ouro-1.4B, 4 loops: 1.233 G stack parameters x 4 + the head (performance.md)
ROWS, COLS = 2048, 5632


def mean_ns(d: Path):
    f = d / "new" / "estimates.json"
    if not f.exists():
        return None
    return json.loads(f.read_text())["mean"]["point_estimate"]


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
    peak = None
    for cand in [root / "int8_peak" / "vpdpbusd_zmm_threads=2"]:
        if cand.exists():
            ns = mean_ns(cand)
            meta = json.loads((cand / "new" / "benchmark.json").read_text())
            macs = meta["throughput"]["Elements"]
            peak = macs / (ns * 1e-9)
    print(f"int8 peak (vpdpbusd zmm, 2 threads): {peak / 1e9:.0f} G MAC/s" if peak else "int8 peak: not measured")
    ns_list = [1, 2, 4, 8, 16, 32, 128, 512]
    print()
    print("| type | path | " + " | ".join(f"n={n}" for n in ns_list) + " |")
    print("|---|---|" + "---:|" * len(ns_list))
    for g in sorted(root.glob("gemm_*")):
        ty = g.name[len("gemm_"):].upper()
        # criterion names a bench "<path>/n=<n>" directory "<path>_n=<n>"
        paths = sorted({p.name.split("_n=")[0] for p in g.iterdir() if "_n=" in p.name})
        for path in paths:
            cells = []
            for n in ns_list:
                d = g / f"{path}_n={n}"
                ns = mean_ns(d) if d.exists() else None
                if ns is None:
                    cells.append("")
                    continue
                rate = ROWS * COLS * n / (ns * 1e-9)
                share = f" ({100 * rate / peak:.0f} %)" if peak else ""
                cells.append(f"{rate / 1e9:.1f}{share}")
            print(f"| {ty} | {path} | " + " | ".join(cells) + " |")
    print()
    print(f"G multiply-adds/s (share of the int8 peak); a whole-model rate R gives ≈ R / {MACS_PER_TOKEN / 1e9:.1f} G tok/s at 4 loops.")


if __name__ == "__main__":
    main()
