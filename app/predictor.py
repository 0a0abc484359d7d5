"""Inference: the exported model behind a `Predictor` with an explicit life.

    predictor = Predictor(artifact_dir, ...)
    await predictor.start()          # load the artifact (refused artifacts leave it unready)
    await predictor.predict(windows) # micro-batched with concurrent callers
    await predictor.reload()         # check a new artifact, then swap it in atomically
    await predictor.close()

Concurrent requests are coalesced: a single batcher task takes everything queued (up to
`max_batch` windows) into one ONNX Runtime call, run off the event loop in one worker
thread. A lone request of at most `inline_rows` model rows on the CPU provider is scored on
the loop's thread instead: the hop to the worker thread and back (two thread wake-ups) cost
more than such a call on the machines measured (docs/benchmarks-service.md); on CUDA the
call waits for the device, which the worker thread does without blocking the loop. Under
load (the last batch served several requests) the batcher can also wait up to
`batch_wait_ms` for more (default 0: everything that queued during the previous call is
batch enough); a lone client never waits. A batch runs entirely on the model that was
current when it started, so a reload never changes a model under a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import ArtifactRejected, ModelNotReady
from app.metrics import Metrics
from model.artifact import MANIFEST, Artifact, ArtifactError, load_artifact
from model.features import (
    BEHAVIOR_NAMES,
    FIRST_KNOWN,
    Event,
    Features,
    Vocab,
    occlusions,
    window_oov,
)
from model.runtime import PREFERRED_PROVIDERS, OnnxModel, Outputs

log = logging.getLogger(__name__)

Window = Sequence[Event]
Prediction = dict[str, Any]
"""A prediction in the JSON shape of `app.schemas.PredictionOut` (without `user_id`), built
as plain dicts and floats: the hot route serializes it directly, the others validate it.
Keys whose value would be null are left out, as `response_model_exclude_none` does."""

Signature = tuple[int, int, int]


def manifest_signature(artifact_dir: Path) -> Signature | None:
    """What changes when a new manifest is written (it is written last, by rename)."""
    try:
        st = (artifact_dir / MANIFEST).stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass(frozen=True)
class LoadedModel:
    """One loaded artifact: swapped as a whole, never mutated."""

    model: OnnxModel
    signature: Signature | None
    loaded_at: datetime
    surprise_quantiles: np.ndarray = field(init=False, repr=False)
    surprise_levels: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        quantiles = np.asarray(self.artifact.manifest.surprise_quantiles, dtype=np.float64)
        object.__setattr__(self, "surprise_quantiles", quantiles)
        object.__setattr__(self, "surprise_levels", np.linspace(0.0, 1.0, len(quantiles)))

    def surprise_percentile(self, surprise: float) -> float:
        """Where a window's mean surprise falls among training windows (0..1)."""
        if len(self.surprise_quantiles) == 0:
            return float("nan")
        return float(np.interp(surprise, self.surprise_quantiles, self.surprise_levels))

    @property
    def artifact(self) -> Artifact:
        return self.model.artifact

    @property
    def version(self) -> str:
        return self.artifact.manifest.model_version

    @property
    def provider(self) -> str:
        return self.model.providers[0]

    @property
    def on_cpu(self) -> bool:
        return self.provider == "CPUExecutionProvider"


def top_k_ids(logits: np.ndarray, vocab: Vocab, window_ids: Sequence[str | None],
              window_rows: np.ndarray, k: int) -> list[dict[str, Any]]:
    """The k most probable ids of one row of scores (a softmax of them is the head's
    distribution), best first, as `{"id", "score"}` with the probability among the candidates:
    the known ids, plus the window's ids outside the vocabulary, each scored by its hashed
    bucket (`model.features.window_oov`: the copy heads put probability there).
    window_rows are the window's featurized rows of this vocabulary."""
    extra_ids, extra_rows, extra_shift = window_oov(vocab, window_ids, window_rows)
    scores = logits[FIRST_KNOWN : vocab.first_oov]
    if extra_ids:
        scores = np.concatenate([scores, logits[extra_rows] - extra_shift.astype(scores.dtype)])
    k = min(k, len(scores))
    if k == 0:
        return []
    weights = np.exp(scores - scores.max())  # the softmax, unnormalised
    total = float(weights.sum())
    part = np.argpartition(scores, len(scores) - k)[-k:]  # no negated copy of every score
    order = part[np.argsort(-scores[part], kind="stable")]
    probs = weights[order].astype(np.float64) / total
    n_known, ids = vocab.n_known, vocab.ids
    return [
        {"id": ids[i] if i < n_known else extra_ids[i - n_known], "score": p}
        for i, p in zip(order.tolist(), probs.tolist(), strict=True)
    ]


def check_windows(artifact: Artifact) -> list[list[Event]]:
    """A few synthetic windows exercising known ids, unknown ids, every behavior, full length."""
    items = artifact.items.ids[:8] or ["unknown-item"]
    categories: list[str | None] = list(artifact.categories.ids[:4]) or [None]
    n = artifact.manifest.features.window_len
    t0 = 1_700_000_000.0
    full = [
        Event(items[i % len(items)], categories[i % len(categories)], i % 4, t0 + 60.0 * i)
        for i in range(n)
    ]
    return [
        full[:1],
        [Event("never-seen-item", "never-seen-category", 2, t0), Event(items[0], None, 3, t0 + 5)],
        full[: max(1, n // 2)],
        full,
    ]


def check_model(model: OnnxModel) -> None:
    """Refuse a model whose outputs are malformed or that depends on batch padding."""
    artifact = model.artifact
    windows = check_windows(artifact)
    n = len(windows)
    out = model.score(windows)
    width = max(min(len(w), artifact.manifest.features.window_len) for w in windows)
    shapes = {
        "behavior_probs": (n, len(artifact.manifest.behaviors)),
        "purchase_prob": (n,),
        "return_prob": (n,),
        "category_logits": (n, artifact.categories.size),
        "item_logits": (n, artifact.items.size),
        "event_surprise": (n, width),
    }
    for name, shape in shapes.items():
        if name not in out:
            raise ArtifactRejected(f"the model has no output {name!r}")
        if out[name].shape != shape:
            raise ArtifactRejected(f"output {name} has shape {out[name].shape}, expected {shape}")
        if not np.all(np.isfinite(out[name])):
            raise ArtifactRejected(f"output {name} has non-finite values")
    for name in ("behavior_probs", "purchase_prob", "return_prob"):
        if np.any(out[name] < 0) or np.any(out[name] > 1):
            raise ArtifactRejected(f"output {name} has values outside [0, 1]")
    if not np.allclose(out["behavior_probs"].sum(axis=1), 1.0, atol=1e-3):
        raise ArtifactRejected("behavior_probs rows do not sum to 1")
    tolerance = max(artifact.manifest.parity_tolerance, 1e-5)
    for i, window in enumerate(windows):
        alone = model.score([window])["purchase_prob"][0]
        if abs(float(alone) - float(out["purchase_prob"][i])) > tolerance:
            raise ArtifactRejected(
                f"purchase_prob of a window changes with batch padding by "
                f"{abs(alone - out['purchase_prob'][i]):.2e} > tolerance {tolerance:.1e}"
            )


@dataclass
class _Request:
    windows: list[list[Event]]
    top_k: int
    explain: bool
    future: asyncio.Future[list[Prediction]]
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = sum(len(w) + 1 if self.explain else 1 for w in self.windows if w)


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
    ) -> None:
        self.artifact_dir = Path(artifact_dir)
        self.metrics = metrics
        self.batch_wait = batch_wait_ms / 1000.0
        self.max_batch = max_batch
        self.providers = tuple(providers)
        self.model_threads = model_threads
        self.inline_rows = inline_rows
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self._rejected_signature: Signature | None = None
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="seqcast-model")
        self._batcher: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()
        self._under_load = False

    # -- life -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the artifact (a refused one leaves the predictor unready) and start batching."""
        self._batcher = asyncio.create_task(self._batch_loop(), name="seqcast-batcher")
        try:
            await self.reload(force=True)
        except ArtifactRejected as exc:
            log.error("no model: %s", exc.message)

    async def close(self) -> None:
        if self._batcher is not None:
            self._batcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._batcher
        while not self._queue.empty():
            request = self._queue.get_nowait()
            if not request.future.done():
                request.future.set_exception(ModelNotReady("the service is shutting down"))
        self._executor.shutdown(wait=True)
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

    def _load(self) -> LoadedModel:
        signature = manifest_signature(self.artifact_dir)
        try:
            artifact = load_artifact(self.artifact_dir, verify=True)
        except (ArtifactError, OSError, KeyError, TypeError, ValueError) as exc:
            raise ArtifactRejected(f"cannot load {self.artifact_dir}: {exc}") from exc
        try:
            model = OnnxModel(artifact, self.providers, intra_op_threads=self.model_threads)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ArtifactRejected(f"onnxruntime cannot open the model: {exc}") from exc
        try:
            check_model(model)
        except ArtifactRejected:
            raise
        except Exception as exc:  # a model that fails to run is refused, whatever the error
            raise ArtifactRejected(f"the model fails on check windows: {exc}") from exc
        return LoadedModel(model, signature, datetime.now(timezone.utc))

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
                loaded = await asyncio.get_running_loop().run_in_executor(None, self._load)
            except ArtifactRejected as exc:
                self.last_error = exc.message
                self._rejected_signature = manifest_signature(self.artifact_dir)
                raise
            self.current = loaded
            self.last_error = None
            if previous is not None:
                self.metrics.model_info.labels(previous.version, previous.provider).set(0)
            self.metrics.model_info.labels(loaded.version, loaded.provider).set(1)
            self.metrics.model_ready.set(1)
            log.info("serving model %s from %s on %s", loaded.version, self.artifact_dir,
                     loaded.model.providers)
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
        self, windows: Sequence[Window], *, top_k: int = 10, explain: bool = False
    ) -> list[Prediction]:
        """One prediction per window (time order, oldest first; may be empty = cold start)."""
        current = self.require()
        kept = [list(w[-current.artifact.manifest.features.window_len :]) for w in windows]
        if all(len(w) == 0 for w in kept):
            return [self._prior(current, top_k, explain) for _ in kept]
        future: asyncio.Future[list[Prediction]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(kept, top_k, explain, future))
        return await future

    async def _batch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            rows = batch[0].rows
            deadline = loop.time() + (self.batch_wait if self._under_load else 0.0)
            while rows < self.max_batch:
                if not self._queue.empty():
                    request = self._queue.get_nowait()
                else:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        request = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                batch.append(request)
                rows += request.rows
            self._under_load = len(batch) > 1
            current = self.current
            if current is None:
                for request in batch:
                    request.future.set_exception(ModelNotReady("the model was unloaded"))
                continue
            try:
                if len(batch) == 1 and rows <= self.inline_rows and current.on_cpu:
                    results = self._run(current, batch)
                else:
                    results = await loop.run_in_executor(self._executor, self._run, current,
                                                         batch)
            except Exception as exc:  # fail the callers, keep the batcher alive
                log.exception("model call failed")
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)
                continue
            for request, result in zip(batch, results, strict=True):
                if not request.future.done():
                    request.future.set_result(result)

    def _run(self, current: LoadedModel, batch: list[_Request]) -> list[list[Prediction]]:
        """Worker thread: one model call for every window (and occlusion) of the batch."""
        rows: list[list[Event]] = []
        for request in batch:
            for window in request.windows:
                if window:
                    rows.append(window)
                    if request.explain:
                        rows.extend(w for w in occlusions(window) if w)
        start = time.perf_counter()
        features = current.model.featurize(rows)
        outputs = current.model.run(features)
        self.metrics.inference_duration.observe(time.perf_counter() - start)
        self.metrics.batch_size.observe(len(rows))
        results: list[list[Prediction]] = []
        row = 0
        for request in batch:
            answers = []
            for window in request.windows:
                if not window:
                    answers.append(self._prior(current, request.top_k, request.explain))
                    continue
                answers.append(self._decode(current, features, outputs, row, window, request))
                row += 1
                if request.explain:
                    row += sum(1 for w in occlusions(window) if w)
            results.append(answers)
        return results

    def _decode(
        self, current: LoadedModel, features: Features, out: Outputs, row: int,
        window: list[Event], request: _Request,
    ) -> Prediction:
        artifact = current.artifact
        manifest = artifact.manifest
        purchase = float(out["purchase_prob"][row])
        n = len(window)  # the row's last n columns (left padding before them)
        prediction: Prediction = {
            "model_version": manifest.model_version,
            "cold_start": False,
            "window_length": len(window),
            "next_behavior": dict(
                zip(manifest.behaviors, out["behavior_probs"][row].tolist(), strict=True)
            ),
            "purchase_probability": purchase,
            "return_probability": float(out["return_prob"][row]),
            "horizon_seconds": manifest.horizon_seconds,
            "top_items": top_k_ids(out["item_logits"][row], artifact.items,
                                   [e.item_id for e in window], features["item"][row, -n:],
                                   request.top_k),
            "top_categories": top_k_ids(out["category_logits"][row], artifact.categories,
                                        [e.category_id for e in window],
                                        features["category"][row, -n:], request.top_k),
        }
        if n >= 2:
            surprise = float(out["event_surprise"][row, 1 - n :].sum()) / (n - 1)  # the mean
            percentile = current.surprise_percentile(surprise)
            if math.isfinite(percentile):
                prediction["anomaly"] = {"surprise": surprise, "percentile": percentile}
        if request.explain:
            if len(window) == 1:
                without = [manifest.priors.purchase]
            else:
                without = out["purchase_prob"][row + 1 : row + 1 + len(window)].tolist()
            contributions = []
            for i, e in enumerate(window):
                contribution: dict[str, Any] = {"position": i, "item_id": e.item_id}
                if e.category_id is not None:
                    contribution["category_id"] = e.category_id
                contribution["behavior"] = BEHAVIOR_NAMES[e.behavior]
                contribution["timestamp"] = float(e.ts)
                contribution["contribution"] = purchase - without[i]
                contributions.append(contribution)
            contributions.sort(key=lambda c: -abs(c["contribution"]))
            prediction["explanation"] = contributions
        self.metrics.window_length.observe(len(window))
        self.metrics.purchase_probability.observe(purchase)
        return prediction

    def _prior(self, current: LoadedModel, top_k: int, explain: bool) -> Prediction:
        manifest = current.artifact.manifest
        priors = manifest.priors
        self.metrics.window_length.observe(0)
        self.metrics.purchase_probability.observe(priors.purchase)
        prediction: Prediction = {
            "model_version": manifest.model_version,
            "cold_start": True,
            "window_length": 0,
            "next_behavior": {
                name: float(p) for name, p in zip(manifest.behaviors, priors.behavior, strict=True)
            },
            "purchase_probability": float(priors.purchase),
            "return_probability": float(priors.return_),
            "horizon_seconds": manifest.horizon_seconds,
            "top_items": [{"id": i} for i in priors.top_items[:top_k]],
            "top_categories": [{"id": c} for c in priors.top_categories[:top_k]],
        }
        if explain:
            prediction["explanation"] = []
        return prediction
