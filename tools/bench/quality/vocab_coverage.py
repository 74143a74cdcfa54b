"""How much of a prepared split's assistant text each draft vocabulary covers.

    node tools/python.mjs tools/bench/quality/vocab_coverage.py --data PREPARED... VOCAB...

For each vocab file (``eaglet data vocab``): its size, and per --data folder the share of
loss-masked (assistant) tokens and of distinct assistant tokens that are in the draft vocabulary.
A token outside it can never be drafted, so the token share bounds acc_i on that split.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from eaglet_engine.data import PreparedDataset
from eaglet_engine.vocab import load_vocab


def assistant_tokens(folder: str) -> np.ndarray:
    data = PreparedDataset([folder], max_length=1 << 20)
    records = [data.record(ref, with_audio=False) for ref in data.refs]
    return np.concatenate([r.input_ids[r.loss_mask.astype(bool)] for r in records]).astype(np.int64)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", action="append", required=True)
    p.add_argument("vocab", nargs="+")
    args = p.parse_args()
    tokens = {folder: assistant_tokens(folder) for folder in args.data}
    for path in args.vocab:
        mapping = load_vocab(path)
        in_draft = mapping.t2d.numpy()
        row = {"vocab": path, "draftVocabSize": mapping.draft_vocab_size}
        for folder, ids in tokens.items():
            distinct = np.unique(ids)
            row[folder] = {
                "tokens": int(ids.size),
                "covered": round(float(in_draft[ids].mean()), 4),
                "distinct": int(distinct.size),
                "distinctCovered": round(float(in_draft[distinct].mean()), 4),
            }
        print(json.dumps(row))


if __name__ == "__main__":
    main()
