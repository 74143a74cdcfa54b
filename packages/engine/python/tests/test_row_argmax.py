"""The greedy chain's argmax kernel (generate/row_argmax.py) against torch.argmax, in Triton's
interpreter on the CPU (tests/test_cuda.py checks it compiled on the GPU). Rows wider than one
tile (the target's vocabulary) and equal maxima inside a tile and across tiles: torch keeps the
first index of the maximum, and the chain's tokens must equal the eager draft's."""

from __future__ import annotations

import textwrap

import pytest

from .triton_interpreter import interpreted_rows

pytest.importorskip("triton", reason="torch wheels without Triton (e.g. macOS) keep torch.argmax; nothing to check")

CHECK = textwrap.dedent(
    """
    import json, torch
    from eaglet_engine.generate.row_argmax import MAX_BLOCK, row_argmax

    g = torch.Generator().manual_seed(0)
    rows = []
    for width in (1000, 2 * MAX_BLOCK + 123):
        logits = torch.randn(6, width, generator=g)
        logits[1, [17, 900]] = 50.0                       # equal maxima in one tile
        logits[2, [width - 1, 3]] = 60.0                  # across tiles where the row is wider than one
        logits[3] = 0.0                                   # every entry equal
        logits[4] = float("-inf"); logits[4, width // 2] = -1e30
        ids = torch.randperm(3 * width, generator=g)[:width]
        got = row_argmax(logits, ids, kernel=True)
        want = ids[logits.argmax(-1)]
        rows.append({"width": width, "got": got.tolist(), "want": want.tolist(), "dtype": str(got.dtype)})
    print(json.dumps(rows))
    """
)


def test_row_argmax_equals_torch_argmax_through_the_id_table_in_the_interpreter():
    rows = interpreted_rows(CHECK)
    assert [r["width"] for r in rows] == [1000, 65659]  # one tile; three tiles
    for r in rows:
        assert r["got"] == r["want"] and r["dtype"] == "torch.int64", r


def test_row_argmax_falls_back_to_torch_off_cuda():
    import torch

    from eaglet_engine.generate.row_argmax import row_argmax, serves

    logits = torch.tensor([[0.0, 3.0, 3.0, 1.0], [5.0, 0.0, 0.0, 5.0]])
    ids = torch.tensor([10, 11, 12, 13])
    assert not serves(logits)
    assert row_argmax(logits, ids).tolist() == [11, 10]
