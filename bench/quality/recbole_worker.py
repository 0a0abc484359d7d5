"""Train one RecBole sequential model and score seqcast's test points with it.

Runs inside RecBole's own virtual environment (bench/quality/.venv-recbole, see
requirements-recbole.txt), started by bench/quality/run.py as a subprocess:

    .venv-recbole/bin/python bench/quality/recbole_worker.py WORKDIR/job.json

WORKDIR (written by run.py, see `bench/quality/recbole_data.py`) holds:
    atomic/seqcast/seqcast.{train,valid,test}.inter   RecBole benchmark files: one row per
        prediction point, user_id:token  item_id_list:token_seq  item_id:token
        timestamp:float. Item tokens are seqcast's item codes (EventLog.item) as text.
    test_points.npz   seq_items / seq_offsets (flat item codes of each test window, oldest
        first), target_item, target_category, item_category (category code of every
        item code), n_categories.
job.json: {"model", "seed", "epochs", "stopping_step", "max_len", "train_batch_size",
           "eval_batch_size", "hyper": {...RecBole model options...}, "result": path}

Scoring: each test window is fed right-padded (RecBole's layout) to `full_sort_predict`,
which ranks every item RecBole knows. Window items RecBole never saw are dropped; a target
it never saw is a miss (-inf). Next-category scores are the softmax item probabilities
summed per category (P(next category = c) under the item model). Ranking metrics come from
seqcast's own `model.metrics.RankingMetrics`, so every model is scored by one
implementation.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from model.evaluation.ranking import matrix_scores, rank_dense  # noqa: E402  (repo root first)
from model.metrics import RankingMetrics  # noqa: E402  (repo root goes on sys.path first)

log = logging.getLogger("recbole_worker")

DATASET = "seqcast"
BENCHMARK_FILES = ["train", "valid", "test"]


def recbole_config(job: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """RecBole options: the benchmark files above, full-softmax CE, early stopping on the
    validation file's NDCG@10, CPU unless CUDA is present."""
    return {
        "data_path": str(workdir / "atomic"),
        "dataset": DATASET,
        "benchmark_filename": BENCHMARK_FILES,
        "alias_of_item_id": ["item_id_list"],
        "load_col": {"inter": ["user_id", "item_id_list", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": int(job["max_len"]),
        "train_neg_sample_args": None,
        "loss_type": "CE",
        "epochs": int(job["epochs"]),
        "stopping_step": int(job["stopping_step"]),
        "train_batch_size": int(job["train_batch_size"]),
        "eval_batch_size": int(job["eval_batch_size"]),
        "metrics": ["Recall", "NDCG"],
        "topk": [10, 20],
        "valid_metric": "NDCG@10",
        # Ignored with benchmark files except "mode": full ranking in validation.
        "eval_args": {"order": "TO", "mode": "full", "group_by": "user", "split": {"RS": [1]}},
        "seed": int(job["seed"]),
        "reproducibility": True,
        "use_gpu": torch.cuda.is_available(),
        "checkpoint_dir": str(workdir / "checkpoints"),
        "show_progress": False,
        "log_wandb": False,
        "worker": 0,
        **job.get("hyper", {}),
    }


def right_padded(
    seq_items: np.ndarray, offsets: np.ndarray, rows: np.ndarray, max_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, max_len) RecBole item ids, oldest first then zeros, and the lengths. Rows with no
    known item keep one padding id (length 1): the model then answers its bias alone."""
    seqs = torch.zeros((len(rows), max_len), dtype=torch.long)
    lengths = torch.ones(len(rows), dtype=torch.long)
    for b, k in enumerate(rows):
        known = seq_items[offsets[k] : offsets[k + 1]]
        known = known[known > 0][-max_len:]
        if len(known):
            seqs[b, : len(known)] = torch.from_numpy(known)
            lengths[b] = len(known)
    return seqs, lengths


def score_test_points(
    model: torch.nn.Module,
    dataset: Any,
    points: Any,
    max_len: int,
    batch_size: int,
    device: torch.device,
) -> dict[str, dict[str, float | int]]:
    """Full-ranking next item and next category metrics of the test points."""
    token2id: dict[str, int] = dataset.field2token_id["item_id"]
    n_rb = dataset.item_num  # RecBole ids 0 (padding) .. n_rb - 1
    # seqcast item code -> RecBole id (0: unknown to RecBole)
    item_codes = np.array(
        [int(t) if t != "[PAD]" else -1 for t in dataset.field2id_token["item_id"]], dtype=np.int64
    )
    code_to_rb = np.zeros(len(points["item_category"]), dtype=np.int64)
    known_codes = item_codes[1:]
    code_to_rb[known_codes] = np.arange(1, n_rb)
    assert all(token2id[str(c)] == code_to_rb[c] for c in known_codes[:10])

    seq_items = code_to_rb[points["seq_items"]]
    offsets = points["seq_offsets"]
    target_rb = code_to_rb[points["target_item"]]
    # Category of each RecBole item (-1 for padding); categories no RecBole item carries
    # score -inf.
    n_cat = int(points["n_categories"])
    rb_category = np.full(n_rb, -1, dtype=np.int64)
    rb_category[1:] = points["item_category"][known_codes]
    cat_index = torch.from_numpy(np.maximum(rb_category, 0))
    cat_present = np.zeros(n_cat, dtype=bool)
    cat_present[rb_category[1:]] = True
    cat_absent = torch.from_numpy(~cat_present)

    items = RankingMetrics()
    categories = RankingMetrics()
    n = len(target_rb)
    model.eval()
    started = time.perf_counter()
    for lo in range(0, n, batch_size):
        rows = np.arange(lo, min(lo + batch_size, n))
        seqs, lengths = right_padded(seq_items, offsets, rows, max_len)
        interaction = {model.ITEM_SEQ: seqs.to(device), model.ITEM_SEQ_LEN: lengths.to(device)}
        with torch.no_grad():
            scores = model.full_sort_predict(interaction).float().cpu()[:, :n_rb]  # (B, n_rb)
        scores[:, 0] = -torch.inf
        # Unknown targets point at an extra -inf column: a miss that counts as unseen.
        item_scores = torch.cat((scores, torch.full((len(rows), 1), -torch.inf)), dim=1)
        targets = np.where(target_rb[rows] > 0, target_rb[rows], n_rb)
        items.update(rank_dense(matrix_scores(item_scores.numpy()), targets, n_rb + 1))

        probs = torch.softmax(scores, dim=1)  # padding column -> 0
        cat_scores = torch.zeros((len(rows), n_cat)).index_add_(1, cat_index, probs)
        cat_scores[:, cat_absent] = -torch.inf
        categories.update(
            rank_dense(matrix_scores(cat_scores.numpy()), points["target_category"][rows], n_cat)
        )
        done = rows[-1] + 1
        print(
            f"\r  scoring {done}/{n} points ({time.perf_counter() - started:.0f}s)",
            end="" if done < n else "\n",
            file=sys.stderr,
            flush=True,
        )
    return {"item": items.result(), "category": categories.result()}


def main(job_path: str) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    job = json.loads(Path(job_path).read_text())
    workdir = Path(job_path).resolve().parent
    torch.set_num_threads(int(job.get("threads", torch.get_num_threads())))
    sys.argv = sys.argv[:1]  # RecBole's Config reads (and warns about) command-line options

    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    started = time.perf_counter()
    config = Config(model=job["model"], config_dict=recbole_config(job, workdir))
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, _ = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    n_params = sum(p.numel() for p in model.parameters())
    log.info("%s: %d parameters, %d items", job["model"], n_params, dataset.item_num)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    best_valid, _ = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    # torch >= 2.6 defaults torch.load(weights_only=True); RecBole's checkpoints hold its
    # Config object, so RecBole's own reload of the best epoch fails. Reload it here.
    checkpoint = torch.load(
        trainer.saved_model_file, map_location=config["device"], weights_only=False
    )
    model.load_state_dict(checkpoint["state_dict"])
    train_seconds = time.perf_counter() - started

    points = dict(np.load(workdir / "test_points.npz"))
    started = time.perf_counter()
    metrics = score_test_points(
        model, dataset, points, int(job["max_len"]), int(job["eval_batch_size"]), config["device"]
    )
    result = {
        "model": job["model"],
        "seed": job["seed"],
        "n_params": n_params,
        "n_items": int(dataset.item_num - 1),
        "epochs_run": int(trainer.cur_epoch) if hasattr(trainer, "cur_epoch") else None,
        "best_epoch": int(checkpoint.get("cur_epoch", -1)),
        "best_valid_ndcg@10": float(best_valid),
        "train_seconds": train_seconds,
        "score_seconds": time.perf_counter() - started,
        **metrics,
    }
    Path(job["result"]).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1])
