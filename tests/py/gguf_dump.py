"""Reads a GGUF file with gguf-py's GGUFReader and prints its contents as JSON (see
gguf_common.py), rebuilding nested arrays from the reader's flat parts list.
Usage: gguf_dump.py FILE"""

import json
import sys

from gguf import GGUFReader, GGUFValueType

from gguf_common import enc

T = GGUFValueType


def decode(parts, i, vtype):
    """Decodes one value of `vtype` starting at parts[i]; returns (encoded value, next i)."""
    if vtype == T.STRING:
        # parts[i] is the length, parts[i + 1] the bytes.
        return enc(T.STRING, bytes(parts[i + 1].tobytes()).decode("utf-8")), i + 2
    if vtype == T.ARRAY:
        elem = T(int(parts[i][0]))
        n = int(parts[i + 1][0])
        i += 2
        items = []
        for _ in range(n):
            item, i = decode(parts, i, elem)
            items.append(item)
        return {"type": "ARRAY", "elem": elem.name, "value": items}, i
    v = parts[i].tolist()[0]
    return enc(vtype, v), i + 1


def main():
    r = GGUFReader(sys.argv[1])
    kv = []
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        # parts: key length, key bytes, value type, then the value's parts.
        vtype = T(int(field.parts[2][0]))
        value, end = decode(field.parts, 3, vtype)
        if end != len(field.parts):
            raise ValueError(f"{name}: {len(field.parts) - end} parts left over")
        kv.append([name, value])
    tensors = []
    for t in r.tensors:
        tensors.append({
            "name": t.name,
            "dims": [int(d) for d in t.shape],
            "type": int(t.tensor_type),
            "n_bytes": int(t.n_bytes),
            "data": t.data.tobytes().hex(),
        })
    print(json.dumps({
        "version": int(r.fields["GGUF.version"].parts[0][0]),
        "alignment": int(r.alignment),
        "kv": kv,
        "tensors": tensors,
    }))


if __name__ == "__main__":
    main()
