"""What one served prediction spends, part by part, side by side in one run.

    python bench/served_parts.py --artifact DIR [--rounds 300]

One full-length window of the artifact's own ids (seeded), featurized and scored once; then,
round after round, each part of the service's path for it is timed in turn, so every part
sees the same neighbours on a shared machine: featurization, the ONNX Runtime call (with and
without the manifest's calibrators), the exact item search, the item candidates of one
window (`model.retrieval.item_candidates`), those with the window's anomaly score (what
`app.inference.decode.batch_scores` computes for a whole batch), the answer's item and
category lists, the whole decoded answer and its JSON; with --hnsw also the candidates
through a faiss HNSW index built over the artifact's known rows (the index the trainer
writes above `model.retrieval.ANN_MIN_ROWS`), and how many of the exact top items it finds.
The numpy and faiss pools are held to one thread, as the service holds them
(`SEQCAST_MODEL_THREADS`). Prints the p50 of each part.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import onnxruntime as ort
import orjson
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.inference.decode import (  # noqa: E402
    batch_scores,
    decode_prediction,
    top_items,
    top_k_ids,
)
from app.inference.slot import load_model  # noqa: E402
from model.artifact import ITEM_SEARCH  # noqa: E402
from model.features import FIRST_KNOWN, Event  # noqa: E402
from model.retrieval import (  # noqa: E402
    CONNECTIVITY,
    EXPANSION_ADD,
    EXPANSION_SEARCH,
    ItemIndex,
    item_candidates,
)
from model.tabular import head_input, tabular_features  # noqa: E402


def hnsw_twin(index: ItemIndex, search: Path) -> ItemIndex:
    """The same item vectors behind a faiss HNSW index of the known rows (`search`: the
    artifact's exact scan)."""
    vectors = np.ascontiguousarray(index.vectors[FIRST_KNOWN : index.first_oov])
    ann = faiss.IndexHNSWFlat(vectors.shape[1], CONNECTIVITY, faiss.METRIC_INNER_PRODUCT)
    ann.hnsw.efConstruction = EXPANSION_ADD
    ann.add(vectors)
    faiss.ParameterSpace().set_index_parameter(ann, "efSearch", EXPANSION_SEARCH)
    return ItemIndex(index.vectors, index.sample, index.first_oov,
                     search, ann, threads=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifact", type=Path, required=True)
    p.add_argument("--rounds", type=int, default=300)
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--hnsw", action="store_true", help="also time an HNSW index of the rows")
    args = p.parse_args()
    threadpool_limits(1)
    current = load_model(args.artifact, ["CPUExecutionProvider"], 1)
    artifact, k = current.artifact, args.top_k
    rng = random.Random(0)
    ts = time.time() - 86400
    window = []
    for _ in range(artifact.manifest.features.window_len):
        ts += rng.expovariate(1 / 120)
        window.append(Event(rng.choice(artifact.items.ids[:5000]),
                            rng.choice(artifact.categories.ids[:500]), rng.randrange(4), ts))
    features = current.model.featurize([window])
    out = current.model.run(features)
    first = np.array([0])
    scores = batch_scores(current, features, out, first, k)
    item_ids = [e.item_id for e in window]
    category_ids = [e.category_id for e in window]
    n = len(window)
    parts: dict[str, Callable[[], object]] = {
        "featurize": lambda: current.model.featurize([window]),
        "ONNX Runtime calls + calibrators": lambda: current.model.run(features),
        "ONNX Runtime calls (network, head)": lambda: current.model.run_uncalibrated(features),
        f"exact item search (k = {k + n})": lambda: current.items.search(
            out["item_query"], k + n, exact=True),
        "item candidates of the window": lambda: item_candidates(
            current.items, out["item_query"], out["item_gate"], out["item_copy"],
            features["item"], k),
        "item candidates and anomaly score of the window": lambda: batch_scores(
            current, features, out, first, k),
        "top items from the candidates": lambda: top_items(
            scores.found, 0, artifact.items, item_ids, features["item"][0], k),
        "top categories": lambda: top_k_ids(out["category_logits"][0], artifact.categories,
                                            category_ids, features["category"][0, -n:], k),
        "decoded answer": lambda: decode_prediction(current, features, out, 0, window, k,
                                                    False, scores, 0),
        "decoded answer + JSON": lambda: orjson.dumps(decode_prediction(
            current, features, out, 0, window, k, False, scores, 0)),
    }
    head = artifact.manifest.head
    if head is not None:
        spec, now = artifact.manifest.features, features["ts"][:, -1]
        x = head_input(tabular_features(features, now, spec), out)
        trees = ort.InferenceSession(str(artifact.head_path), providers=["CPUExecutionProvider"])
        parts["the head's input (recency features)"] = lambda: head_input(
            tabular_features(features, now, spec), out)
        parts["the head's trees (ONNX Runtime)"] = lambda: trees.run(list(head.outputs),
                                                                     {"x": x})
    if args.hnsw:
        twin = hnsw_twin(current.items, artifact.path / ITEM_SEARCH)
        parts["item candidates of the window, HNSW"] = lambda: item_candidates(
            twin, out["item_query"], out["item_gate"], out["item_copy"], features["item"], k)
        approximate = item_candidates(twin, out["item_query"], out["item_gate"],
                                      out["item_copy"], features["item"], k).rows[0][:k]
        shared = len(set(approximate.tolist()) & set(scores.found.rows[0][:k].tolist()))
        print(f"HNSW finds {shared} of the exact top {k}")
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(args.rounds):
        for name, part in parts.items():
            t0 = time.perf_counter()
            part()
            times[name].append(time.perf_counter() - t0)
    print(f"{current.items.rows:,} item rows ({'HNSW' if current.items.ann else 'exact'}), "
          f"window {n}, {args.rounds} rounds")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values) * 1000:.3f} ms |")


if __name__ == "__main__":
    main()
