"""Target adapters against transformers itself: the hooked aux states equal the model's own hidden
states (vLLM's numbering), the final hidden state gives the model's logits, features equal the
processor's, and a record's outputs do not depend on the records padded beside it."""

from pathlib import Path

import numpy as np
import pytest
import torch

from eaglet_engine.config import EngineTarget
from eaglet_engine.data import PreparedDataset, collate
from eaglet_engine.errors import EngineError
from eaglet_engine.targets import TargetBatch, causal_only, load_adapter, run_target

from .fixtures import AUDIO_TOKEN, TINY_AUX_LAYER_IDS, engine_target, make_records, tiny_causal_lm, tiny_qwen2_audio, write_prepared

CPU = torch.device("cpu")


def _target(**block) -> EngineTarget:
    from eaglet_engine.config import from_dict

    return from_dict(EngineTarget, block)


@pytest.fixture(scope="module")
def qwen2_audio(tmp_path_factory):
    folder = tiny_qwen2_audio(tmp_path_factory.mktemp("q2a") / "model")
    return load_adapter(_target(**engine_target(folder)), device=CPU, dtype=torch.float32)


def _batch(adapter, records, tmp_path):
    data = PreparedDataset([write_prepared(tmp_path, records)], max_length=4096, audio_token_id=AUDIO_TOKEN)
    batch = collate(data, list(range(len(records))))
    batch.inputs = adapter.media_inputs(batch.clips, CPU)
    adapter.check(batch)
    return batch


def test_qwen2_audio_aux_states_and_logits_equal_transformers_own_outputs(qwen2_audio, tmp_path):
    batch = _batch(qwen2_audio, make_records(1, seed=2, audio_every=1), tmp_path)
    # The decoder is handed its masks (none: causal everywhere) rather than building them.
    assert causal_only(qwen2_audio.decoder) == {"full_attention": None}
    out = run_target(qwen2_audio, batch, TINY_AUX_LAYER_IDS)
    ref = qwen2_audio.model(input_ids=batch.input_ids, **batch.inputs, output_hidden_states=True, use_cache=False)
    hidden = ref.hidden_states
    assert len(hidden) == qwen2_audio.info.num_layers + 1  # embeddings + every layer
    h = qwen2_audio.info.hidden_size
    for slot, k in enumerate(TINY_AUX_LAYER_IDS):  # aux id k: the state after k layers
        assert torch.allclose(out.taps[..., slot * h : (slot + 1) * h], hidden[k], atol=1e-6), k
    logits = out.final_hidden @ qwen2_audio.lm_head_weight().t()
    assert torch.allclose(logits, ref.logits, atol=1e-5)


def test_qwen2_audio_features_and_token_counts_equal_the_processors(qwen2_audio):
    clip = np.random.default_rng(0).standard_normal(40_000).astype(np.float32) * 0.1
    ours = qwen2_audio.media_inputs([clip], CPU)
    ref = qwen2_audio.fe([clip], sampling_rate=16000, return_attention_mask=True, padding="max_length", return_tensors="pt")
    assert torch.equal(ours["input_features"], ref["input_features"]) and torch.equal(ours["feature_attention_mask"], ref["attention_mask"])
    assert tuple(ours["input_features"].shape) == (1, 128, 3000)
    # transformers' own formula gives what the TS plugin's count gives for 40000 samples: 250 frames -> 62 tokens
    assert qwen2_audio.audio_tokens(ours["feature_attention_mask"].sum(-1)).tolist() == [62]


def test_a_records_outputs_do_not_depend_on_its_batch_neighbours(qwen2_audio, tmp_path):
    records = make_records(3, seed=4, audio_every=2)  # records 0 and 2 carry audio
    both = run_target(qwen2_audio, _batch(qwen2_audio, records, tmp_path / "all"), TINY_AUX_LAYER_IDS)
    for i in range(3):
        single = run_target(qwen2_audio, _batch(qwen2_audio, [records[i]], tmp_path / f"one{i}"), TINY_AUX_LAYER_IDS)
        n = len(records[i]["input_ids"])
        assert torch.allclose(both.taps[i, :n], single.taps[0], atol=1e-5)
        assert torch.allclose(both.final_hidden[i, :n], single.final_hidden[0], atol=1e-5)


def test_qwen2_audio_refuses_audio_that_does_not_match_its_placeholders(qwen2_audio, tmp_path):
    records = make_records(1, seed=2, audio_every=1)
    records[0]["audio_token_counts"] = [records[0]["audio_token_counts"][0] - 1]
    with pytest.raises(EngineError, match="record r0: .* <\\|AUDIO\\|> tokens but audio_token_counts sum to"):
        _batch(qwen2_audio, records, tmp_path / "a")
    records[0]["audio"], records[0]["audio_token_counts"] = [], []
    with pytest.raises(EngineError, match="hold <\\|AUDIO\\|> tokens but no audio clips"):
        _batch(qwen2_audio, records, tmp_path / "b")


def test_audio_encoded_ahead_gives_the_same_target_outputs_and_is_checked_there(qwen2_audio, tmp_path):
    # The trainer encodes a batch's clips in its data thread (encode_media); the target's outputs
    # must not depend on where the encoder ran, and a placeholder count that does not match the
    # clips must be refused there, since input_embeddings no longer sees the features.
    batch = _batch(qwen2_audio, make_records(2, seed=5, audio_every=1), tmp_path)
    in_place = run_target(qwen2_audio, batch, TINY_AUX_LAYER_IDS)
    batch.inputs = qwen2_audio.encode_media(batch.input_ids, batch.inputs)
    assert set(batch.inputs) == {"audio_embeds"} and batch.inputs["audio_embeds"].shape[0] == int((batch.input_ids == AUDIO_TOKEN).sum())
    ahead = run_target(qwen2_audio, batch, TINY_AUX_LAYER_IDS)
    assert torch.equal(ahead.taps, in_place.taps) and torch.equal(ahead.final_hidden, in_place.final_hidden)
    media = _batch(qwen2_audio, make_records(1, seed=2, audio_every=1), tmp_path / "b").inputs
    ids = torch.tensor([[AUDIO_TOKEN] * 3])
    with pytest.raises(EngineError, match="3 <\\|AUDIO\\|> tokens but the clips give \\d+ audio tokens"):
        qwen2_audio.encode_media(ids, media)


def test_qwen2_audio_needs_the_feature_extractor_its_folder_describes(tmp_path):
    folder = tiny_qwen2_audio(tmp_path / "model")
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(EngineError, match="preprocessor_config.json does not exist"):
        load_adapter(_target(**engine_target(folder)), device=CPU, dtype=torch.float32)


def test_causal_lm_adapter_aux_states_equal_transformers_hidden_states(tmp_path):
    folder = tiny_causal_lm(tmp_path / "lm")
    block = _target(id="lm", adapter="eaglet_engine.targets.causal_lm", model=str(folder), architecture="Qwen2ForCausalLM", auxLayerIds=[0, 4, 7])
    target = load_adapter(block, device=CPU, dtype=torch.float32)
    ids = torch.randint(0, 300, (2, 17))
    batch = TargetBatch(input_ids=ids, loss_mask=torch.ones_like(ids, dtype=torch.bool), lengths=torch.tensor([17, 17]))
    out = run_target(target, batch, block.aux_layer_ids)
    ref = target.model(input_ids=ids, output_hidden_states=True)
    h = target.info.hidden_size
    for slot, k in enumerate(block.aux_layer_ids):  # 0: the embeddings
        assert torch.allclose(out.taps[..., slot * h : (slot + 1) * h], ref.hidden_states[k], atol=1e-6), k
    assert torch.allclose(out.final_hidden @ target.lm_head_weight().t(), ref.logits, atol=1e-5)


def test_aux_layers_a_target_does_not_have_are_refused(tmp_path):
    folder = tiny_causal_lm(tmp_path / "lm")
    block = _target(id="lm", adapter="eaglet_engine.targets.causal_lm", model=str(folder), architecture="Qwen2ForCausalLM", auxLayerIds=[2, 4, 9])
    with pytest.raises(EngineError, match=r"aux layer ids \[2, 4, 9\] must be three distinct ids in 0..8"):
        load_adapter(block, device=CPU, dtype=torch.float32)
    with pytest.raises(EngineError, match="cannot import the target adapter module 'no_such_adapter'"):
        load_adapter(_target(**{**engine_target(Path(folder)), "adapter": "no_such_adapter"}), device=CPU, dtype=torch.float32)


def test_decoders_with_sliding_window_layers_build_their_own_masks():
    """``causal_only`` hands a decoder no masks only when every layer attends fully: a sliding
    window layer needs its mask, and a decoder without ``layer_types`` is left to itself."""
    from transformers import Qwen2Config, Qwen2Model

    def decoder(**over):
        cfg = Qwen2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, **over)
        return Qwen2Model(cfg)

    assert causal_only(decoder()) == {"full_attention": None}
    assert causal_only(decoder(use_sliding_window=True, sliding_window=8, max_window_layers=1)) is None
    assert causal_only(torch.nn.Linear(2, 2)) is None
