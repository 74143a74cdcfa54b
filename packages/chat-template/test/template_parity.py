"""Parity of @eaglet/chat-template with transformers' apply_chat_template.

    node tools/python.mjs packages/chat-template/test/template_parity.py CASES.json

CASES.json lists what the TypeScript side rendered: ``{dir, messages, ids, mask, promptIds}``
(``promptIds``: the messages before the last assistant reply, with the generation prompt). For
each case, checks against the model folder's tokenizer loaded by transformers:
- ``ids`` equal ``apply_chat_template(messages, tokenize=True)``,
- ``promptIds`` equal ``apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True)``,
- ``mask`` equals transformers' own assistant mask (``return_assistant_tokens_mask``) where the
  template has ``{% generation %}`` markers; elsewhere, the tokens that the fast tokenizer's
  character offsets place in an assistant span, each span being the text between the rendering
  of messages[:i] with the generation prompt and that of messages[:i+1].
Prints a JSON summary; exits 1 on the first difference.
"""

import json
import os
import re
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import AutoTokenizer

GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


def ids_of(tok, messages, **kw):
    out = tok.apply_chat_template(messages, tokenize=True, return_dict=True, **kw)
    return list(out["input_ids"]), out


def offset_mask(tok, messages, ids):
    text = tok.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start = len(tok.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True))
        end = len(tok.apply_chat_template(messages[: i + 1], tokenize=False))
        spans.append((start, end))
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    assert list(enc["input_ids"]) == ids, "tokenizing the rendered text differs from apply_chat_template"
    return [int(any(e > s0 and s < e0 for s0, e0 in spans)) for s, e in enc["offset_mapping"]]


def main(cases_file: str) -> None:
    cases = json.loads(open(cases_file, encoding="utf-8").read())
    tokenizers = {}
    checked = {"cases": 0, "tokens": 0, "trained": 0, "generation_markers": 0}
    for k, case in enumerate(cases):
        where = f"case {k} ({case['dir']})"
        tok = tokenizers.get(case["dir"]) or tokenizers.setdefault(case["dir"], AutoTokenizer.from_pretrained(case["dir"]))
        messages = case["messages"]
        markers = GENERATION_TAG.search(tok.chat_template or "") is not None
        ids, out = ids_of(tok, messages, return_assistant_tokens_mask=markers)
        if ids != case["ids"]:
            raise SystemExit(f"{where}: ids differ\n eaglet {case['ids']}\n hf     {ids}")
        mask = list(out["assistant_masks"]) if markers else offset_mask(tok, messages, ids)
        if mask != case["mask"]:
            diff = [i for i, (a, b) in enumerate(zip(mask, case["mask"])) if a != b]
            raise SystemExit(f"{where}: loss masks differ at {diff[:10]}\n eaglet {case['mask']}\n hf     {mask}")
        prompt, _ = ids_of(tok, messages[:-1], add_generation_prompt=True)
        if prompt != case["promptIds"]:
            raise SystemExit(f"{where}: prompt ids differ\n eaglet {case['promptIds']}\n hf     {prompt}")
        checked["cases"] += 1
        checked["tokens"] += len(ids)
        checked["trained"] += sum(mask)
        checked["generation_markers"] += int(markers)
    print(json.dumps(checked))


if __name__ == "__main__":
    main(sys.argv[1])
