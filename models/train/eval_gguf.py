"""Measure the shipped demo model through the real CLI (`ouro generate --chat --temp 0 --json`).

    python3 models/train/eval_gguf.py [--ouro target/release/ouro] [--model models/ouro-demo.gguf]

For every held-out item in models/ouro-demo-test.jsonl it asks the question greedily at fixed
depth 1…n_loops and at the file's exit threshold in select and skip mode, and prints the table of
models/README.md: exact-match accuracy, mean loops per generated token, layer evaluations.
It writes the same figures to models/ouro-demo-eval.json; tests/demo_model.rs checks the first
`ci_items` items against them.
"""

import argparse
import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CI_ITEMS = 100


def ask(ouro, model, question, extra):
    cmd = [str(ouro), "generate", "-m", str(model), "--chat", "-p", question,
           "--temp", "0", "-n", "40", "--json", "-t", "1", *extra]
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
        })
    return rows


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
        "per_task": {k: round(c / n, 3) for k, (c, n) in sorted(per_task.items())},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ouro", type=Path, default=ROOT / "target/release/ouro")
    ap.add_argument("--model", type=Path, default=ROOT / "models/ouro-demo.gguf")
    ap.add_argument("--items", type=Path, default=ROOT / "models/ouro-demo-test.jsonl")
    ap.add_argument("--out", type=Path, default=ROOT / "models/ouro-demo-eval.json")
    ap.add_argument("--loops", type=int, default=4)
    args = ap.parse_args()
    items = [json.loads(line) for line in args.items.read_text().splitlines() if line.strip()]

    settings = [(f"depth {k}", ["--loops", str(k)]) for k in range(1, args.loops + 1)]
    settings += [("default threshold, select", ["--exit-mode", "select"]),
                 ("default threshold, skip", ["--exit-mode", "skip"])]
    report = {"items": len(items), "ci_items": CI_ITEMS, "settings": {}}
    print("| setting | accuracy | mean loops / token | layer evals | per task |")
    print("|---|---|---|---|---|")
    for name, extra in settings:
        rows = run_setting(args.ouro, args.model, items, extra)
        s = summarize(rows)
        s["ci"] = summarize(rows[:CI_ITEMS])
        s["args"] = extra
        report["settings"][name] = s
        tasks = ", ".join(f"{k} {v:.2f}" for k, v in s["per_task"].items())
        print(f"| {name} | {s['accuracy']:.1%} | {s['mean_loops']:.2f} | {s['layer_evals']} | {tasks} |", flush=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
