"""/v1/complete's own bounded executor: completions never hold up /v1/predict, and none runs unbounded.

- Its own thread (not the default executor that /v1/predict's preparation uses), so however many
  completions wait, a prediction does not wait behind them.
- At most `max_waiting` completions wait behind the running one; more are refused at once (Busy: 503).
- Each has a deadline from its arrival (queueing included): past it the sampler stops at its next step
  and the request gets DeadlinePassed (503).
- When the client hangs up, the sampler stops at its next step (ClientGone), so an abandoned request
  costs at most one decoder step more.
A slot is released only when its thread work has really ended, so stopped requests cannot pile up work.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Awaitable, Callable

from quickdraw_tf.models.sketch_sampling import SamplingStopped
from quickdraw_tf.serve.completion import Completion, Generator

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_WAITING = 4


class Busy(Exception):
    """Every slot is taken: the request is refused without waiting."""


class DeadlinePassed(Exception):
    """The completion did not finish within its deadline and was stopped."""


class ClientGone(Exception):
    """The client hung up; the completion was stopped."""


class CompletionPool:
    """Runs Generator.complete in one dedicated thread, with a bounded queue, deadlines and cancellation."""

    def __init__(self, generator: Generator, timeout_s: float = DEFAULT_TIMEOUT_S,
                 max_waiting: int = DEFAULT_MAX_WAITING):
        if timeout_s <= 0 or max_waiting < 0:
            raise ValueError(f"timeout_s must be > 0 and max_waiting >= 0, got {timeout_s} and {max_waiting}")
        self.generator = generator
        self.timeout_s = timeout_s
        self.slots = 1 + max_waiting  # the running completion and those waiting for the thread
        self._taken = 0
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="generation")

    @property
    def taken(self) -> int:
        """Completions running or waiting, stopped ones included until their thread work has ended."""
        return self._taken

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def complete(self, strokes, word: str, temperature: float, seed: int | None,
                       client_gone: Callable[[], Awaitable[None]]) -> Completion:
        """Generator.complete's answer, or Busy / DeadlinePassed / ClientGone (and whatever it raises)."""
        if self._taken >= self.slots:
            raise Busy(f"{self._taken} completions are running or waiting; try again in a moment")
        deadline = time.monotonic() + self.timeout_s
        stop = threading.Event()

        def should_stop() -> bool:
            return stop.is_set() or time.monotonic() > deadline

        def run() -> Completion:
            if should_stop():  # its deadline passed (or its client left) while it waited
                raise SamplingStopped("stopped before it started")
            return self.generator.complete(strokes, word, temperature, seed, should_stop)

        self._taken += 1
        work = asyncio.get_running_loop().run_in_executor(self._executor, run)
        work.add_done_callback(self._release)
        gone = asyncio.ensure_future(client_gone())
        try:
            done, _ = await asyncio.wait({work, gone}, timeout=max(0.0, deadline - time.monotonic()),
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if work in done:
            try:
                return work.result()
            except SamplingStopped:  # the sampler saw the deadline a moment before this coroutine did
                raise DeadlinePassed(self._late_message()) from None
        stop.set()
        if gone in done:
            raise ClientGone("the client hung up")
        raise DeadlinePassed(self._late_message())

    def _release(self, work: asyncio.Future) -> None:
        self._taken -= 1
        if not work.cancelled():
            work.exception()  # retrieved here, so a stopped request's error is not reported as lost

    def _late_message(self) -> str:
        return f"the completion took longer than {self.timeout_s:g} s and was stopped; try a shorter drawing"
