"""The draft vocabulary file (contract: @eaglet/core schemas/prepared.ts) and the LR schedules."""

import hashlib
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from eaglet_engine.errors import EngineError
from eaglet_engine.schedule import Schedule
from eaglet_engine.vocab import load_vocab, save_vocab


def _mapping(ids, vocab=20):
    ids = torch.tensor(ids, dtype=torch.int64)
    t2d = torch.zeros(vocab, dtype=torch.bool)
    t2d[ids] = True
    return ids - torch.arange(len(ids)), t2d


def test_hash_is_the_contracts_and_a_tampered_file_is_refused(tmp_path):
    d2t, t2d = _mapping([1, 4, 5, 9])
    save_vocab(tmp_path / "v.safetensors", d2t, t2d)
    mapping = load_vocab(tmp_path / "v.safetensors")
    expected = hashlib.sha256(d2t.numpy().astype("<i8").tobytes() + t2d.numpy().astype(np.uint8).tobytes()).hexdigest()
    assert mapping.content_hash == expected == mapping.metadata["hash"]
    assert mapping.draft_to_target.tolist() == [1, 4, 5, 9]
    other_d2t, other_t2d = _mapping([1, 4, 5, 10])
    save_file({"d2t": other_d2t, "t2d": other_t2d}, str(tmp_path / "t.safetensors"), metadata={"hash": expected})
    with pytest.raises(EngineError, match="do not match the hash in its metadata"):
        load_vocab(tmp_path / "t.safetensors")


@pytest.mark.parametrize(
    "d2t,t2d_ids,reason",
    [
        ([3, 2, 1], [3], "ascending, distinct"),  # draft ids 0, 1, 2 all map to target 3
        ([0, 0, 0], [0, 1, 3], "same set"),  # d2t maps to 0, 1, 2; t2d marks 0, 1, 3
        ([0, 0, 30], [0, 1, 2], "outside the target vocabulary"),  # draft id 2 -> target 32
    ],
)
def test_inconsistent_mappings_are_refused_naming_the_file(tmp_path, d2t, t2d_ids, reason):
    t2d = torch.zeros(20, dtype=torch.bool)
    t2d[t2d_ids] = True
    save_file({"d2t": torch.tensor(d2t, dtype=torch.int64), "t2d": t2d}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(EngineError, match=f"bad.safetensors: invalid draft vocabulary mapping: .*{reason}"):
        load_vocab(tmp_path / "bad.safetensors")
    with pytest.raises(EngineError, match="does not exist"):
        load_vocab(tmp_path / "missing.safetensors")


def test_schedules_warm_up_then_hold_or_follow_the_cosine_down_to_the_floor():
    const = Schedule("constant", warmup=4, total=100, min_ratio=0.0)
    assert [const(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cos = Schedule("cosine", warmup=10, total=110, min_ratio=0.1)
    assert cos(9) == 1.0 and cos(10) == pytest.approx(1.0)
    assert cos(60) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert cos(110) == pytest.approx(0.1) and cos(500) == pytest.approx(0.1)
