"""Dynamic batching: concurrent requests are gathered into one model call, off the event loop.

Requests wait in an asyncio queue. One collector task takes the first waiting item, then everything
else already queued, then waits up to `max_wait_s` for more until `max_batch` items are gathered, and
hands the batch to ONE inference thread (model calls are serialised: TensorFlow already uses every
core inside a call, and a second concurrent call would only compete for them). While a batch runs,
new requests queue up and form the next batch, so the batch size grows with the load by itself.
`max_batch=1` turns batching off: one model call per request, the baseline of the benchmark.

The collector cannot die silently: whatever a batch raises (the model, a result of the wrong shape, the
batch-size callback) goes to that batch's requests, and should the collector task stop anyway, every
waiting request and every later `submit` fails at once with BatcherStopped (the server's 503, and its
/healthz says so) instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

import numpy as np


class BatcherStopped(RuntimeError):
    """The collector is not running, so no request can be answered."""


@dataclasses.dataclass(frozen=True)
class BatchResult:
    """One request's row of probabilities and what its batch cost."""

    probabilities: np.ndarray
    inference_ms: float
    batch_size: int


@dataclasses.dataclass
class _Item:
    inputs: object
    future: asyncio.Future


class Batcher:
    """Gathers `submit` calls into calls of `predict_batch(list_of_inputs) -> [N, C] array`."""

    def __init__(
        self,
        predict_batch: Callable[[Sequence[object]], np.ndarray],
        max_batch: int = 32,
        max_wait_s: float = 0.005,
        on_batch: Callable[[int], None] | None = None,
    ):
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait >= 0, got {max_batch} and {max_wait_s}")
        self._predict_batch = predict_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task | None = None
        self._waiting: set[asyncio.Future] = set()  # every submitted request not yet answered
        self._stopping = False
        self.failure: str | None = None  # why the collector stopped, when it did on its own
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="inference")

    async def start(self) -> None:
        """Starts the collector on the running event loop."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._collect_forever())
        self._task.add_done_callback(self._collector_ended)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # a failure was already reported
                pass
            self._task = None
        self._executor.shutdown(wait=True)

    @property
    def alive(self) -> bool:
        """True while the collector runs (and so requests can be answered)."""
        return self._task is not None and not self._task.done()

    async def submit(self, inputs: object) -> BatchResult:
        """The model's output for one prepared input; raises whatever the model call raised, and
        BatcherStopped at once when the collector is not running."""
        if not self.alive:
            raise BatcherStopped(self.failure or "the batcher is not running")
        future = asyncio.get_running_loop().create_future()
        self._waiting.add(future)
        future.add_done_callback(self._waiting.discard)
        self._queue.put_nowait(_Item(inputs, future))  # the queue is unbounded: this never waits
        return await future

    def _collector_ended(self, task: asyncio.Task) -> None:
        """Runs when the collector task ends: on stop(), or because something it ran raised."""
        if self._stopping:
            return
        error = None if task.cancelled() else task.exception()
        reason = "cancelled" if error is None else f"{type(error).__name__}: {_one_line(error)}"
        self.failure = f"the batcher stopped ({reason}); restart the server"
        logging.getLogger(__name__).error("the batch collector stopped", exc_info=error)
        for future in list(self._waiting):
            if not future.done():
                future.set_exception(BatcherStopped(self.failure))

    async def _collect_forever(self) -> None:
        while True:
            batch = await self._gather()
            await self._run(batch)

    async def _gather(self) -> list[_Item]:
        batch = [await self._queue.get()]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            item = await self._get_within(remaining)
            if item is None:
                break
            batch.append(item)
        return batch

    async def _get_within(self, timeout_s: float) -> _Item | None:
        """The next queued item, or None after timeout_s. Not asyncio.wait_for: on Python 3.11 it can
        drop an item that arrives just as the timeout cancels the get."""
        getter = asyncio.ensure_future(self._queue.get())
        done, _ = await asyncio.wait({getter}, timeout=timeout_s)
        if not done:
            getter.cancel()
            try:
                return await getter  # it completed while being cancelled: keep the item
            except asyncio.CancelledError:
                return None
        return getter.result()

    async def _run(self, batch: list[_Item]) -> None:
        live = [item for item in batch if not item.future.done()]  # a client may have gone away
        if not live:
            return
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            probabilities = await loop.run_in_executor(
                self._executor, self._predict_batch, [item.inputs for item in live]
            )
            elapsed_ms = (time.perf_counter() - start) * 1000.0
            if len(probabilities) != len(live):
                raise ValueError(f"the model answered {len(probabilities)} rows for {len(live)} inputs")
            results = [BatchResult(np.asarray(row), elapsed_ms, len(live)) for row in probabilities]
            if self._on_batch is not None:
                self._on_batch(len(live))
        except Exception as error:  # every request of the batch gets the error; the collector goes on
            for item in live:
                if not item.future.done():
                    item.future.set_exception(error)
            return
        for item, result in zip(live, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
