"""Item retrieval: the artifact's item vectors, their search index, and the item mixture's
best candidates, the one ranking of the item head that the service, the exporter's parity
check and the evaluator share.

The exported graph answers a query q (B, d + 1); the generator's logit of vocabulary row x
is s_x = q . v_x with v_x = [embedding_x, bias_x] (`model.net.scorer.item_vectors`), and the
head's distribution is the mixture

    p(x) = g * exp(s_x) / Z + (1 - g) * copy(x),   Z = sum over every row of exp(s_x)

with g the generator's share and copy(x) the copy weights of the window positions holding x.
Outside the window p is increasing in s, so the k best rows are among the k + T best known
rows by s and the window's T rows: those are the candidates.

Below `ANN_MIN_ROWS` rows the search is exact: a scan of the whole layout, block by block
(never more than `BLOCK` scores per query at once), by the artifact's `item_search.onnx`
under ONNX Runtime (`model.search_graph`: the matrix product, the block's share of Z and its
best rows), keeps the k + T best known rows and Z itself, so p is exactly the network's
mixture. Above it, an HNSW index (faiss, inner product) returns the candidates and Z is
estimated: the candidates' terms exactly (so their probabilities never sum above 1), plus
the rest importance-sampled from a fixed uniform sample of rows stored in the artifact
(each sampled row outside the candidates weighted N / m, 1/Q for a uniform Q): p is then an
estimate of the model's probability.

NumPy, ONNX Runtime and faiss only (no PyTorch): the service imports it. The vectors are
opened memory-mapped (and fed to the scan, not copied into it) and the index as a view of
its file, so worker processes share one page-cache copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import onnxruntime as ort

from model.artifact import (
    ITEM_ANN,
    ITEM_SAMPLE,
    ITEM_SEARCH,
    ITEM_VECTORS,
    Artifact,
    ItemIndexInfo,
    sha256_of,
)
from model.features import FIRST_KNOWN

ANN_MIN_ROWS = 100_000  # measured: docs/benchmarks-service.md, "Item retrieval"
BLOCK = 65_536  # exact search: rows scored per block (64 queries x BLOCK: 16 MB)
SAMPLE_ROWS = 4096  # the approximate search's fixed sample for Z
CONNECTIVITY = 16  # HNSW graph degree
EXPANSION_ADD = 128
EXPANSION_SEARCH = 128


def row_sample(rows: int, seed: int) -> np.ndarray:
    """The fixed uniform sample of rows (sorted int64) the approximate search estimates Z on."""
    sample = np.random.default_rng(seed).choice(rows, size=min(SAMPLE_ROWS, rows), replace=False)
    return np.sort(sample).astype(np.int64)


def write_item_index(out: Path, vectors: np.ndarray, first_oov: int, search: bytes, *,
                     ann: bool, seed: int = 0) -> ItemIndexInfo:
    """Write the item vectors (rows, d + 1), the fixed row sample, the exact scan's graph
    (`search`, from `model.search_graph`) and, with `ann`, the HNSW index of the known rows
    (FIRST_KNOWN .. first_oov) into `out`; returns their entry."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    rows, dim = vectors.shape
    np.save(out / ITEM_VECTORS, vectors)
    np.save(out / ITEM_SAMPLE, row_sample(rows, seed))
    (out / ITEM_SEARCH).write_bytes(search)
    ann_sha = None
    if ann:  # the known rows in order: the index's i-th vector is row FIRST_KNOWN + i
        index = faiss.IndexHNSWFlat(dim, CONNECTIVITY, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EXPANSION_ADD
        index.add(vectors[FIRST_KNOWN:first_oov])
        faiss.write_index(index, str(out / ITEM_ANN))
        ann_sha = sha256_of(out / ITEM_ANN)
    return ItemIndexInfo(
        rows=rows, dim=dim, vectors_sha256=sha256_of(out / ITEM_VECTORS),
        sample_sha256=sha256_of(out / ITEM_SAMPLE), search_sha256=sha256_of(out / ITEM_SEARCH),
        ann="faiss-hnsw" if ann else None, ann_sha256=ann_sha,
    )


@dataclass(frozen=True)
class Hits:
    """A search's answer for B queries: the best known rows (B, k) by generator logit, best
    first (-1 where fewer were found), and, from the exact search, log Z (B,), the log of the
    softmax's normaliser over the whole layout (None from the approximate one)."""

    rows: np.ndarray
    log_z: np.ndarray | None


class ItemIndex:
    """An artifact's item vectors, memory-mapped, the exact scan (`search`: the serialized
    graph of `model.search_graph`, or its file) under ONNX Runtime with `threads` threads
    (0: its default), and the approximate index when there is one."""

    def __init__(self, vectors: np.ndarray, sample: np.ndarray, first_oov: int,
                 search: bytes | Path, ann: faiss.Index | None = None, *,
                 threads: int = 0) -> None:
        self.vectors = vectors  # (rows, d + 1) float32, the vocabulary layout
        self.rows = len(vectors)
        self.sample = sample  # (m,) int64 rows: the fixed uniform sample for Z
        self.first_oov = first_oov
        self.ann = ann
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._scan = ort.InferenceSession(search if isinstance(search, bytes) else str(search),
                                          options, providers=["CPUExecutionProvider"])

    @classmethod
    def open(cls, artifact: Artifact, threads: int = 0) -> ItemIndex:
        """The artifact's vectors memory-mapped, and its index mapped, not read: worker
        processes share one page-cache copy of each."""
        ann = None
        if artifact.manifest.item_index.ann is not None:
            ann = faiss.read_index(str(artifact.path / ITEM_ANN), faiss.IO_FLAG_MMAP_IFC)
            faiss.ParameterSpace().set_index_parameter(ann, "efSearch", EXPANSION_SEARCH)
        return cls(np.load(artifact.path / ITEM_VECTORS, mmap_mode="r"),
                   np.load(artifact.path / ITEM_SAMPLE), artifact.items.first_oov,
                   artifact.path / ITEM_SEARCH, ann, threads=threads)

    @property
    def n_known(self) -> int:
        return self.first_oov - FIRST_KNOWN

    def search(self, query: np.ndarray, k: int, *, exact: bool = False) -> Hits:
        """The k best known rows of each query (B, d + 1); approximate when the artifact has
        an index and not `exact`."""
        k = min(k, self.n_known)
        query = np.ascontiguousarray(query, dtype=np.float32)
        if self.ann is None or exact:
            return self._exact(query, k)
        _, found = self.ann.search(query, k)
        return Hits(np.where(found >= 0, found + FIRST_KNOWN, -1).astype(np.int64), None)

    def _exact(self, query: np.ndarray, k: int) -> Hits:
        n = len(query)
        best_rows = np.full((n, 0), -1, dtype=np.int64)
        best = np.full((n, 0), -np.inf, dtype=np.float32)
        peak = np.full(n, -np.inf)
        total = np.zeros(n)
        for lo in range(0, self.rows, BLOCK):
            hi = min(lo + BLOCK, self.rows)
            known_lo, known_hi = max(lo, FIRST_KNOWN), max(min(hi, self.first_oov), lo)
            block_peak, block_total, scores, rows = self._scan.run(None, {
                "query": query, "vectors": self.vectors[lo:hi],
                "known_from": np.array([known_lo - lo]), "known_to": np.array([known_hi - lo]),
                "k": np.array([min(k, max(known_hi - known_lo, 0))]),
            })
            block_peak = block_peak[:, 0].astype(np.float64)
            new_peak = np.maximum(peak, block_peak)
            total = total * np.exp(peak - new_peak) + block_total * np.exp(block_peak - new_peak)
            peak = new_peak
            best = np.concatenate([best, scores], axis=1)
            best_rows = np.concatenate([best_rows, rows + known_lo], axis=1)
            if best.shape[1] > k:
                keep = np.argpartition(-best, k - 1, axis=1)[:, :k]
                best = np.take_along_axis(best, keep, axis=1)
                best_rows = np.take_along_axis(best_rows, keep, axis=1)
        order = np.argsort(-best, axis=1, kind="stable")
        return Hits(np.take_along_axis(best_rows, order, axis=1), peak + np.log(total))

    def estimated_log_z(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """log Z for the queries (B, d + 1): the terms of the rows (B, C) exactly (-1: none),
        the others' importance-sampled from the fixed uniform sample (each sampled row
        outside them weighted rows / sample size, 1 / Q)."""
        retrieved = np.where(rows >= 0, self.logits(query, rows.clip(min=0)), -np.inf)
        sampled = query @ self.vectors[self.sample].T  # (B, m)
        outside = ~(self.sample[None, :, None] == rows[:, None, :]).any(axis=2)  # (B, m)
        weight = np.log(self.rows / len(self.sample))
        terms = np.concatenate([retrieved, np.where(outside, sampled + weight, -np.inf)], axis=1)
        peak = terms.max(axis=1)
        return peak + np.log(np.exp(terms - peak[:, None]).sum(axis=1))

    def logits(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The generator's logits s (B, C) of the rows (B, C) for the queries (B, d + 1)."""
        return np.einsum("bd,bcd->bc", query, self.vectors[rows.ravel()].reshape(
            *rows.shape, -1), dtype=np.float32)


@dataclass(frozen=True)
class Candidates:
    """The item head's best rows (B, C), best first, with their mixture probability p
    (B, C); rows -1 (p -1) where a window had fewer distinct candidates."""

    rows: np.ndarray
    prob: np.ndarray


def item_candidates(index: ItemIndex, query: np.ndarray, gate: np.ndarray, copy: np.ndarray,
                    window: np.ndarray, k: int, *, exact: bool = False) -> Candidates:
    """The k best items of the mixture (at least; every candidate is returned): the k + T
    best known rows by generator logit, merged with the window's own rows (T columns of
    `window`, the featurized item input, hashed OOV buckets included), each scored with
    p = g exp(s) / Z + (1 - g) copy. query (B, d + 1), gate (B,), copy (B, T) are the graph's
    item_query, item_gate and item_copy."""
    hits = index.search(query, k + window.shape[1], exact=exact)
    rows = np.concatenate([hits.rows, np.where(window >= FIRST_KNOWN, window, -1)], axis=1)
    rows = np.sort(rows, axis=1)
    rows[:, 1:][rows[:, 1:] == rows[:, :-1]] = -1  # each row once
    valid = rows >= 0
    log_z = index.estimated_log_z(query, rows) if hits.log_z is None else hits.log_z
    s = index.logits(query, rows.clip(min=0)).astype(np.float64)
    copied = (copy[:, None, :] * (window[:, None, :] == rows[:, :, None])).sum(axis=2)
    g = gate.astype(np.float64)[:, None]
    prob = np.where(valid, g * np.exp(s - log_z[:, None]) + (1.0 - g) * copied, -1.0)
    order = np.argsort(-prob, axis=1, kind="stable")
    return Candidates(np.where(np.take_along_axis(valid, order, axis=1),
                               np.take_along_axis(rows, order, axis=1), -1),
                      np.take_along_axis(prob, order, axis=1))
