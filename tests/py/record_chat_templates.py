#!/usr/bin/env python3
"""Record the chat-template goldens that tests/chat_template.rs compares against.

Renders each template below with Python jinja2 exactly the way transformers'
`apply_chat_template` does (an ImmutableSandboxedEnvironment with trim_blocks=True,
lstrip_blocks=True, the loopcontrols extension and a `raise_exception` global) and writes
tests/golden/chat_templates.json. Run once after changing a template or a case:

    python3 tests/py/record_chat_templates.py

Needs only `jinja2` (pip install jinja2). The Rust test reads the JSON; no Python at test time.
"""

import json
import sys
from pathlib import Path

import jinja2
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# The ChatML template shipped in the Ouro / SmolLM tokenizer_config.json (one line, no markers).
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Llama-3 style: header tokens, bos_token on the first message, `| trim` on content.
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

# Thinking style (ChatML with reasoning): block tags on their own indented lines, so the output
# depends on trim_blocks + lstrip_blocks; a default system prompt; reasoning stripped from past
# assistant turns with Python string methods; `enable_thinking`; raise_exception on a bad role.
THINKING = """{# ChatML with <think> reasoning. #}
{% set ns = namespace(system='You are a helpful assistant.') %}
{% if messages[0]['role'] == 'system' %}
    {% set ns.system = messages[0]['content'].strip() %}
    {% set loop_messages = messages[1:] %}
{% else %}
    {% set loop_messages = messages %}
{% endif %}
<|im_start|>system
{{ ns.system }}<|im_end|>
{% for message in loop_messages %}
    {% if message['role'] not in ['user', 'assistant'] %}
        {{ raise_exception('Unsupported role: ' + message['role']) }}
    {% endif %}
    {% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {% endif %}
    {% if message['role'] == 'assistant' %}
        {% set content = message['content'] %}
        {% if '</think>' in content %}
            {% set content = content.split('</think>')[-1].lstrip('\\n') %}
        {% endif %}
<|im_start|>assistant
{{ content.rstrip() }}<|im_end|>
    {% else %}
<|im_start|>user
{{ message['content'] }}<|im_end|>
    {% endif %}
{% endfor %}
{% if add_generation_prompt %}
<|im_start|>assistant
    {% if enable_thinking is defined and enable_thinking is false %}
<think>

</think>

    {% else %}
<think>
    {% endif %}
{% endif %}
"""

TEMPLATES = {"chatml": CHATML, "llama3": LLAMA3, "thinking": THINKING}

SYS = {"role": "system", "content": "You are Ouro, a looped language model."}
U1 = {"role": "user", "content": "Write a haiku about loops."}
A1 = {"role": "assistant", "content": "Round and round we go,\nthe same weights, deeper each time,\nthoughts settle like snow."}
U2 = {"role": "user", "content": "  Now in French, s'il vous plaît: « boucle » — ça va?  \n"}
A1_THINK = {
    "role": "assistant",
    "content": "<think>\nThe user wants a haiku.\n5-7-5.\n</think>\n\nRound and round we go.\n",
}
TOOL = {"role": "tool", "content": "{\"temp\": 21}"}

CASES = [
    # (template, messages, add_generation_prompt, extra kwargs)
    ("chatml", [U1], True, {}),
    ("chatml", [U1], False, {}),
    ("chatml", [SYS, U1, A1, U2], True, {}),
    ("chatml", [U1, A1], False, {}),
    ("llama3", [U1], True, {}),
    ("llama3", [SYS, U1, A1, U2], True, {}),
    ("llama3", [U1, A1], False, {}),
    ("thinking", [U1], True, {}),
    ("thinking", [U1], True, {"enable_thinking": False}),
    ("thinking", [U1], True, {"enable_thinking": True}),
    ("thinking", [SYS, U1, A1_THINK, U2], True, {}),
    ("thinking", [SYS, U1, A1, U2], False, {}),
    ("thinking", [U1, TOOL], True, {}),
    ("thinking", [U1, U2], True, {}),
]

BOS = {"chatml": "<|im_start|>", "llama3": "<|begin_of_text|>", "thinking": "<|im_start|>"}
EOS = {"chatml": "<|im_end|>", "llama3": "<|eot_id|>", "thinking": "<|im_end|>"}


def raise_exception(message):
    raise TemplateError(message)


def main():
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.globals["raise_exception"] = raise_exception
    cases = []
    for name, messages, add_gen, extra in CASES:
        template = env.from_string(TEMPLATES[name])
        case = {
            "template": name,
            "messages": messages,
            "add_generation_prompt": add_gen,
            "extra": extra,
            "bos_token": BOS[name],
            "eos_token": EOS[name],
        }
        try:
            case["output"] = template.render(
                messages=messages,
                add_generation_prompt=add_gen,
                bos_token=BOS[name],
                eos_token=EOS[name],
                **extra,
            )
        except TemplateError as e:
            case["error"] = str(e)
        cases.append(case)
    out = {
        "generator": f"tests/py/record_chat_templates.py (jinja2 {jinja2.__version__})",
        "templates": TEMPLATES,
        "cases": cases,
    }
    path = Path(__file__).resolve().parent.parent / "golden" / "chat_templates.json"
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
