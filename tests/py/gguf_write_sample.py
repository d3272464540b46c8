"""Writes a GGUF file with gguf-py's GGUFWriter holding metadata of every value type (incl.
nested arrays) and one tensor of every ggml type gguf-py knows, then prints on stdout a JSON
description of what it wrote (see gguf_common.py). Usage: gguf_write_sample.py OUT [ALIGNMENT]
"""

import json
import sys

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, GGUFWriter

from gguf_common import enc

T = GGUFValueType


def main():
    out = sys.argv[1]
    alignment = int(sys.argv[2]) if len(sys.argv) > 2 else None
    w = GGUFWriter(out, "ouro")
    kv = [("general.architecture", enc(T.STRING, "ouro"))]
    if alignment is not None:
        w.add_custom_alignment(alignment)
        kv.append(("general.alignment", enc(T.UINT32, alignment)))

    scalars = [
        ("t.u8", T.UINT8, 255),
        ("t.i8", T.INT8, -128),
        ("t.u16", T.UINT16, 65535),
        ("t.i16", T.INT16, -32768),
        ("t.u32", T.UINT32, 4294967295),
        ("t.i32", T.INT32, -2147483648),
        ("t.f32", T.FLOAT32, -1.5e-39),
        ("t.f32_inf", T.FLOAT32, float("inf")),
        ("t.bool_true", T.BOOL, True),
        ("t.bool_false", T.BOOL, False),
        ("t.string", T.STRING, "héllo, 世界 \n\t\"quoted\""),
        ("t.string_empty", T.STRING, ""),
        ("t.u64", T.UINT64, 18446744073709551615),
        ("t.i64", T.INT64, -9223372036854775808),
        ("t.f64", T.FLOAT64, 3.141592653589793),
    ]
    for key, vtype, v in scalars:
        w.add_key_value(key, v, vtype)
        kv.append((key, enc(vtype, v)))

    arrays = [
        ("a.u8", T.UINT8, [0, 1, 255]),
        ("a.i8", T.INT8, [-128, 0, 127]),
        ("a.u16", T.UINT16, [0, 65535]),
        ("a.i16", T.INT16, [-32768, 32767]),
        ("a.u32", T.UINT32, [0, 4294967295]),
        ("a.i32", T.INT32, [-2147483648, 2147483647]),
        ("a.f32", T.FLOAT32, [0.0, -0.0, 1.0e-45, 3.4028234663852886e38]),
        ("a.bool", T.BOOL, [True, False, True]),
        ("a.string", T.STRING, ["a", "", "ü"]),
        ("a.u64", T.UINT64, [0, 18446744073709551615]),
        ("a.i64", T.INT64, [-9223372036854775808, 9223372036854775807]),
        ("a.f64", T.FLOAT64, [2.5, -1e300]),
    ]
    for key, elem, v in arrays:
        w.add_key_value(key, v, T.ARRAY, sub_type=elem)
        kv.append((key, enc(T.ARRAY, v, elem)))

    # Nested arrays: gguf-py infers inner element types (int -> INT32, float -> FLOAT32).
    nested = [
        ("n.i32", [[1, 2, 3], [4], [-5, 6]]),
        ("n.string", [["x", "yz"], ["w"]]),
        ("n.f32", [[0.5], [1.25, -2.0]]),
        ("n.deep", [[[1], [2, 3]], [[4]]]),
    ]
    for key, v in nested:
        w.add_key_value(key, v, T.ARRAY)
        kv.append((key, enc(T.ARRAY, v, T.ARRAY)))

    rng = np.random.default_rng(7)
    tensors = []
    # Native float arrays (gguf-py picks the type from the dtype).
    f32 = rng.standard_normal((3, 8)).astype(np.float32)
    w.add_tensor("native.f32", f32)
    tensors.append(("native.f32", [8, 3], int(GGMLQuantizationType.F32), f32.tobytes()))
    f16 = rng.standard_normal((2, 4, 16)).astype(np.float16)
    w.add_tensor("native.f16", f16)
    tensors.append(("native.f16", [16, 4, 2], int(GGMLQuantizationType.F16), f16.tobytes()))
    # Raw bytes of every type, 2 rows of 2 blocks. Not Q8_1: gguf-py lists its pre-2023 size
    # (40 bytes per block) while ggml's block_q8_1 is 36; it never appears in model files.
    for qtype, (block, type_size) in GGML_QUANT_SIZES.items():
        if qtype == GGMLQuantizationType.Q8_1:
            continue
        raw = rng.integers(0, 256, size=(2, 2 * type_size), dtype=np.uint8)
        name = f"raw.{qtype.name.lower()}"
        w.add_tensor(name, raw, raw_dtype=qtype)
        tensors.append((name, [2 * block, 2], int(qtype), raw.tobytes()))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    print(json.dumps({
        "version": 3,
        "alignment": alignment if alignment is not None else 32,
        "kv": [[k, v] for k, v in kv],
        "tensors": [
            {"name": n, "dims": d, "type": t, "n_bytes": len(b), "data": b.hex()}
            for n, d, t, b in tensors
        ],
    }))


if __name__ == "__main__":
    main()
