"""Train the demo LoopLM (models/ouro-demo.gguf) on the synthetic chat tasks in tasks.py.

    python models/train/train.py --out target/demo-v2 --init-from target/demo-v1-hf --minutes 72 \
        --lr 1.5e-3 --warmup 50 --task-weights 1,1,0.6,2,0.4 --skip-from 0      # v2 (models/README.md)
    python models/train/train.py --out target/demo-v2 --resume --minutes 180 ...  # continue stage 1

Writes a Hugging Face Ouro checkpoint (config.json, model.safetensors, tokenizer.json,
tokenizer_config.json with a ChatML chat_template, special_tokens_map.json,
generation_config.json) plus train-log.jsonl and train-summary.json, then:

    cargo run --release -p ouro-convert -- hf2gguf target/demo-v2 -o models/ouro-demo.gguf --type q8_0

(the defaults are the shipped model's sizes; models/README.md has the exact run).

Objective (paper "Scaling Latent Reasoning via Looped Language Models", ouro-spec.md §3.7–3.8):
  stage 1  Σ_t p_t · CE_t − β · H(p)  over all loops, p the exit distribution of the gate
           (β = 0.1 for the first 30 % of the steps, then 0.05);
  stage 2  the gate-only adaptive exit loss: with the LM frozen, I_t = max(0, CE_{t-1} − CE_t),
           w_t = sigmoid(50 · (I_t − 0.005)), BCE of λ_{t-1} toward 1 − w_t (stop when the next
           loop no longer helps).
From `--skip-from` (a share of stage 1) on, every other batch runs with the runtime's skip-mode KV policy
simulated at a random threshold (looplm.LoopLM.forward, `skip_q`), so the model stays accurate
when `ouro --exit-mode skip` really stops computing tokens.
"""

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tasks  # noqa: E402
from looplm import LoopLM, exit_distribution, exit_loop  # noqa: E402
from eval_gguf import EXAMPLES  # noqa: E402

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
TRAIN_SEED, VALID_SEED, TEST_SEED, CHAT_SEED = 1, 2, 3, 4
# The 10-turn chat of tests/demo_model.rs (drawn from seed 5, big operands): never trained on.
CHAT_TEST = Path(__file__).resolve().parents[1] / "ouro-demo-chat.jsonl"
HELD_OUT = {json.loads(line)["question"] for line in CHAT_TEST.read_text().splitlines() if line.strip()}
# The examples of models/README.md and scripts/quickstart.sh (eval_gguf.py checks them): never
# trained on either.
HELD_OUT |= {question for question, _ in EXAMPLES}


def build_tokenizer(vocab_size, seed):
    """Byte-level BPE with SmolLM's pre-tokenizer (every digit its own word), trained on task text."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [tasks.chat_text(q, a) for _, q, a in tasks.make_split(seed, 20000)]
    tok.train_from_iterator(corpus, trainer)
    return tok


def encode_conv(tok, system, turns):
    """Token ids of one conversation and, per turn, the (start, end) token span of its answer
    followed by <|im_end|> (ids[start:end])."""
    text = tasks.system_text(system)
    spans = []
    for _, q, a in turns:
        text += tasks.prompt_text(q)
        start = len(tok.encode(text).ids)
        text += a + "<|im_end|>\n"
        spans.append((start, len(tok.encode(text).ids) - 1))
    full = tok.encode(text).ids
    assert spans[-1][1] == len(full) - 1, "turn boundaries must tokenize as prefixes"
    return full, spans


def encode_items(tok, convs):
    """(ids, weights) per conversation ((system or None, [(task, question, answer), ...])):
    weight 1 on the positions predicting an answer and its <|im_end|>, 0.1 on the rest."""
    out = []
    for system, turns in convs:
        full, spans = encode_conv(tok, system, turns)
        w = [0.1] * (len(full) - 1)
        for start, end in spans:
            # Position i predicts token i + 1: the answer tokens and <|im_end|> are start..end-1.
            for i in range(start - 1, end - 1):
                w[i] = 1.0
        out.append((full, w))
    return out


@torch.no_grad()
def forced_eval(model, tok, convs, loops=None, q=None, skip=False, batch=48):
    """Greedy decoding, evaluated exactly by teacher forcing: a greedy answer equals the
    reference iff at every answer position (and the <|im_end|> after it), given the reference
    prefix, the read-out argmax is the reference token; the exit loop of a position depends only
    on its prefix, so `select` and the simulated `skip` policy are exact too. One forward pass
    per conversation instead of one per generated token. Earlier turns are the reference ones
    (for a chat, accuracy given a correct history).

    Per conversation, per turn: (correct, loops used per answer token up to the first wrong one,
    the final <|im_end|> not counted — as `ouro generate --json` counts, [T, n] per-loop argmax
    hits along the greedy path (for self-speculative acceptance))."""
    enc = [encode_conv(tok, system, turns) for system, turns in convs]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i][0]))
    results = [None] * len(enc)
    for b0 in range(0, len(order), batch):
        idx = order[b0 : b0 + batch]
        n = max(len(enc[i][0]) for i in idx)
        x = torch.zeros(len(idx), n, dtype=torch.long)
        for j, i in enumerate(idx):
            x[j, : len(enc[i][0])] = torch.tensor(enc[i][0])
        logits, gates = model(x, loops=loops, skip_q=q if skip else None)
        T = logits.shape[0]
        e = torch.full(x.shape, T - 1) if q is None else exit_loop(gates, q)
        am = logits.argmax(-1)  # [T, B, S]
        pred = am.gather(0, e[None]).squeeze(0)  # [B, S]
        for j, i in enumerate(idx):
            ids, spans = enc[i]
            turns = []
            for start, end in spans:
                pos = torch.arange(start - 1, end - 1)
                target = x[j, start:end]
                ok = pred[j, pos] == target
                wrong = (~ok).nonzero()
                upto = len(pos) if len(wrong) == 0 else int(wrong[0]) + 1
                used = (e[j, pos[: min(upto, len(pos) - 1)]] + 1).tolist()
                hits = am[:, j, pos[:upto]] == am[-1, j, pos[:upto]]
                turns.append((bool(ok.all()), used, hits))
            results[i] = turns
    return results


def sample_turns(rng, max_turns, single_share):
    """Turns in one conversation: 1 with probability `single_share`, else uniform in 2..max_turns."""
    if max_turns <= 1 or rng.random() < single_share:
        return 1
    return rng.randint(2, max_turns)


def sample_batch(rng, args):
    """One batch of conversations, all with the same number of turns (little padding), each turn
    a task drawn independently (so later turns must ignore the earlier turns' numbers); a
    `system_share` of the batches start every conversation with a system prompt (`ouro chat
    --system`). The batch holds about `batch_tokens` tokens: many short chats or a few long ones."""
    turns = sample_turns(rng, args.max_turns, args.single_share)
    with_system = rng.random() < args.system_share
    n = max(4, round(args.batch_tokens / (28 * turns + (16 if with_system else 0))))
    convs = []
    for _ in range(n):
        system = rng.choice(tasks.SYSTEM_PROMPTS) if with_system else None
        items = []
        while len(items) < turns:
            item = tasks.make_item(rng, args.task_weights, args.sort_len_weights, args.compare_swap)
            if item[1] not in HELD_OUT:
                items.append(item)
        convs.append((system, items))
    return convs


def batchify(encoded):
    n = max(len(ids) for ids, _ in encoded)
    x = torch.zeros(len(encoded), n - 1, dtype=torch.long)
    y = torch.zeros(len(encoded), n - 1, dtype=torch.long)
    w = torch.zeros(len(encoded), n - 1)
    for i, (ids, wt) in enumerate(encoded):
        t = torch.tensor(ids)
        x[i, : len(ids) - 1] = t[:-1]
        y[i, : len(ids) - 1] = t[1:]
        w[i, : len(ids) - 1] = torch.tensor(wt)
    return x, y, w


def per_loop_ce(logits, y):
    """Cross-entropy of every loop's logits [T, B, S, V] against y [B, S]: [T, B, S]."""
    return torch.stack([F.cross_entropy(lt.transpose(1, 2), y, reduction="none") for lt in logits])


def stage1_loss(logits, gates, y, w, beta):
    ce = per_loop_ce(logits, y)
    p = exit_distribution(gates)
    entropy = -(p * p.clamp_min(1e-9).log()).sum(0)
    per_pos = (p * ce).sum(0) - beta * entropy
    loss = (per_pos * w).sum() / w.sum()
    ans = w == 1.0
    return loss, ce.detach(), entropy.detach(), ans


def stage2_loss(model, x, y, w):
    with torch.no_grad():
        logits, _, hidden = model(x, return_hidden=True)
        ce = per_loop_ce(logits, y)
        improve = (ce[:-1] - ce[1:]).clamp_min(0.0)
        target = 1.0 - torch.sigmoid(50.0 * (improve - 0.005))
    lam = torch.sigmoid(model.model.early_exit_gate(hidden[:-1]).squeeze(-1))
    bce = F.binary_cross_entropy(lam.clamp(1e-6, 1 - 1e-6), target, reduction="none").mean(0)
    mask = (w > 0).float()
    return (bce * mask).sum() / mask.sum()


@torch.no_grad()
def greedy_generate(model, tok, prompts, loops=None, q=None, skip=False, max_new=24):
    """Greedy continuations of `prompts` (token-id lists); per prompt (ids without the final
    <|im_end|>, stopped cleanly?, loops used per generated token).

    loops=k: fixed depth k. q: exit threshold (select: compute all loops, read out at the exit
    loop; skip: the runtime's skip policy, simulated). Recomputes the sequence every token
    (prompts of equal length are batched).
    """
    im_end = tok.token_to_id("<|im_end|>")
    results = [None] * len(prompts)
    by_len = {}
    for i, ids in enumerate(prompts):
        by_len.setdefault(len(ids), []).append((i, ids))
    for group in by_len.values():
        idx = [i for i, _ in group]
        seqs = torch.tensor([ids for _, ids in group])
        done = torch.zeros(len(group), dtype=torch.bool)
        gen = [[] for _ in group]
        used = [[] for _ in group]
        for _ in range(max_new):
            logits, gates = model(seqs, loops=loops, skip_q=q if skip else None)
            if q is None:
                e = torch.full((len(group),), logits.shape[0] - 1)
            else:
                e = exit_loop(gates[:, :, -1], q)
            last = logits[e, torch.arange(len(group)), -1]
            nxt = last.argmax(-1)
            for j in range(len(group)):
                if not done[j]:
                    gen[j].append(int(nxt[j]))
                    used[j].append(int(e[j]) + 1)
                    if int(nxt[j]) == im_end:
                        done[j] = True
            if bool(done.all()):
                break
            seqs = torch.cat([seqs, nxt[:, None]], dim=1)
        for j, i in enumerate(idx):
            stopped = bool(gen[j]) and gen[j][-1] == im_end
            results[i] = (gen[j][:-1] if stopped else gen[j], stopped, used[j])
    return results


def greedy_answers(model, tok, items, system=None, **kw):
    """Single-turn greedy answers for (task, question, answer) items: (text, loops per token)."""
    prompts = [tok.encode(tasks.system_text(system) + tasks.prompt_text(qn)).ids for _, qn, _ in items]
    return [(tok.decode(ids), used) for ids, _, used in greedy_generate(model, tok, prompts, **kw)]


def accuracy(model, tok, items, system=None, **kw):
    """Greedy exact-match accuracy on single questions (via forced_eval), mean loops per answer
    token, accuracy per task."""
    res = forced_eval(model, tok, [(system, [it]) for it in items], **kw)
    loops = [u for r in res for u in r[0][1]]
    per_task = {}
    for r, (task, _, _) in zip(res, items):
        c, n = per_task.get(task, (0, 0))
        per_task[task] = (c + r[0][0], n + 1)
    return {
        "accuracy": sum(r[0][0] for r in res) / len(items),
        "mean_loops": sum(loops) / max(1, len(loops)),
        "per_task": {k: round(c / n, 4) for k, (c, n) in sorted(per_task.items())},
    }


def chat_accuracy(model, tok, chats, system=None, **kw):
    """Multi-turn chats: accuracy over all turns and per turn index (given a correct history)."""
    res = forced_eval(model, tok, [(system, c) for c in chats], **kw)
    n_turns = max(len(c) for c in chats)
    per_turn = []
    for k in range(n_turns):
        got = [r[k][0] for r in res if k < len(r)]
        per_turn.append(round(sum(got) / len(got), 4))
    allt = [t[0] for r in res for t in r]
    return {"accuracy": sum(allt) / len(allt), "per_turn": per_turn}


def speculative_acceptance(model, tok, items):
    """Self-speculative decoding with the loop-D readout as the draft: along the full-depth
    greedy path (answer tokens and the <|im_end|> that ends them), the share of tokens where the
    loop-D argmax equals the full-depth argmax, for D = 1 .. T-1; overall and per task."""
    res = forced_eval(model, tok, [(None, [it]) for it in items])
    T = model.cfg["total_ut_steps"]
    tot, n, per_task = torch.zeros(T), 0, {}
    for r, (task, _, _) in zip(res, items):
        hits = r[0][2].float()
        h, m = hits.sum(1), hits.shape[1]
        tot += h
        n += m
        th, tn = per_task.get(task, (torch.zeros(T), 0))
        per_task[task] = (th + h, tn + m)
    return {
        "tokens": n,
        "acceptance": {d + 1: round(float(tot[d] / n), 4) for d in range(T - 1)},
        "per_task": {k: {d + 1: round(float(h[d] / m), 4) for d in range(T - 1)} for k, (h, m) in sorted(per_task.items())},
    }


def save_hf(model, tok, cfg, out, threshold):
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["OuroForCausalLM"],
        "model_type": "ouro",
        "_name_or_path": "ouro-demo",
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
        "head_dim": cfg["head_dim"],
        "hidden_act": "silu",
        "hidden_size": cfg["hidden_size"],
        "initializer_range": cfg["initializer_range"],
        "intermediate_size": cfg["intermediate_size"],
        "layer_types": ["full_attention"] * cfg["num_hidden_layers"],
        "max_position_embeddings": cfg["max_position_embeddings"],
        "num_attention_heads": cfg["num_attention_heads"],
        "num_hidden_layers": cfg["num_hidden_layers"],
        "num_key_value_heads": cfg["num_key_value_heads"],
        "rms_norm_eps": cfg["rms_norm_eps"],
        "rope_scaling": None,
        "rope_theta": cfg["rope_theta"],
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "total_ut_steps": cfg["total_ut_steps"],
        "early_exit_threshold": threshold,
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": cfg["vocab_size"],
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "add_bos_token": False,
                "bos_token": "<|im_start|>",
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
                "unk_token": None,
                "model_max_length": cfg["max_position_embeddings"],
                "tokenizer_class": "PreTrainedTokenizerFast",
                "chat_template": CHATML,
            },
            indent=2,
        )
        + "\n"
    )
    (out / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}, indent=2)
        + "\n"
    )
    (out / "generation_config.json").write_text(
        json.dumps({"bos_token_id": 1, "eos_token_id": [2, 0], "pad_token_id": 0, "do_sample": False}, indent=2) + "\n"
    )


def grow_layers(model, cfg, n_new):
    """Append `n_new` layers to the shared stack that start as the identity: their post-attention
    and post-MLP norm weights are 0 (the sandwich norm makes a zero o_proj/down_proj useless for
    this: RMSNorm(0) has a 1/sqrt(eps) gradient). The model computes exactly what it did before,
    and the new layers learn from there."""
    from looplm import DecoderLayer

    cfg["num_hidden_layers"] += n_new
    for _ in range(n_new):
        layer = DecoderLayer(cfg)
        for name, p in layer.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=cfg["initializer_range"])
        nn.init.zeros_(layer.input_layernorm_2.weight)
        nn.init.zeros_(layer.post_attention_layernorm_2.weight)
        model.model.layers.append(layer)


def save_ckpt(path, model, opt, state):
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "cfg": model.cfg, **state}, tmp)
    tmp.replace(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="output directory (HF layout)")
    ap.add_argument("--minutes", type=float, default=42.0,
                    help="stage-1 wall-clock budget (a resumed run counts the time already spent; "
                         "raise it on --resume to train longer); 0: no time budget, --max-steps alone "
                         "sets the length and the learning-rate schedule (a starved nice-19 run then "
                         "loses no steps)")
    ap.add_argument("--stage2-steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0, help="torch seed (data seeds are fixed: 1/2/3)")
    ap.add_argument("--batch-tokens", type=int, default=2048, help="tokens per batch (about)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1, help="cosine floor, as a share of --lr")
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--loops", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=576)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=320)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-items", type=int, default=400)
    ap.add_argument("--chat-evals", type=int, default=40, help="10-turn chats in the held-out chat evaluation")
    ap.add_argument("--init-from", type=Path,
                    help="start from a checkpoint this script (or gguf2hf.py) wrote; its sizes win")
    ap.add_argument("--grow-layers", type=int, default=0, help="with --init-from: add identity-initialised layers")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--max-turns", type=int, default=10, help="conversations have 1..max-turns turns")
    ap.add_argument("--single-share", type=float, default=0.15, help="share of one-turn conversations")
    ap.add_argument("--task-weights", type=lambda v: [float(x) for x in v.split(",")],
                    help="relative frequencies of add,sub,compare,sort,reverse in training (default equal)")
    ap.add_argument("--sort-len-weights", type=lambda v: [float(x) for x in v.split(",")],
                    help="relative frequencies of sort lists of 2,3,4,5 numbers in training (default equal)")
    ap.add_argument("--compare-swap", type=float, default=0.0,
                    help="share of the compare near misses made by swapping two digits (418 vs 481)")
    ap.add_argument("--data-stream", type=int,
                    help="training data seed offset (default 0, or 100 with --init-from); a new run "
                    "continuing an earlier continued run takes a fresh one")
    ap.add_argument("--system-share", type=float, default=0.25, help="share of batches with a system prompt")
    ap.add_argument("--skip-from", type=float, default=0.5,
                    help="from this share of stage 1 on, every other batch simulates skip-mode KV")
    ap.add_argument("--eval-every", type=int, default=500, help="validation accuracy every N steps")
    ap.add_argument("--max-steps", type=int, default=0,
                    help="stop stage 1 after this many steps, the total over resumed runs (0 = time budget only)")
    ap.add_argument("--ckpt-dir", type=Path, help="resumable checkpoint (default OUT/ckpt; keep it out of git)")
    ap.add_argument("--ckpt-minutes", type=float, default=5.0, help="write the checkpoint this often")
    ap.add_argument("--resume", action="store_true", help="continue from --ckpt-dir (model, optimiser, step, data RNG)")
    args = ap.parse_args()
    if args.minutes <= 0 and args.max_steps <= 0:
        ap.error("--minutes 0 needs --max-steps")

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = args.ckpt_dir or args.out / "ckpt"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = ckpt_dir / "stage1.pt"
    stop_file = args.out / "STOP"
    log = (args.out / "train-log.jsonl").open("a" if args.resume else "w")

    def emit(record):
        record["elapsed_s"] = round(time.time() - started, 1)
        log.write(json.dumps(record) + "\n")
        log.flush()

    ck = torch.load(ckpt_path, weights_only=False) if args.resume else None
    if ck is not None:
        tok = Tokenizer.from_file(str(ckpt_dir / "tokenizer.json"))
        cfg = ck["cfg"]
    elif args.init_from:
        tok = Tokenizer.from_file(str(args.init_from / "tokenizer.json"))
        src_cfg = args.init_from / "train-config.json"
        if not src_cfg.exists():
            src_cfg = args.init_from / "config.json"
        hf = json.loads(src_cfg.read_text())
        keys = ("vocab_size hidden_size intermediate_size num_hidden_layers num_attention_heads "
                "num_key_value_heads head_dim rms_norm_eps rope_theta max_position_embeddings "
                "initializer_range total_ut_steps").split()
        cfg = {k: hf[k] for k in keys}
    else:
        tok = build_tokenizer(args.vocab, TRAIN_SEED)
        cfg = {
            "vocab_size": tok.get_vocab_size(),
            "hidden_size": args.dim,
            "intermediate_size": args.ffn,
            "num_hidden_layers": args.layers,
            "num_attention_heads": args.heads,
            "num_key_value_heads": args.heads,
            "head_dim": args.dim // args.heads,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "max_position_embeddings": 2048,
            "initializer_range": 0.02,
            "total_ut_steps": args.loops,
        }
    model = LoopLM(dict(cfg))
    if ck is not None:
        model.load_state_dict(ck["model"])
    elif args.init_from:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(args.init_from / "model.safetensors")))
        if args.grow_layers:
            grow_layers(model, model.cfg, args.grow_layers)
    cfg = model.cfg
    tok.save(str(ckpt_dir / "tokenizer.json"))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"vocab {cfg['vocab_size']}, {cfg['num_hidden_layers']} layers x {cfg['total_ut_steps']} loops, "
          f"dim {cfg['hidden_size']}, {n_params / 1e6:.2f} M parameters", flush=True)

    valid = tasks.make_split(VALID_SEED, args.eval_items)
    test = tasks.make_split(TEST_SEED, args.eval_items)
    # Held-out 10-turn chats (seed 4), every turn a fresh random task.
    chat_rng = random.Random(CHAT_SEED)
    chats = [[tasks.make_item(chat_rng) for _ in range(10)] for _ in range(args.chat_evals)]
    # A continued run draws a fresh stream (seed + 100) rather than repeating the first one's.
    stream = args.data_stream if args.data_stream is not None else (100 if args.init_from else 0)
    train_rng = random.Random(TRAIN_SEED + stream)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
    )
    budget = args.minutes * 60
    warmup = args.warmup
    step, spent = 0, 0.0  # stage-1 steps and seconds, including earlier sessions
    if ck is not None:
        opt.load_state_dict(ck["opt"])
        step, spent = ck["step"], ck["stage1_seconds"]
        train_rng.setstate(ck["data_rng"])
        torch.set_rng_state(ck["torch_rng"])
        print(f"resumed from {ckpt_path}: step {step}, {spent / 60:.1f} min of stage 1 done", flush=True)
        emit({"resumed_at_step": step, "stage1_seconds": spent})

    def checkpoint():
        save_ckpt(ckpt_path, model, opt, {
            "step": step, "stage1_seconds": spent + (time.time() - t0),
            "data_rng": train_rng.getstate(), "torch_rng": torch.get_rng_state(), "args": vars(args),
        })

    t0 = time.time()
    last_ckpt = time.time()
    while True:
        frac = (spent + time.time() - t0) / budget if budget > 0 else 0.0
        if args.max_steps:
            frac = max(frac, step / args.max_steps)
        if frac >= 1.0 or stop_file.exists():
            break
        lo = args.min_lr_frac
        lr = args.lr * min(1.0, (step + 1) / warmup) * (lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        beta = 0.1 if frac < 0.3 else 0.05
        x, y, w = batchify(encode_items(tok, sample_batch(train_rng, args)))
        skip_q = None
        if frac >= args.skip_from and step % 2 == 1:
            skip_q = train_rng.uniform(0.3, 0.9)
        logits, gates = model(x, skip_q=skip_q)
        loss, ce, entropy, ans = stage1_loss(logits, gates, y, w, beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            ce_loop = [round(float(ce[t][ans].mean()), 4) for t in range(ce.shape[0])]
            p_mean = [round(float(v), 3) for v in exit_distribution(gates.detach())[:, ans].mean(1)]
            rec = {
                "stage": 1, "step": step, "lr": round(lr, 6), "loss": round(float(loss), 4),
                "answer_ce_per_loop": ce_loop, "exit_p_mean": p_mean,
                "gate_entropy": round(float(entropy[ans].mean()), 4), "skip_q": skip_q,
                "batch": list(x.shape),
            }
            emit(rec)
            print(
                f"[{time.time() - started:6.0f}s] step {step} batch {list(x.shape)} loss {float(loss):.4f} "
                f"answer CE per loop {ce_loop} exit p {p_mean}",
                flush=True,
            )
        if step % args.eval_every == 0:
            model.eval()
            acc = accuracy(model, tok, valid[:200])
            ch = chat_accuracy(model, tok, chats)
            model.train()
            emit({"stage": 1, "step": step, "valid_accuracy_full_depth_200": acc["accuracy"],
                  "valid_per_task": acc["per_task"], "chat_10_turn_accuracy": ch["accuracy"], "chat_per_turn": ch["per_turn"]})
            print(f"  valid accuracy (200 items, full depth) {acc['accuracy']:.3f} {acc['per_task']}; "
                  f"{len(chats)} ten-turn chats {ch['accuracy']:.3f} per turn {ch['per_turn']}", flush=True)
        if time.time() - last_ckpt > args.ckpt_minutes * 60:
            checkpoint()
            last_ckpt = time.time()
    checkpoint()
    stage1_seconds = spent + time.time() - t0
    print(f"stage 1 done: {step} steps, {stage1_seconds / 60:.1f} min (checkpoint {ckpt_path})", flush=True)

    # Stage 2: the gate-only adaptive exit loss.
    for p in model.parameters():
        p.requires_grad_(False)
    gate_params = list(model.model.early_exit_gate.parameters())
    for p in gate_params:
        p.requires_grad_(True)
    gopt = torch.optim.Adam(gate_params, lr=1e-3)
    for s2 in range(args.stage2_steps):
        x, y, w = batchify(encode_items(tok, sample_batch(train_rng, args)))
        loss = stage2_loss(model, x, y, w)
        gopt.zero_grad(set_to_none=True)
        loss.backward()
        gopt.step()
        if (s2 + 1) % 50 == 0:
            emit({"stage": 2, "step": s2 + 1, "gate_bce": round(float(loss.detach()), 4)})
            print(f"[{time.time() - started:6.0f}s] stage 2 step {s2 + 1} gate BCE {float(loss.detach()):.4f}", flush=True)

    # The exit threshold, chosen on the validation split, then the checkpoint (written before
    # the long test evaluation so that it can be converted and measured meanwhile).
    model.eval()
    summary = {"params": n_params, "config": cfg, "stage1_steps": step, "stage2_steps": args.stage2_steps,
               "stage1_seconds": round(stage1_seconds, 1), "args": {k: str(v) for k, v in vars(args).items()}}
    vitems = valid
    valid_full = accuracy(model, tok, vitems)["accuracy"]
    sweep = {}
    for q in (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9):
        sweep[q] = {"skip": accuracy(model, tok, vitems, q=q, skip=True)}
        print(f"valid q={q}: skip {sweep[q]['skip']['accuracy']:.3f}/{sweep[q]['skip']['mean_loops']:.2f} "
              f"(full depth {valid_full:.3f})", flush=True)
    summary["valid_threshold_sweep"] = sweep
    # Default threshold: the lowest q whose skip-mode accuracy on the whole validation split is
    # within 1 point of full depth (fewest loops at that loss); 1.0 (never exit early) if none is.
    ok = [q for q in sorted(sweep) if sweep[q]["skip"]["accuracy"] >= valid_full - 0.01]
    threshold = ok[0] if ok else 1.0
    summary["valid_full_depth_accuracy"] = valid_full
    summary["default_threshold"] = threshold
    save_hf(model, tok, cfg, args.out, threshold)
    with (args.out / "test-items.jsonl").open("w") as f:
        for task, q, a in test:
            f.write(json.dumps({"task": task, "question": q, "answer": a}) + "\n")
    print(f"wrote {args.out} (threshold {threshold}); now the held-out evaluation", flush=True)

    summary["test_fixed_depth"] = {}
    for k in range(1, cfg["total_ut_steps"] + 1):
        summary["test_fixed_depth"][k] = accuracy(model, tok, test, loops=k)
        print(f"test depth {k}: {summary['test_fixed_depth'][k]}", flush=True)
    summary["test_full_depth_accuracy"] = summary["test_fixed_depth"][cfg["total_ut_steps"]]["accuracy"]
    summary["test_select_default"] = accuracy(model, tok, test, q=threshold)
    summary["test_skip_default"] = accuracy(model, tok, test, q=threshold, skip=True)
    print(json.dumps({k: summary[k] for k in ("default_threshold", "test_select_default", "test_skip_default")}), flush=True)
    summary["test_with_system_prompt"] = accuracy(model, tok, test, system=tasks.SYSTEM_PROMPTS[0])
    print(f"test with a system prompt: {summary['test_with_system_prompt']}", flush=True)
    summary["chat_10_turns"] = chat_accuracy(model, tok, chats)
    print(f"{len(chats)} ten-turn chats: {summary['chat_10_turns']}", flush=True)
    summary["speculative_acceptance"] = speculative_acceptance(model, tok, test)
    print(f"self-speculative acceptance: {summary['speculative_acceptance']['acceptance']}", flush=True)
    summary["train_seconds"] = round(time.time() - started, 1)
    (args.out / "train-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out} in {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
