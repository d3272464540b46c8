"""gguf-py as the oracle for ouro-simd's tests (simd/tests/gguf_py.rs).

Commands (all arrays are raw little-endian files):
  quantize TYPE IN_F32 OUT_BYTES       gguf.quants.quantize of a 1-D f32 array
  dequantize TYPE IN_BYTES OUT_F32     gguf.quants.dequantize of one row of blocks
  sizes                                prints "NAME BLOCK_SIZE TYPE_SIZE" per GGML_QUANT_SIZES entry
  gguf PATH OUT_DIR [NAME...]          for the named tensors of a GGUF (all if none):
                                       OUT_DIR/NAME.bytes (raw data), OUT_DIR/NAME.f32 (dequantized),
                                       and prints "NAME TYPE N_ELEMENTS"
  requant_q8_0 PATH OUT_DIR NAME...    dequantize the named tensors, requantize to Q8_0 with gguf-py,
                                       write NAME.bytes (raw data), NAME.q8_0 and NAME.q8_0.f32 (its
                                       gguf-py dequantization), and print "NAME TYPE N_ELEMENTS"
"""
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize


def main(argv):
    cmd = argv[1]
    if cmd == "quantize":
        data = np.fromfile(argv[3], dtype=np.float32)
        out = quantize(data, T[argv[2]])
        np.ascontiguousarray(out).view(np.uint8).tofile(argv[4])
    elif cmd == "dequantize":
        data = np.fromfile(argv[3], dtype=np.uint8)
        out = dequantize(data, T[argv[2]])
        np.ascontiguousarray(out, dtype=np.float32).tofile(argv[4])
    elif cmd == "sizes":
        for t, (bs, ts) in GGML_QUANT_SIZES.items():
            print(t.name, bs, ts)
    elif cmd in ("gguf", "requant_q8_0"):
        reader = GGUFReader(argv[2])
        names = set(argv[4:])
        for t in reader.tensors:
            if names and t.name not in names:
                continue
            raw = np.ascontiguousarray(t.data).view(np.uint8).reshape(-1)
            deq = dequantize(raw, t.tensor_type).astype(np.float32)
            base = f"{argv[3]}/{t.name}"
            raw.tofile(base + ".bytes")
            if cmd == "gguf":
                deq.tofile(base + ".f32")
            else:
                q = np.ascontiguousarray(quantize(deq, T.Q8_0)).view(np.uint8)
                q.tofile(base + ".q8_0")
                dequantize(q, T.Q8_0).astype(np.float32).tofile(base + ".q8_0.f32")
            print(t.name, t.tensor_type.name, int(t.n_elements))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
