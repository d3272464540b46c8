#!/usr/bin/env python3
"""Writes the fixed input rows of the K-quant golden test (convert/tests/kquant.rs) as raw f32.

usage: kquant_input.py OUT.f32 [ROWS COLS SEED]

Rows of 512 (two super-blocks) exercising every branch of ggml's reference K-quantizers:
Gaussian rows over nine decades of scale, heavy tails, all-positive and all-negative rows,
constant rows, zero rows, a zero sub-block inside a row, values below GROUP_MAX_EPS, bf16-rounded
weights (what a converter sees), sparse spikes; with ROWS > 16, further Gaussian/heavy rows.
"""
import sys

import numpy as np

out = sys.argv[1]
rows, cols, seed = (int(a) for a in sys.argv[2:5]) if len(sys.argv) > 2 else (16, 512, 18)
rng = np.random.default_rng(seed)


def bf16(x):
    b = x.astype(np.float32).view(np.uint32)
    b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
    return b.view(np.float32)


fixed = [
    rng.standard_normal(cols) * 0.02,
    rng.standard_normal(cols) * 1e-3,
    rng.standard_normal(cols) * 7.5,
    rng.standard_normal(cols) ** 3 * 0.05,
    rng.uniform(0.1, 1.0, cols),
    -rng.uniform(0.1, 1.0, cols),
    np.full(cols, 0.25),
    np.full(cols, -0.75),
    np.zeros(cols),
    np.concatenate([np.zeros(32), rng.standard_normal(cols - 32) * 0.1]),
    rng.standard_normal(cols) * 1e-20,
    bf16(rng.standard_normal(cols) * 0.03),
    np.where(rng.uniform(size=cols) < 0.02, rng.standard_normal(cols) * 4, 0.0),
    np.concatenate([rng.standard_normal(cols // 2) * 1e-4, rng.standard_normal(cols // 2) * 30]),
    bf16(rng.laplace(0, 0.01, cols)),
    rng.standard_normal(cols) * np.repeat(rng.uniform(1e-3, 1, cols // 16), 16),
]
data = [r for r in fixed[:rows]]
while len(data) < rows:
    k = len(data) % 3
    scale = 10 ** rng.uniform(-4, 1)
    row = rng.standard_normal(cols) * scale
    if k == 1:
        row = rng.standard_t(3, cols) * scale
    elif k == 2:
        row = bf16(row)
    data.append(row)
np.stack(data).astype("<f4").tofile(out)
