"""Shared JSON encoding of GGUF contents for the interop tests (tests/gguf_interop.rs).

A value is {"type": NAME, "value": V}; floats are given by their IEEE bit pattern (exact, and
JSON has no NaN); an array is {"type": "ARRAY", "elem": NAME, "value": [encoded items]}.
"""

import struct

from gguf import GGUFValueType


def float_bits(vtype, v):
    if vtype == GGUFValueType.FLOAT32:
        return struct.unpack("<I", struct.pack("<f", v))[0]
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def enc(vtype, v, elem=None):
    """Encodes a Python value written (or read) as `vtype`; arrays need `elem`."""
    if vtype == GGUFValueType.ARRAY:
        if elem is None:
            raise ValueError("array without element type")
        items = []
        for item in v:
            if elem == GGUFValueType.ARRAY:
                items.append(enc(GGUFValueType.ARRAY, item, GGUFValueType.get_type(item[0])))
            else:
                items.append(enc(elem, item))
        return {"type": "ARRAY", "elem": elem.name, "value": items}
    if vtype in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64):
        return {"type": vtype.name, "value": float_bits(vtype, v)}
    if vtype == GGUFValueType.BOOL:
        return {"type": vtype.name, "value": bool(v)}
    if vtype == GGUFValueType.STRING:
        return {"type": vtype.name, "value": v if isinstance(v, str) else v.decode("utf-8")}
    return {"type": vtype.name, "value": int(v)}
