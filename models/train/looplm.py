"""A LoopLM in exactly Ouro's layout (../../shared/docs/ouro-spec.md §2–3), written for training.

* Llama-style block with the sandwich norm: 4 RMSNorms per layer (before and after attention,
  before and after the MLP; the residual stream itself is never normed inside a layer).
* NEOX ("rotate_half") RoPE on Q and K with the token's absolute position, the same in every loop.
* The whole stack of `num_hidden_layers` layers runs `total_ut_steps` times with shared weights;
  after every loop the shared final norm `model.norm` is applied and the normed state feeds the
  next loop. Logits of loop t = lm_head(h_t) (untied); exit gate λ_t = sigmoid(w·h_t + b).
* Parameter names are Hugging Face Ouro's, so `state_dict()` is the checkpoint as released.

`forward` can also simulate the runtime's `--exit-mode skip` KV policy (src/model/forward.rs):
a position that exited at loop e exposes, to later positions in loops > e, the K/V rows it had
in loop e. Training with that on (for a share of the batches) keeps the model accurate when the
runtime really stops computing a token at its exit loop.
"""

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rope_tables(seq_len, head_dim, theta):
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def apply_rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, self.n_heads, self.head_dim = cfg["hidden_size"], cfg["num_attention_heads"], cfg["head_dim"]
        self.n_kv = cfg["num_key_value_heads"]
        self.q_proj = nn.Linear(d, self.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(d, self.n_kv * self.head_dim, bias=False)
        self.v_proj = nn.Linear(d, self.n_kv * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, d, bias=False)

    def forward(self, x, cos, sin, kv_override=None):
        """`kv_override(k, v) -> (k, v)` swaps in the K/V rows other positions must see."""
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.n_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.n_kv, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if kv_override is not None:
            k_seen, v_seen = kv_override(k, v)
        else:
            k_seen, v_seen = k, v
        rep = self.n_heads // self.n_kv
        if rep > 1:
            k_seen = k_seen.repeat_interleave(rep, dim=1)
            v_seen = v_seen.repeat_interleave(rep, dim=1)
        out = F.scaled_dot_product_attention(q, k_seen, v_seen, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, -1)), k, v


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, f = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(d, eps)
        self.input_layernorm_2 = RMSNorm(d, eps)
        self.post_attention_layernorm = RMSNorm(d, eps)
        self.post_attention_layernorm_2 = RMSNorm(d, eps)

    def forward(self, x, cos, sin, kv_override=None):
        a, k, v = self.self_attn(self.input_layernorm(x), cos, sin, kv_override)
        x = x + self.input_layernorm_2(a)
        x = x + self.post_attention_layernorm_2(self.mlp(self.post_attention_layernorm(x)))
        return x, k, v


class OuroInner(nn.Module):
    """`model.*` of the checkpoint."""

    def __init__(self, cfg):
        super().__init__()
        d = cfg["hidden_size"]
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], d)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.norm = RMSNorm(d, cfg["rms_norm_eps"])
        self.early_exit_gate = nn.Linear(d, 1, bias=True)


class LoopLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = OuroInner(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        std = cfg["initializer_range"]
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=std)
        nn.init.zeros_(self.model.early_exit_gate.bias)

    def forward(self, ids, loops=None, skip_q=None, return_hidden=False):
        """Per-loop logits [T, B, S, V] and gates [T, B, S] (and normed states [T, B, S, D]).

        `skip_q`: simulate the runtime's `--exit-mode skip` at threshold q. A position whose exit
        CDF (computed from the detached gates) reaches q after loop e stops changing its K/V
        rows: later positions see its loop-e rows in every deeper loop, layer by layer.
        """
        T = loops or self.cfg["total_ut_steps"]
        b, s = ids.shape
        cos, sin = rope_tables(s, self.cfg["head_dim"], self.cfg["rope_theta"])
        h = self.model.embed_tokens(ids)
        frozen = [None] * len(self.model.layers)
        live = torch.ones(b, s, dtype=torch.bool)
        survive = torch.ones(b, s)
        cdf = torch.zeros(b, s)
        all_logits, all_gates, all_h = [], [], []
        for t in range(T):
            mask = live[:, None, :, None]
            for li, layer in enumerate(self.model.layers):
                override = None
                if skip_q is not None and t > 0:
                    fk, fv = frozen[li]
                    override = lambda k, v, fk=fk, fv=fv: (
                        torch.where(mask, k, fk),
                        torch.where(mask, v, fv),
                    )
                h, k, v = layer(h, cos, sin, override)
                if skip_q is not None:
                    frozen[li] = (k, v) if t == 0 else override(k, v)
            h = self.model.norm(h)
            gate = torch.sigmoid(self.model.early_exit_gate(h).squeeze(-1))
            all_logits.append(self.lm_head(h))
            all_gates.append(gate)
            if return_hidden:
                all_h.append(h)
            if skip_q is not None:
                g = gate.detach()
                cdf = cdf + g * survive
                survive = survive * (1 - g)
                live = live & (cdf < skip_q)
        out = (torch.stack(all_logits), torch.stack(all_gates))
        return out + (torch.stack(all_h),) if return_hidden else out


def exit_distribution(gates):
    """p_t over the loops from λ_t [T, ...] (spec §3.7; the last loop takes the rest)."""
    T = gates.shape[0]
    survive = torch.ones_like(gates[0])
    ps = []
    for t in range(T - 1):
        ps.append(gates[t] * survive)
        survive = survive * (1 - gates[t])
    ps.append(survive)
    return torch.stack(ps)


def exit_loop(gates, q):
    """0-based exit loop per position: the first t whose CDF reaches q (the last if none)."""
    cdf = exit_distribution(gates).cumsum(0)
    reached = cdf >= q
    reached[-1] = True
    return reached.float().argmax(0)
