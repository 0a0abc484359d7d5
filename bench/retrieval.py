"""Item retrieval per request at two catalog sizes, side by side in one run: exact search
(blocked matmul) and the faiss HNSW index, on random item vectors (the timing does not
depend on what the vectors mean), with the approximate search's recall@20 against exact.

    .venv/bin/python bench/retrieval.py --rows 20000 500000 --dim 65 --queries 200
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from model.features import FIRST_KNOWN
from model.retrieval import ItemIndex, item_candidates, row_sample, write_item_index
from model.search_graph import item_search_graph

K = 20
WINDOW = 50


def _index(rows: int, dim: int, ann: bool, out: Path, rng: np.random.Generator) -> ItemIndex:
    import faiss

    vectors = rng.standard_normal((rows, dim)).astype(np.float32) / np.sqrt(dim)
    t0 = time.perf_counter()
    write_item_index(out, vectors, rows, item_search_graph(), ann=ann)
    built = time.perf_counter() - t0
    index = None
    if ann:
        index = faiss.read_index(str(out / "item_index.faiss"), faiss.IO_FLAG_MMAP_IFC)
        faiss.ParameterSpace().set_index_parameter(index, "efSearch", 128)
    print(f"rows={rows} ann={ann} build_s={built:.1f}", flush=True)
    return ItemIndex(np.load(out / "item_vectors.npy", mmap_mode="r"), row_sample(rows, 0),
                     rows, out / "item_search.onnx", index, threads=1)


def _p50(index: ItemIndex, queries: np.ndarray, windows: np.ndarray, exact: bool) -> float:
    times = []
    for q, w in zip(queries, windows, strict=True):
        t0 = time.perf_counter()
        item_candidates(index, q[None], np.full(1, 0.7, np.float32),
                        np.full((1, WINDOW), 1 / WINDOW, np.float32), w[None], K, exact=exact)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 500_000])
    parser.add_argument("--dim", type=int, default=65)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            index = _index(rows, args.dim, True, Path(tmp), rng)
            queries = rng.standard_normal((args.queries, args.dim)).astype(np.float32)
            windows = rng.integers(FIRST_KNOWN, rows, (args.queries, WINDOW))
            exact_ms = _p50(index, queries, windows, exact=True)
            ann_ms = _p50(index, queries, windows, exact=False)
            a = index.search(queries, K).rows
            e = index.search(queries, K, exact=True).rows
            recall = np.mean([len(set(x) & set(y)) / K for x, y in zip(a, e, strict=True)])
            print(f"rows={rows} exact_p50_ms={exact_ms:.3f} ann_p50_ms={ann_ms:.3f} "
                  f"ann_recall@{K}={recall:.3f}", flush=True)


if __name__ == "__main__":
    main()
