"""A trivial baseline every draft must beat: the bigram table.

Built from the training data: for each assistant token, the token that most often follows it
(ties to the lower id). Scored exactly like ``acc_0``: on the eval split's step-0 rows (the draft
has read tokens up to t+1, an assistant token, and the target's hidden state at t, and must name
the target's argmax at t+1), the table guesses from token t+1 alone; correct rows over the same
denominator (assistant tokens at step 0). A draft whose acc_0 stays at or below
``bigram_acc`` has not learnt to use the target's hidden states.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .data import PreparedDataset


class BigramTable:
    """next_token[a] = the most frequent token after assistant token a in the training data
    (-1 for tokens never seen as an assistant token with a follower)."""

    def __init__(self, next_token: Tensor) -> None:
        self.next_token = next_token

    @classmethod
    def from_dataset(cls, dataset: PreparedDataset, vocab_size: int) -> BigramTable:
        """Counts (token, next token) pairs whose first token is an assistant token, over every
        record of every shard (flat Arrow buffers, no per-record Python; memory bounded by the
        distinct pairs, not the tokens)."""
        shard_keys: list[np.ndarray] = []
        shard_counts: list[np.ndarray] = []
        for tables in dataset._shards:
            for table in tables:
                ids_col = table.column("input_ids").combine_chunks()
                mask_col = table.column("loss_mask").combine_chunks()
                ids = ids_col.flatten().to_numpy().astype(np.int64)
                mask = mask_col.flatten().to_numpy(zero_copy_only=False).astype(bool)
                ends = np.cumsum(ids_col.value_lengths().to_numpy())
                reads = mask[:-1].copy()  # pair i = (ids[i], ids[i+1]), counted when ids[i] is an assistant token
                reads[ends[:-1] - 1] = False  # no pair across two records
                keys, counts = np.unique(ids[:-1][reads] * vocab_size + ids[1:][reads], return_counts=True)
                shard_keys.append(keys)
                shard_counts.append(counts)
        keys, where = np.unique(np.concatenate(shard_keys), return_inverse=True)
        counts = np.bincount(where, weights=np.concatenate(shard_counts)).astype(np.int64)
        first, second = keys // vocab_size, keys % vocab_size
        # Most frequent follower per first token; ties to the lower id (lexsort's last key is primary).
        order = np.lexsort((second, -counts, first))
        first, second = first[order], second[order]
        keep = np.ones(first.size, dtype=bool)
        keep[1:] = first[1:] != first[:-1]
        next_token = torch.full((vocab_size,), -1, dtype=torch.int64)
        next_token[torch.from_numpy(first[keep])] = torch.from_numpy(second[keep])
        return cls(next_token)

    def to(self, device: torch.device) -> BigramTable:
        return BigramTable(self.next_token.to(device))

    def correct(self, input_ids: Tensor, loss_mask: Tensor, target_in_draft: Tensor, target_argmax: Tensor) -> Tensor:
        """Correct step-0 rows of one batch (a scalar count).

        ``target_argmax`` [B, T]: the target's argmax id at each position (read only where
        ``target_in_draft``); step-0 row t counts when token t+1 is an assistant token, and is right
        when the table's follower of token t+1 is the target's argmax at t+1 (which must lie in the
        draft vocabulary, as for acc_0)."""
        rows = loss_mask[:, 1:] & target_in_draft[:, 1:]
        guess = self.next_token[input_ids[:, 1:]]
        return (rows & (guess == target_argmax[:, 1:])).sum()
