"""Reads a vocab file written by `eaglet data vocab` with Python's safetensors and checks it.

    node tools/python.mjs packages/flows/test/vocab_check.py VOCAB.safetensors PREPARED_DIR...

Recounts loss-masked tokens from the shards with pyarrow, rebuilds the expected mapping and
compares: dtypes, shapes, d2t/t2d/freq values and the metadata hash. Prints a JSON summary.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
from safetensors import safe_open
from safetensors.numpy import load_file


def main(vocab_path: str, *prepared: str) -> None:
    tensors = load_file(vocab_path)
    with safe_open(vocab_path, "np") as f:
        meta = f.metadata()
    d2t, t2d, freq = tensors["d2t"], tensors["t2d"], tensors["freq"]
    assert d2t.dtype == np.int64 and t2d.dtype == np.bool_ and freq.dtype == np.int64, (d2t.dtype, t2d.dtype)
    vocab_size, draft = int(meta["vocab_size"]), int(meta["draft_vocab_size"])
    assert t2d.shape == (vocab_size,) and freq.shape == (vocab_size,) and d2t.shape == (draft,)

    counts = np.zeros(vocab_size, dtype=np.int64)
    for folder in prepared:
        manifest = json.loads((Path(folder) / "manifest.json").read_text())
        for shard in manifest["shards"]:
            table = pa.ipc.open_file(Path(folder) / shard["file"]).read_all()
            ids = np.concatenate([np.asarray(x, dtype=np.int64) for x in table["input_ids"].to_pylist()])
            mask = np.concatenate([np.asarray(x, dtype=np.uint8) for x in table["loss_mask"].to_pylist()])
            np.add.at(counts, ids[mask == 1], 1)
    assert np.array_equal(counts, freq), "freq differs from a recount of the shards"

    order = sorted(range(vocab_size), key=lambda i: (-counts[i], i))[:draft]
    expected = np.array(sorted(order), dtype=np.int64)
    target_ids = np.arange(draft) + d2t
    assert np.array_equal(target_ids, expected), "d2t does not map to the most frequent ids"
    assert np.array_equal(np.flatnonzero(t2d), expected), "t2d differs from d2t's ids"
    assert len(set(target_ids.tolist())) == draft
    digest = hashlib.sha256(d2t.astype("<i8").tobytes() + t2d.astype(np.uint8).tobytes()).hexdigest()
    assert digest == meta["hash"], "metadata hash differs"
    seen = int((counts > 0).sum())
    print(json.dumps({"ok": True, "draft": draft, "vocab_size": vocab_size, "distinct": seen,
                      "filled": max(0, draft - seen), "hash": digest, "meta": meta}))


if __name__ == "__main__":
    main(*sys.argv[1:])
