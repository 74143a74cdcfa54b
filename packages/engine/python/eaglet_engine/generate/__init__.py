"""Generation on the PyTorch engine: the target alone, and Eagle3 speculative decoding.

- `target.TargetRunner`: the target plugin's adapter (the one training uses) with a KV cache; it
  returns next-token logits and the hidden states of the three aux layers for the positions it
  just processed.
- `draft.DraftRunner`: the Eagle3 draft read from the folder vLLM loads, run with its own KV cache.
- `sampling`: temperature/top-p distributions, greedy verification and the standard rejection rule.
- `speculative.generate`: the decode loop (baseline or a chain of N draft tokens), counting drafts
  and accepted tokens per position the way vLLM does.

The fast path (CUDA): `fast.FastGenerator`, the same loop as whole steps captured as CUDA graphs
(`graphs`) over preallocated caches (`static_cache`, `static_target`, `static_draft`), sampling
and verification on the device (`device_sampling`), fed by the target plugin's adapter (its
`decoder`, `input_embeddings` and `media_inputs`); `scripted_draft` and `parity` serve its
benchmark and tests.
"""
