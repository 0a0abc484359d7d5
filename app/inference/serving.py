"""Who answers a user, and what follows the answer: the A/B arm, the live record, the shadow.

    serving = Serving(primary, candidate, settings=settings, store=store, metrics=metrics)
    answers = await serving.predict_users(user_ids, windows, top_k=5, explain=False)
    serving.observe_ingest(by_user, results)   # outcomes the append scored; input counts
    await serving.close()                      # waits for the work left after answers

- A/B (`SEQCAST_CANDIDATE_MODE=ab`): a user whose id hashes (`user_bucket`) below
  SEQCAST_CANDIDATE_SHARE is answered by the candidate, always the same user by the same
  arm; while the candidate is not loaded the primary answers everyone.
- Shadow (`shadow`): the primary answers; for a sampled share of requests the candidate
  scores the same windows after the answer is sent (a background task, off the request's
  path), and both predictions are kept to be scored, so the two versions are compared on
  the same outcomes.
- Live accuracy: besides those, a sampled share (SEQCAST_LIVE_SAMPLE_SHARE) of the served
  predictions of non-empty windows is kept beside the window (`app.store.pending`), scored
  by the append script when the user's next events arrive.

Every answer names the version that produced it (`model_version`); every live figure is
labelled by it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from app.errors import ServiceError, StoreUnavailable
from app.inference.decode import Prediction
from app.inference.predictor import Predictor, Window
from app.metrics import Metrics
from app.settings import CandidateMode
from app.store.pending import PendingPrediction
from app.store.window_store import AppendResult, StoredEvent, WindowStore

log = logging.getLogger(__name__)

# How long closing waits for the work scheduled after answers (records, shadow scoring).
CLOSE_SECONDS = 5.0


def user_bucket(user_id: str) -> float:
    """A stable, uniform number in [0, 1) for a user id: its A/B arm (same on every replica
    and every restart)."""
    digest = hashlib.blake2b(user_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class Serving:
    """The primary model, an optional candidate beside it, and the live record."""

    def __init__(
        self, primary: Predictor, candidate: Predictor | None, *, store: WindowStore,
        metrics: Metrics, mode: CandidateMode = "shadow", share: float = 0.0,
        sample_share: float = 0.0, pending_per_user: int = 4, grace_seconds: int = 3600,
        rng: random.Random | None = None,
    ) -> None:
        self.primary = primary
        self.candidate = candidate
        self.mode = mode
        self.share = share
        self.sample_share = sample_share
        self.pending_per_user = pending_per_user
        self.grace_seconds = grace_seconds
        self.store = store
        self.metrics = metrics
        self._rng = rng or random.Random()
        self._tasks: set[asyncio.Task[None]] = set()

    def arm(self, user_id: str) -> Predictor:
        """The predictor that answers `user_id`."""
        candidate = self.candidate
        if (candidate is not None and self.mode == "ab" and candidate.ready
                and user_bucket(user_id) < self.share):
            return candidate
        return self.primary

    async def predict_users(
        self, user_ids: Sequence[str], windows: Sequence[Window], *, top_k: int,
        explain: bool = False, at: float | None = None,
    ) -> list[Prediction]:
        """Each user's answer from their arm, about the moment `at` (default: now); the live
        record and the shadow follow it."""
        arms = [self.arm(u) for u in user_ids]
        if all(arm is self.primary for arm in arms):  # the usual case: no task per request
            served = await self.primary.predict(windows, top_k=top_k, explain=explain, at=at)
        else:
            served = await self._predict_arms(arms, windows, top_k, explain, at)
        self._follow(user_ids, windows, arms, served)
        return served

    @staticmethod
    async def _predict_arms(arms: Sequence[Predictor], windows: Sequence[Window], top_k: int,
                            explain: bool, at: float | None) -> list[Prediction]:
        """Each window scored by its own arm, the arms concurrently; answers in order."""
        rows_of: dict[Predictor, list[int]] = defaultdict(list)
        for i, arm in enumerate(arms):
            rows_of[arm].append(i)
        results = await asyncio.gather(*(
            arm.predict([windows[i] for i in rows], top_k=top_k, explain=explain, at=at)
            for arm, rows in rows_of.items()
        ))
        answers: dict[int, Prediction] = {}
        for rows, predictions in zip(rows_of.values(), results, strict=True):
            answers.update(zip(rows, predictions, strict=True))
        return [answers[i] for i in range(len(arms))]

    def _follow(self, user_ids: Sequence[str], windows: Sequence[Window],
                arms: Sequence[Predictor], answers: Sequence[Prediction]) -> None:
        """Count the scored windows; schedule the record and the shadow, when sampled."""
        for arm in set(arms):
            current = arm.current
            if current is not None:
                self.metrics.observe_windows(current.artifact.manifest, [
                    w for w, a in zip(windows, arms, strict=True) if a is arm
                ])
        keep: dict[str, list[PendingPrediction]] = defaultdict(list)
        shadow: list[int] = []
        candidate = self.candidate
        shadowing = candidate is not None and self.mode == "shadow" and candidate.ready
        for i, (user, window, arm, answer) in enumerate(
            zip(user_ids, windows, arms, answers, strict=True)
        ):
            if not window:
                continue
            sampled = shadowing and self._rng.random() < self.share
            if sampled:
                shadow.append(i)
            if sampled or self._rng.random() < self.sample_share:
                pending = self._pending(arm, window, answer)
                if pending is not None:
                    keep[user].append(pending)
        if keep or shadow:
            self._spawn(self._after(user_ids, windows, keep, shadow))

    def _pending(self, arm: Predictor, window: Window, answer: Prediction
                 ) -> PendingPrediction | None:
        current = arm.current
        if current is None or current.version != answer["model_version"]:
            return None  # reloaded in between: the answer's model is gone
        return PendingPrediction(
            version=answer["model_version"], t=float(window[-1].ts), served_at=time.time(),
            horizon=int(answer["horizon_seconds"]),
            return_gap=current.artifact.manifest.return_gap_seconds,
            behavior=tuple(answer["next_behavior"].values()),
            purchase=float(answer["purchase_probability"]),
            returns=float(answer["return_probability"]),
        )

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="seqcast-after-answer")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after(self, user_ids: Sequence[str], windows: Sequence[Window],
                     keep: dict[str, list[PendingPrediction]], shadow: list[int]) -> None:
        """After the answer: the shadow's predictions, then one record for them all."""
        candidate = self.candidate
        if shadow and candidate is not None:
            try:
                predictions = await candidate.predict([windows[i] for i in shadow], top_k=1)
            except ServiceError as exc:  # e.g. the candidate was refused on reload
                log.warning("shadow candidate could not score: %s", exc.message)
                predictions = []
            except Exception:  # the answer is sent: a failure here must reach the log only
                log.exception("shadow candidate failed on %d windows", len(shadow))
                predictions = []
            for i, prediction in zip(shadow, predictions, strict=False):
                self.metrics.shadow_predictions.labels(prediction["model_version"]).inc()
                pending = self._pending(candidate, windows[i], prediction)
                if pending is not None:
                    keep[user_ids[i]].append(pending)
        if not keep:
            return
        ttl = max(p.horizon for ps in keep.values() for p in ps) + self.grace_seconds
        try:
            kept = await self.store.record(keep, capacity=self.pending_per_user,
                                           ttl_seconds=ttl)
        except StoreUnavailable:
            return  # the store logged it; the predictions go unscored
        per_version: dict[str, int] = defaultdict(int)
        for p in kept:
            per_version[p.version] += 1
        for version, count in per_version.items():
            self.metrics.observe_recorded(version, count)

    def observe_ingest(self, batches: Mapping[str, Sequence[StoredEvent]],
                       results: Mapping[str, AppendResult]) -> None:
        """Score the outcomes the append found; count the ingested events' inputs against
        the primary model (a user's re-sent batch is left out: its duplicates are not
        told apart)."""
        self.metrics.observe_outcomes(o for r in results.values() for o in r.outcomes)
        current = self.primary.current
        if current is None:
            return
        fresh = [s.event for user, r in results.items() if not r.duplicates
                 for s in batches[user]]
        if fresh:
            artifact = current.artifact
            self.metrics.observe_events(current.version, fresh, artifact.items,
                                        artifact.categories)

    async def close(self) -> None:
        """Finish the work scheduled after answers (up to CLOSE_SECONDS)."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=CLOSE_SECONDS)
        for task in late:
            task.cancel()
