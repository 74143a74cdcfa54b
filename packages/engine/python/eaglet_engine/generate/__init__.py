"""Generation on the PyTorch engine: the target alone, and Eagle3 speculative decoding.

- `target.TargetRunner`: a Hugging Face target with a KV cache that returns next-token logits and
  the hidden states of the three tapped layers for the positions it just processed.
- `draft.Eagle3Draft`: the Eagle3 draft read from the folder vLLM loads, run with its own KV cache.
- `sampling`: temperature/top-p distributions, greedy verification and the standard rejection rule.
- `speculative.generate`: the decode loop (baseline or a chain of N draft tokens), counting drafts
  and accepted tokens per position the way vLLM does.

The fast path (CUDA): `fast.FastGenerator`, the same loop as whole steps captured as CUDA graphs
(`graphs`) over preallocated caches (`static_cache`, `static_target`, `static_draft`), sampling
and verification on the device (`device_sampling`). `adapter_shim` feeds it from a TargetRunner
until the target adapters provide its interface; `scripted_draft` and `parity` serve its
benchmark and tests.
"""
