"""Train the demo LoopLM (models/ouro-demo.gguf) on the synthetic chat tasks in tasks.py.

    python models/train/train.py --out target/demo-a --minutes 42 --multi-turn-share 0   # stage A
    python models/train/train.py --out target/demo-b --init-from target/demo-a \
        --minutes 13 --warmup 50 --lr 1e-3                                     # stage B

Writes a Hugging Face Ouro checkpoint (config.json, model.safetensors, tokenizer.json,
tokenizer_config.json with a ChatML chat_template, special_tokens_map.json,
generation_config.json) plus train-log.jsonl and train-summary.json, then:

    cargo run --release -p ouro-convert -- hf2gguf target/demo-b -o models/ouro-demo.gguf --type f32

(the defaults are the shipped model's sizes; models/README.md has the exact run).

Objective (paper "Scaling Latent Reasoning via Looped Language Models", ouro-spec.md §3.7–3.8):
  stage 1  Σ_t p_t · CE_t − β · H(p)  over all loops, p the exit distribution of the gate
           (β = 0.1 for the first 30 % of the steps, then 0.05);
  stage 2  the gate-only adaptive exit loss: with the LM frozen, I_t = max(0, CE_{t-1} − CE_t),
           w_t = sigmoid(50 · (I_t − 0.005)), BCE of λ_{t-1} toward 1 − w_t (stop when the next
           loop no longer helps).
In the second half of stage 1, every other batch runs with the runtime's skip-mode KV policy
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
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tasks  # noqa: E402
from looplm import LoopLM, exit_distribution, exit_loop  # noqa: E402

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
TRAIN_SEED, VALID_SEED, TEST_SEED = 1, 2, 3


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


def encode_items(tok, convs):
    """(ids, weights) per conversation (a list of (task, question, answer) turns): weight 1 on the
    positions predicting an answer and its <|im_end|>, 0.1 on the rest."""
    out = []
    for turns in convs:
        text = ""
        spans = []
        for _, q, a in turns:
            text += tasks.prompt_text(q)
            start = len(tok.encode(text).ids)
            text += a + "<|im_end|>\n"
            spans.append((start, len(tok.encode(text).ids) - 1))
        full = tok.encode(text).ids
        assert spans[-1][1] == len(full) - 1, "turn boundaries must tokenize as prefixes"
        w = [0.1] * (len(full) - 1)
        for start, end in spans:
            # Position i predicts token i + 1: the answer tokens and <|im_end|> are start..end-1.
            for i in range(start - 1, end - 1):
                w[i] = 1.0
        out.append((full, w))
    return out


def sample_conversations(rng, n, multi_turn_share):
    """Single questions, and a `multi_turn_share` of 2–3 turn chats (the REPL keeps earlier
    turns in context)."""
    convs = []
    for _ in range(n):
        # (0 draws nothing, so stage A's stream is reproduced exactly.)
        single = multi_turn_share <= 0 or rng.random() < 1 - multi_turn_share
        turns = 1 if single else rng.randint(2, 3)
        convs.append([tasks.make_item(rng) for _ in range(turns)])
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
def greedy_answers(model, tok, items, loops=None, q=None, skip=False, max_new=24):
    """Greedy answers for `items`; per item (text, loops used per generated token).

    loops=k: fixed depth k. q: exit threshold (select: compute all loops, read out at the exit
    loop; skip: the runtime's skip policy, simulated). Recomputes the sequence every token.
    """
    im_end = tok.token_to_id("<|im_end|>")
    results = [None] * len(items)
    by_len = {}
    for i, (_, qn, _) in enumerate(items):
        ids = tok.encode(tasks.prompt_text(qn)).ids
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
            ids = gen[j][:-1] if gen[j] and gen[j][-1] == im_end else gen[j]
            results[i] = (tok.decode(ids), used[j])
    return results


def accuracy(model, tok, items, **kw):
    res = greedy_answers(model, tok, items, **kw)
    correct = sum(text == a for (text, _), (_, _, a) in zip(res, items))
    loops = [u for _, used in res for u in used]
    per_task = {}
    for (text, _), (task, _, a) in zip(res, items):
        c, n = per_task.get(task, (0, 0))
        per_task[task] = (c + (text == a), n + 1)
    return {
        "accuracy": correct / len(items),
        "mean_loops": sum(loops) / max(1, len(loops)),
        "per_task": {k: round(c / n, 4) for k, (c, n) in sorted(per_task.items())},
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="output directory (HF layout)")
    ap.add_argument("--minutes", type=float, default=42.0, help="stage-1 wall-clock budget")
    ap.add_argument("--stage2-steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0, help="torch seed (data seeds are fixed: 1/2/3)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--loops", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=576)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=320)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-items", type=int, default=400)
    ap.add_argument("--init-from", type=Path, help="continue from a checkpoint this script wrote (same sizes)")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--multi-turn-share", type=float, default=0.5,
                    help="share of 2-3 turn conversations (stage A of the shipped model used 0)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop stage 1 after this many steps (0 = time budget only)")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    log = (args.out / "train-log.jsonl").open("w")

    def emit(record):
        record["elapsed_s"] = round(time.time() - started, 1)
        log.write(json.dumps(record) + "\n")
        log.flush()

    if args.init_from:
        tok = Tokenizer.from_file(str(args.init_from / "tokenizer.json"))
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
    model = LoopLM(cfg)
    if args.init_from:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(args.init_from / "model.safetensors")))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"vocab {cfg['vocab_size']}, {n_params / 1e6:.2f} M parameters", flush=True)

    valid = tasks.make_split(VALID_SEED, args.eval_items)
    test = tasks.make_split(TEST_SEED, args.eval_items)
    # A continued run draws a fresh stream (seed + 100) rather than repeating the first one's.
    train_rng = random.Random(TRAIN_SEED + (100 if args.init_from else 0))
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
    )
    budget = args.minutes * 60
    warmup = args.warmup
    step = 0
    t0 = time.time()
    while True:
        frac = (time.time() - t0) / budget
        if args.max_steps:
            frac = max(frac, step / args.max_steps)
        if frac >= 1.0:
            break
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        beta = 0.1 if frac < 0.3 else 0.05
        x, y, w = batchify(encode_items(tok, sample_conversations(train_rng, args.batch, args.multi_turn_share)))
        skip_q = None
        if frac >= 0.5 and step % 2 == 1:
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
            }
            emit(rec)
            print(
                f"[{time.time() - started:6.0f}s] step {step} loss {float(loss):.4f} "
                f"answer CE per loop {ce_loop} exit p {p_mean}",
                flush=True,
            )
        if step % 1000 == 0:
            model.eval()
            acc = accuracy(model, tok, valid[:100])
            model.train()
            emit({"stage": 1, "step": step, "valid_accuracy_full_depth_100": acc["accuracy"]})
            print(f"  valid accuracy (100 items, full depth) {acc['accuracy']:.3f}", flush=True)

    # Stage 2: the gate-only adaptive exit loss.
    for p in model.parameters():
        p.requires_grad_(False)
    gate_params = list(model.model.early_exit_gate.parameters())
    for p in gate_params:
        p.requires_grad_(True)
    gopt = torch.optim.Adam(gate_params, lr=1e-3)
    for s2 in range(args.stage2_steps):
        x, y, w = batchify(encode_items(tok, sample_conversations(train_rng, args.batch, args.multi_turn_share)))
        loss = stage2_loss(model, x, y, w)
        gopt.zero_grad(set_to_none=True)
        loss.backward()
        gopt.step()
        if (s2 + 1) % 50 == 0:
            emit({"stage": 2, "step": s2 + 1, "gate_bce": round(float(loss.detach()), 4)})
            print(f"[{time.time() - started:6.0f}s] stage 2 step {s2 + 1} gate BCE {float(loss.detach()):.4f}", flush=True)

    # Held-out evaluation: fixed depths, then thresholds (chosen on the validation split).
    model.eval()
    summary = {"params": n_params, "config": cfg, "stage1_steps": step, "stage2_steps": args.stage2_steps}
    summary["test_fixed_depth"] = {}
    for k in range(1, args.loops + 1):
        summary["test_fixed_depth"][k] = accuracy(model, tok, test, loops=k)
        print(f"test depth {k}: {summary['test_fixed_depth'][k]}", flush=True)
    full = summary["test_fixed_depth"][args.loops]["accuracy"]
    sweep = {}
    for q in (0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        sweep[q] = {
            "select": accuracy(model, tok, valid[:200], q=q),
            "skip": accuracy(model, tok, valid[:200], q=q, skip=True),
        }
        print(f"valid q={q}: select {sweep[q]['select']['accuracy']:.3f}/{sweep[q]['select']['mean_loops']:.2f} "
              f"skip {sweep[q]['skip']['accuracy']:.3f}/{sweep[q]['skip']['mean_loops']:.2f}", flush=True)
    summary["valid_threshold_sweep"] = sweep
    valid_full = accuracy(model, tok, valid[:200])["accuracy"]
    # Default threshold: the lowest q whose skip-mode validation accuracy is within 2 points of
    # full depth (fewest loops at that loss); 1.0 (never exit early) if none is.
    ok = [q for q in sorted(sweep) if sweep[q]["skip"]["accuracy"] >= valid_full - 0.02]
    threshold = ok[0] if ok else 1.0
    summary["valid_full_depth_accuracy"] = valid_full
    summary["default_threshold"] = threshold
    summary["test_select_default"] = accuracy(model, tok, test, q=threshold)
    summary["test_skip_default"] = accuracy(model, tok, test, q=threshold, skip=True)
    summary["test_full_depth_accuracy"] = full
    summary["train_seconds"] = round(time.time() - started, 1)
    print(json.dumps({k: summary[k] for k in ("default_threshold", "test_select_default", "test_skip_default")}), flush=True)
    save_hf(model, tok, cfg, args.out, threshold)
    (args.out / "train-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    with (args.out / "test-items.jsonl").open("w") as f:
        for task, q, a in test:
            f.write(json.dumps({"task": task, "question": q, "answer": a}) + "\n")
    print(f"wrote {args.out} in {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
