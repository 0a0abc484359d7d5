"""The network as a `Scorer`: its vocabulary layout mapped onto the log's code space.

The Transformer is scored through `model.runtime.OnnxModel` on the exported artifact, the
same graph the service runs, its probabilities calibrated by the manifest's calibrators as
`OnnxModel.run` calibrates them (the network's own are kept as `Scores.uncalibrated`, the
report's "before"), on windows featurized by `model.features.featurize_indexed`
with the artifact's vocabularies (the same featurization as the service's
`featurize_windows`, vectorized). Its category logits are mapped from the vocabulary
layout to the log's code space: ids outside the vocabulary score -inf, hashed OOV bucket
columns are never ranked themselves, but an id outside the vocabulary that occurs in the
point's window is ranked by its bucket's score, as the service does
(`model.features.window_oov`: the copy heads put probability on the window's own rows).
Categories are ranked through `model.evaluation.ranking.rank_dense`, block by block of
codes, never as a (points x codes) matrix. Items are ranked through the service's own
path, `model.retrieval.item_candidates` on the artifact's item index, with the same window
rule, into a `Ranked` with the TOP_K best codes; when the index is approximate, the exact
top-K of the same points is computed as well and `ann_recall` says how much of it the
approximate search found.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np

from model.artifact import Artifact
from model.calibration import Calibrators
from model.evaluation.protocol import Ranked, Scores
from model.evaluation.ranking import Cells, DenseScores, rank_dense
from model.evaluation.scoring import RECALL_K
from model.features import Features, FeatureSpec, Vocab, featurize_indexed
from model.retrieval import Candidates, ItemIndex, item_candidates
from model.runtime import OnnxModel
from model.sequences import EventLog, Points, WindowRows, vocab_index

logger = logging.getLogger(__name__)


def code_columns(raw_ids: np.ndarray, vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """For each code of a log's id table: its vocabulary index, and whether it is a known id
    (a column the model ranks) rather than missing or a hashed OOV bucket."""
    index = vocab_index(raw_ids, vocab)
    return index, vocab.is_known(index)


def window_oov_cells(
    logits: np.ndarray, index: np.ndarray, oov: np.ndarray, point: np.ndarray,
    codes: np.ndarray,
) -> Cells:
    """The scores of the codes outside the vocabulary that occur in a point's window: their
    bucket's, `model.features.window_oov` over code arrays, the service's rule.

    logits (B, vocab rows); index/oov per code (vocabulary row, is a hashed bucket);
    point/codes the (point, code) of every window event. Distinct codes of one window
    sharing a bucket split it (log of their count subtracted)."""
    keep = oov[codes]
    pairs = np.unique(np.stack([point[keep], codes[keep]], axis=1), axis=0)  # (P, 2)
    b, c = pairs[:, 0], pairs[:, 1]
    rows = index[c]
    _, inverse, counts = np.unique(
        np.stack([b, rows], axis=1), axis=0, return_inverse=True, return_counts=True
    )
    return Cells.highest(b, c, logits[b, rows] - np.log(counts[inverse.ravel()]))


def head_scores(logits: np.ndarray, index: np.ndarray, known: np.ndarray,
                cells: Cells) -> DenseScores:
    """A head's logits (B, vocab rows) as scores of log codes: a known id its row's logit,
    a window's id outside the vocabulary its cell, any other code -inf."""

    def scores(codes: np.ndarray) -> np.ndarray:
        if codes.ndim == 2:  # (n, 1): each point's own code
            out = np.take_along_axis(logits, index[codes], axis=1)
            out[~known[codes]] = -np.inf
        else:
            out = logits[:, index[codes]]
            out[:, ~known[codes]] = -np.inf
        cells.put(out, codes)
        return out

    return scores


# The network's outputs for featurized windows asked about at a moment (unix seconds each).
Predict = Callable[[Features, np.ndarray], Mapping[str, np.ndarray]]

TOP_K = RECALL_K  # the item codes a point's `Ranked` lists (a target below it is a miss)


class VocabScorer:
    """A network (ONNX or PyTorch, anything with the artifact's outputs) as a `Scorer`."""

    def __init__(self, predict: Predict, spec: FeatureSpec, items: Vocab, categories: Vocab,
                 item_rows: ItemIndex, calibrators: Calibrators | None = None):
        self.predict = predict  # with calibrators: the network's own probabilities
        self.calibrators = calibrators
        self.spec = spec
        self.items = items
        self.categories = categories
        self.item_rows = item_rows
        self._log: EventLog | None = None
        self.ann_found = 0  # exact top-K codes the approximate search also returned
        self.ann_wanted = 0  # exact top-K codes, over the points scored

    @property
    def ann_recall(self) -> float | None:
        """Recall@TOP_K of the approximate item search against the exact one, over the points
        scored; None with exact search."""
        if self.item_rows.ann is None or self.ann_wanted == 0:
            return None
        return self.ann_found / self.ann_wanted

    def _bind(self, log: EventLog) -> None:
        if self._log is log:
            return
        self._log = log
        self.item_index, self.item_known = code_columns(log.item_ids, self.items)
        self.category_index, self.category_known = code_columns(log.category_ids, self.categories)
        self.item_oov = self.items.is_oov(self.item_index)
        known = np.flatnonzero(self.item_known)
        self.row_code = np.full(self.items.size, -1, dtype=np.int64)  # known row -> its code
        self.row_code[self.item_index[known]] = known
        self.category_oov = self.categories.is_oov(self.category_index)

    def features(self, log: EventLog, points: Points) -> Features:
        """Model inputs of the points' windows (what `featurize_windows` makes of the same
        events as raw `Event`s)."""
        return self._features(log, points.window_rows())

    def _features(self, log: EventLog, windows: WindowRows) -> Features:
        self._bind(log)
        rows = windows.events
        return featurize_indexed(
            self.item_index[log.item[rows]],
            self.category_index[log.category[rows]],
            log.behavior[rows],
            log.ts[rows],
            windows.starts,
            windows.lengths,
            self.spec,
        )

    def score(self, log: EventLog, points: Points) -> Scores:
        windows = points.window_rows()
        features = self._features(log, windows)
        out = self.predict(features, points.now)
        uncalibrated = None
        if self.calibrators is not None:
            uncalibrated = Scores(
                behavior=np.asarray(out["behavior_probs"], dtype=np.float64),
                purchase=np.asarray(out["purchase_prob"], dtype=np.float64),
                returns=np.asarray(out["return_prob"], dtype=np.float64),
            )
            out = self.calibrators.apply(dict(out))
        point = windows.window  # the point of each window event

        def ranked(logits: np.ndarray, index: np.ndarray, known: np.ndarray, oov: np.ndarray,
                   codes: np.ndarray) -> Ranked:
            logits = np.asarray(logits)
            cells = window_oov_cells(logits, index, oov, point, codes[windows.events])
            return rank_dense(head_scores(logits, index, known, cells), codes[points.target],
                              len(index))

        return Scores(
            behavior=np.asarray(out["behavior_probs"], dtype=np.float64),
            purchase=np.asarray(out["purchase_prob"], dtype=np.float64),
            returns=np.asarray(out["return_prob"], dtype=np.float64),
            category=ranked(out["category_logits"], self.category_index, self.category_known,
                            self.category_oov, log.category),
            item=self._ranked_items(log, out, features, windows, log.item[points.target]),
            uncalibrated=uncalibrated,
        )

    def _ranked_items(self, log: EventLog, out: Mapping[str, np.ndarray], features: Features,
                      windows: WindowRows, targets: np.ndarray) -> Ranked:
        def top(exact: bool) -> np.ndarray:
            found = item_candidates(self.item_rows, out["item_query"], out["item_gate"],
                                    out["item_copy"], features["item"], TOP_K, exact=exact)
            return self._top_codes(found, log, windows)

        best = top(exact=False)
        if self.item_rows.ann is not None:
            exact = top(exact=True)
            same = (best[:, :, None] == exact[:, None, :]) & (exact[:, None, :] >= 0)
            self.ann_found += int(same.any(axis=1).sum())
            self.ann_wanted += int((exact >= 0).sum())
        hit = best == targets[:, None]
        in_window = [bool(np.isin(t, log.item[windows.events[s : s + n]]))
                     for t, s, n in zip(targets, windows.starts, windows.lengths, strict=True)]
        seen = self.item_known[targets] | (self.item_oov[targets] & np.array(in_window, bool))
        return Ranked(better=np.where(hit.any(axis=1), hit.argmax(axis=1), TOP_K).astype(float),
                      ties=np.zeros(len(targets)), seen=seen, top=best)

    def _top_codes(self, found: Candidates, log: EventLog, windows: WindowRows) -> np.ndarray:
        """(n, TOP_K) the best codes of each point, -1 past its candidates: known rows as their
        code, the window's codes outside the vocabulary by their bucket's probability, split
        between the window's codes sharing it (`window_oov_cells`'s rule)."""
        top = np.full((len(found.rows), TOP_K), -1, dtype=np.int64)
        first_oov = self.items.first_oov
        for b, (rows, prob) in enumerate(zip(found.rows, found.prob, strict=True)):
            known = (rows >= 0) & (rows < first_oov)
            code = self.row_code[rows[known]]
            codes, scores = list(code[code >= 0]), list(prob[known][code >= 0])
            window = np.unique(log.item[windows.events[windows.starts[b] : windows.starts[b]
                                                         + windows.lengths[b]]])
            oov = window[self.item_oov[window]]
            if len(oov):
                bucket = self.item_index[oov]
                shared = np.unique(bucket, return_counts=True)
                count = dict(zip(shared[0].tolist(), shared[1].tolist(), strict=True))
                p = dict(zip(rows.tolist(), prob.tolist(), strict=True))
                codes += oov.tolist()
                scores += [p.get(r, 0.0) / count[r] for r in bucket.tolist()]
            order = np.argsort(-np.asarray(scores), kind="stable")[:TOP_K]
            top[b, : len(order)] = np.asarray(codes, dtype=np.int64)[order]
        return top


def onnx_scorer(artifact: Artifact, *, int8: bool = False) -> VocabScorer:
    model = OnnxModel(artifact, int8=int8)
    logger.info("evaluating %s on %s", artifact.onnx_path, model.providers)
    return VocabScorer(model.run_uncalibrated, artifact.manifest.features, artifact.items,
                       artifact.categories, ItemIndex.open(artifact),
                       calibrators=artifact.manifest.calibrators)
