#!/usr/bin/env python3
"""What llama.cpp's converter (gguf-py) derives from a checkpoint's tokenizer files and tensor count.

usage: llama_metadata.py special HF_DIR      -> JSON {gguf key: id} from gguf.SpecialVocab
       llama_metadata.py size-label N...     -> one gguf.size_label per line

`special` runs gguf-py's SpecialVocab exactly as convert_hf_to_gguf.py's `_set_vocab_gpt2` does
(`SpecialVocab(dir, load_merges=True)`) and maps each type to the key `add_to_gguf` would write
(types without a GGUFWriter handler, e.g. cls, are skipped as add_to_gguf skips them).
Needs only the `gguf` package.
"""
import json
import sys

import gguf


def special(hf_dir):
    sv = gguf.SpecialVocab(hf_dir, load_merges=True)
    keys = {
        "bos": gguf.Keys.Tokenizer.BOS_ID,
        "eos": gguf.Keys.Tokenizer.EOS_ID,
        "unk": gguf.Keys.Tokenizer.UNK_ID,
        "sep": gguf.Keys.Tokenizer.SEP_ID,
        "pad": gguf.Keys.Tokenizer.PAD_ID,
        "mask": gguf.Keys.Tokenizer.MASK_ID,
    }
    out = {}
    for typ, tid in sv.special_token_ids.items():
        if typ in keys and hasattr(gguf.GGUFWriter, f"add_{typ}_token_id"):
            out[keys[typ]] = tid
    print(json.dumps(out, sort_keys=True))


def size_labels(counts):
    for n in counts:
        print(gguf.size_label(int(n), int(n), 0, 0))


if __name__ == "__main__":
    if sys.argv[1] == "special":
        special(sys.argv[2])
    elif sys.argv[1] == "size-label":
        size_labels(sys.argv[2:])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
