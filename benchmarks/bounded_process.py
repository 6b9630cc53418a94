"""One command in its own process group, under a hard deadline and a memory ceiling.

The command's resident memory (RSS summed over its process tree, psutil) is polled; past the ceiling or the
deadline the whole group is killed with SIGKILL, which a hung XLA compile or a blocked kernel launch cannot
refuse. A ceiling on RSS rather than RLIMIT_AS: TensorFlow and CUDA reserve tens of GB of virtual address
space they never touch, so an address-space limit kills healthy runs while one on resident pages does not.
Polling makes the ceiling soft by what the command allocates in one poll interval (0.1 s).

The caller never waits past the deadline plus `reap_s`: a process stuck in the kernel (uninterruptible
sleep) may outlive SIGKILL for a while, and is then left to exit by itself rather than waited for.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

import psutil

from benchmarks.process_memory import tree_rss

KILLED_DEADLINE = "killed: deadline"
KILLED_MEMORY = "killed: memory"


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: str  # "exited", KILLED_DEADLINE or KILLED_MEMORY
    returncode: int | None  # None when a killed process had not exited within reap_s
    seconds: float
    peak_rss_mb: float  # the largest RSS of the process tree seen by the polls


def run_bounded(
    argv: Sequence[str],
    deadline_s: float,
    memory_bytes: float,
    log_path: str,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    poll_s: float = 0.1,
    reap_s: float = 2.0,
) -> Outcome:
    """Runs argv (stdout and stderr to log_path) until it exits, passes deadline_s or memory_bytes.

    Whatever ends the wait (the command's exit, a kill, or an exception in the caller, e.g. a signal
    turned into one), the command's process group and every descendant are killed before returning:
    nothing it started outlives the call."""
    started = time.monotonic()
    peak, status = 0, "exited"
    with open(log_path, "wb") as log:
        # start_new_session: its own process group, so one killpg reaches every process it starts.
        process = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=None if env is None else dict(env), cwd=cwd, start_new_session=True,
        )  # fmt: skip
        try:
            while not _exited(process):
                rss = tree_rss(process.pid)
                peak = max(peak, rss)
                elapsed = time.monotonic() - started
                if rss > memory_bytes:
                    status = KILLED_MEMORY
                    break
                if elapsed >= deadline_s:
                    status = KILLED_DEADLINE
                    break
                time.sleep(min(poll_s, max(deadline_s - elapsed, 0.0)))
        finally:
            kill_group(process)
            returncode = _reap(process, reap_s)
    return Outcome(status, returncode, time.monotonic() - started, peak / 2**20)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL to the process's group and to each of its descendants (one that left the group too)."""
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its group id is its pid (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone
    for child in descendants:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def _exited(process: subprocess.Popen) -> bool:
    """Whether the process has exited, without reaping it: until it is reaped its pid (and group id)
    cannot be reused, so the kill that follows reaches only what this call started."""
    return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _reap(process: subprocess.Popen, reap_s: float) -> int | None:
    try:
        return process.wait(timeout=reap_s)
    except subprocess.TimeoutExpired:
        return None
