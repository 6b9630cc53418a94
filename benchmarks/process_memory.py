"""Peak memory of a process tree: a command's RSS summed over it and its descendants, sampled with psutil.

benchmarks.convert_memory measures make_tfrecords with it: with --direct_running_mode=multi_processing
the work happens in SDK worker subprocesses, whose memory /usr/bin/time -v (wait4's ru_maxrss: the
largest single process, never a sum) does not add up. Summed RSS counts pages shared between processes
(libraries) once per process, so it is an upper bound of the tree's footprint.

The command runs under a small Python launcher that waits for it with wait4 and reports its ru_maxrss,
as /usr/bin/time does. Not from this process: on Linux a child's ru_maxrss starts at its parent's RSS
high-water mark (fork copies the address space, exec keeps the old one's peak), so a benchmark holding
hundreds of MB (pytest with TensorFlow imported) would see that figure in every child it starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psutil

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# argv: maxrss_file command...; exits with the command's status (negative signal numbers as 128 + n).
LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1] + ".part", "w") as f:  # renamed whole: a launcher killed here leaves no half figure
    f.write(str(usage.ru_maxrss * 1024))
os.replace(sys.argv[1] + ".part", sys.argv[1])
code = os.waitstatus_to_exitcode(status)
sys.exit(128 - code if code < 0 else code)
"""


def descendants_rss(pid: int) -> dict[int, tuple[psutil.Process, int]]:
    """{pid: (process, RSS in bytes)} of the process's descendants (empty once it is gone)."""
    try:
        processes = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return {}
    found = {}
    for process in processes:
        try:
            found[process.pid] = (process, process.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass  # ended between the listing and the read
    return found


def tree_rss(pid: int) -> int:
    """RSS in bytes summed over the process and its descendants (0 once it is gone)."""
    try:
        own = psutil.Process(pid).memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        own = 0
    return own + sum(rss for _, rss in descendants_rss(pid).values())


@dataclass
class ProcessPeak:
    """One process of a measured tree: its parent, its command line and its sampled peak RSS (bytes)."""

    pid: int
    parent: int
    command: str
    peak_rss: int


class TreeSampler(threading.Thread):
    """Samples the RSS of pid's descendants every `interval` seconds until stop(); keeps the peak of their
    sum and each process's own peak (`processes`). Past `limit` bytes (if given) it kills the tree and sets
    `over_limit`."""

    def __init__(self, pid: int, interval: float = 0.05, limit: float | None = None):
        super().__init__(daemon=True)
        self.pid, self.interval, self.limit = pid, interval, limit
        self.peak = 0
        self.samples = 0
        self.over_limit = False
        self.processes: dict[int, ProcessPeak] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            found = descendants_rss(self.pid)  # the root is the launcher
            rss = sum(rss for _, rss in found.values())
            for pid, (process, own) in found.items():
                self._note(pid, process, own)
            self.peak = max(self.peak, rss)
            self.samples += 1
            if self.limit is not None and rss > self.limit and not self.over_limit:
                self.over_limit = True
                kill_tree(self.pid)
            self._stop_event.wait(self.interval)

    def _note(self, pid: int, process: psutil.Process, rss: int) -> None:
        if pid not in self.processes:
            try:
                command, parent = " ".join(process.cmdline()), process.ppid()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                command, parent = "?", 0
            self.processes[pid] = ProcessPeak(pid, parent, command, 0)
        self.processes[pid].peak_rss = max(self.processes[pid].peak_rss, rss)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def kill_tree(pid: int) -> None:
    """Kills the process we started and its descendants, children first."""
    try:
        root = psutil.Process(pid)
        processes = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


@dataclass
class Measured:
    returncode: int
    wall_s: float
    peak_tree_rss: int  # bytes: the sampled peak of the RSS summed over the command's process tree
    maxrss: int | None  # bytes: wait4's ru_maxrss of the command, as /usr/bin/time -v reports it
    samples: int
    over_limit: bool
    stdout: str
    processes: list[ProcessPeak]  # each process of the tree (the launcher excluded), in order of appearance
    timed_out: bool = False  # stopped at `time_limit`


def measure(
    cmd: Sequence[str],
    log_path: str,
    interval: float = 0.05,
    limit: float | None = None,
    root: str = REPO_ROOT,
    time_limit: float | None = None,
) -> Measured:
    """Runs cmd from the repository root (this tree first on PYTHONPATH) and measures its process tree;
    its stdout and stderr go to log_path (and into Measured.stdout). `root`: another checkout of the
    project (a baseline commit) to run instead of this one. Past `time_limit` seconds the tree is killed
    (`timed_out`; wait4's maxrss is then unknown, the sampled peak is not)."""
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    maxrss_path = f"{log_path}.maxrss"
    if os.path.exists(maxrss_path):  # a stale one would be read as this command's if it is killed
        os.remove(maxrss_path)
    with open(log_path, "w+", encoding="utf-8") as log:
        start = time.perf_counter()
        launcher = [sys.executable, "-c", LAUNCHER, maxrss_path, *cmd]
        proc = subprocess.Popen(launcher, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid, interval, limit)
        sampler.start()
        timed_out = False
        try:
            returncode = proc.wait(timeout=time_limit)
        except subprocess.TimeoutExpired:
            kill_tree(proc.pid)
            returncode, timed_out = proc.wait(), True
        wall = time.perf_counter() - start
        peak = sampler.stop()
        log.seek(0)
        output = log.read()
    maxrss = None
    if os.path.exists(maxrss_path):  # not when the launcher itself was killed
        with open(maxrss_path, encoding="utf-8") as f:
            maxrss = int(f.read())
    processes = list(sampler.processes.values())
    return Measured(
        returncode, wall, peak, maxrss, sampler.samples, sampler.over_limit, output, processes, timed_out
    )
