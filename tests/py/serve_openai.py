"""The PyPI `openai` client against a running `ouro serve` (demo model): non-streaming and
streaming chat, completions, the Ouro fields, and error handling. Usage:
    python3 serve_openai.py BASE_URL API_KEY
Exits non-zero (assertion) on any mismatch; prints "openai client: ok" at the end."""

import sys

import openai

base, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)

QA = [
    ("What is 347 + 589?", "347 + 589 = 936."),
    ("Reverse the digits of 3081.", "1803."),
    ("What is 905 - 487?", "905 - 487 = 418."),
]

models = client.models.list()
assert models.data[0].id == "ouro-demo.gguf", models

for q, a in QA:
    r = client.chat.completions.create(
        model="ouro-demo", messages=[{"role": "user", "content": q}], temperature=0, max_tokens=40
    )
    choice = r.choices[0]
    assert choice.message.content == a, (q, choice.message.content)
    assert choice.finish_reason == "stop", choice.finish_reason
    loops = choice.model_extra["loops"]
    assert len(loops) == r.usage.completion_tokens, (loops, r.usage)
    assert all(1 <= l <= 4 for l in loops), loops

    text, n_loops, usage, finish = "", 0, None, None
    stream = client.chat.completions.create(
        model="ouro-demo",
        messages=[{"role": "user", "content": q}],
        temperature=0,
        stream=True,
        extra_body={"loops": 4},
    )
    for chunk in stream:
        if not chunk.choices:
            continue
        c = chunk.choices[0]
        text += c.delta.content or ""
        n_loops += len(c.model_extra["loops"])
        assert all(l == 4 for l in c.model_extra["loops"]), c
        finish = c.finish_reason or finish
        usage = chunk.usage or usage
    assert text == a, (q, text)
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == n_loops, (usage, n_loops)

r = client.completions.create(
    model="ouro-demo",
    prompt="<|im_start|>user\nWhat is 12 + 5?<|im_end|>\n<|im_start|>assistant\n",
    temperature=0,
    max_tokens=20,
)
assert r.choices[0].text == "12 + 5 = 17.", r.choices[0].text

text = ""
for chunk in client.completions.create(
    model="ouro-demo",
    prompt="<|im_start|>user\nWhat is 12 + 5?<|im_end|>\n<|im_start|>assistant\n",
    temperature=0,
    stream=True,
    stop=[" ="],
):
    text += chunk.choices[0].text
assert text == "12 + 5", text

try:
    client.chat.completions.create(model="ouro-demo", messages=[{"role": "user", "content": "hi"}], n=2)
    raise AssertionError("n=2 accepted")
except openai.BadRequestError as e:
    assert "`n`" in e.body["message"], e.body

bad = openai.OpenAI(base_url=base, api_key="wrong", max_retries=0)
try:
    bad.models.list()
    raise AssertionError("wrong key accepted")
except openai.AuthenticationError:
    pass

print("openai client: ok")
