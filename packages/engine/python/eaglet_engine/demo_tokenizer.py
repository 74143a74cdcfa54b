"""Small tokenizers for demo models and test fixtures, trained offline in a second.

A target plugin's demo (``TargetDemo.builder``) needs a tokenizer of its family's kind, but the
real one is megabytes and cannot be downloaded. These build a faithful small one with the
``tokenizers`` library: the same model type, normalizer, pre-tokenizer and decoder as the family's
(the plugin passes its split regex and special tokens), a vocabulary learnt from a given corpus.
Deterministic for a given corpus. Nothing here names a family.
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


def sentencepiece_bpe(corpus: Sequence[str], *, special_tokens: Sequence[str], vocab_size: int, prepend_space: bool) -> Any:
    """A SentencePiece-style BPE: spaces become ``▁`` (and one is
    prepended to each text when ``prepend_space``), no pre-tokenizer, unknown characters fall
    back to ``<0xNN>`` byte tokens. ``special_tokens`` come first (ids 0..), then the 256 byte
    tokens, then the learnt pieces."""
    from tokenizers import Tokenizer, decoders, models, normalizers, trainers

    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token=None, fuse_unk=False))
    steps = [normalizers.Prepend("▁")] if prepend_space else []
    tok.normalizer = normalizers.Sequence([*steps, normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), *([decoders.Strip(" ", 1, 0)] if prepend_space else [])]
    )
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[*special_tokens, *byte_tokens], show_progress=False)
    tok.train_from_iterator(list(corpus), trainer=trainer)
    # The byte tokens are ordinary vocabulary of the model, not added tokens.
    spec = tok.to_str()
    import json

    data = json.loads(spec)
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] in special_tokens]
    return Tokenizer.from_str(json.dumps(data))
