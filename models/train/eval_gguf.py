"""Measure the shipped demo model through the real CLI (`ouro generate --chat --temp 0 --json`).

    python3 models/train/eval_gguf.py [--ouro target/release/ouro] [--model models/ouro-demo.gguf]

For every held-out item in models/ouro-demo-test.jsonl it asks the question greedily at fixed
depth 1…n_loops and at the file's exit threshold in select and skip mode, and prints the table of
models/README.md: exact-match accuracy, mean loops per generated token, layer evaluations.
It writes the same figures to models/ouro-demo-eval.json; tests/demo_model.rs checks the first
`ci_items` items against them. It also answers the README examples, and pipes the 10 questions of
models/ouro-demo-chat.jsonl into one `ouro chat --temp 0` session (a 10-turn chat). Last, it
measures self-speculative decoding on the same items (`--draft-loops D`, D = 1 … n_loops - 1):
acceptance with the default `--draft-max 4` (accepted / drafted, tokens per verification, layer
evaluations against plain full depth, answers identical to full depth's) and with `--draft-max 1`
(then every generated token after the first is drafted once, so the acceptance is the share of
tokens whose loop-D argmax equals full depth's: train.py's `speculative_acceptance`, which also
counts the first answer token).
"""

import argparse
import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CI_ITEMS = 100
N_PREDICT = 40
# The examples quoted in models/README.md and scripts/quickstart.sh (README.md's quick start).
EXAMPLES = [
    ("What is 347 + 589?", "347 + 589 = 936."),
    ("What is 702 - 45?", "702 - 45 = 657."),
    ("Which is larger, 418 or 481?", "481 is larger."),
    ("Sort 52, 7, 31, 9.", "7, 9, 31, 52."),
    ("Reverse the digits of 3081.", "1803."),
    ("What is 905 - 487?", "905 - 487 = 418."),
    ("Which is larger, 96 or 318?", "318 is larger."),
]


def ask(ouro, model, question, extra):
    cmd = [str(ouro), "generate", "-m", str(model), "--chat", "-p", question,
           "--temp", "0", "-n", str(N_PREDICT), "--json", "-t", "1", *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def run_setting(ouro, model, items, extra):
    rows = []
    for it in items:
        r = ask(ouro, model, it["question"], extra)
        rows.append({
            "correct": r["text"].strip() == it["answer"],
            "loops": r["loops"],
            "layer_evals": r["layer_evals"],
            "task": it["task"],
            "stopped": len(r["tokens"]) < N_PREDICT,
            "text": r["text"].strip(),
            "speculation": r.get("speculation"),
        })
    return rows


def summarize_speculation(rows, full_rows):
    """Self-speculation over all items: acceptance overall and per task, answers identical to
    plain full-depth decoding, layer evaluations against plain full depth."""
    per_task = {}
    for r in rows:
        a, d = per_task.get(r["task"], (0, 0))
        per_task[r["task"]] = (a + r["speculation"]["accepted"], d + r["speculation"]["drafted"])
    drafted = sum(r["speculation"]["drafted"] for r in rows)
    accepted = sum(r["speculation"]["accepted"] for r in rows)
    verifies = sum(r["speculation"]["verifies"] for r in rows)
    # Tokens that came out of verifications: all generated ones (the end-of-turn token
    # included) but the first, which the prompt's forward pass produced. (The CLI's own
    # tokens_per_verify, (accepted + verifies) / verifies, counts one token too many for every
    # batch accepted in full.)
    tokens = sum(len(r["loops"]) + r["stopped"] - 1 for r in rows)
    evals = sum(r["layer_evals"] for r in rows)
    full_evals = sum(r["layer_evals"] for r in full_rows)
    return {
        "drafted": drafted,
        "accepted": accepted,
        "acceptance": round(accepted / drafted, 4),
        "verifies": verifies,
        "tokens_per_verify": round(tokens / verifies, 3),
        "identical_to_full_depth": round(sum(r["text"] == f["text"] for r, f in zip(rows, full_rows)) / len(rows), 4),
        "layer_evals": evals,
        "layer_evals_vs_full_depth": round(evals / full_evals, 4),
        "per_task_acceptance": {k: round(a / d, 3) for k, (a, d) in sorted(per_task.items())},
    }


def summarize(rows):
    loops = [l for r in rows for l in r["loops"]]
    per_task = {}
    for r in rows:
        c, n = per_task.get(r["task"], (0, 0))
        per_task[r["task"]] = (c + r["correct"], n + 1)
    return {
        "accuracy": round(sum(r["correct"] for r in rows) / len(rows), 4),
        "mean_loops": round(sum(loops) / len(loops), 3),
        "layer_evals": sum(r["layer_evals"] for r in rows),
        "clean_stops": round(sum(r["stopped"] for r in rows) / len(rows), 4),
        "per_task": {k: round(c / n, 3) for k, (c, n) in sorted(per_task.items())},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ouro", type=Path, default=ROOT / "target/release/ouro")
    ap.add_argument("--model", type=Path, default=ROOT / "models/ouro-demo.gguf")
    ap.add_argument("--items", type=Path, default=ROOT / "models/ouro-demo-test.jsonl")
    ap.add_argument("--out", type=Path, default=ROOT / "models/ouro-demo-eval.json")
    ap.add_argument("--chat", type=Path, default=ROOT / "models/ouro-demo-chat.jsonl")
    ap.add_argument("--loops", type=int, default=4)
    args = ap.parse_args()
    items = [json.loads(line) for line in args.items.read_text().splitlines() if line.strip()]

    settings = [(f"depth {k}", ["--loops", str(k)]) for k in range(1, args.loops + 1)]
    settings += [("default threshold, select", ["--exit-mode", "select"]),
                 ("default threshold, skip", ["--exit-mode", "skip"])]
    report = {"items": len(items), "ci_items": CI_ITEMS, "settings": {}}
    rows_by = {}
    print("| setting | accuracy | mean loops / token | layer evals | per task |")
    print("|---|---|---|---|---|")
    for name, extra in settings:
        rows = run_setting(args.ouro, args.model, items, extra)
        rows_by[name] = rows
        s = summarize(rows)
        s["ci"] = summarize(rows[:CI_ITEMS])
        s["args"] = extra
        report["settings"][name] = s
        tasks = ", ".join(f"{k} {v:.2f}" for k, v in s["per_task"].items())
        print(f"| {name} | {s['accuracy']:.1%} | {s['mean_loops']:.2f} | {s['layer_evals']} | {tasks} |", flush=True)
    full = report["settings"][f"depth {args.loops}"]["layer_evals"]
    skip = report["settings"]["default threshold, skip"]["layer_evals"]
    report["skip_layer_eval_saving"] = round(1 - skip / full, 4)
    print(f"skip saves {1 - skip / full:.1%} of the layer evaluations")

    report["examples"] = []
    for q, a in EXAMPLES:
        got = ask(args.ouro, args.model, q, [])["text"].strip()
        report["examples"].append({"question": q, "answer": a, "got": got, "correct": got == a})
        print(f"example: {q} -> {got} {'ok' if got == a else 'WRONG, want ' + a}")

    chat = [json.loads(line) for line in args.chat.read_text().splitlines() if line.strip()]
    piped = "".join(it["question"] + "\n" for it in chat)
    out = subprocess.run([str(args.ouro), "chat", "-m", str(args.model), "--temp", "0", "-n", str(N_PREDICT),
                          "-t", "1"], input=piped, check=True, capture_output=True, text=True).stdout
    answers = out.splitlines()
    turns = [{"question": it["question"], "answer": it["answer"], "got": g, "correct": g.strip() == it["answer"]}
             for it, g in zip(chat, answers + [""] * (len(chat) - len(answers)))]
    report["chat"] = {"turns": len(chat), "correct": sum(t["correct"] for t in turns),
                      "stdout_lines": len(answers), "transcript": turns}
    print(f"10-turn piped chat: {report['chat']['correct']} of {len(chat)} right")
    for t in turns:
        print(f"  {t['question']} -> {t['got']}{'' if t['correct'] else '   (want ' + t['answer'] + ')'}")

    full_rows = rows_by[f"depth {args.loops}"]
    report["speculation"] = {}
    print("| draft loops | draft max | acceptance | tokens / verification | layer evals vs full depth | "
          "identical answers | per task |")
    print("|---|---|---|---|---|---|---|")
    for d in range(1, args.loops):
        for m in (4, 1):
            extra = ["--draft-loops", str(d), "--draft-max", str(m)]
            rows = run_setting(args.ouro, args.model, items, extra)
            sp = summarize_speculation(rows, full_rows)
            sp["ci"] = summarize_speculation(rows[:CI_ITEMS], full_rows[:CI_ITEMS])
            sp["args"] = extra
            report["speculation"][f"draft loops {d}, draft max {m}"] = sp
            tasks = ", ".join(f"{k} {v:.2f}" for k, v in sp["per_task_acceptance"].items())
            print(f"| {d} | {m} | {sp['acceptance']:.1%} | {sp['tokens_per_verify']:.2f} | "
                  f"{sp['layer_evals_vs_full_depth']:.2f} | {sp['identical_to_full_depth']:.1%} | {tasks} |", flush=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
