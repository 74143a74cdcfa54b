"""Target adapters against transformers itself: the hooked taps equal the model's own hidden
states, the final hidden state gives the model's logits, features equal the processor's, and a
record's outputs do not depend on the records padded beside it."""

import numpy as np
import pytest
import torch

from eaglet_engine.data import PreparedDataset, collate
from eaglet_engine.errors import EngineError
from eaglet_engine.targets import TargetBatch, default_tap_layers, load_adapter
from eaglet_engine.targets.causal_lm import load_target as load_causal_lm

from .fixtures import AUDIO_TOKEN, make_records, tiny_causal_lm, tiny_qwen2_audio, write_prepared


@pytest.fixture(scope="module")
def qwen2_audio(tmp_path_factory):
    folder = tiny_qwen2_audio(tmp_path_factory.mktemp("q2a") / "model")
    return load_adapter("eaglet_qwen2_audio", str(folder), device=torch.device("cpu"), dtype=torch.float32)


def _batch(records, tmp_path):
    data = PreparedDataset([write_prepared(tmp_path, records)], max_length=4096, audio_token_id=AUDIO_TOKEN)
    return data, collate(data, list(range(len(records))))


def test_qwen2_audio_taps_and_logits_equal_transformers_own_outputs(qwen2_audio, tmp_path):
    records = make_records(1, seed=2, audio_every=1)
    _, batch = _batch(records, tmp_path)
    out = qwen2_audio.forward(batch)
    features, mask = qwen2_audio.features(batch.audio[0], torch.device("cpu"))
    ref = qwen2_audio.model(input_ids=batch.input_ids, input_features=features, feature_attention_mask=mask, output_hidden_states=True, use_cache=False)
    hidden = ref.hidden_states
    assert len(hidden) == qwen2_audio.info.num_layers + 1  # embeddings + every layer
    h = qwen2_audio.info.hidden_size
    for slot, layer in enumerate(qwen2_audio.info.tap_layers):
        assert torch.allclose(out.taps[..., slot * h : (slot + 1) * h], hidden[layer + 1], atol=1e-6), layer
    logits = out.final_hidden @ qwen2_audio.lm_head_weight().t()
    assert torch.allclose(logits, ref.logits, atol=1e-5)


def test_qwen2_audio_features_equal_the_processors(qwen2_audio, tmp_path):
    clip = np.random.default_rng(0).standard_normal(40_000).astype(np.float32) * 0.1
    ours, mask = qwen2_audio.features([clip], torch.device("cpu"))
    ref = qwen2_audio.fe([clip], sampling_rate=16000, return_attention_mask=True, padding="max_length", return_tensors="pt")
    assert torch.equal(ours, ref["input_features"]) and torch.equal(mask, ref["attention_mask"])
    assert tuple(ours.shape) == (1, 128, 3000)


def test_a_records_outputs_do_not_depend_on_its_batch_neighbours(qwen2_audio, tmp_path):
    records = make_records(3, seed=4, audio_every=2)  # records 0 and 2 carry audio
    _, together = _batch(records, tmp_path / "all")
    both = qwen2_audio.forward(together)
    for i in range(3):
        _, alone = _batch([records[i]], tmp_path / f"one{i}")
        single = qwen2_audio.forward(alone)
        n = len(records[i]["input_ids"])
        assert torch.allclose(both.taps[i, :n], single.taps[0], atol=1e-5)
        assert torch.allclose(both.final_hidden[i, :n], single.final_hidden[0], atol=1e-5)


def test_qwen2_audio_refuses_audio_that_does_not_match_its_placeholders(qwen2_audio, tmp_path):
    records = make_records(1, seed=2, audio_every=1)
    _, batch = _batch(records, tmp_path)
    batch.audio_token_counts = [[batch.audio_token_counts[0][0] - 1]]
    with pytest.raises(EngineError, match="record r0: .* <\\|AUDIO\\|> tokens but audio_token_counts sum to"):
        qwen2_audio.forward(batch)
    batch.audio = [[]]
    with pytest.raises(EngineError, match="hold <\\|AUDIO\\|> tokens but no audio clips"):
        qwen2_audio.forward(batch)


def test_causal_lm_adapter_taps_equal_transformers_hidden_states(tmp_path):
    target = load_causal_lm(str(tiny_causal_lm(tmp_path / "lm")), device=torch.device("cpu"), dtype=torch.float32)
    ids = torch.randint(0, 300, (2, 17))
    batch = TargetBatch(input_ids=ids, loss_mask=torch.ones_like(ids, dtype=torch.bool), lengths=torch.tensor([17, 17]))
    out = target.forward(batch)
    ref = target.model(input_ids=ids, output_hidden_states=True)
    h = target.info.hidden_size
    for slot, layer in enumerate(target.info.tap_layers):
        assert torch.allclose(out.taps[..., slot * h : (slot + 1) * h], ref.hidden_states[layer + 1], atol=1e-6)
    assert torch.allclose(out.final_hidden @ target.lm_head_weight().t(), ref.logits, atol=1e-5)


def test_default_taps_follow_the_reference_and_refuse_shallow_targets():
    assert default_tap_layers(32) == (1, 15, 28)  # Qwen2-7B: vLLM's (2, 16, 29) as layer inputs
    assert default_tap_layers(8) == (1, 3, 4)
    with pytest.raises(EngineError, match="no three distinct default taps"):
        default_tap_layers(4)
