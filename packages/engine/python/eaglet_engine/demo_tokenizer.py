"""Small tokenizers for demo models and test fixtures, trained offline in a second.

A target plugin's demo (``TargetDemo.builder``) needs a tokenizer of its family's kind, but the
real one is megabytes and cannot be downloaded. ``byte_level_bpe`` builds a faithful small one
with the ``tokenizers`` library: the model type, pre-tokenizer and decoder of the byte-level BPE
families (the plugin passes its split regex and special tokens), a vocabulary learnt from a given
corpus. Deterministic for a given corpus. Nothing here names a family.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def byte_level_bpe(corpus: Sequence[str], *, split_regex: str, special_tokens: Sequence[str], vocab_size: int) -> Any:
    """A byte-level BPE (the GPT-2 kind): the split regex, then byte-level; every
    byte is a token, so any text encodes. ``special_tokens`` get the first ids after the vocabulary
    (added, special), in order."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(ignore_merges=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split_regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    tok.add_special_tokens(list(special_tokens))
    return tok
