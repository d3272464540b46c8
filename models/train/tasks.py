"""Procedurally generated chat tasks for the demo LoopLM.

Five task families, each mixing easy and hard items, so that depth should matter for some tokens
(carry chains, comparisons of long numbers, sorting) and not for others (echoing the question):

    add      What is 347 + 589?            -> 347 + 589 = 936.
    sub      What is 702 - 45?             -> 702 - 45 = 657.
    compare  Which is larger, 418 or 481?  -> 481 is larger.
    sort     Sort 52, 7, 31, 9.            -> 7, 9, 31, 52.
    reverse  Reverse the digits of 3081.   -> 1803.

Every item is drawn from a `random.Random(seed)`, so a split is a pure function of its seed.
"""

import random

TASKS = ("add", "sub", "compare", "sort", "reverse")


def _number(rng, max_digits):
    digits = rng.randint(1, max_digits)
    lo = 0 if digits == 1 else 10 ** (digits - 1)
    return rng.randint(lo, 10**digits - 1)


SORT_LENGTHS = (2, 3, 4, 5)


def make_item(rng, weights=None, sort_len_weights=None, swap_share=0.0):
    """One (task, question, answer) triple (`weights`: relative task frequencies, else uniform;
    `sort_len_weights`: relative frequencies of sort lists of 2, 3, 4, 5 numbers, else uniform;
    `swap_share`: share of the compare near misses made by swapping two digits, 418 vs 481, rather
    than changing one). Without them, the draws are exactly those the validation and test splits
    were made with."""
    task = rng.choice(TASKS) if weights is None else rng.choices(TASKS, weights)[0]
    if task == "add":
        a, b = _number(rng, 3), _number(rng, 3)
        return task, f"What is {a} + {b}?", f"{a} + {b} = {a + b}."
    if task == "sub":
        a, b = _number(rng, 3), _number(rng, 3)
        a, b = max(a, b), min(a, b)
        return task, f"What is {a} - {b}?", f"{a} - {b} = {a - b}."
    if task == "compare":
        a = _number(rng, 3)
        # Half the time a near miss: same length, one digit changed or two digits swapped.
        if rng.random() < 0.5 and a >= 10:
            s = list(str(a))
            if swap_share > 0 and rng.random() < swap_share and len(set(s)) > 1:
                i, j = rng.sample(range(len(s)), 2)
                if s[i] != s[j] and not (min(i, j) == 0 and "0" in (s[i], s[j])):
                    s[i], s[j] = s[j], s[i]
                    b = int("".join(s))
                    return task, f"Which is larger, {a} or {b}?", f"{max(a, b)} is larger."
            i = rng.randrange(len(s))
            choices = [d for d in "0123456789" if d != s[i] and not (i == 0 and d == "0")]
            s[i] = rng.choice(choices)
            b = int("".join(s))
        else:
            b = _number(rng, 3)
        while b == a:
            b = _number(rng, 3)
        return task, f"Which is larger, {a} or {b}?", f"{max(a, b)} is larger."
    if task == "sort":
        if sort_len_weights is None:
            n = rng.randint(2, 5)
        else:
            n = rng.choices(SORT_LENGTHS, sort_len_weights)[0]
        xs = [rng.randint(0, 99) for _ in range(n)]
        q = ", ".join(map(str, xs))
        return task, f"Sort {q}.", ", ".join(map(str, sorted(xs))) + "."
    s = str(rng.randint(0, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(rng.randint(1, 4)))
    return task, f"Reverse the digits of {s}.", f"{s[::-1]}."


def make_split(seed, n):
    rng = random.Random(seed)
    return [make_item(rng) for _ in range(n)]


# Chat rendering: plain ChatML, no default system prompt (the template in tokenizer_config.json
# renders exactly this; `ouro chat --system TEXT` adds a system turn first).
SYSTEM_PROMPTS = (
    "You are a helpful assistant.",
    "You are a helpful assistant",
    "You are a calculator. Answer briefly.",
    "Answer the question.",
    "You are Ouro, a small looped language model.",
    "Be concise.",
    "You solve arithmetic, comparison, sorting and digit-reversal problems.",
    "You are a friendly math tutor. Give only the answer.",
    "Reply with the result only.",
    "You are a helpful, honest assistant. Keep answers short.",
)


def system_text(system):
    return f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""


def prompt_text(question):
    return f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


def chat_text(question, answer):
    return prompt_text(question) + answer + "<|im_end|>\n"
