"""Turn an f32 / f16 / q8_0 `ouro` GGUF written by `ouro-convert hf2gguf` back into the checkpoint train.py
reads (`--init-from`): model.safetensors (HF names, Q/K rows un-permuted back to rotate-half
order, the exit gate from the metadata), config.json and the tokenizer.

    python models/train/gguf2hf.py models/ouro-demo.gguf target/demo-v1-hf

Used to warm-start v2 of the demo model from v1 (whose HF checkpoint was not kept). The
tokenizer is rebuilt with train.build_tokenizer (deterministic) and checked token for token
against the file's `tokenizer.ggml.tokens`.
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def read_gguf(path):
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("Q")
        s = data[pos : pos + n].decode("utf-8")
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t in scalar:
            return take(scalar[t])
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        raise ValueError(f"GGUF value type {t}")

    assert data[:4] == b"GGUF", "not a GGUF file"
    pos = 4
    take("I")
    n_tensors, n_kv = take("Q"), take("Q")
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = [take("Q") for _ in range(take("I"))]
        ttype, off = take("I"), take("Q")
        infos.append((name, dims, ttype, off))
    align = kv.get("general.alignment", 32)
    start = (pos + align - 1) // align * align
    tensors = {}
    for name, dims, ttype, off in infos:
        n = int(np.prod(dims))
        if ttype == 0:  # F32
            arr = np.frombuffer(data, dtype="<f4", count=n, offset=start + off)
        elif ttype == 1:  # F16
            arr = np.frombuffer(data, dtype="<f2", count=n, offset=start + off).astype(np.float32)
        elif ttype == 8:  # Q8_0: blocks of 32 = f16 scale + 32 int8
            blocks = np.frombuffer(data, dtype=np.uint8, count=n // 32 * 34, offset=start + off).reshape(-1, 34)
            d = blocks[:, :2].copy().view("<f2").astype(np.float32)
            arr = (blocks[:, 2:].copy().view(np.int8).astype(np.float32) * d).reshape(-1)
        else:
            raise ValueError(f"{name}: tensor type {ttype} is not supported (F32, F16, Q8_0 are)")
        tensors[name] = arr.reshape(list(reversed(dims))).copy()
    return kv, tensors


def unpermute(w, n_head):
    rows, cols = w.shape
    return w.reshape(n_head, rows // n_head // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def main():
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    import train
    from safetensors.torch import save_file

    kv, t = read_gguf(src)
    a = "ouro"
    n_layers = kv[f"{a}.block_count"]
    n_head, n_kv = kv[f"{a}.attention.head_count"], kv[f"{a}.attention.head_count_kv"]
    dim = kv[f"{a}.embedding_length"]
    sd = {
        "model.embed_tokens.weight": t["token_embd.weight"],
        "model.norm.weight": t["output_norm.weight"],
        "lm_head.weight": t["output.weight"],
        "model.early_exit_gate.weight": np.array(kv[f"{a}.exit_gate.weight"], dtype=np.float32)[None, :],
        "model.early_exit_gate.bias": np.array([kv[f"{a}.exit_gate.bias"]], dtype=np.float32),
    }
    names = {
        "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
        "post_attention_norm": "input_layernorm_2", "ffn_norm": "post_attention_layernorm",
        "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
        "post_ffw_norm": "post_attention_layernorm_2",
    }
    for l in range(n_layers):
        for g, h in names.items():
            w = t[f"blk.{l}.{g}.weight"]
            if g == "attn_q":
                w = unpermute(w, n_head)
            if g == "attn_k":
                w = unpermute(w, n_kv)
            sd[f"model.layers.{l}.{h}.weight"] = w
    tok = train.build_tokenizer(kv[f"{a}.vocab_size"], train.TRAIN_SEED)
    vocab = sorted(tok.get_vocab().items(), key=lambda x: x[1])
    assert [s for s, _ in vocab] == kv["tokenizer.ggml.tokens"], "rebuilt tokenizer differs from the file's"
    cfg = {
        "vocab_size": tok.get_vocab_size(),
        "hidden_size": dim,
        "intermediate_size": kv[f"{a}.feed_forward_length"],
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "head_dim": dim // n_head,
        "rms_norm_eps": kv[f"{a}.attention.layer_norm_rms_epsilon"],
        "rope_theta": kv[f"{a}.rope.freq_base"],
        "max_position_embeddings": 2048,
        "initializer_range": 0.02,
        "total_ut_steps": kv[f"{a}.num_loops"],
    }
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}, str(out / "model.safetensors"))
    (out / "train-config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    tok.save(str(out / "tokenizer.json"))
    print(f"wrote {out}: {n_layers} layers x {cfg['total_ut_steps']} loops, dim {dim}")


if __name__ == "__main__":
    main()
