"""Smoke test of the quality benchmark (bench/quality) on tiny synthetic data.

The real benchmark trains RecBole models for tens of minutes and is not run here. This runs
V-SkNN, the results table and the RecBole data export end to end in seconds; the RecBole
worker itself runs only where its virtual environment (bench/quality/.venv-recbole) exists.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from model import sequences
from model.sequences import EventLog, TimeSplit
from model.synth import write_csv

BENCH = Path(__file__).resolve().parents[3] / "bench" / "quality"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_quality_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


run = _load("run")
sknn = _load("sknn")
recbole_data = _load("recbole_data")


def _log(rows: list[tuple[int, int, int]]) -> EventLog:
    """(user, item, ts) rows -> EventLog over 6 items and 3 users (same id tables for every
    log, as for the parts of one real log), one category per item (item % 2)."""
    user, item, ts = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
    n_items = 6
    return EventLog.from_codes(
        user=user,
        item=item,
        category=item % 2,
        behavior=np.zeros(len(rows), dtype=np.int8),
        ts=ts,
        user_ids=np.array(["0", "1", "2"], dtype=object),
        item_ids=np.array([str(i) for i in range(n_items)], dtype=object),
        category_ids=np.array(["0", "1"], dtype=object),
    )


def test_sessions_split_on_user_change_and_long_gaps() -> None:
    log = _log([(0, 1, 0), (0, 2, 60), (0, 3, 60 + 3600), (1, 1, 100), (1, 2, 200)])
    assert sknn.session_ids(log, 1800).tolist() == [0, 0, 1, 2, 2]


def test_vsknn_ranks_what_similar_sessions_did_next() -> None:
    # Memory: two sessions A B C, one D E. The current session A B should be followed by C.
    memory = _log(
        [
            (0, 0, 0),
            (0, 1, 10),
            (0, 2, 20),
            (1, 0, 0),
            (1, 1, 10),
            (1, 2, 20),
            (2, 3, 0),
            (2, 4, 10),
        ]
    )
    current = _log([(0, 0, 100), (0, 1, 110), (0, 2, 120)])
    points = sequences.test_points(current, TimeSplit(0, 101, 120), 10, horizon=1, return_gap=1)
    assert len(points) == 2
    knn = sknn.SessionKNN(n_items=6).fit(memory)
    scores = knn.scores(current, sknn.session_ids(current, 1800), points, np.array([1]))
    # Items of the current session (A, B) get votes too (repeats are common); among the
    # others, C wins and D, E (no shared item) only keep the tiny popularity prior.
    assert scores[0, 2] > 1.0 > 1e-3 > scores[0, 3] > 0.0
    assert scores[0, 5] == -np.inf  # never seen: a miss, not a tie
    result = sknn.evaluate_sknn(
        memory, current, points, recbole_data.item_categories(memory), 2, progress=False
    )
    assert result["item"]["n"] == 2
    assert result["item"]["recall@20"] == 1.0


def test_markdown_table_marks_the_best_mean_and_missing_heads() -> None:
    def run_of(model: str, seed: int, ndcg: float, auc: float | None) -> dict[str, object]:
        heads: dict[str, object] = {"next_item": {"recall@20": 0.5, "ndcg@10": ndcg}}
        if auc is not None:
            heads["next_behavior"] = {"macro_auc": auc}
        return {"model": model, "seed": seed, "seconds": 2.0, "metrics": heads}

    runs = [run_of("a", 0, 0.2, 0.7), run_of("a", 1, 0.4, 0.7), run_of("b", 0, 0.1, None)]
    summary = run.summarize(runs)
    assert summary["a"]["next_item.ndcg@10"] == pytest.approx({"mean": 0.3, "std": 0.1})
    table = run.markdown_table(summary)
    a_row = next(line for line in table.splitlines() if line.startswith("| a |"))
    b_row = next(line for line in table.splitlines() if line.startswith("| b |"))
    assert "**0.3000 ± 0.1000**" in a_row
    assert "—" in b_row and "**" not in b_row.split("|")[3]  # its NDCG is not the best


@pytest.fixture(scope="module")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("quality") / "synthetic.csv"
    write_csv(path, 40, seed=3)
    return path


def test_benchmark_end_to_end_with_sknn(synthetic_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    results = run.main(["--data", str(synthetic_csv), "--out", str(out), "--models", "sknn"])
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["summary"] == results["summary"]
    row = results["summary"]["V-SkNN"]
    for key in ("next_item.recall@20", "next_item.ndcg@10", "next_category.recall@20"):
        assert 0.0 < row[key]["mean"] <= 1.0
    assert row["next_behavior.macro_auc"] is None
    assert results["meta"]["n_test_points"] > 0
    assert "| V-SkNN |" in (out / "results.md").read_text()


def test_invocations_on_one_out_directory_merge_into_one_table(
    synthetic_csv: Path, tmp_path: Path
) -> None:
    """RecBole in one invocation, the rest in another: one results.json; a re-run of a model
    and seed replaces its row; results of another split are refused, not mixed in."""
    out = tmp_path / "results"
    first = run.main(["--data", str(synthetic_csv), "--out", str(out), "--models", "sknn"])
    earlier = json.loads((out / "results.json").read_text())
    other = {"model": "RecBole SASRec", "seed": 7, "seconds": 1.0,
             "metrics": {"next_item": {"recall@20": 0.25, "ndcg@10": 0.125}}}
    earlier["runs"].append(other)
    (out / "results.json").write_text(json.dumps(earlier))
    second = run.main(["--data", str(synthetic_csv), "--out", str(out), "--models", "sknn"])
    assert [r["model"] for r in second["runs"]] == ["RecBole SASRec", "V-SkNN"]
    assert second["runs"][1]["metrics"] == first["runs"][0]["metrics"]
    assert second["summary"]["RecBole SASRec"]["next_item.ndcg@10"]["mean"] == 0.125
    assert second["meta"]["seeds"] == [0, 1, 2, 7]
    assert "| RecBole SASRec |" in (out / "results.md").read_text()
    earlier["meta"]["split"]["test_cutoff"] += 1
    (out / "results.json").write_text(json.dumps(earlier))
    with pytest.raises(SystemExit, match="split differ"):
        run.main(["--data", str(synthetic_csv), "--out", str(out), "--models", "sknn"])


def test_recbole_export_matches_the_trainers_points(synthetic_csv: Path, tmp_path: Path) -> None:
    from model.data import load_log
    from model.pipeline import SplitConfig

    log = load_log(synthetic_csv, progress=False).log
    split = SplitConfig().apply(log)
    points = sequences.test_points(log, split, 20, 86400, 1800)
    counts = recbole_data.export(log, split, points, tmp_path, 20, 50, seed=0)
    assert counts["test"] == len(points)
    assert 0 < counts["valid"] <= 50
    train_rows = (tmp_path / "atomic/seqcast/seqcast.train.inter").read_text().splitlines()
    assert train_rows[0].split("\t") == [
        "user_id:token",
        "item_id_list:token_seq",
        "item_id:token",
        "timestamp:float",
    ]
    assert len(train_rows) - 1 == counts["train"] > 0
    counts_in_train = np.bincount(log.item[log.ts < split.val_cutoff], minlength=len(log.item_ids))
    used = {
        int(t) for r in train_rows[1:] for t in (r.split("\t")[1] + " " + r.split("\t")[2]).split()
    }
    assert used and all(counts_in_train[i] >= 2 for i in used)  # seqcast's min_item_count
    assert max(int(r.split("\t")[3]) for r in train_rows[1:]) < split.val_cutoff
    valid_rows = (tmp_path / "atomic/seqcast/seqcast.valid.inter").read_text().splitlines()
    test_rows = (tmp_path / "atomic/seqcast/seqcast.test.inter").read_text().splitlines()
    assert len(test_rows) > 1 and test_rows == valid_rows[: len(test_rows)]  # RecBole needs rows
    saved = np.load(tmp_path / "test_points.npz")
    assert saved["target_item"].tolist() == log.item[points.target].tolist()
    assert np.diff(saved["seq_offsets"]).tolist() == points.length.tolist()


@pytest.mark.slow
@pytest.mark.skipif(
    not run.recbole_python().exists(),
    reason="RecBole's venv bench/quality/.venv-recbole is absent (run.py creates it; too heavy "
    "for CI)",
)
def test_recbole_worker_scores_the_test_points(synthetic_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    subprocess.run(
        [
            sys.executable,
            str(BENCH / "run.py"),
            "--data",
            str(synthetic_csv),
            "--out",
            str(out),
            "--models",
            "GRU4Rec",
            "--seeds",
            "0",
            "--recbole-epochs",
            "1",
            "--max-valid",
            "50",
            "--threads",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    row = json.loads((out / "results.json").read_text())["summary"]["RecBole GRU4Rec"]
    assert 0.0 <= row["next_item.ndcg@10"]["mean"] <= row["next_item.recall@20"]["mean"] <= 1.0
    assert 0.0 < row["next_category.recall@20"]["mean"] <= 1.0
