"""seqcast's split and prediction points as RecBole input: benchmark atomic files plus the test
windows the worker scores (the formats are described in recbole_worker.py).

RecBole is given exactly seqcast's training set-up: its training rows are the prediction
points whose target lies in the training period (before split.val_cutoff; each target with
the up-to-max_len events before it), its validation rows (early stopping) are
`model.sequences.validation_points`, and the test windows are `model.sequences.test_points`.
RecBole's own splitting is bypassed through its `benchmark_filename` option. Item tokens are
seqcast item codes; categories travel only in test_points.npz (SASRec, GRU4Rec and BERT4Rec
read item ids alone).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.sequences import EventLog, Points, TimeSplit, prediction_points, validation_points

DATASET = "seqcast"
HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\ttimestamp:float\n"


def _write_inter(path: Path, log: EventLog, points: Points, vocab: np.ndarray) -> int:
    """One row per point whose target item is in vocab (a bool per item code); history
    items outside vocab are left out. Returns the rows written."""
    rows = 0
    with path.open("w") as f:
        f.write(HEADER)
        for start, last in zip(points.start.tolist(), points.last.tolist(), strict=True):
            target = last + 1
            history_codes = log.item[start : last + 1]
            history_codes = history_codes[vocab[history_codes]]
            if not vocab[log.item[target]] or len(history_codes) == 0:
                continue
            history = " ".join(map(str, history_codes.tolist()))
            f.write(f"{log.user[target]}\t{history}\t{log.item[target]}\t{log.ts[target]}\n")
            rows += 1
    return rows


def item_categories(log: EventLog) -> np.ndarray:
    """Category code of each item code: its category in its latest event of `log`; -1 for
    items `log` does not contain."""
    out = np.full(len(log.item_ids), -1, dtype=np.int64)
    out[log.item] = log.category  # later events overwrite earlier ones
    return out


def training_points(log: EventLog, split: TimeSplit, max_len: int) -> tuple[EventLog, Points]:
    """Every event before the validation cutoff that has an earlier event of its user."""
    train = log.take(log.ts < split.val_cutoff)
    points = prediction_points(
        train,
        max_len,
        horizon=1,
        return_gap=1,
        target_from=int(np.iinfo(np.int64).min),
        target_until=split.val_cutoff,
        known_until=split.val_cutoff - 1,
    )
    return train, points


def export(
    log: EventLog,
    split: TimeSplit,
    test: Points,
    workdir: Path,
    max_len: int,
    max_valid_points: int,
    seed: int,
    min_item_count: int = 2,
) -> dict[str, int]:
    """Write atomic/seqcast/*.inter and test_points.npz under workdir; returns row counts.

    RecBole's item vocabulary is the items seen at least min_item_count times in the
    training period (seqcast's own rule, TrainConfig.min_item_count): the others are left
    out of the histories, and points that target them are not trained on (RecBole has no
    out-of-vocabulary bucket). Validation is a seeded sample of at most max_valid_points
    points (RecBole ranks every item for each of them after every epoch)."""
    atomic = workdir / "atomic" / DATASET
    atomic.mkdir(parents=True, exist_ok=True)
    train_log, train_points = training_points(log, split, max_len)
    vocab = np.bincount(train_log.item, minlength=len(log.item_ids)) >= min_item_count
    before_test, valid = validation_points(log, split, max_len, horizon=1, return_gap=1)
    if len(train_points) == 0 or len(valid) == 0:
        raise ValueError("the split leaves no training or no validation points for RecBole")
    valid = valid.sample(max_valid_points, seed)
    n_train = _write_inter(atomic / f"{DATASET}.train.inter", train_log, train_points, vocab)
    n_valid = _write_inter(atomic / f"{DATASET}.valid.inter", before_test, valid, vocab)
    if n_valid == 0:
        raise ValueError("no validation point has a target in RecBole's item vocabulary")
    # RecBole insists on a non-empty test file; it is never evaluated (the test points are
    # scored by the worker), so it repeats the first validation rows that were written.
    valid_rows = (atomic / f"{DATASET}.valid.inter").read_text().splitlines(keepends=True)
    (atomic / f"{DATASET}.test.inter").write_text("".join(valid_rows[:17]))

    lengths = test.length
    np.savez(
        workdir / "test_points.npz",
        seq_items=np.concatenate(
            [log.item[s : e + 1] for s, e in zip(test.start, test.last, strict=True)]
        )
        if len(test)
        else np.zeros(0, dtype=np.int64),
        seq_offsets=np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
        target_item=log.item[test.target],
        target_category=log.category[test.target],
        item_category=item_categories(log.take(log.ts < split.test_cutoff)),
        n_categories=np.int64(len(log.category_ids)),
    )
    return {"items": int(vocab.sum()), "train": n_train, "valid": n_valid, "test": len(test)}
