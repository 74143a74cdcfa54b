"""The frozen target in FP8 (eaglet_engine/fp8.py, train config targetFp8): the row-wise rounding,
the _scaled_mm product against that rounding done in plain arithmetic, the layers it replaces, and
a training run that uses it. CPU here (torch's CPU _scaled_mm); tests/test_cuda.py runs the
product on a GPU's FP8 tensor cores."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from eaglet_engine import fp8
from eaglet_engine.errors import EngineError
from eaglet_engine.targets import TargetBatch, run_target
from eaglet_engine.trainer import Trainer

from .fixtures import make_records, tiny_qwen2_audio, train_config, write_prepared, write_vocab
from .tiny_models import qwen2_audio_adapter
from .tiny_models import tiny_qwen2_audio as tiny_model

needs_scaled_mm = pytest.mark.skipif(not hasattr(torch, "_scaled_mm"), reason="this torch has no _scaled_mm (FP8 products need torch >= 2.4)")


def test_rows_scale_their_largest_magnitude_to_448_and_round_to_e4m3():
    t = torch.tensor([[448.0, 1.0, -0.5, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, -1.5, 0.1, 2.9]])
    values, scale = fp8.quantize_rows(t)
    assert values.dtype == torch.float8_e4m3fn and scale.shape == (3, 1)
    assert scale[:, 0].tolist() == pytest.approx([1.0, 1.0, 3.0 / 448])  # an all-zero row keeps scale 1
    assert values.float().abs().amax(-1).tolist() == [448.0, 0.0, 448.0]
    # Values e4m3 holds exactly come back exactly; others within half a step of 3 mantissa bits.
    assert fp8.round_rows(t)[:2].tolist() == t[:2].tolist()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 256, generator=g)
    err = (fp8.round_rows(x) - x).abs()
    assert (err <= x.abs() * 2**-4 + x.abs().amax(-1, keepdim=True) * 2**-9 / 448 * 64).all()  # normals: 2^-4; subnormals: absolute
    assert 0.005 < (err / x.abs().clamp(min=1e-3)).mean() < 0.05  # it did round


@needs_scaled_mm
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bias", [True, False])
def test_fp8_linear_equals_the_rounded_product_in_plain_arithmetic(dtype, bias):
    g = torch.Generator().manual_seed(1)
    linear = nn.Linear(96, 48, bias=bias)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(48, 96, generator=g))
        if bias:
            linear.bias.copy_(torch.randn(48, generator=g))
    linear = linear.to(dtype)
    x = torch.randn(2, 7, 96, generator=g).to(dtype)  # [batch, tokens, in]: 14 rows, not a multiple of 16
    got = fp8.Fp8Linear(linear)(x)
    want = F.linear(fp8.round_rows(x).float(), fp8.round_rows(linear.weight).float(), None if linear.bias is None else linear.bias.float())
    assert got.dtype == dtype and got.shape == (2, 7, 48)
    tol = 1e-5 if dtype == torch.float32 else 1e-2  # fp32 accumulation in both; bf16 rounds the output
    assert (got.float() - want).abs().max() <= tol * want.abs().max()
    # And it is not the unrounded product (the rounding took effect).
    assert (got.float() - linear.float()(x.float())).abs().max() > 1e-3 * want.abs().max()


@needs_scaled_mm
def test_the_target_decoder_runs_in_fp8_and_its_taps_equal_the_emulated_forward():
    model = tiny_model(layers=2)
    adapter = qwen2_audio_adapter(model, (0, 1, 2))
    ids = torch.randint(1, 60, (1, 24), generator=torch.Generator().manual_seed(2))
    batch = TargetBatch(input_ids=ids, loss_mask=torch.ones_like(ids, dtype=torch.bool), lengths=torch.tensor([24]))
    plain = run_target(adapter, batch, (0, 1, 2))

    # The emulated form: every decoder linear multiplies its rounded operands (as the quality variant).
    emulated_forward = {}
    for name, m in model.named_modules():
        if type(m) is nn.Linear and ".layers." in name and "audio" not in name:
            emulated_forward[name] = m.forward
            m.forward = (lambda m: lambda x: F.linear(fp8.round_rows(x), fp8.round_rows(m.weight), m.bias))(m)
    emulated = run_target(adapter, batch, (0, 1, 2))
    for name, m in model.named_modules():
        if name in emulated_forward:
            m.forward = emulated_forward[name]

    replaced = fp8.to_fp8(adapter.layers)
    assert replaced == 2 * 7  # q, k, v, o, gate, up, down per layer
    assert sum(isinstance(m, fp8.Fp8Linear) for m in model.modules()) == 14
    assert not any(isinstance(m, fp8.Fp8Linear) for name, m in model.named_modules() if "audio" in name)  # the encoder stays
    assert type(model.lm_head) is nn.Linear
    got = run_target(adapter, batch, (0, 1, 2))

    def rel(a, b):
        return float((a - b).norm() / b.norm())

    assert rel(got.taps, emulated.taps) < 1e-5 and rel(got.final_hidden, emulated.final_hidden) < 1e-5
    assert 1e-3 < rel(got.final_hidden, plain.final_hidden) < 0.1  # FP8's error: present, small


def test_devices_that_cannot_multiply_in_fp8_are_refused_naming_the_setting():
    fp8.check_fp8_device(torch.device("cpu"), torch.float32)  # the CPU runs it (slowly)
    with pytest.raises(EngineError, match="targetFp8 runs on CUDA and the CPU, not on meta") as e:
        fp8.check_fp8_device(torch.device("meta"), torch.bfloat16)
    assert e.value.hint == "set targetFp8 to false"


@needs_scaled_mm
def test_a_training_run_with_targetFp8_trains_on_the_fp8_states_and_says_so(tmp_path, capsys):
    model = tiny_qwen2_audio(tmp_path / "model")
    records = make_records(6, seed=0, audio_every=3)
    train = write_prepared(tmp_path / "train", records)
    vocab = write_vocab(tmp_path / "vocab.safetensors", records)
    runs = {}
    for name, on in (("bf16", False), ("fp8", True)):
        cfg = train_config(tmp_path / name, model, [train], vocab, maxSteps=3, targetFp8=on, compile="off")
        trainer = Trainer(cfg).build()
        runs[name] = (trainer, trainer.train())
    trainer, result = runs["fp8"]
    assert sum(isinstance(m, fp8.Fp8Linear) for m in trainer.target.layers.modules()) == 7 * len(trainer.target.layers)
    assert result["precision"].endswith("target weights float32 (the checkpoint stores float32), the decoder's linears in FP8 e4m3, draft weights float32")
    logs = [json.loads(line)["message"] for line in capsys.readouterr().out.splitlines() if '"type": "log"' in line or '"type":"log"' in line]
    assert any(m.startswith(f"targetFp8: {7 * len(trainer.target.layers)} linear layers") for m in logs)
    # Same seed, same data: the losses differ only by what FP8 changed in the target's states.
    base, low = (json.loads((tmp_path / n / "out" / "metrics.jsonl").read_text().splitlines()[0])["loss"] for n in ("bf16", "fp8"))
    assert base != low and abs(base - low) < 0.05 * abs(base)
