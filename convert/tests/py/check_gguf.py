#!/usr/bin/env python3
"""Checks a GGUF written by `ouro-convert hf2gguf` with gguf-py (llama.cpp's reader and quantizer).

usage: check_gguf.py OUT.gguf HF_DIR TYPE      (TYPE: f32 f16 bf16 q8_0 q4_0)

Independently of the Rust code it checks: every metadata key and value derived from config.json /
tokenizer files, the exact tensor set, shapes and types, and every tensor's bytes against what
gguf-py produces from the same source data (Q/K permuted with llama.cpp's numpy `permute`).
Needs only numpy and gguf. Exits non-zero with a message on the first mismatch.
"""
import json
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import quantize


def load_safetensors(hf_dir):
    """All tensors of a checkpoint as float32 numpy arrays (bf16/f16/f32 sources)."""
    files = sorted(f for f in os.listdir(hf_dir) if f.endswith(".safetensors"))
    out = {}
    for f in files:
        raw = open(os.path.join(hf_dir, f), "rb").read()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + n])
        data = raw[8 + n :]
        for name, info in header.items():
            if name == "__metadata__":
                continue
            a, b = info["data_offsets"]
            buf = data[a:b]
            if info["dtype"] == "BF16":
                arr = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
            elif info["dtype"] == "F16":
                arr = np.frombuffer(buf, dtype="<f2").astype(np.float32)
            elif info["dtype"] == "F32":
                arr = np.frombuffer(buf, dtype="<f4").astype(np.float32)
            else:
                raise SystemExit(f"unexpected dtype {info['dtype']} for {name}")
            out[name] = arr.reshape(info["shape"])
    return out


def permute(weights, n_head, n_head_kv):
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute, verbatim in behaviour."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def field(reader, key):
    f = reader.fields.get(key)
    check(f is not None, f"missing key {key}")
    return f.contents()


def main():
    path, hf_dir, ty = sys.argv[1:4]
    cfg = json.load(open(os.path.join(hf_dir, "config.json")))
    arch = "ouro" if cfg.get("model_type") == "ouro" else "llama"
    src = load_safetensors(hf_dir)
    r = gguf.GGUFReader(path)

    ftype = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7, "bf16": 32}[ty]
    check(field(r, "general.architecture") == arch, "architecture")
    check(field(r, "general.file_type") == ftype, "file_type")
    check(field(r, "general.quantization_version") == 2, "quantization_version")
    check(field(r, "general.alignment") == 32, "alignment")
    ints = {
        "block_count": cfg["num_hidden_layers"],
        "context_length": cfg["max_position_embeddings"],
        "embedding_length": cfg["hidden_size"],
        "feed_forward_length": cfg["intermediate_size"],
        "attention.head_count": cfg["num_attention_heads"],
        "attention.head_count_kv": cfg["num_key_value_heads"],
        "attention.key_length": cfg["head_dim"],
        "attention.value_length": cfg["head_dim"],
        "rope.dimension_count": cfg["head_dim"],
        "vocab_size": cfg["vocab_size"],
    }
    if arch == "ouro":
        ints["num_loops"] = cfg["total_ut_steps"]
    for k, v in ints.items():
        key = f"{arch}.{k}"
        check(field(r, key) == v, f"{key}: {field(r, key)} != {v}")
        check(r.fields[key].types == [gguf.GGUFValueType.UINT32], f"{key} must be UINT32")
    check(
        np.float32(field(r, f"{arch}.attention.layer_norm_rms_epsilon")) == np.float32(cfg["rms_norm_eps"]),
        "rms eps",
    )
    check(np.float32(field(r, f"{arch}.rope.freq_base")) == np.float32(cfg["rope_theta"]), "rope base")
    if arch == "ouro":
        check(field(r, "ouro.skip_loop_final_norm") is False, "skip_loop_final_norm")
        gw = np.array(field(r, "ouro.exit_gate.weight"), dtype=np.float32)
        check(np.array_equal(gw, src["model.early_exit_gate.weight"].reshape(-1)), "exit gate weight")
        check(np.float32(field(r, "ouro.exit_gate.bias")) == src["model.early_exit_gate.bias"][0], "gate bias")
        check(
            np.float32(field(r, "ouro.early_exit_threshold")) == np.float32(cfg["early_exit_threshold"]),
            "early_exit_threshold",
        )
    else:
        check(not any(k.startswith("ouro.") for k in r.fields), "llama file has ouro.* keys")

    # Tokenizer: tokens/types/merges rebuilt here from tokenizer.json.
    tok_text = open(os.path.join(hf_dir, "tokenizer.json"), encoding="utf-8").read()
    tok = json.loads(tok_text)
    n_vocab = cfg["vocab_size"]
    tokens = [f"[PAD{i}]" for i in range(n_vocab)]
    types = [5] * n_vocab
    for t, i in tok["model"]["vocab"].items():
        tokens[i], types[i] = t, 1
    for a in tok["added_tokens"]:
        tokens[a["id"]], types[a["id"]] = a["content"], (3 if a["special"] else 4)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    check(field(r, "tokenizer.ggml.model") == "gpt2", "tokenizer model")
    check(field(r, "tokenizer.ggml.pre") == "smollm", "tokenizer pre")
    check(field(r, "tokenizer.ggml.tokens") == tokens, "tokens")
    check(field(r, "tokenizer.ggml.token_type") == types, "token types")
    check(field(r, "tokenizer.ggml.merges") == merges, "merges")
    im_end = tokens.index("<|im_end|>") if "<|im_end|>" in tokens else None
    # Special-token ids: what llama.cpp's converter writes (gguf-py SpecialVocab, as _set_vocab_gpt2).
    sv = gguf.SpecialVocab(hf_dir, load_merges=True)
    id_keys = {"bos": "bos_token_id", "eos": "eos_token_id", "unk": "unknown_token_id",
               "sep": "seperator_token_id", "pad": "padding_token_id", "mask": "mask_token_id"}
    for typ, key in id_keys.items():
        key = f"tokenizer.ggml.{key}"
        if typ in sv.special_token_ids:
            check(field(r, key) == sv.special_token_ids[typ], f"{key}: {field(r, key)} != SpecialVocab's {sv.special_token_ids[typ]}")
        else:
            check(key not in r.fields, f"{key} written but SpecialVocab has no {typ}")
    if im_end is not None:
        check(field(r, "tokenizer.ggml.eot_token_id") == im_end, "eot")
    check(field(r, "tokenizer.ggml.add_bos_token") is False, "add_bos_token")
    check(field(r, "tokenizer.huggingface.json") == tok_text, "tokenizer.huggingface.json")
    tok_cfg = json.load(open(os.path.join(hf_dir, "tokenizer_config.json")))
    check(field(r, "tokenizer.chat_template") == tok_cfg["chat_template"], "chat template")
    # llama.cpp's LlamaModel.set_vocab: add_space_prefix = tokenizer_config's add_prefix_space.
    if isinstance(tok_cfg.get("add_prefix_space"), bool):
        check(field(r, "tokenizer.ggml.add_space_prefix") is tok_cfg["add_prefix_space"], "add_space_prefix")
    else:
        check("tokenizer.ggml.add_space_prefix" not in r.fields, "add_space_prefix without add_prefix_space")
    # general.size_label: gguf-py's count of the file's tensors and its label (no experts).
    w = gguf.GGUFWriter(None, arch)
    for t in r.tensors:
        n = int(np.prod(t.shape))
        w.add_tensor_info(t.name, (n,), np.dtype(np.float32), n * 4)
    total, shared, expert, n_expert = w.get_total_parameter_count()
    check(field(r, "general.size_label") == gguf.size_label(total, shared, expert, n_expert), "size_label")

    # Tensors: the exact set, shapes, types and bytes.
    n_layers = cfg["num_hidden_layers"]
    per_layer = {
        "attn_norm": "input_layernorm",
        "attn_q": "self_attn.q_proj",
        "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_norm": "post_attention_layernorm",
        "ffn_gate": "mlp.gate_proj",
        "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    }
    if arch == "ouro":
        per_layer["post_attention_norm"] = "input_layernorm_2"
        per_layer["post_ffw_norm"] = "post_attention_layernorm_2"
    mapping = {
        "token_embd.weight": "model.embed_tokens.weight",
        "output_norm.weight": "model.norm.weight",
    }
    if not cfg.get("tie_word_embeddings", False):
        mapping["output.weight"] = "lm_head.weight"
    for l in range(n_layers):
        for g, h in per_layer.items():
            mapping[f"blk.{l}.{g}.weight"] = f"model.layers.{l}.{h}.weight"
    names = [t.name for t in r.tensors]
    check(len(names) == len(set(names)), "duplicate tensor names")
    check(set(names) == set(mapping), f"tensor set: extra {set(names) - set(mapping)}, missing {set(mapping) - set(names)}")

    main_type = {"f32": Q.F32, "f16": Q.F16, "bf16": Q.BF16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0}[ty]
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    for t in r.tensors:
        w = src[mapping[t.name]]
        check(list(t.shape) == list(reversed(w.shape)), f"{t.name}: shape {list(t.shape)} vs HF {w.shape}")
        if t.name.endswith("attn_q.weight"):
            w = permute(w, n_head, n_head)
        elif t.name.endswith("attn_k.weight"):
            w = permute(w, n_head, n_kv)
        if w.ndim == 1:
            want = Q.F32
        elif main_type == Q.Q4_0 and t.name in ("token_embd.weight", "output.weight"):
            want = Q.Q8_0
        else:
            want = main_type
        if want in (Q.Q8_0, Q.Q4_0) and w.shape[-1] % 32 != 0:
            want = Q.F16
        check(t.tensor_type == want, f"{t.name}: type {t.tensor_type.name}, expected {want.name}")
        if want == Q.F32:
            expected = w.astype(np.float32)
        elif want == Q.F16:
            expected = w.astype(np.float16)
        else:
            expected = quantize(w, want)
        got = np.asarray(t.data)
        check(
            got.tobytes() == np.ascontiguousarray(expected).tobytes(),
            f"{t.name}: bytes differ from gguf-py's {want.name} of the source",
        )
        if ty == "f32" and t.name.endswith(("attn_q.weight", "attn_k.weight")):
            # Undo the permutation on the file data and compare with the HF rows exactly.
            heads = n_head if t.name.endswith("attn_q.weight") else n_kv
            file_w = got.reshape(w.shape)
            undone = file_w.reshape(heads, w.shape[0] // heads // 2, 2, w.shape[1]).swapaxes(1, 2).reshape(w.shape)
            check(np.array_equal(undone, src[mapping[t.name]]), f"{t.name}: un-permuted rows differ from HF")
    print(f"OK {path}: {len(r.fields)} keys, {len(names)} tensors")


if __name__ == "__main__":
    main()
