"""The item head per request, side by side in one run: one ONNX Runtime call of the graph
plus the ranking of its items, for

- before: a schema-1 graph answering `item_logits` over the whole catalog, ranked as the
  service did (softmax over the known rows, argpartition of the top 20);
- after: this build's graph (`item_query`, `item_gate`, `item_copy`) ranked through
  `model.retrieval.item_candidates` on the artifact's own item vectors (exact search),
  and on synthetic random item tables of --rows sizes (exact below ANN_MIN_ROWS, the faiss
  HNSW index from there: the timing of a search does not depend on what vectors mean).

    .venv/bin/python bench/item_head.py --before /tmp/a-taobao --after /tmp/a-taobao-after \
        --rows 20000 500000

Each graph runs with one intra-op thread, on the same full-length window of known ids,
round after round, so all variants see the same neighbours on a shared machine. Prints the
p50 per request of each variant and its ratio to the first.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.artifact import load_artifact  # noqa: E402
from model.features import FIRST_KNOWN, INPUT_NAMES  # noqa: E402
from model.retrieval import ANN_MIN_ROWS, ItemIndex, item_candidates, write_item_index  # noqa: E402
from model.search_graph import item_search_graph  # noqa: E402

K = 20


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _feeds(n_items: int, n_categories: int, window: int) -> dict[str, np.ndarray]:
    """One full-length window of known rows (the exact ids do not change the timing)."""
    t = np.arange(window)
    rows = {
        "item": FIRST_KNOWN + (7 * t) % max(1, n_items - FIRST_KNOWN - 64),
        "category": FIRST_KNOWN + t % max(1, n_categories - FIRST_KNOWN - 8),
        "behavior": 1 + t % 4, "gap": 1 + t % 5, "hour": 1 + t % 24, "weekday": 1 + t % 7,
    }
    return {name: rows[name][None, :].astype(np.int64) for name in INPUT_NAMES}


def _before(artifact: Path) -> Callable[[], object]:
    manifest = json.loads((artifact / "manifest.json").read_text())
    vocab = json.loads((artifact / "vocab.json").read_text())
    n_known = len(vocab["items"])
    n_items = FIRST_KNOWN + n_known + manifest["features"]["n_oov_items"]
    n_cats = FIRST_KNOWN + len(vocab["categories"]) + manifest["features"]["n_oov_categories"]
    session = _session(artifact / "model.onnx")
    feeds = _feeds(n_items, n_cats, manifest["features"]["window_len"])

    def call() -> object:
        (logits,) = session.run(["item_logits"], feeds)
        scores = logits[0, FIRST_KNOWN : FIRST_KNOWN + n_known]
        weights = np.exp(scores - scores.max())
        part = np.argpartition(scores, len(scores) - K)[-K:]
        return weights[part] / weights.sum()

    return call


def _after(artifact_dir: Path, index: ItemIndex | None) -> Callable[[], object]:
    artifact = load_artifact(artifact_dir)
    session = _session(artifact.onnx_path)
    index = index or ItemIndex.open(artifact)
    feeds = _feeds(artifact.items.size, artifact.categories.size,
                   artifact.manifest.features.window_len)
    feeds["item"] = np.minimum(feeds["item"], index.first_oov - 1)
    names = ["item_query", "item_gate", "item_copy"]

    def call() -> object:
        query, gate, copy = session.run(names, feeds)
        return item_candidates(index, query, gate, copy, feeds["item"], K)

    return call


def _synthetic(rows: int, dim: int, out: Path) -> ItemIndex:
    vectors = np.random.default_rng(rows).standard_normal((rows, dim)).astype(np.float32)
    vectors /= np.sqrt(dim)
    t0 = time.perf_counter()
    info = write_item_index(out, vectors, rows, item_search_graph(),
                            ann=rows - FIRST_KNOWN >= ANN_MIN_ROWS)
    print(f"synthetic {rows} rows: index built in {time.perf_counter() - t0:.1f} s "
          f"({info.ann or 'exact'})", flush=True)
    import faiss

    ann = None
    if info.ann:
        ann = faiss.read_index(str(out / "item_index.faiss"), faiss.IO_FLAG_MMAP_IFC)
        faiss.ParameterSpace().set_index_parameter(ann, "efSearch", 128)
    return ItemIndex(np.load(out / "item_vectors.npy", mmap_mode="r"),
                     np.load(out / "item_sample.npy"), rows, out / "item_search.onnx", ann,
                     threads=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--rows", type=int, nargs="*", default=[20_000, 500_000])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    dim = load_artifact(args.after).manifest.item_index.dim
    variants: dict[str, Callable[[], object]] = {
        "before (item_logits)": _before(args.before),
        "after (artifact's items)": _after(args.after, None),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            (Path(tmp) / str(rows)).mkdir()
            variants[f"after ({rows} synthetic rows)"] = _after(
                args.after, _synthetic(rows, dim, Path(tmp) / str(rows)))
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, call in variants.items():
                t0 = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - t0)
    first = None
    for name, ts in times.items():
        p50 = float(np.median(ts)) * 1e3
        first = first or p50
        print(f"{name:32s} p50 {p50:8.3f} ms  x{p50 / first:.2f}")


if __name__ == "__main__":
    main()
