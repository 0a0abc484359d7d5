"""The `Predictor`: the current model, the micro-batcher in front of it, and hot reload.

    predictor = Predictor(artifact_dir, ...)
    await predictor.start()          # load the artifact (refused artifacts leave it unready)
    await predictor.predict(windows) # micro-batched with concurrent callers (app.inference.batcher)
    await predictor.reload()         # check a new artifact, then swap it in atomically
    await predictor.close()
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from app.errors import ArtifactRejected, ModelNotReady
from app.inference.batcher import Batcher, Request
from app.inference.decode import (
    Prediction,
    batch_scores,
    decode_prediction,
    prior_prediction,
)
from app.inference.slot import LoadedModel, Signature, load_model, manifest_signature
from app.metrics import Metrics
from app.schemas import TOP_K_DEFAULT
from model.features import Event, occlusions
from model.runtime import PREFERRED_PROVIDERS

log = logging.getLogger(__name__)

Window = Sequence[Event]


class Predictor:
    """The current model, a micro-batcher in front of it, and atomic hot reload."""

    def __init__(
        self,
        artifact_dir: Path,
        *,
        metrics: Metrics,
        batch_wait_ms: float = 0.0,
        max_batch: int = 64,
        providers: Sequence[str] = PREFERRED_PROVIDERS,
        model_threads: int = 1,
        inline_rows: int = 4,
        int8: bool = False,
        candidate: bool = False,
    ) -> None:
        """`candidate`: the second model of a shadow or A/B setup, reported as
        seqcast_candidate_info instead of seqcast_model_info and seqcast_model_ready."""
        self.artifact_dir = Path(artifact_dir)
        self.candidate = candidate
        self.metrics = metrics
        self.providers = tuple(providers)
        self.model_threads = model_threads
        self.int8 = int8
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self._rejected_signature: Signature | None = None
        self._batcher = Batcher(
            self._score, lambda: self.current, batch_wait=batch_wait_ms / 1000.0,
            max_batch=max_batch, inline_rows=inline_rows,
        )
        self._reload_lock = asyncio.Lock()

    # -- life -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the artifact (a refused one leaves the predictor unready) and start batching."""
        if self.model_threads:
            # the item search's pools too (numpy's BLAS, faiss's OpenMP): on a busy core a
            # pool's spinning threads cost many times the search itself
            threadpool_limits(self.model_threads)
        self._batcher.start()
        try:
            await self.reload(force=True)
        except ArtifactRejected as exc:
            log.error("no model: %s", exc.message)

    async def close(self) -> None:
        await self._batcher.close()
        if not self.candidate:
            self.metrics.model_ready.set(0)

    @property
    def ready(self) -> bool:
        return self.current is not None

    def require(self) -> LoadedModel:
        current = self.current
        if current is None:
            raise ModelNotReady(f"no model loaded from {self.artifact_dir}: {self.last_error}")
        return current

    # -- reload -----------------------------------------------------------------------

    async def reload(self, *, force: bool = False) -> tuple[bool, str | None]:
        """Load the artifact directory again if it changed (or `force`) and swap it in.

        Returns (swapped, previous version). Raises ArtifactRejected with the reason when
        the new artifact fails its checks; the current model keeps serving.
        """
        async with self._reload_lock:
            previous = self.current
            if (
                not force
                and previous is not None
                and manifest_signature(self.artifact_dir) == previous.signature
            ):
                return False, previous.version
            try:
                loaded = await asyncio.get_running_loop().run_in_executor(
                    None, partial(load_model, int8=self.int8),
                    self.artifact_dir, self.providers, self.model_threads,
                )
            except ArtifactRejected as exc:
                self.last_error = exc.message
                self._rejected_signature = manifest_signature(self.artifact_dir)
                raise
            self.current = loaded
            self.last_error = None
            info = self.metrics.candidate_info if self.candidate else self.metrics.model_info
            if previous is not None:
                info.labels(previous.version, previous.provider).set(0)
            info.labels(loaded.version, loaded.provider).set(1)
            self.metrics.model_loaded(loaded.artifact.manifest)
            if not self.candidate:
                self.metrics.model_ready.set(1)
            log.info("%s model %s from %s/%s on %s",
                     "candidate" if self.candidate else "serving", loaded.version,
                     self.artifact_dir, loaded.onnx_file, loaded.model.providers)
            return True, None if previous is None else previous.version

    async def watch(self, interval: float) -> None:
        """Run forever (as a task): reload when the artifact's manifest changes."""
        while True:
            await asyncio.sleep(interval)
            signature = manifest_signature(self.artifact_dir)
            current = self.current
            if signature is None or signature == self._rejected_signature:
                continue
            if current is not None and signature == current.signature:
                continue
            try:
                await self.reload()
            except ArtifactRejected as exc:
                log.error("new artifact refused, keeping %s: %s",
                          current.version if current else "no model", exc.message)

    # -- predict ----------------------------------------------------------------------

    async def predict(
        self, windows: Sequence[Window], *, top_k: int = TOP_K_DEFAULT, explain: bool = False,
        at: float | None = None,
    ) -> list[Prediction]:
        """One prediction per window (time order, oldest first; may be empty = cold start),
        about the moment `at` (unix seconds; default: now): purchase and return
        probabilities are within the horizon from then."""
        current = self.require()
        kept = [list(w[-current.artifact.manifest.features.window_len :]) for w in windows]
        if all(len(w) == 0 for w in kept):
            return [self._observed(prior_prediction(current, top_k, explain)) for _ in kept]
        future: asyncio.Future[list[Prediction]] = asyncio.get_running_loop().create_future()
        self._batcher.submit(Request(kept, top_k, explain, future,
                                    time.time() if at is None else at))
        return await future

    def _score(self, current: LoadedModel, batch: list[Request]) -> list[list[Prediction]]:
        """One model call for every window (and occlusion) of the batch (the batcher calls
        it, in its worker thread or on the loop)."""
        rows: list[list[Event]] = []
        first: list[int] = []  # the batch row of each window (its occlusions follow it)
        asked: list[float] = []  # when each row's request came
        for request in batch:
            for window in request.windows:
                if window:
                    first.append(len(rows))
                    rows.append(window)
                    if request.explain:
                        rows.extend(w for w in occlusions(window) if w)
            asked.extend([request.now] * (len(rows) - len(asked)))
        start = time.perf_counter()
        features = current.model.featurize(rows)
        outputs = current.model.run(features, np.array(asked).astype(np.int64))
        self.metrics.inference_duration.observe(time.perf_counter() - start)
        self.metrics.batch_size.observe(len(rows))
        # one item search and one anomaly scoring for all the batch's windows
        scores = batch_scores(current, features, outputs, np.array(first, dtype=np.int64),
                              max(request.top_k for request in batch))
        results: list[list[Prediction]] = []
        served = 0
        for request in batch:
            answers = []
            for window in request.windows:
                if not window:
                    answers.append(self._observed(
                        prior_prediction(current, request.top_k, request.explain)))
                    continue
                answers.append(self._observed(decode_prediction(
                    current, features, outputs, first[served], window, request.top_k,
                    request.explain, scores, served)))
                served += 1
            results.append(answers)
        return results

    def _observed(self, prediction: Prediction) -> Prediction:
        """The prediction, counted in the served-answers histograms."""
        self.metrics.window_length.observe(prediction["window_length"])
        self.metrics.purchase_probability.observe(prediction["purchase_probability"])
        return prediction
