"""The micro-batcher: concurrent requests coalesced into one model call.

A single task takes everything queued (up to `max_batch` model rows) into one call of
`score`, run off the event loop in one worker thread. A lone request of at most
`inline_rows` model rows on the CPU provider is scored on the loop's thread instead: the hop
to the worker thread and back (two thread wake-ups) cost more than such a call on the
machines measured (docs/benchmarks-service.md); on CUDA the call waits for the device, which
the worker thread does without blocking the loop. Under load (the last batch served several
requests) the batcher can also wait up to `batch_wait` seconds for more (default 0:
everything that queued during the previous call is batch enough); a lone client never
waits. A batch runs entirely on the model that was current when it started, so a reload
never changes a model under a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from app.errors import ModelNotReady
from app.inference.decode import Prediction
from app.inference.slot import LoadedModel
from model.features import Event

log = logging.getLogger(__name__)


@dataclass
class Request:
    """One caller's windows (already cut to the model's window length) and options."""

    windows: list[list[Event]]
    top_k: int
    explain: bool
    future: asyncio.Future[list[Prediction]]
    now: float  # unix seconds: when the request came (the moment its answers are about)
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = sum(len(w) + 1 if self.explain else 1 for w in self.windows if w)


Score = Callable[[LoadedModel, list[Request]], list[list[Prediction]]]
"""One model call for a batch: the answers of each request, in order."""


class Batcher:
    """Queue, batching task and worker thread; see the module docstring."""

    def __init__(
        self, score: Score, current: Callable[[], LoadedModel | None], *,
        batch_wait: float, max_batch: int, inline_rows: int,
    ) -> None:
        self.score = score
        self.current = current
        self.batch_wait = batch_wait
        self.max_batch = max_batch
        self.inline_rows = inline_rows
        self._queue: asyncio.Queue[Request] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="seqcast-model")
        self._task: asyncio.Task[None] | None = None
        self._under_load = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="seqcast-batcher")

    def submit(self, request: Request) -> None:
        self._queue.put_nowait(request)

    async def close(self) -> None:
        """Stop batching, fail the requests still queued, stop the worker thread."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            request = self._queue.get_nowait()
            if not request.future.done():
                request.future.set_exception(ModelNotReady("the service is shutting down"))
        self._executor.shutdown(wait=True)

    async def _next_batch(self) -> tuple[list[Request], int]:
        """Wait for a request, then take what else is queued (or arrives in time)."""
        loop = asyncio.get_running_loop()
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
        return batch, rows

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch, rows = await self._next_batch()
            current = self.current()
            if current is None:
                for request in batch:
                    request.future.set_exception(ModelNotReady("the model was unloaded"))
                continue
            try:
                if len(batch) == 1 and rows <= self.inline_rows and current.on_cpu:
                    results = self.score(current, batch)
                else:
                    results = await loop.run_in_executor(self._executor, self.score, current,
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
