"""The trainer on a tiny random Qwen2-Audio (built offline from a config) and prepared shards:
learning, exact resume, stop on request, export, warm start, refusals."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from eaglet_engine.data import collate
from eaglet_engine.errors import EngineError
from eaglet_engine.export import load_draft
from eaglet_engine.targets import rows_needed
from eaglet_engine.trainer import Trainer
from eaglet_engine.vocab import load_vocab, save_vocab

from .fixtures import make_records, resolved_draft_config, tiny_qwen2_audio, train_config, write_prepared, write_vocab


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    model = tiny_qwen2_audio(root / "model")
    records = make_records(8, seed=0, audio_every=4)
    train = write_prepared(root / "train", records)
    evals = write_prepared(root / "eval", make_records(4, seed=1, audio_every=2))
    vocab = write_vocab(root / "vocab.safetensors", records)
    return {"root": root, "model": model, "train": train, "eval": evals, "vocab": vocab, "records": records}


def _cfg(world, tmp_path, **over):
    vocab = over.pop("vocab", world["vocab"])
    return train_config(tmp_path, world["model"], [world["train"]], vocab, **over)


def _other_vocab(tmp_path: Path) -> Path:
    """A valid mapping of the same sizes that differs from the world's (ids 44..299)."""
    ids = torch.arange(44, 300)
    t2d = torch.zeros(300, dtype=torch.bool)
    t2d[ids] = True
    save_vocab(tmp_path / "other.safetensors", ids - torch.arange(256), t2d)
    return tmp_path / "other.safetensors"


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_an_unprepared_batch_is_refused_not_run_without_its_media(world, tmp_path):
    trainer = Trainer(_cfg(world, tmp_path)).build()
    with pytest.raises(ValueError, match="not prepared; call Trainer.prepare"):
        trainer.to_device(collate(trainer.train_data, [0]))
    assert trainer.to_device(trainer.prepare(collate(trainer.train_data, [0]))).needed is not None


def test_a_few_hundred_steps_drive_acc0_far_above_chance(world, tmp_path):
    cfg = _cfg(world, tmp_path, epochs=100, maxSteps=240, logEvery=40, evalData=[str(world["train"])], plot=True)
    trainer = Trainer(cfg).build()

    # Chance: the best constant guess, i.e. the share of the most frequent target argmax among the
    # counted positions of the training set.
    argmaxes = []
    for i in range(len(trainer.train_data)):
        batch = trainer.to_device(trainer.prepare(collate(trainer.train_data, [i])))
        out = trainer.target_forward(batch)
        full = out.final_hidden @ trainer.target.lm_head_weight().t()
        need = rows_needed(batch.loss_mask, batch.valid)
        argmaxes += full.argmax(-1)[need].tolist()
    chance = np.bincount(argmaxes).max() / len(argmaxes)

    result = trainer.train()
    rows = _metrics(Path(cfg.output_dir))
    first, last = rows[0], [r for r in rows if r["split"] == "train"][-1]
    final_eval = result["eval"]
    assert last["acc_0"] > first["acc_0"] + 0.3
    assert final_eval["acc_0"] > max(0.5, 5 * chance), (final_eval, chance)
    assert last["loss"] < first["loss"]
    assert (Path(cfg.output_dir) / "curves.png").stat().st_size > 10_000


def test_interrupted_and_resumed_run_ends_bit_identical(world, tmp_path):
    common = dict(epochs=100, maxSteps=10, logEvery=3, evalData=[], batching={"gradAccumulation": 2})

    whole = Trainer(_cfg(world, tmp_path / "a", **common)).build()
    whole.train()

    class StopAt(Trainer):
        def train_step(self, *args, **kwargs):
            stats = super().train_step(*args, **kwargs)
            if self.step == 4:
                self.stop.request()  # as SIGINT would: finish this step, checkpoint, stop
            return stats

    first = StopAt(_cfg(world, tmp_path / "b", **common)).build()
    result = first.train()
    assert result["stopped"] and result["steps"] == 4 and "draft" not in result
    second = Trainer(_cfg(world, tmp_path / "b", resume=True, **common)).build()
    assert second.step == 4 and second.position.state_dict() == first.position.state_dict()
    second.train()

    a, b = whole.state_dict(), second.state_dict()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for name in sa:
        for field in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(sa[name][field], sb[name][field]), (name, field)
    assert a["scheduler"] == b["scheduler"] and a["position"] == b["position"]
    # metrics.jsonl of the resumed run has no duplicated steps and ends like the whole run's.
    ma, mb = _metrics(tmp_path / "a" / "out"), _metrics(tmp_path / "b" / "out")
    assert [r["step"] for r in mb] == [r["step"] for r in ma]
    assert ma[-1]["acc_0"] == mb[-1]["acc_0"] and ma[-1]["loss"] == mb[-1]["loss"]


def test_export_at_the_end_holds_the_vocab_mapping_used_and_reloads(world, tmp_path):
    cfg = _cfg(world, tmp_path, maxSteps=2, export={"formats": ["vllm", "speculators"]})
    trainer = Trainer(cfg).build()
    result = trainer.train()
    folder = Path(result["draft"]["vllm"])
    tensors = load_file(str(folder / "model.safetensors"))
    vocab = load_vocab(world["vocab"])
    assert torch.equal(tensors["d2t"], vocab.d2t) and torch.equal(tensors["t2d"], vocab.t2d)
    assert not any("embed" in k for k in tensors)
    config = json.loads((folder / "config.json").read_text())
    assert config["eagle_aux_hidden_state_layer_ids"] == [2, 4, 5]  # the target block's, vLLM's numbering
    assert config["draft_vocab_size"] == vocab.draft_vocab_size
    reloaded = load_draft(folder, dtype=torch.float32)
    for k, v in trainer.draft.state_dict().items():
        assert torch.equal(reloaded.state_dict()[k], v), k
    assert Path(result["draft"]["speculators"], "config.json").is_file()


def test_warm_start_refuses_another_vocab_mapping(world, tmp_path):
    trainer = Trainer(_cfg(world, tmp_path / "first", maxSteps=1)).build()
    draft = trainer.train()["draft"]["vllm"]
    other = _other_vocab(tmp_path)
    with pytest.raises(EngineError, match="another draft vocabulary mapping"):
        Trainer(_cfg(world, tmp_path / "second", vocab=str(other), warmStart=draft)).build()
    again = Trainer(_cfg(world, tmp_path / "third", warmStart=draft, maxSteps=1)).build()
    for k, v in load_draft(draft, dtype=torch.float32).state_dict().items():
        assert torch.equal(again.draft.state_dict()[k], v)


def test_resume_refuses_a_checkpoint_trained_with_another_mapping(world, tmp_path):
    Trainer(_cfg(world, tmp_path, maxSteps=1)).build().train()
    other = _other_vocab(tmp_path)
    with pytest.raises(EngineError, match="another draft vocabulary mapping"):
        Trainer(_cfg(world, tmp_path, vocab=str(other), resume=True)).build()


def test_an_output_folder_holding_a_run_is_refused_without_resume(world, tmp_path):
    Trainer(_cfg(world, tmp_path, maxSteps=1)).build().train()
    with pytest.raises(EngineError, match="holds an earlier run") as refused:
        Trainer(_cfg(world, tmp_path, maxSteps=1)).build()
    assert refused.value.code == "EAGLET_OUTPUT_EXISTS"


def test_data_that_does_not_match_the_target_is_refused_with_the_record_named(world, tmp_path):
    records = make_records(2, seed=3, audio_every=1)
    records[1]["audio_token_counts"] = [records[1]["audio_token_counts"][0] + 1]
    bad = write_prepared(tmp_path / "bad", records)
    trainer = Trainer(train_config(tmp_path, world["model"], [bad], world["vocab"], maxSteps=2, batching={"maxRecords": 1})).build()
    with pytest.raises(EngineError, match="record r1: .*audio"):
        trainer.train()
    with pytest.raises(EngineError, match="prepared for target 'other'"):
        Trainer(train_config(tmp_path, world["model"], [write_prepared(tmp_path / "o", records, target="other")], world["vocab"])).build()


def test_a_draft_config_that_does_not_fit_the_mapping_or_the_target_is_refused_naming_both(world, tmp_path):
    for over, message in (
        ({"draft_vocab_size": 128}, "draftConfig.draft_vocab_size is 128 but the vocab mapping .* has 256"),
        ({"target_hidden_size": 64}, "draftConfig.target_hidden_size is 64 but the target .* has 32"),
        ({"eagle_aux_hidden_state_layer_ids": [1, 4, 5]}, r"draftConfig.eagle_aux_hidden_state_layer_ids is \[1, 4, 5\] but the target block's auxLayerIds has \[2, 4, 5\]"),
    ):
        with pytest.raises(EngineError, match=message):
            Trainer(_cfg(world, tmp_path, draftConfig=resolved_draft_config(**over))).build()


def test_a_run_states_where_the_draft_started_what_it_computes_in_and_shows_eval_and_export_progress(world, tmp_path, capsys):
    fresh = Trainer(_cfg(world, tmp_path / "fresh", maxSteps=2, seed=7, evalData=[str(world["eval"])])).build().train()
    assert fresh["draftOrigin"] == "initialised fresh (seed 7)"
    assert fresh["precision"] == "precision fp32 on cpu: target weights float32 (the checkpoint stores float32), draft weights float32"
    warm = Trainer(_cfg(world, tmp_path / "warm", maxSteps=1, warmStart=fresh["draft"]["vllm"])).build().train()
    assert warm["draftOrigin"] == f"warm start from {fresh['draft']['vllm']}"

    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    setup = [e["message"] for e in events if e["type"] == "log" and e["message"].startswith("target ")]
    assert "initialised fresh (seed 7)" in setup[0] and fresh["precision"] in setup[0]
    assert f"warm start from {fresh['draft']['vllm']}" in setup[1]
    # The final eval and the export report progress, each pass from 0 to its total.
    evals = [(e["done"], e["total"]) for e in events if e["type"] == "progress" and e["task"] == "eval"]
    batches = evals[-1][1]
    assert batches >= 1 and evals == [(k, batches) for k in range(batches + 1)]
    exports = [(e["done"], e["total"]) for e in events if e["type"] == "progress" and e["task"] == "export"]
    assert exports == [(0, 1), (1, 1)] * 2
    # The eval row carries the objective the train rows log as `loss`: decay^i x ploss_i summed.
    ev = fresh["eval"]
    assert ev["loss"] == pytest.approx(sum(0.8**i * ev[f"ploss_{i}"] for i in range(3)))


@pytest.mark.parametrize("grad_clip", [0.5, 0.0])
def test_the_clip_travels_into_fused_adamw_as_the_divisor_of_its_gradients(grad_clip):
    """clip_and_step with fused AdamW (the GPU's optimizer; its CPU kernel is the same contract):
    no multiplication pass, the clip factor goes in as ``grad_scale``. Moments and weights equal
    clip_grad_norm_ followed by an unfused step; the returned norm is the norm before clipping."""
    from types import SimpleNamespace

    torch.manual_seed(0)
    start = [torch.randn(64, 16), torch.randn(16)]
    grads = [torch.randn(64, 16) * 3, torch.randn(16)]

    def model_and_optimizer(fused):
        model = torch.nn.ParameterList([torch.nn.Parameter(w.clone()) for w in start])
        for p, g in zip(model, grads, strict=True):
            p.grad = g.clone()
        return model, torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.01, fused=fused)

    model, optimizer = model_and_optimizer(fused=True)
    this = SimpleNamespace(cfg=SimpleNamespace(optimizer=SimpleNamespace(grad_clip=grad_clip)), model=model, optimizer=optimizer)
    norm = Trainer.clip_and_step(this)

    ref_model, ref_optimizer = model_and_optimizer(fused=False)
    ref_norm = torch.nn.utils.clip_grad_norm_(ref_model.parameters(), grad_clip if grad_clip > 0 else float("inf"))
    ref_optimizer.step()

    assert norm.item() == pytest.approx(ref_norm.item(), rel=1e-6)
    assert ref_norm.item() > 0.5  # the clip acts in the 0.5 case
    for p, q in zip(model, ref_model, strict=True):
        # exp_avg is (1 - beta1) x the clipped gradient: it shows the factor (Adam's first update does not).
        torch.testing.assert_close(optimizer.state[p]["exp_avg"], ref_optimizer.state[q]["exp_avg"], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-6, atol=1e-7)
