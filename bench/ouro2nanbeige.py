#!/usr/bin/env python3
"""Write the llama.cpp `nanbeige` twin of an `ouro` GGUF, tensor bytes unchanged.

llama.cpp's `nanbeige` architecture runs Ouro's loop (shared layer stack, KV per (loop, layer),
output_norm between loops) without Ouro's two post-norms per layer. For a speed comparison on
identical weights this copies every tensor except `blk.N.post_attention_norm` and
`blk.N.post_ffw_norm`, renames the `ouro.*` keys to `nanbeige.*` (keeping `num_loops` and
`skip_loop_final_norm`) and drops the exit-gate keys. The result computes a different function
than the Ouro file (two norms fewer per layer), with the same matrices, so the same bytes stream
per token.

usage: ouro2nanbeige.py IN.gguf OUT.gguf
"""
from __future__ import annotations

import sys
from pathlib import Path

import gguf

DROP_TENSOR_SUFFIXES = (".post_attention_norm.weight", ".post_ffw_norm.weight")
DROP_KEYS = ("ouro.exit_gate.weight", "ouro.exit_gate.bias", "ouro.early_exit_threshold")


def convert(src: Path, dst: Path) -> tuple[int, int]:
    reader = gguf.GGUFReader(src, "r")
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    if arch is None or arch.contents() != "ouro":
        raise SystemExit(f"{src}: general.architecture is not 'ouro'")
    if reader.get_field("ouro.num_loops") is None:
        raise SystemExit(f"{src}: no ouro.num_loops key")
    writer = gguf.GGUFWriter(dst, "nanbeige")
    align = reader.get_field(gguf.Keys.General.ALIGNMENT)
    if align is not None:
        writer.data_alignment = int(align.contents())
    for field in reader.fields.values():
        name = field.name
        if name == gguf.Keys.General.ARCHITECTURE or name.startswith("GGUF.") or name in DROP_KEYS:
            continue
        if name.startswith("ouro."):
            name = "nanbeige." + name[len("ouro."):]
        val_type = field.types[0]
        sub_type = field.types[-1] if val_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), val_type, sub_type=sub_type)
    kept = [t for t in reader.tensors if not t.name.endswith(DROP_TENSOR_SUFFIXES)]
    for t in kept:
        writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in kept:
        writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
    writer.close()
    return len(kept), len(reader.tensors) - len(kept)


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.strip().splitlines()[-1])
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    tmp = dst.with_name(dst.name + ".tmp")
    kept, dropped = convert(src, tmp)
    tmp.replace(dst)
    print(f"{dst}: nanbeige, {kept} tensors ({dropped} post-norms dropped)")


if __name__ == "__main__":
    main()
