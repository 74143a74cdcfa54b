"""The small tokenizers target plugins build their demo models with (eaglet_engine.demo_tokenizer)."""

from __future__ import annotations

from eaglet_engine.demo_tokenizer import byte_level_bpe

# A GPT-2-style split regex (letters, digits, punctuation runs, whitespace), as a plugin passes its own.
SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
CORPUS = ["the quick brown fox jumps over the lazy dog", "speculative decoding makes models faster"] * 3
SPECIAL = ["<|start|>", "<|end|>"]


def test_deterministic_lossless_and_special_tokens_last():
    a = byte_level_bpe(CORPUS, split_regex=SPLIT, special_tokens=SPECIAL, vocab_size=320)
    b = byte_level_bpe(CORPUS, split_regex=SPLIT, special_tokens=SPECIAL, vocab_size=320)
    assert a.to_str() == b.to_str()
    # Every byte is a token: text never seen in the corpus (accents, emoji, newlines) round-trips.
    text = "Ünïcödé 🎉\n\n  tabs\tand 12345"
    assert a.decode(a.encode(text).ids) == text
    # Learnt merges shorten the corpus's own words.
    assert len(a.encode("speculative decoding").ids) < len("speculative decoding")
    ids = [a.token_to_id(t) for t in SPECIAL]
    assert ids == [a.get_vocab_size() - 2, a.get_vocab_size() - 1]
    assert a.encode("x<|end|>y").ids[1] == ids[1]
