"""The loss kernel (eaglet_engine/soft_ce_kernel.py) against the fused loss's chunk math
(kernels._chunk_math), in Triton's interpreter on the CPU with small tiles, so rows span several
tiles and the last is partial; and compiled on CUDA at the trainer's chunk shape in bf16. The
reference runs in fp64, which the kernel never serves: it stays torch's math whichever way
kernels.py routes its chunks.

The interpreted rows put equal maxima of the draft's and of the target's logits inside a tile,
across tiles and at index 0 (where the kernel's running maxima start), each built so that its
`correct` flips if the first index does not win; rows of all-equal logits, target logits masked
with -inf over a whole first tile, and logits with a large common offset or scale (the loss is
formed from terms relative to the row's maxima, not as lse(z) - sum(p_t * z) in absolute terms);
also without the gradient, with no rows, with row weights (0 among them), with the gradient written
into rows of a caller's buffer (``out=``) and with fewer programs than rows (each loops). Inside a tile the interpreter's argmax takes the first index whatever the kernel asks for, so the
CUDA test has equal maxima inside a tile too."""

from __future__ import annotations

import importlib.util
import math
import textwrap

import pytest
import torch

from eaglet_engine.kernels import _chunk_math
from eaglet_engine.soft_ce_kernel import serves, soft_cross_entropy_rows

from .triton_interpreter import interpreted_rows

needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="torch wheels without Triton (e.g. macOS) keep the torch math; nothing to check")

CHECK = textwrap.dedent(
    """
    import json, torch
    from eaglet_engine.kernels import _chunk_math
    from eaglet_engine.soft_ce_kernel import serves, soft_cross_entropy_rows

    def crafted(width, block, g):
        z = torch.randn(7, width, generator=g) * 3
        t = torch.randn(7, width, generator=g) * 3
        # row 0 as drawn
        z[1, [17, 200]] = 50.0; t[1, 17] = 40.0                  # z: equal maxima in tile 0
        z[2, [300, width - 1]] = 50.0; t[2, 300] = 40.0          # z: across tiles (the last one partial)
        t[3, [block + 4, block + 14, width - 1]] = 40.0; z[3, block + 4] = 50.0  # t: in a tile and across
        z[4, [0, 700]] = 50.0; t[4, [0, 600]] = 40.0             # both: equal to entry 0
        z[5] = 0.0; t[5] = 1.5                                   # every entry equal
        t[6, : block + 5] = float("-inf"); t[6, ::7] = float("-inf")  # masked target tokens
        return z, t

    def compare(name, z, t, need_grad=True, grad_dtype=torch.float32, weight=None, **launch):
        assert serves(z), "the interpreted run must take the kernel, not the torch math"
        loss, correct, grad = soft_cross_entropy_rows(z, t, need_grad, grad_dtype, weight=weight, **launch)
        ref_loss, ref_correct, ref_grad = _chunk_math(z.double(), t.double(), need_grad, torch.float64, weight)
        row = {"case": name, "n": z.shape[0], "width": z.shape[1], "loss": [loss.item(), ref_loss.item()],
               "lossDtype": str(loss.dtype), "correct": [correct.tolist(), ref_correct.tolist()], "grad": None}
        if need_grad:
            err = (grad.double() - ref_grad).abs()
            row["grad"] = {"dtype": str(grad.dtype), "shape": list(grad.shape), "maxAbs": err.max().item() if err.numel() else 0.0,
                           "overBf16": (err - 2**-7 * ref_grad.abs()).max().item() if err.numel() else 0.0}
        return row

    g = torch.Generator().manual_seed(0)
    rows = []
    for width, block in ((1000, 256), (4097, 512)):               # 4 tiles, 232 wide last; 9, the last 1 wide
        z, t = crafted(width, block, g)
        for n in (1, 3, 7):
            rows.append(compare(f"crafted-{n}", z[:n], t[:n], block=block))
    z, t = crafted(1000, 256, g)
    rows.append(compare("no-grad", z, t, need_grad=False, block=256))
    rows.append(compare("two-programs", z, t, block=256, programs=2))  # each loops over every other row
    rows.append(compare("offset", z[:3] + 1e5, t[:3] - 1e5, block=256))
    rows.append(compare("scaled", z[:3] * 40, t[:3] * 40, block=256))
    rows.append(compare("bf16", z[:3].bfloat16(), t[:3].bfloat16(), grad_dtype=torch.bfloat16, block=256))
    rows.append(compare("empty", z[:0], t[:0], block=256))
    rows.append(compare("default-block", z[:2], t[:2]))
    rows.append(compare("weighted", z, t, block=256, weight=torch.tensor([1.0, 0.0, 0.5, 1.0, 0.0, 2.0, 1.0])))
    whole = torch.full((5, 1100), 7.0)                            # the gradient written into a block of a wider buffer
    grad = soft_cross_entropy_rows(z[:3], t[:3], True, torch.float32, out=whole[1:4, 50:1050], block=256)[2]
    ref_grad = _chunk_math(z[:3].double(), t[:3].double(), True, torch.float64)[2]
    row = {"case": "out", "width": 1000, "inPlace": grad.data_ptr() == whole[1, 50].data_ptr(), "maxAbs": (grad.double() - ref_grad).abs().max().item()}
    whole[1:4, 50:1050] = 7.0
    rows.append({**row, "othersKept": bool((whole == 7.0).all())})
    print(json.dumps(rows))
    """
)


@needs_triton
def test_kernel_equals_the_chunk_math_in_the_interpreter():
    rows = {r["case"] + f"/{r['width']}": r for r in interpreted_rows(CHECK)}
    assert len(rows) == 15
    out = rows.pop("out/1000")
    assert out["inPlace"] and out["othersKept"] and out["maxAbs"] <= 1e-6, out
    for key, r in rows.items():
        got, want = r["loss"]
        tol = 1e-4 if r["case"] == "bf16" else 2e-6  # bf16 inputs: the kernel's exp against torch's, a few ulps
        assert math.isfinite(got) and abs(got - want) <= tol * max(1.0, abs(want)), key
        assert r["lossDtype"] == "torch.float32", key
        assert r["correct"][0] == r["correct"][1], key
        if r["case"] == "no-grad":
            assert r["grad"] is None
            continue
        grad = r["grad"]
        assert grad["shape"] == [r["n"], r["width"]], key
        if r["case"] == "bf16":
            # Within one bf16 ulp: the interpreter truncates fp32 to bf16 (CUDA rounds to nearest).
            assert grad["dtype"] == "torch.bfloat16" and grad["overBf16"] <= 1e-7, key
        else:
            assert grad["dtype"] == "torch.float32" and grad["maxAbs"] <= 1e-6, key
    # The crafted rows mean what they say: each tie row is correct only when the first index wins.
    assert rows["crafted-7/1000"]["correct"][1][1:6] == [True] * 5
    assert rows["crafted-7/4097"]["correct"][1][1:6] == [True] * 5
    assert rows["empty/1000"]["loss"] == [0.0, 0.0] and rows["empty/1000"]["correct"] == [[], []]


def test_refuses_what_it_does_not_serve():
    z = torch.randn(5, 300)
    assert not serves(z)  # CPU tensors, and this process is not interpreted
    with pytest.raises(ValueError, match="no Triton kernel"):
        soft_cross_entropy_rows(z, z, True, torch.float32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the GPU machine runs this)")
@needs_triton
def test_kernel_on_cuda_in_bf16_equals_the_chunk_math_at_the_trainer_chunk():
    g = torch.Generator(device="cuda").manual_seed(0)
    n, width = 2048, 32000
    z = (torch.randn(n, width, device="cuda", generator=g) * 3).bfloat16()
    t = (torch.randn(n, width, device="cuda", generator=g) * 3).bfloat16()
    z[1, [5, width - 7]] = 30.0  # equal maxima in the first and the last tile
    t[1, 5] = 30.0
    z[2, [100, 200]] = 30.0  # in one tile
    t[2, 100] = 30.0
    assert serves(z)
    loss, correct, grad = soft_cross_entropy_rows(z, t, True, torch.bfloat16)
    ref_loss, ref_correct, ref_grad = _chunk_math(z.double(), t.double(), True, torch.float64)
    assert loss.dtype == torch.float32 and grad.dtype == torch.bfloat16
    assert abs(loss.item() - ref_loss.item()) <= 1e-5 * abs(ref_loss.item())
    assert torch.equal(correct, ref_correct) and bool(correct[1]) and bool(correct[2])
    # bf16 rounding of the gradient (to nearest: at most 2**-8 relative) plus the fp32 math's and exp's.
    assert ((grad.double() - ref_grad).abs() - 2**-8 * ref_grad.abs()).max().item() <= 1e-6
    whole = torch.zeros(n + 1, width, device="cuda", dtype=torch.bfloat16)
    soft_cross_entropy_rows(z, t, True, torch.bfloat16, out=whole[1:])
    assert torch.equal(whole[1:], grad) and not whole[0].any()
    no_grad = soft_cross_entropy_rows(z, t, False, torch.bfloat16)
    assert no_grad[2] is None and torch.equal(no_grad[1], correct) and torch.equal(no_grad[0], loss)
