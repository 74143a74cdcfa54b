"""What each input of the draft's residual stream and attention weighs at initialisation, on the
first 8 records of a prepared dataset (docs/perf/quality.md, "Scales at initialisation").

    OMP_NUM_THREADS=1 node tools/python.mjs tools/bench/quality/init_scales.py \\
        --target MODEL --train PREPARED --vocab VOCAB [--variant init-normal-0.02]
"""

from __future__ import annotations

import argparse
import json
import tempfile

import torch

import draft_experiment as de
from eaglet_engine import config as config_mod
from eaglet_engine.data import collate
from eaglet_engine.draft import TTTCache
from eaglet_engine.trainer import Trainer


def rms(x: torch.Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--vocab", required=True)
    p.add_argument("--variant", action="append", default=[], choices=sorted(de.VARIANTS))
    args = p.parse_args()
    torch.set_num_threads(1)
    for name in args.variant:
        de.VARIANTS[name]()
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config_mod.parse(de.base_config(args.target, [args.train], [], args.vocab, out), "train")).build()
        batch = trainer.target_step(trainer.to_device(trainer.prepare(collate(trainer.train_data, list(range(8))))))
    draft, layer, valid = trainer.draft, trainer.draft.midlayer, batch.valid
    width = batch.taps.shape[-1] // 3
    with torch.no_grad():
        embeds = draft.embed(batch.input_ids)
        hidden = draft.project(batch.taps)
        x = torch.cat([layer.input_layernorm(embeds), layer.hidden_norm(hidden)], -1)
        positions = torch.arange(x.shape[1]).expand(x.shape[0], -1)
        q, k, v = layer.self_attn.project(x, positions)
        attn = layer.self_attn.output(TTTCache("eager").attend(q, k, v, layer.self_attn.scale))
        mlp = layer.mlp(layer.post_attention_layernorm(hidden + attn))
        t = q.shape[2]
        weights = (q @ k.transpose(-1, -2) * layer.self_attn.scale).masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
    print(
        json.dumps(
            {
                "token embedding (before its RMSNorm)": rms(embeds[valid]),
                "taps": [rms(batch.taps[..., i * width : (i + 1) * width][valid]) for i in range(3)],
                "fc(taps): the residual stream": rms(hidden[valid]),
                "attention branch (o_proj output)": rms(attn[valid]),
                "mlp branch": rms(mlp[valid]),
                "attention weight on the own position (positions >= 20)": float(weights.diagonal(dim1=-2, dim2=-1)[..., 20:].mean()),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
