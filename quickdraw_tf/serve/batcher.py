"""Dynamic batching: concurrent requests are gathered into one model call, off the event loop.

Requests wait in an asyncio queue. One collector task takes the first waiting item, then everything
else already queued, then waits up to `max_wait_s` for more until `max_batch` items are gathered, and
hands the batch to ONE inference thread (model calls are serialised: TensorFlow already uses every
core inside a call, and a second concurrent call would only compete for them). While a batch runs,
new requests queue up and form the next batch, so the batch size grows with the load by itself.
`max_batch=1` turns batching off: one model call per request, the baseline of the benchmark.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np


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
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="inference")

    async def start(self) -> None:
        """Starts the collector on the running event loop."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._collect_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._executor.shutdown(wait=True)

    async def submit(self, inputs: object) -> BatchResult:
        """The model's output for one prepared input; raises whatever the model call raised."""
        if self._queue is None:
            raise RuntimeError("Batcher.start() was not awaited")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(inputs, future))
        return await future

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
        except Exception as error:  # the model failed: every request of the batch gets the error
            for item in live:
                if not item.future.done():
                    item.future.set_exception(error)
            return
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        if self._on_batch is not None:
            self._on_batch(len(live))
        for item, row in zip(live, probabilities, strict=True):
            if not item.future.done():
                item.future.set_result(BatchResult(np.asarray(row), elapsed_ms, len(live)))
