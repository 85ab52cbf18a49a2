"""Dynamic batching: requests queue up and run together, up to a batch size or a delay.

    batcher = DynamicBatcher(backend.run, max_batch_size=8, max_delay_s=0.002, max_queue=256)
    outputs = await batcher.submit(inputs, rows)     # QueueFullError when the queue is full
    await batcher.close()                            # finish what is queued, then stop

One worker task per model collects a batch: every queued request whose rows still fit under
`max_batch_size`, then, if rows are left and `max_delay_s` > 0, whatever arrives until that
delay after the batch's first request has passed. The batch runs in a thread of its own
(native code releases the GIL, so the event loop keeps parsing requests meanwhile) and each
request gets its own rows of the outputs back. While a batch runs the next one fills, so
under load batches grow without any delay at all. Without a batch dimension (`batched=False`)
every request runs alone. The queue is bounded (`max_queue` requests): `submit` raises
`QueueFullError` beyond it, which the server answers with 503. A request whose client went
away (its `submit` cancelled) is dropped from the queue before it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from mlc.deploy.metrics import Metrics

__all__ = ["DynamicBatcher", "QueueFullError", "ShuttingDownError"]

RunFn = Callable[[list[np.ndarray]], list[np.ndarray]]


class QueueFullError(Exception):
    """The model's queue is full: retry later (HTTP 503)."""


class ShuttingDownError(Exception):
    """The server is shutting down and takes no new requests (HTTP 503)."""


@dataclass
class _Item:
    inputs: list[np.ndarray]
    rows: int
    future: asyncio.Future[list[np.ndarray]]
    enqueued: float = field(default_factory=time.perf_counter)


class DynamicBatcher:
    """Batches the requests of one model (see the module docstring)."""

    def __init__(
        self,
        run: RunFn,
        *,
        max_batch_size: int = 8,
        max_delay_s: float = 0.0,
        max_queue: int = 256,
        batched: bool = True,
        name: str = "model",
        metrics: Metrics | None = None,
    ) -> None:
        if max_batch_size < 1 or max_queue < 1 or max_delay_s < 0:
            raise ValueError("max_batch_size and max_queue must be >= 1, max_delay_s >= 0")
        self._run = run
        self.max_batch_size = max_batch_size if batched else 1
        self.max_delay_s = max_delay_s if batched else 0.0
        self.max_queue = max_queue
        self.name = name
        self._metrics = metrics
        self._queue: deque[_Item] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"mlc-batch-{name}")
        self._closing = False
        #: batches run and rows run so far
        self.batches = 0
        self.rows = 0

    @property
    def depth(self) -> int:
        """Requests waiting."""
        return len(self._queue)

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._worker is not None and self._loop is loop and not self._worker.done():
            return
        self._loop = loop  # (a new event loop, e.g. a test's: new events and a new worker)
        self._wake, self._idle = asyncio.Event(), asyncio.Event()
        self._idle.set()
        self._worker = loop.create_task(self._work(), name=f"mlc-batcher-{self.name}")

    async def submit(self, inputs: list[np.ndarray], rows: int) -> list[np.ndarray]:
        """The outputs for one request's `inputs` (`rows` rows each), once its batch ran."""
        if self._closing:
            raise ShuttingDownError(f"{self.name}: the server is shutting down")
        if len(self._queue) >= self.max_queue:
            raise QueueFullError(
                f"{self.name}: the queue is full ({self.max_queue} requests waiting); retry later"
            )
        self._start()
        item = _Item(inputs, rows, asyncio.get_running_loop().create_future())
        self._queue.append(item)
        self._idle.clear()
        self._gauge()
        self._wake.set()
        return await item.future

    def _gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.labels(self.name).set(len(self._queue))

    def _take(self, batch: list[_Item], rows: int) -> int:
        """Move queued requests that fit into `batch`; the rows it has then."""
        while self._queue:
            item = self._queue[0]
            if item.future.done():  # cancelled: the client went away
                self._queue.popleft()
                continue
            if batch and rows + item.rows > self.max_batch_size:
                break
            batch.append(self._queue.popleft())
            rows += item.rows
        self._gauge()
        return rows

    async def _work(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch: list[_Item] = []
            rows = self._take(batch, 0)
            deadline = (batch[0].enqueued if batch else 0.0) + self.max_delay_s
            while batch and rows < self.max_batch_size and not self._queue:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), left)
                rows = self._take(batch, rows)
            if batch:
                await self._run_batch(batch, rows)

    async def _run_batch(self, batch: list[_Item], rows: int) -> None:
        start = time.perf_counter()
        if self._metrics is not None:
            for item in batch:
                self._metrics.queue_wait.labels(self.name).observe(start - item.enqueued)
        inputs = (
            batch[0].inputs
            if len(batch) == 1
            else [np.concatenate(parts) for parts in zip(*(item.inputs for item in batch))]
        )
        try:
            assert self._loop is not None
            outputs = await self._loop.run_in_executor(self._executor, self._run, inputs)
        except Exception as e:  # the model failed: every request of the batch hears why
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(e)
            return
        finally:
            self.batches += 1
            self.rows += rows
            if self._metrics is not None:
                self._metrics.batch_size.labels(self.name).observe(rows)
                self._metrics.inference_latency.labels(self.name).observe(
                    time.perf_counter() - start
                )
        first = 0
        for item in batch:
            if not item.future.done():
                item.future.set_result([y[first : first + item.rows] for y in outputs])
            first += item.rows

    async def close(self, timeout: float = 30.0) -> None:
        """Take no new requests, finish the queued ones (up to `timeout` seconds), stop."""
        self._closing = True
        if self._worker is not None and not self._worker.done():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for item in self._queue:  # left after the timeout
            if not item.future.done():
                item.future.set_exception(ShuttingDownError(f"{self.name}: shut down"))
        self._queue.clear()
        self._executor.shutdown(wait=True)
