"""The tiny pipeline on CUDA (run on the GPU machine; skipped where torch sees no CUDA device).

bf16 flash kernels against the fp64 CPU reference, log-mel features on the GPU against the CPU
path, and the trainer end to end in bf16 with exact resume."""

import json
import os

import numpy as np
import pytest
import torch

from eaglet_engine import kernels
from eaglet_engine.config import EngineTarget, from_dict
from eaglet_engine.draft import eager_ttt_attention
from eaglet_engine.kernels import flash_ttt_attention
from eaglet_engine.targets import load_adapter, needed_rows, run_target, target_signals
from eaglet_engine.trainer import Trainer
from eaglet_engine.ttt import TTTBatch, TTTObjective, step_token_counts

from .fixtures import TINY_AUX_LAYER_IDS, engine_target, make_records, tiny_qwen2_audio, train_config, write_prepared, write_vocab
from .test_ttt import _problem, naive_ttt

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the GPU machine runs these)")
CUDA = torch.device("cuda")


def _rel(a, b):
    return ((a.double().cpu() - b.double().cpu()).norm() / b.double().cpu().norm()).item()


def test_cudnn_attention_is_chosen_on_hopper():
    """The draft's attention blocks run on cuDNN where its probe agrees with flash attention 2; on
    an H100/H200 it must (it is the faster kernel there); elsewhere flash attention 2 runs."""
    if torch.cuda.get_device_capability() < (9, 0):
        pytest.skip("cuDNN attention is required only on compute capability 9.0 (H100/H200)")
    assert kernels._cudnn_agrees(torch.device("cuda", torch.cuda.current_device()))


@pytest.mark.parametrize("backend", ["cudnn", "flash"])
@pytest.mark.parametrize("steps,start", [(1, 0), (7, 0), (1, 180), (7, 180)])
def test_flash_kernel_in_bf16_on_cuda_matches_the_fp64_reference(steps, start, backend, monkeypatch):
    """start > 0: the queries (and later steps' keys) are the last rows of step 0's keys, as the
    objective passes them when a record's first rows are never counted. Both attention backends."""
    device = torch.device("cuda", torch.cuda.current_device())
    if backend == "cudnn" and not kernels._cudnn_agrees(device):
        pytest.skip("cuDNN attention does not agree with flash attention 2 on this device (test_cudnn_attention_is_chosen_on_hopper)")
    monkeypatch.setitem(kernels._CUDNN_AGREES, device, backend == "cudnn")
    g = torch.Generator().manual_seed(0)
    b, hq, hkv, t, d = 1, 32, 4, 700, 128
    q = torch.randn(b, t - start, hq, d, generator=g, dtype=torch.float64).transpose(1, 2)
    keys = [torch.randn(b, t if j == 0 else t - start, hkv, d, generator=g, dtype=torch.float64).transpose(1, 2) for j in range(steps)]
    values = [torch.randn(b, t if j == 0 else t - start, hkv, d, generator=g, dtype=torch.float64).transpose(1, 2) for j in range(steps)]
    grad = torch.randn(b, hq, t - start, d, generator=g, dtype=torch.float64)
    leaves = [x.clone().requires_grad_() for x in (q, *keys, *values)]
    ref = eager_ttt_attention(leaves[0], leaves[1 : 1 + steps], leaves[1 + steps :], 0.088)
    ref.backward(grad)
    dev = [x.detach().to(CUDA, torch.bfloat16).requires_grad_() for x in (q, *keys, *values)]
    out = flash_ttt_attention(dev[0], dev[1 : 1 + steps], dev[1 + steps :], 0.088)
    out.backward(grad.to(CUDA, torch.bfloat16))
    assert _rel(out, ref) < 1e-2
    for x, y in zip(dev, leaves):
        assert _rel(x.grad, y.grad) < 3e-2


def test_objective_in_bf16_on_cuda_matches_the_fp64_reference():
    draft, input_ids, loss_mask, valid, taps, final_hidden, lm_head, steps = _problem()
    ref_losses, _ = naive_ttt(draft, input_ids, loss_mask, valid, taps, final_hidden @ lm_head.t(), steps, 0.8)
    counts = step_token_counts(loss_mask, valid, steps)
    ref_total = sum(0.8**i * ref_losses[i] / counts[i] for i in range(steps))
    ref_total.backward()
    ref_grads = {n: p.grad.clone() for n, p in draft.named_parameters()}
    draft.zero_grad()

    gpu = draft.float().to(CUDA)
    mapping = (torch.arange(gpu.config.draft_vocab_size) + gpu.d2t.cpu()).to(CUDA)
    needed = needed_rows(loss_mask, valid)
    rows = tuple(x.to(CUDA) for x in needed)
    logits, row, in_draft = target_signals(final_hidden.to(CUDA), lm_head.to(CUDA), mapping, gpu.t2d, rows)
    batch = TTTBatch(input_ids.to(CUDA), loss_mask.to(CUDA), taps.float().to(CUDA), logits.float(), row, (in_draft & valid.to(CUDA)), valid.to(CUDA), rows, needed[1])
    with torch.autocast("cuda", dtype=torch.bfloat16):
        total, _ = TTTObjective(gpu, steps=steps, decay=0.8, kernel="flash", fused=True)(batch, counts.double().to(CUDA))
    total.backward()
    assert abs(total.item() - ref_total.item()) / ref_total.item() < 2e-2
    for name, p in gpu.named_parameters():
        assert _rel(p.grad, ref_grads[name]) < 6e-2, name


def _qwen2_audio(folder):
    return load_adapter(from_dict(EngineTarget, engine_target(folder)), device=CUDA, dtype=torch.bfloat16)


def _tiny_target_and_batch(tmp_path):
    """The tiny Qwen2-Audio in bf16 on the GPU and a batch of two records with audio, on the GPU."""
    from eaglet_engine.data import PreparedDataset, collate

    target = _qwen2_audio(tiny_qwen2_audio(tmp_path / "m"))
    data = PreparedDataset([write_prepared(tmp_path / "d", make_records(2, seed=3, audio_every=1))], max_length=4096, audio_token_id=target.audio_token_id)
    b = collate(data, [0, 1])
    b.inputs = {k: v.to(CUDA) for k, v in target.media_inputs(b.clips, CUDA).items()}
    b.input_ids, b.loss_mask, b.lengths = b.input_ids.to(CUDA), b.loss_mask.to(CUDA), b.lengths.to(CUDA)
    return target, b


def test_log_mel_features_on_the_gpu_equal_the_cpu_path(tmp_path):
    target = _qwen2_audio(tiny_qwen2_audio(tmp_path / "m"))
    clips = [np.random.default_rng(i).standard_normal(n).astype(np.float32) * 0.1 for i, n in enumerate((16000 * 7, 16000 * 30))]
    gpu = target.media_inputs(clips, CUDA)  # the STFT ran on the GPU
    cpu = target.media_inputs(clips, torch.device("cpu"))
    assert torch.equal(gpu["feature_attention_mask"].cpu(), cpu["feature_attention_mask"])
    assert (gpu["input_features"] - cpu["input_features"]).abs().max().item() < 1e-4


def test_tiny_pipeline_trains_exports_and_resumes_on_cuda(tmp_path):
    model = tiny_qwen2_audio(tmp_path / "model")
    records = make_records(8, seed=0, audio_every=4)
    data = write_prepared(tmp_path / "train", records)
    vocab = write_vocab(tmp_path / "vocab.safetensors", records)
    common = dict(device="cuda", precision="bf16", compile="auto", epochs=100, maxSteps=120, logEvery=20, evalData=[str(data)], draftConfig={"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "torch_dtype": "bfloat16"})
    whole = Trainer(train_config(tmp_path / "a", model, [data], vocab, **common)).build()
    result = whole.train()
    rows = [json.loads(line) for line in (tmp_path / "a" / "out" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["split"] == "eval" and rows[-1]["acc_0"] > max(0.15, 4 * rows[0]["acc_0"]), rows
    assert "vllm" in result["draft"]

    class StopAt(Trainer):
        def train_step(self, *a, **k):
            stats = super().train_step(*a, **k)
            if self.step == 60:
                self.stop.request()
            return stats

    StopAt(train_config(tmp_path / "b", model, [data], vocab, **common)).build().train()
    second = Trainer(train_config(tmp_path / "b", model, [data], vocab, resume=True, **common)).build()
    second.train()
    a, b = whole.state_dict()["model"], second.state_dict()["model"]
    diffs = {k: (a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point()}
    print("max |resumed - uninterrupted| per tensor on CUDA:", max(diffs.values()))
    # CUDA kernels (flash attention's backward, atomics in index_put) are not bit-reproducible
    # across runs; the resumed run must still land where the uninterrupted one does.
    assert max(diffs.values()) < 5e-3


def test_capture_on_cuda_is_deterministic_and_offline_training_follows_online(tmp_path):
    """The capture in bf16 with the compiled target twice: byte-identical files (what resuming
    after a kill relies on); then offline training on CUDA follows the online loss curve."""
    import hashlib

    from eaglet_engine import distributed as dist_env
    from eaglet_engine.capture import Capture
    from eaglet_engine.signals import StopRequested

    from .fixtures import capture_config

    model = tiny_qwen2_audio(tmp_path / "model")
    records = make_records(8, seed=0, audio_every=4)
    data = write_prepared(tmp_path / "train", records)
    vocab = write_vocab(tmp_path / "vocab.safetensors", records)
    files = []
    for out in ("cap-a", "cap-b"):
        cfg = capture_config(model, [data], tmp_path / out, device="cuda", precision="bf16", compile="auto")
        Capture(cfg, dist_env.init("cuda", 120), StopRequested()).run()
        files.append({f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted((tmp_path / out).iterdir())})
    assert files[0] == files[1]

    common = dict(device="cuda", precision="bf16", compile="auto", epochs=100, maxSteps=40, logEvery=1, draftConfig={"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "torch_dtype": "bfloat16"})
    Trainer(train_config(tmp_path / "online", model, [data], vocab, **common)).build().train()
    Trainer(train_config(tmp_path / "offline", model, [tmp_path / "cap-a"], vocab, **common)).build().train()
    rows = [[json.loads(line) for line in (tmp_path / run / "out" / "metrics.jsonl").read_text().splitlines()] for run in ("online", "offline")]
    worst = max(abs(a["loss"] - b["loss"]) / a["loss"] for a, b in zip(*rows, strict=True))
    print("worst relative loss difference, offline vs online on CUDA:", worst)
    assert worst < 2e-2  # bf16 states either way; the kernels (flash backward, atomics) are not bit-reproducible


def test_fused_compiled_draft_loss_and_target_equal_their_eager_versions(tmp_path):
    draft, input_ids, loss_mask, valid, taps, final_hidden, lm_head, steps = _problem()
    gpu = draft.float().to(CUDA)
    mapping = (torch.arange(gpu.config.draft_vocab_size) + gpu.d2t.cpu()).to(CUDA)
    needed = needed_rows(loss_mask, valid)
    rows = tuple(x.to(CUDA) for x in needed)
    logits, row, in_draft = target_signals(final_hidden.float().to(CUDA), lm_head.float().to(CUDA), mapping, gpu.t2d, rows)
    batch = TTTBatch(input_ids.to(CUDA), loss_mask.to(CUDA), taps.float().to(CUDA), logits, row, in_draft & valid.to(CUDA), valid.to(CUDA), rows, needed[1])
    counts = step_token_counts(loss_mask, valid, steps).double().to(CUDA)

    def run(compiled: bool, weights_dtype=None):
        gpu.zero_grad()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            total, stats = TTTObjective(gpu, steps=steps, decay=0.8, compiled=compiled, weights_dtype=weights_dtype)(batch, counts)
        total.backward()
        return total.detach(), stats, {n: p.grad.clone() for n, p in gpu.named_parameters()}

    eager = run(compiled=False)
    gpu.fuse()
    fused = run(compiled=True, weights_dtype=torch.bfloat16)  # as the trainer runs it: weights cast once
    assert abs(fused[0].item() - eager[0].item()) / eager[0].item() < 1e-2
    assert torch.equal(fused[1][:, 2], eager[1][:, 2])  # the same rows counted
    for name in eager[2]:
        assert _rel(fused[2][name], eager[2][name]) < 5e-2, name

    target, b = _tiny_target_and_batch(tmp_path)
    before = run_target(target, b, TINY_AUX_LAYER_IDS)
    target.fuse()
    after = run_target(target, b, TINY_AUX_LAYER_IDS)
    assert _rel(after.taps, before.taps) < 2e-2 and _rel(after.final_hidden, before.final_hidden) < 2e-2


def test_fp8_target_products_on_the_gpu_equal_the_rounded_product_compiled_or_not(tmp_path):
    """targetFp8 on FP8 tensor cores: a 7B-shaped linear (gate_proj, 4096 -> 11008, 4096 tokens) in
    bf16 equals the e4m3 row-rounded product in fp32 up to the bf16 output; the tiny target's
    compiled layers (the trainer's fuse) read the same FP8 states as its eager ones."""
    import torch.nn.functional as F

    from eaglet_engine import fp8
    from eaglet_engine.errors import EngineError

    fp8.check_fp8_device(CUDA, torch.bfloat16)  # the H100/H200 this runs on has FP8 tensor cores
    with pytest.raises(EngineError, match="needs precision bf16"):
        fp8.check_fp8_device(CUDA, torch.float32)
    g = torch.Generator(device=CUDA).manual_seed(0)
    linear = torch.nn.Linear(4096, 11008, bias=True, device=CUDA, dtype=torch.bfloat16)
    x = torch.randn(4096, 4096, device=CUDA, generator=g).bfloat16()
    layer = fp8.Fp8Linear(linear)
    got = layer(x)
    want = F.linear(fp8.round_rows(x).float(), fp8.round_rows(linear.weight).float(), linear.bias.float())
    assert got.dtype == torch.bfloat16 and _rel(got, want) < 5e-3
    assert _rel(torch.compile(layer)(x), got) < 5e-3
    assert _rel(got, linear(x)) > 1e-2  # the rounding took effect

    target, b = _tiny_target_and_batch(tmp_path)
    plain = run_target(target, b, TINY_AUX_LAYER_IDS)
    assert fp8.to_fp8(target.layers) == 7 * len(target.layers)
    eager = run_target(target, b, TINY_AUX_LAYER_IDS)
    target.fuse()
    fused = run_target(target, b, TINY_AUX_LAYER_IDS)
    assert _rel(fused.taps, eager.taps) < 2e-2 and _rel(fused.final_hidden, eager.final_hidden) < 2e-2
    assert _rel(eager.final_hidden, plain.final_hidden) < 0.1


# -- the fast decode path: static caches, CUDA graphs, verification on the GPU ------------------


def _fast_cuda(tmp_path, dtype=torch.float32, n=3, max_len=512, vocab=64, seed=0):
    from eaglet_engine.generate.draft import DraftRunner
    from eaglet_engine.generate.fast import build_fast_generator
    from eaglet_engine.generate.target import TargetRunner

    from .tiny_models import qwen2_audio_adapter, write_random_draft
    from .tiny_models import tiny_qwen2_audio as tiny_audio_model

    aux = (2, 3, 4)
    model = tiny_audio_model(vocab=vocab, seed=seed).to(CUDA, dtype)
    target = TargetRunner(qwen2_audio_adapter(model, aux), aux)
    folder = write_random_draft(tmp_path / "draft", model, list(aux), draft_vocab=48 if vocab == 64 else 12)
    draft = DraftRunner.from_folder(folder, target.adapter.embedding_weight(), device=CUDA, dtype=dtype)
    fast = build_fast_generator(target.adapter, aux, draft.model, n, max_len, graphs=True, compile=False)
    return model, target, draft, fast


def _prompts(model):
    from .tiny_models import AUDIO_TOKEN

    pcm = (np.sin(np.linspace(0, 2000, 32000)) * 0.1).astype(np.float32)
    g = torch.Generator().manual_seed(0)
    text = [[int(x) for x in torch.randint(0, AUDIO_TOKEN, (12,), generator=g)] for _ in range(2)]
    return [(text[0], None), (text[1], None), (text[0][:5] + [AUDIO_TOKEN] * 50 + text[1][:4], [pcm])]


def test_graph_path_equals_the_eager_paths_and_generate_on_cuda(tmp_path):
    from eaglet_engine.generate.fast import FastGenerator
    from eaglet_engine.generate.speculative import GenerationParams, Generator

    model, target, draft, fast = _fast_cuda(tmp_path)
    assert fast.path == "graphs" and fast.capture_seconds > 0
    plain = FastGenerator(fast.adapter, fast.target, fast.draft, 3, 512, graphs=False)
    eager = Generator(target, draft, num_spec_tokens=3)
    for ids, audio in _prompts(model):
        params = GenerationParams(max_tokens=40)
        reference = eager.generate(ids, audio, params)
        eager_spec = eager.generate(ids, audio, GenerationParams(max_tokens=40, speculative=True))
        graphs = fast.generate(ids, audio, params)
        spec = fast.generate(ids, audio, GenerationParams(max_tokens=40, speculative=True))
        assert graphs.output_ids == plain.generate(ids, audio, params).output_ids == reference.output_ids
        assert spec.output_ids == reference.output_ids
        assert spec.counters.to_json() == eager_spec.counters.to_json()
        if audio is None:
            hf = model.generate(torch.tensor([ids], device=CUDA), max_new_tokens=40, do_sample=False)[0, len(ids) :].tolist()
            assert graphs.output_ids == hf


def test_graph_path_samples_from_the_target_distribution_on_cuda(tmp_path):
    from eaglet_engine.generate.speculative import GenerationParams

    from .test_speculative_sampling import chi_square_p, exact_marginals
    from .tiny_models import tiny_qwen2_audio as tiny_audio_model

    reference = tiny_audio_model(vocab=16, seed=3)
    with torch.no_grad():
        reference.lm_head.weight.mul_(0.15)
    prompt_ids = [1, 5, 7, 2, 9, 4]
    m2, m3 = exact_marginals(reference, prompt_ids, 1.0)
    model, _, _, fast = _fast_cuda(tmp_path, n=2, max_len=64, vocab=16, seed=3)
    with torch.no_grad():
        model.lm_head.weight.copy_(reference.lm_head.weight)
    c2, c3 = torch.zeros(16), torch.zeros(16)
    drafts = accepted = 0
    for i in range(1000):
        out = fast.generate(prompt_ids, None, GenerationParams(max_tokens=3, temperature=1.0, seed=i, speculative=True))
        c2[out.output_ids[1]] += 1
        c3[out.output_ids[2]] += 1
        drafts += out.counters.num_draft_tokens
        accepted += out.counters.num_accepted_tokens
    assert 0 < accepted < drafts
    assert chi_square_p(c2, m2) > 1e-3
    assert chi_square_p(c3, m3) > 1e-3


def test_worker_generator_on_cuda_is_the_compiled_graph_path_and_oom_names_the_setting(tmp_path):
    from eaglet_engine import config
    from eaglet_engine.errors import EngineError
    from eaglet_engine.generate.loading import build_generator
    from eaglet_engine.generate.speculative import GenerationParams, Generator
    from eaglet_engine.generate.target import TargetRunner

    cfg = {"target": engine_target(tiny_qwen2_audio(tmp_path / "m")), "device": "cuda", "dtype": "fp32", "maxModelLen": 1024}
    gen, info = build_generator(config.parse(cfg, "generation"))
    assert info["decodePath"] == "graphs" and info["captureSeconds"] > 0 and gen.target.compiled
    eager = Generator(TargetRunner(gen.adapter, TINY_AUX_LAYER_IDS), None, num_spec_tokens=2)
    ids = [3, 1, 4, 1, 5, 9, 2, 6]
    assert gen.generate(ids, None, GenerationParams(max_tokens=24)).output_ids == eager.generate(ids, None, GenerationParams(max_tokens=24)).output_ids
    del gen, eager
    with pytest.raises(EngineError) as e:
        build_generator(config.parse({**cfg, "maxModelLen": 2**36}, "generation"))
    assert e.value.code == "EAGLET_OUT_OF_MEMORY" and "maxModelLen" in e.value.hint


@pytest.mark.skipif(os.environ.get("EAGLET_CUDA_7B") != "1", reason="builds the 16 GB Qwen2-Audio-7B architecture: set EAGLET_CUDA_7B=1 (tools/bench/decode.py runs the same check)")
def test_first_32_bf16_tokens_of_the_7b_architecture_equal_generate_or_tie(tmp_path):
    import sys
    from pathlib import Path

    from transformers import Qwen2AudioForConditionalGeneration

    from eaglet_engine.config import EngineTarget
    from eaglet_engine.generate.fast import FastGenerator, build_fast_generator
    from eaglet_engine.generate.parity import fast_logits_at, greedy_parity
    from eaglet_engine.generate.speculative import GenerationParams
    from eaglet_engine.generate.target import TargetRunner

    sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tools" / "bench"))
    from embedded_speedup_bound import AUDIO_TOKEN, qwen2_audio_config

    torch.manual_seed(0)
    with torch.device(CUDA):
        model = Qwen2AudioForConditionalGeneration._from_config(qwen2_audio_config(False), dtype=torch.bfloat16).eval()
    from eaglet_qwen2_audio import Qwen2AudioTarget
    from transformers import WhisperFeatureExtractor

    aux = (2, 16, 29)  # vLLM's default for 32 layers
    block = EngineTarget("qwen2-audio", "eaglet_qwen2_audio", "(random weights)", "Qwen2AudioForConditionalGeneration", aux, AUDIO_TOKEN)
    adapter = Qwen2AudioTarget(model, WhisperFeatureExtractor(feature_size=128), block)
    runner = TargetRunner(adapter, aux)
    pcm = (torch.randn(16000 * 30, generator=torch.Generator().manual_seed(0)) * 0.05).numpy()
    feats = runner.media([pcm])
    text = torch.randint(0, 150000, (40,), generator=torch.Generator().manual_seed(1)).tolist()
    ids = text[:20] + [AUDIO_TOKEN] * 750 + text[20:]
    ref = model.generate(input_ids=torch.tensor([ids], device=CUDA), **feats, max_new_tokens=32, min_new_tokens=32, do_sample=False, output_logits=True, return_dict_in_generate=True)
    ref_tokens = ref.sequences[0, len(ids) :].tolist()
    ref_logits = torch.stack([x[0] for x in ref.logits]).float().cpu()
    fast = build_fast_generator(adapter, aux, None, 4, 2048, graphs=True, compile=True)
    ours = fast.generate(ids, [pcm], GenerationParams(max_tokens=32)).output_ids
    plain = FastGenerator(fast.adapter, fast.target, None, 4, 2048, graphs=False)
    assert plain.generate(ids, [pcm], GenerationParams(max_tokens=32)).output_ids == ours
    parity = greedy_parity(ours, ref_tokens, ref_logits, lambda step: fast_logits_at(plain, ids, [pcm], step))
    print("7B bf16 parity with generate():", parity)
    assert parity["equal"] or parity["divergence"]["tie"], parity


@pytest.mark.parametrize("kv_heads", [32, 4])
def test_split_kv_attention_in_bf16_on_cuda_equals_torch_attention(kv_heads):
    """The fast path's decode/verification attention kernel against the SDPA it replaces, on the
    7B target's (32 kv heads) and draft's (4) shapes, one to six queries, several KV buckets."""
    from eaglet_engine.generate.split_kv_attention import split_kv_attention
    from eaglet_engine.generate.static_cache import attention_bias, cached_attention

    g = torch.Generator(device=CUDA).manual_seed(0)
    cap = 2048
    kv = torch.randn(2, kv_heads, cap, 128, device=CUDA, dtype=torch.bfloat16, generator=g)
    for bucket, last in ((256, 5), (256, 255), (1024, 917), (1536, 1100), (2048, 2047)):  # every query sees key 0
        for tokens in range(1, 7):
            q = torch.randn(32, tokens, 128, device=CUDA, dtype=torch.bfloat16, generator=g)
            positions = torch.arange(last - tokens + 1, last + 1, device=CUDA)
            bias = attention_bias(torch.arange(cap, device=CUDA), positions, bucket, torch.float32)
            want = cached_attention(q.float(), kv.float(), bucket, bias, 128**-0.5)
            got = split_kv_attention(q, kv, positions, bucket, 128**-0.5).float()
            assert (got - want).abs().max().item() < 2e-2, (bucket, last, tokens)  # bf16 output rounding is 4e-3 at |x| ~ 1


@pytest.mark.parametrize("kv_heads", [32, 8])
def test_fused_decode_layer_in_bf16_on_cuda_equals_the_fp32_reference(kv_heads):
    """Every launch shape start-up tuning may pick, on the 7B's layer shapes (32 heads of 128, 4096
    hidden, 11008 MLP; 32 or 8 kv heads), for a decode step (1 token) and verifications (2, 5, 16),
    at the start, inside and at the end of KV buckets: the layer's output and the keys/values it
    writes against the reference functions in fp32."""
    from eaglet_engine.generate import fused_decode as fd
    from eaglet_engine.generate.static_cache import attention_bias, cached_attention
    from eaglet_engine.generate.static_target import LayerWeights, post_attention, pre_attention

    g = torch.Generator(device=CUDA).manual_seed(0)
    heads, dim, hidden, inter, cap = 32, 128, 4096, 11008, 2048
    r = lambda *s, scale=0.02: torch.randn(*s, device=CUDA, dtype=torch.bfloat16, generator=g) * scale  # noqa: E731
    w = LayerWeights(1 + r(hidden), 1e-5, r((heads + 2 * kv_heads) * dim, hidden), r((heads + 2 * kv_heads) * dim), r(hidden, heads * dim), 1 + r(hidden), 1e-5, r(2 * inter, hidden), r(hidden, inter))
    w32 = LayerWeights(*(t.float() if isinstance(t, torch.Tensor) else t for t in vars(w).values()))
    angle = torch.arange(cap, device=CUDA)[:, None] * 10000.0 ** (-torch.arange(0, dim, 2, device=CUDA) / dim)
    cos, sin = torch.cat([angle.cos(), angle.cos()], -1).bfloat16(), torch.cat([angle.sin(), angle.sin()], -1).bfloat16()
    kv = torch.randn(2, kv_heads, cap, dim, device=CUDA, dtype=torch.bfloat16, generator=g)
    for tokens in (1, 2, 5, fd.MAX_TOKENS):
        cls = fd.token_class(tokens)
        candidates = fd.CANDIDATES[cls]
        for i in range(max(map(len, candidates.values()))):  # every shape of every kernel, the shorter lists cycled
            config = fd.Config(**{name: shapes[i % len(shapes)] for name, shapes in candidates.items()})
            layer = fd.FusedDecodeLayer(heads, kv_heads, dim, hidden, inter, {cls: config})
            for last, bucket in ((tokens - 1, 256), (853, 1024), (1500, 1536), (2047, 2048)):
                first = last - tokens + 1
                positions = torch.arange(first, last + 1, device=CUDA)
                x = torch.randn(tokens, hidden, device=CUDA, dtype=torch.bfloat16, generator=g)
                want_kv = kv.float()
                q, new = pre_attention(x.float(), w32.ln1, w32.eps1, w32.w_qkv, w32.b_qkv, cos[positions].float(), sin[positions].float(), heads, kv_heads)
                want_kv.index_copy_(2, positions, new)
                attn = cached_attention(q, want_kv, bucket, attention_bias(torch.arange(cap, device=CUDA), positions, bucket, torch.float32), dim**-0.5)
                want = post_attention(x.float(), attn, w32.w_o, w32.ln2, w32.eps2, w32.w_gate_up, w32.w_down)
                got_kv = kv.clone()
                got = layer(x, w, got_kv, positions, cos, sin, bucket, dim**-0.5).float()
                where = (tokens, config, last)
                assert _rel(got, want) < 1e-2, where  # bf16 products against fp32; a wrong row or mask is O(1)
                assert _rel(got_kv[:, :, first : last + 1].float(), want_kv[:, :, first : last + 1]) < 1e-2, where
                assert torch.equal(got_kv[:, :, last + 1 :], kv[:, :, last + 1 :]) and torch.equal(got_kv[:, :, :first], kv[:, :, :first]), where


def test_static_target_decodes_and_verifies_on_the_tuned_fused_kernels_equal_to_the_compiled_functions():
    """In bf16 with compile on, one-token steps and verifications of 5 run the fused kernels (tuned
    at start-up for each), and their states and taps equal those of the compiled functions step
    for step."""
    import copy

    from transformers import Qwen2Config, Qwen2ForCausalLM

    from eaglet_engine.generate.static_target import StaticTarget

    torch.manual_seed(0)
    config = Qwen2Config(hidden_size=256, intermediate_size=512, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, vocab_size=128, max_position_embeddings=1024)
    model = Qwen2ForCausalLM(config).to(CUDA, torch.bfloat16).eval()
    target = StaticTarget(model.model, model.lm_head.weight, [1, 2, 3], 512, compile=True)
    assert target.decode_kernels == "fused"
    assert {k: set(v) for k, v in target.fused_tuning.items()} == {"1": {"qkv", "attention", "o", "gate_up", "down"}, "5": {"qkv", "o", "gate_up", "down"}}
    compiled = copy.copy(target)
    compiled.fused = None
    assert compiled.decode_kernels == "compiled"
    ids = torch.randint(0, 128, (60,), generator=torch.Generator().manual_seed(1)).to(CUDA)
    with torch.inference_mode():
        target.forward(target.embed(ids[:20]), torch.arange(20, device=CUDA), None)
        pos = 20
        for tokens in (1, 5, 1, 1, 5, 5, 1, 8):
            x, positions = target.embed(ids[pos : pos + tokens]), torch.arange(pos, pos + tokens, device=CUDA)
            want, want_taps = compiled.forward(x, positions, 64, want_taps=True)
            got, taps = target.forward(x, positions, 64, want_taps=True)  # overwrites the same cache rows
            assert _rel(got.float(), want.float()) < 3e-2 and _rel(taps.float(), want_taps.float()) < 3e-2, (pos, tokens)
            pos += tokens


def test_static_draft_chain_steps_and_catch_up_on_the_fused_kernels_equal_the_compiled_layer():
    """The 7B draft's layer shapes (4096 hidden, 32 heads, 4 kv heads, 11008 MLP) in bf16: its
    one-token chain steps and 5-token catch-ups on the fused kernels' two-input form equal the
    compiled layer's, state and logits, step for step, with the q/k/v shape tuned at start-up on
    the draft's matrix and with every other q/k/v candidate."""
    import copy
    from dataclasses import replace

    from eaglet_engine.draft import DraftConfig, build_draft
    from eaglet_engine.generate import fused_decode as fd
    from eaglet_engine.generate.static_draft import StaticDraft

    cfg = DraftConfig(hidden_size=4096, intermediate_size=11008, num_attention_heads=32, num_key_value_heads=4, head_dim=128, vocab_size=4096, draft_vocab_size=1024)
    model = build_draft(cfg, seed=0, device=CUDA).to(torch.bfloat16)
    model.set_embedding(torch.randn(4096, 4096, generator=torch.Generator().manual_seed(1)).to(CUDA, torch.bfloat16))
    target_shapes = {cls: fd.Config.default(cls, 128) for cls in (1, fd.MAX_TOKENS)}
    draft = StaticDraft(model, 2048, compile=True, fused_configs=target_shapes)
    assert draft.fused is not None
    # Only q/k/v is tuned again, on both token classes; the other kernels keep the target's shapes.
    assert {t: set(kernels) for t, kernels in draft.fused_tuning.items()} == {"1": {"qkv"}, "5": {"qkv"}}
    for cls, shapes in target_shapes.items():
        assert replace(draft.fused.configs[cls], qkv=shapes.qkv) == shapes
    plain = copy.copy(draft)
    plain.fused = None
    g = torch.Generator(device=CUDA).manual_seed(2)
    tuned = dict(draft.fused.configs)
    qkv_shapes = [(cls, c) for cls in tuned for c in fd.CANDIDATES[cls]["qkv"]]
    pos = 200
    with torch.inference_mode():
        for cls, qkv in [(None, None), *qkv_shapes]:
            draft.fused.configs = tuned if cls is None else {**tuned, cls: replace(tuned[cls], qkv=qkv)}
            for tokens in (5, 1, 1, 5, 1):
                ids = torch.randint(0, 4096, (tokens,), device=CUDA, generator=g)
                hidden = torch.randn(tokens, 4096, device=CUDA, generator=g).bfloat16()
                positions = torch.arange(pos, pos + tokens, device=CUDA)
                want, want_logits = plain.step(ids, hidden, positions, 2048)
                got, logits = draft.step(ids, hidden, positions, 2048)  # overwrites the same cache rows
                assert _rel(got.float(), want.float()) < 3e-2 and _rel(logits, want_logits) < 3e-2, (pos, tokens, qkv)
                pos += tokens


def test_row_argmax_on_cuda_equals_torch_argmax_and_keeps_the_first_of_equal_maxima():
    """The greedy chain's argmax kernel on the draft's 32k vocabulary (one tile) and the target's
    156k (five), with maxima repeated inside a tile and across tiles; also in bf16 through an int8
    table, as the training's target signals call it."""
    from eaglet_engine.generate.row_argmax import row_argmax

    g = torch.Generator(device=CUDA).manual_seed(0)
    for width in (32000, 156032, 1000):
        logits = torch.randn(6, width, device=CUDA, generator=g)
        logits[1, [17, 900]] = 50.0  # a tie inside the first tile
        logits[2, [width - 1, 3]] = 60.0  # a tie across tiles (or inside one for narrow rows)
        logits[3] = 0.0  # all equal
        logits[4, :] = float("-inf")
        logits[4, width // 2] = -1e30
        ids = torch.randperm(width * 3, device=CUDA, generator=g)[:width]
        got = row_argmax(logits, ids)
        assert got.dtype == ids.dtype and torch.equal(got, ids[logits.argmax(-1)]), width
        assert torch.equal(row_argmax(logits[:1], ids), ids[logits[:1].argmax(-1)])
        table = (ids % 2).to(torch.int8)  # as target_signals looks up t2d
        assert torch.equal(row_argmax(logits.bfloat16(), table), table[logits.bfloat16().argmax(-1)]), width


def test_fp32_training_on_cuda_runs_the_eager_ttt_kernel(tmp_path):
    """PyTorch's CUDA flash attention takes only 16-bit inputs: precision fp32 on a GPU must train
    (on the eager reference kernel), not fail inside the flash kernel."""
    model = tiny_qwen2_audio(tmp_path / "model")
    records = make_records(4, seed=0, audio_every=2)
    data = write_prepared(tmp_path / "train", records)
    vocab = write_vocab(tmp_path / "vocab.safetensors", records)
    trainer = Trainer(train_config(tmp_path / "a", model, [data], vocab, device="cuda", precision="fp32", compile="off", maxSteps=2, logEvery=1)).build()
    assert trainer.objective.kernel is eager_ttt_attention
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "a" / "out" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["split"] == "train"]
    assert len(losses) == 2 and all(np.isfinite(losses)), rows


def test_a_training_step_never_waits_for_the_gpu(tmp_path):
    """The host must be able to queue a step's target forward while the GPU still runs the last
    step's backward (the target's phase is bound by kernel launches: docs/perf/train.md, "The host
    ahead"), so a step must never wait for the GPU. Every wait is a regression this test names by
    file and line: reading the loss, a blocking copy, the audio encoder's token selection and the
    rows the target's signals are computed on (both found a batch ahead by the data thread),
    transformers' check of the position ids for packed sequences (skipped by handing its decoder
    the masks: ``causal_only``), the rows each TTT step counts (a weight, not a selection)."""
    import warnings

    model = tiny_qwen2_audio(tmp_path / "model")
    records = make_records(4, seed=0, audio_every=1)
    data = write_prepared(tmp_path / "train", records)
    vocab = write_vocab(tmp_path / "vocab.safetensors", records)
    draft = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "torch_dtype": "bfloat16"}
    trainer = Trainer(train_config(tmp_path / "a", model, [data], vocab, device="cuda", precision="bf16", compile="auto", maxSteps=8, draftConfig=draft)).build()

    def step(i: int) -> None:
        batch = trainer.prepare(trainer.train_data.collate([i % len(records)]))
        counts = step_token_counts(batch.loss_mask, batch.valid, trainer.objective.steps)
        trainer.train_step([batch], counts)

    for i in range(3):  # compiles, the cuDNN probe, first-use caches
        step(i)
    torch.cuda.synchronize()

    def waits(records) -> list[tuple[str, int]]:
        return [(w.filename, w.lineno) for w in records if "synchroniz" in str(w.message)]

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            batch = trainer.prepare(trainer.train_data.collate([3]))  # the data thread's work: may wait
            seen.clear()
            counts = step_token_counts(batch.loss_mask, batch.valid, trainer.objective.steps)
            trainer.train_step([batch], counts)
            in_step = waits(seen)
            seen.clear()
            torch.ones(1, device="cuda").item()  # a wait: proves the mode reports them
            control = waits(seen)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert not in_step, f"the step waits for the GPU at {in_step}"
    assert control, "sync debug mode reported no wait for .item(): the check above proves nothing"
