#!/usr/bin/env python3
"""Seed inputs for the hf_checkpoint fuzz target: small Ouro and Llama checkpoints, each written
as config.json, a NUL byte, then model.safetensors (stdlib only: the safetensors format is an
8-byte header length, a JSON header and the raw little-endian data).

Usage: fuzz/seeds/hf_checkpoint.py OUT_DIR
"""
import json
import os
import random
import struct
import sys

VOCAB = 320  # >= the 289 tokens of the fuzz target's tokenizer (ouro-convert synth's)


def config(arch, dim, n_layers, n_heads, n_kv, hidden, **extra):
    c = {
        "architectures": ["OuroForCausalLM" if arch == "ouro" else "LlamaForCausalLM"],
        "model_type": arch,
        "hidden_size": dim,
        "intermediate_size": hidden,
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv,
        "head_dim": dim // n_heads,
        "vocab_size": VOCAB,
        "max_position_embeddings": 256,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-6,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "bos_token_id": 0,
        "eos_token_id": 0,
    }
    if arch == "ouro":
        c["total_ut_steps"] = 2
        c["early_exit_threshold"] = 0.9
    c.update(extra)
    return c


def tensors(c):
    d, h = c["hidden_size"], c["intermediate_size"]
    hd = c["head_dim"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    ouro = c["model_type"] == "ouro"
    t = {"model.embed_tokens.weight": [VOCAB, d], "model.norm.weight": [d]}
    if not c["tie_word_embeddings"]:
        t["lm_head.weight"] = [VOCAB, d]
    if ouro:
        t["model.early_exit_gate.weight"] = [1, d]
        t["model.early_exit_gate.bias"] = [1]
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        norms = ["input_layernorm", "post_attention_layernorm"]
        if ouro:
            norms += ["input_layernorm_2", "post_attention_layernorm_2"]
        for n in norms:
            t[p + n + ".weight"] = [d]
        t[p + "self_attn.q_proj.weight"] = [q, d]
        t[p + "self_attn.k_proj.weight"] = [kv, d]
        t[p + "self_attn.v_proj.weight"] = [kv, d]
        t[p + "self_attn.o_proj.weight"] = [d, q]
        t[p + "mlp.gate_proj.weight"] = [h, d]
        t[p + "mlp.up_proj.weight"] = [h, d]
        t[p + "mlp.down_proj.weight"] = [d, h]
    return t


def safetensors(shapes, dtype, rng):
    size = {"F32": 4, "F16": 2, "BF16": 2}[dtype]
    header, data = {"__metadata__": {"format": "pt"}}, bytearray()
    for name in sorted(shapes):
        n = 1
        for s in shapes[name]:
            n *= s
        start = len(data)
        for _ in range(n):
            x = rng.uniform(-1.0, 1.0)
            if dtype == "F32":
                data += struct.pack("<f", x)
            elif dtype == "F16":
                data += struct.pack("<e", x)
            else:
                data += struct.pack("<f", x)[2:]
        header[name] = {"dtype": dtype, "shape": shapes[name], "data_offsets": [start, len(data)]}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + bytes(data)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(0)
    cases = {
        "ouro-bf16": (config("ouro", 32, 1, 2, 2, 64), "BF16"),
        "ouro-gqa-f16": (config("ouro", 32, 2, 4, 2, 32), "F16"),
        "ouro-f32-odd-rows": (config("ouro", 48, 1, 2, 1, 40), "F32"),
        "llama-bf16": (config("llama", 32, 1, 2, 2, 64), "BF16"),
        "llama-tied-f16": (config("llama", 32, 1, 2, 1, 32, tie_word_embeddings=True), "F16"),
    }
    for name, (c, dtype) in cases.items():
        blob = json.dumps(c).encode() + b"\0" + safetensors(tensors(c), dtype, rng)
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
