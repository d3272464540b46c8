#!/usr/bin/env python3
"""Compares `ouro-convert quantize --type T` with llama.cpp's `llama-quantize IN OUT T`, tensor by
tensor (name, ggml type, bytes), then as whole files (key and tensor order included), for the
K-quant mixtures and q8_0. Run by scripts/record-kquant-golden.sh.

usage: compare_kquant_llama.py OURO_CONVERT LLAMA_QUANTIZE WORK_DIR [SOURCE.gguf ...]

Sources: always a synthetic Ouro-layout model (8 layers, dim 256, ffn 512, f32 noise, written by
gguf-py as architecture `llama`, because this llama.cpp build has no `ouro` architecture; the
tensor names and block_count are Ouro's); plus any GGUF given (e.g. an Ouro fixture converted to
f32 and renamed to `llama` with block_count = layers × loops as the ouro loader counts them, or
SmolLM2's Q4_1 file, which both tools dequantize first).
Prints one line per (source, type) and exits non-zero on the first difference.
"""
import os
import subprocess
import sys

import numpy as np
import gguf

# (not q4_0: our q4_0 plan keeps `output` at Q8_0 where llama-quantize makes it Q6_K; README.)
TYPES = ["q4_k_m", "q4_k_s", "q5_k_m", "q5_k_s", "q6_k", "q8_0"]


def synthetic(path, n_layers=8, dim=256, ffn=512, vocab=1000, seed=18):
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(n_layers)
    w.add_context_length(2048)
    w.add_embedding_length(dim)
    w.add_feed_forward_length(ffn)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    w.add_file_type(0)

    def mat(rows, cols):
        scale = 10 ** rng.uniform(-3, 0)
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float32)

    w.add_tensor("token_embd.weight", mat(vocab, dim))
    w.add_tensor("output_norm.weight", np.ones(dim, np.float32))
    w.add_tensor("output.weight", mat(vocab, dim))
    for i in range(n_layers):
        p = f"blk.{i}."
        for n in ["attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"]:
            w.add_tensor(p + n + ".weight", (1 + 0.1 * rng.standard_normal(dim)).astype(np.float32))
        for n in ["attn_q", "attn_k", "attn_v", "attn_output"]:
            w.add_tensor(p + n + ".weight", mat(dim, dim))
        w.add_tensor(p + "ffn_gate.weight", mat(ffn, dim))
        w.add_tensor(p + "ffn_up.weight", mat(ffn, dim))
        w.add_tensor(p + "ffn_down.weight", mat(dim, ffn))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def to_llama_arch(src, dst):
    """An `ouro` GGUF with the same tensors as architecture `llama` (hparams renamed), standing in
    for llama.cpp's ouro patch, which this llama.cpp build lacks."""
    r = gguf.GGUFReader(src)

    def val(key):
        f = r.fields[key]
        return f.parts[f.data[0]][0].item()

    w = gguf.GGUFWriter(dst, "llama")
    # llama.cpp's ouro loader (the nanbeige unroll) sets n_layer_all = block_count × num_loops,
    # which is what llama-quantize's ffn_down rule counts; a llama twin gets it as block_count.
    w.add_block_count(val("ouro.block_count") * val("ouro.num_loops"))
    w.add_context_length(val("ouro.context_length"))
    w.add_embedding_length(val("ouro.embedding_length"))
    w.add_feed_forward_length(val("ouro.feed_forward_length"))
    w.add_head_count(val("ouro.attention.head_count"))
    w.add_head_count_kv(val("ouro.attention.head_count_kv"))
    w.add_layer_norm_rms_eps(val("ouro.attention.layer_norm_rms_epsilon"))
    w.add_rope_freq_base(val("ouro.rope.freq_base"))
    w.add_file_type(0)
    for t in r.tensors:
        shape = [int(d) for d in reversed(t.shape)]
        w.add_tensor(t.name, np.asarray(t.data, dtype=np.float32).reshape(shape))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tensors(path):
    r = gguf.GGUFReader(path)
    return {t.name: (t.tensor_type.name, bytes(t.data.tobytes())) for t in r.tensors}


def compare(ouro_convert, llama_quantize, src, work, ty):
    ours_path = os.path.join(work, f"ours-{ty}.gguf")
    theirs_path = os.path.join(work, f"llama-{ty}.gguf")
    subprocess.run([ouro_convert, "quantize", src, ours_path, "--type", ty], check=True,
                   stderr=subprocess.DEVNULL)
    subprocess.run([llama_quantize, "--allow-requantize", src, theirs_path, ty.upper()], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours, theirs = tensors(ours_path), tensors(theirs_path)
    if set(ours) != set(theirs):
        sys.exit(f"{src} {ty}: tensor sets differ: {sorted(set(ours) ^ set(theirs))}")
    n_bytes = 0
    kinds = {}
    for name in sorted(ours):
        (ot, ob), (tt, tb) = ours[name], theirs[name]
        if ot != tt:
            sys.exit(f"{src} {ty}: {name}: type {ot} (ours) vs {tt} (llama-quantize)")
        if ob != tb:
            i = next(k for k in range(min(len(ob), len(tb))) if ob[k] != tb[k]) if len(ob) == len(tb) else -1
            sys.exit(f"{src} {ty}: {name} ({ot}): bytes differ (first at byte {i})")
        n_bytes += len(ob)
        kinds[ot] = kinds.get(ot, 0) + 1
    mix = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    with open(ours_path, "rb") as a, open(theirs_path, "rb") as b:
        if a.read() != b.read():
            sys.exit(f"{src} {ty}: same tensors, but the files differ (key or tensor order?)")
    print(f"{os.path.basename(src)} {ty}: {len(ours)} tensors, {n_bytes} bytes identical ({mix}); "
          "whole files identical")


def main():
    ouro_convert, llama_quantize, work, *sources = sys.argv[1:]
    os.makedirs(work, exist_ok=True)
    syn = os.path.join(work, "synthetic-ouro-layout-f32.gguf")
    synthetic(syn)
    for src in [syn, *sources]:
        arch = gguf.GGUFReader(src).fields["general.architecture"]
        arch = bytes(arch.parts[arch.data[0]]).decode()
        orig = src
        if arch == "ouro":
            src = os.path.join(work, os.path.basename(orig).replace(".gguf", "-as-llama.gguf"))
            to_llama_arch(orig, src)
        for ty in TYPES:
            compare(ouro_convert, llama_quantize, src, work, ty)
            if orig != src:
                # Same plan and bytes from the `ouro` file (block_count = physical layers).
                mine = os.path.join(work, f"ours-ouro-{ty}.gguf")
                subprocess.run([ouro_convert, "quantize", orig, mine, "--type", ty], check=True,
                               stderr=subprocess.DEVNULL)
                if tensors(mine) != tensors(os.path.join(work, f"ours-{ty}.gguf")):
                    sys.exit(f"{orig} {ty}: the ouro file quantizes differently from its llama twin")
                print(f"{os.path.basename(orig)} {ty}: ouro-arch file gives the same tensors")


if __name__ == "__main__":
    main()
