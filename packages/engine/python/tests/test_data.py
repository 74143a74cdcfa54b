"""Prepared shards: reading per the contract, the max-length policy, clear errors, and a batch
plan that is deterministic, respects the token budget and covers every record once per epoch."""

import json

import numpy as np
import pytest

from eaglet_engine.data import BatchPlanner, PreparedDataset, collate, plan_epoch, prefetch
from eaglet_engine.errors import EngineError

from .fixtures import AUDIO_TOKEN, make_records, write_prepared


def test_records_read_back_exactly_as_written(tmp_path):
    records = make_records(20, seed=1, audio_every=3)
    data = PreparedDataset([write_prepared(tmp_path, records, shard_size=7)], max_length=4096, audio_token_id=AUDIO_TOKEN)
    assert len(data) == 20 and len(data.manifests[0]["shards"]) == 3
    for ref, rec in zip(data.refs, records):
        got = data.record(ref)
        assert got.id == rec["id"]
        assert got.input_ids.tolist() == rec["input_ids"] and got.loss_mask.tolist() == rec["loss_mask"]
        assert got.audio_token_counts == rec["audio_token_counts"]
        assert len(got.audio) == len(rec["audio"]) and all(np.array_equal(a, b) for a, b in zip(got.audio, rec["audio"]))
    batch = collate(data, [0, 1])
    assert batch.input_ids.shape == (2, max(len(records[0]["input_ids"]), len(records[1]["input_ids"])))
    assert batch.lengths.tolist() == [len(records[0]["input_ids"]), len(records[1]["input_ids"])]
    assert not batch.loss_mask[1, batch.lengths[1] :].any()


def test_max_length_cuts_after_audio_and_skips_records_whose_audio_would_be_cut(tmp_path):
    records = make_records(3, seed=2, audio_every=0)
    records[0]["input_ids"] = [1, 2] + [AUDIO_TOKEN] * 10 + list(range(3, 43))  # audio ends at 12
    records[0]["loss_mask"] = [0] * 12 + [1] * 40
    records[0]["audio"], records[0]["audio_token_counts"] = [np.zeros(1600, np.float32)], [10]
    records[1]["input_ids"] = [1] * 30 + [AUDIO_TOKEN] * 10 + [5] * 12  # audio reaches past 32
    records[1]["loss_mask"] = [0] * 40 + [1] * 12
    records[1]["audio"], records[1]["audio_token_counts"] = [np.zeros(1600, np.float32)], [10]
    records[2]["input_ids"] = list(range(60))
    records[2]["loss_mask"] = [0] * 40 + [1] * 20  # nothing to learn in the first 32 tokens
    data = PreparedDataset([write_prepared(tmp_path, records)], max_length=32, audio_token_id=AUDIO_TOKEN)
    assert [r.length for r in data.refs] == [32]
    assert data.report.truncated == 1
    assert data.report.skipped_too_long == ["r1"] and data.report.skipped_no_loss == ["r2"]
    assert len(data.record(data.refs[0]).input_ids) == 32


def test_bad_prepared_folders_are_named_with_the_reason(tmp_path):
    with pytest.raises(EngineError, match="no manifest.json"):
        PreparedDataset([tmp_path], max_length=10)
    folder = write_prepared(tmp_path / "d", make_records(2))
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "schemaVersion": 99}))
    with pytest.raises(EngineError, match="schemaVersion 99"):
        PreparedDataset([folder], max_length=10)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EngineError, match="chat template 'qwen2-audio', the config asks for 'chatml'"):
        PreparedDataset([folder], max_length=100, chat_template="chatml")
    (folder / "shard-00000.arrow").write_bytes(b"not arrow")
    with pytest.raises(EngineError, match="shard-00000.arrow is not an Arrow IPC file"):
        PreparedDataset([folder], max_length=100)
    other = write_prepared(tmp_path / "e", make_records(2))
    m2 = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**m2, "tokenizerHash": "different"}))
    with pytest.raises(EngineError, match="different tokenizers"):
        PreparedDataset([write_prepared(tmp_path / "f", make_records(2)), other], max_length=100)


def test_batch_plan_is_deterministic_within_budget_and_covers_each_record_once():
    lengths = np.random.default_rng(0).integers(10, 500, 300)
    a = plan_epoch(lengths, max_tokens=1024, max_records=8, seed=3, epoch=1)
    assert a == plan_epoch(lengths, max_tokens=1024, max_records=8, seed=3, epoch=1)
    assert a != plan_epoch(lengths, max_tokens=1024, max_records=8, seed=3, epoch=2)
    assert sorted(i for b in a for i in b) == list(range(300))
    for b in a:
        assert len(b) <= 8 and (len(b) == 1 or max(lengths[b]) * len(b) <= 1024)
    # length-aware: padding is a small share of the tokens
    padded = sum(max(lengths[b]) * len(b) for b in a)
    assert padded < 1.25 * lengths.sum()


def test_ranks_split_each_optimizer_step_and_together_see_every_batch(tmp_path):
    data = PreparedDataset([write_prepared(tmp_path, make_records(24, audio_every=0))], max_length=4096)
    planners = [BatchPlanner(data, max_tokens=128, max_records=2, grad_accumulation=2, world_size=2, rank=r, seed=0) for r in range(2)]
    steps = planners[0].steps_in_epoch(0)
    seen = []
    for s in range(steps):
        mine = [p.step_batches(0, s)[0] for p in planners]
        assert all(len(m) == 2 for m in mine)
        assert mine[0] + mine[1] != [] and not set(map(tuple, mine[0])) & set(map(tuple, mine[1]))
        seen += [tuple(b) for m in mine for b in m]
    assert len(seen) == steps * 4 == len(set(seen))


def test_prefetch_stops_its_thread_when_the_consumer_stops_early():
    import threading
    import time

    made = []

    def slow():
        for i in range(1000):
            time.sleep(0.01)  # an item takes a while to make (collate, features)
            made.append(i)
            yield i

    it = prefetch(slow())
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()  # what a `break` out of the consuming loop does
    assert not any(t.name == "eaglet-prefetch" for t in threading.enumerate())
    n = len(made)
    time.sleep(0.1)
    assert len(made) == n and n < 10  # nothing made after the close


def test_prefetch_passes_items_and_errors_through():
    def failing():
        yield 1
        raise ValueError("bad record")

    it = prefetch(failing())
    assert next(it) == 1
    with pytest.raises(ValueError, match="bad record"):
        next(it)
