"""The bigram baseline: the table built from the training data and its accuracy on the eval split,
checked against a plain count over the same records and the target's own argmax."""

from collections import Counter

from eaglet_engine.baseline import BigramTable
from eaglet_engine.data import PreparedDataset, collate
from eaglet_engine.trainer import Trainer

from .fixtures import TEXT_VOCAB, make_records, tiny_qwen2_audio, train_config, write_prepared, write_vocab


def _plain_table(records) -> dict[int, int]:
    """Most frequent follower of each assistant token, ties to the lower id."""
    pairs: Counter = Counter()
    for r in records:
        ids, mask = r["input_ids"], r["loss_mask"]
        for a, b, reads in zip(ids[:-1], ids[1:], mask[:-1]):
            if reads:
                pairs[(int(a), int(b))] += 1
    best: dict[int, tuple[int, int]] = {}
    for (a, b), n in pairs.items():
        if a not in best or (n, -b) > (best[a][1], -best[a][0]):
            best[a] = (b, n)
    return {a: b for a, (b, _) in best.items()}


def test_the_table_names_the_most_frequent_assistant_follower_across_shards(tmp_path):
    # Repetitive replies so that counts and ties matter; 3 records per shard so pairs could
    # wrongly span two records inside one shard.
    records = make_records(10, seed=3, audio_every=0, min_len=6, max_len=12)
    for r in records:
        reply = len(r["input_ids"]) - sum(r["loss_mask"])
        r["input_ids"] = r["input_ids"][:reply] + [int(t) % 5 for t in r["input_ids"][reply:]]
    folder = write_prepared(tmp_path / "data", records, shard_size=3)
    table = BigramTable.from_dataset(PreparedDataset([folder], max_length=4096), TEXT_VOCAB)

    expected = _plain_table(records)
    got = {a: int(b) for a, b in enumerate(table.next_token.tolist()) if b >= 0}
    assert got == expected


def test_eval_reports_the_bigram_accuracy_on_the_rows_acc0_counts(tmp_path):
    model = tiny_qwen2_audio(tmp_path / "model")
    records = make_records(8, seed=0, audio_every=4)
    evals = make_records(4, seed=1, audio_every=2)
    cfg = train_config(
        tmp_path,
        model,
        [write_prepared(tmp_path / "train", records)],
        write_vocab(tmp_path / "vocab.safetensors", records),
        evalData=[str(write_prepared(tmp_path / "eval", evals))],
    )
    trainer = Trainer(cfg).build()
    assert {a: int(b) for a, b in enumerate(trainer.bigram.next_token.tolist()) if b >= 0} == _plain_table(records)

    # A random target rarely says what the data says, so give the table some of the target's own
    # answers: then the accuracy is not trivially zero.
    rows = []
    for i in range(len(trainer.eval_data)):
        batch = trainer.to_device(trainer.prepare(collate(trainer.eval_data, [i])))
        out = trainer.target_forward(batch)
        argmax = (out.final_hidden @ trainer.target.lm_head_weight().t()).argmax(-1)[0].tolist()
        rows.append((batch.input_ids[0].tolist(), batch.loss_mask[0].tolist(), argmax))
    table = trainer.bigram.next_token.clone()
    for ids, mask, argmax in rows:
        for t in range(0, len(ids) - 1, 2):
            table[ids[t + 1]] = argmax[t + 1]
    trainer.bigram = BigramTable(table)
    values = trainer.evaluate()

    t2d = trainer.vocab.t2d
    correct = total = 0
    for ids, mask, argmax in rows:
        for t in range(len(ids) - 1):
            if mask[t + 1]:
                total += 1  # acc_0's denominator: every row t whose next token, t+1, is an assistant token
                correct += bool(t2d[argmax[t + 1]]) and int(table[ids[t + 1]]) == argmax[t + 1]
    assert correct > 0
    assert values["bigram_acc"] == correct / total
