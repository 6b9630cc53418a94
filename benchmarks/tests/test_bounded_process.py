"""benchmarks/bounded_process.py: a command past its deadline or its memory ceiling is killed with everything
it started, and the caller gets its elapsed time and peak memory."""

import re
import sys
import time

import psutil
import pytest

from benchmarks.bounded_process import KILLED_DEADLINE, KILLED_MEMORY, run_bounded

pytestmark = pytest.mark.integration  # every test starts subprocesses

GIB = 2**30
# Touches 20 MiB more every 10 ms (bytes objects are written, so the pages are resident), up to 4 GiB.
ALLOCATE = (
    "import time\nheld = []\nfor _ in range(200):\n    held.append(b'x' * 20 * 2**20)\n    time.sleep(0.01)"
)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_command_that_exits_is_waited_for(tmp_path):
    log = tmp_path / "log"
    outcome = run_bounded(python("print('hello'); raise SystemExit(3)"), 60, GIB, str(log))
    assert outcome.status == "exited" and outcome.returncode == 3
    assert log.read_text() == "hello\n"
    assert outcome.seconds < 60 and outcome.peak_rss_mb < 1024


def test_a_sleeper_is_killed_at_its_deadline(tmp_path):
    started = time.monotonic()
    outcome = run_bounded(python("import time; time.sleep(120)"), 1.5, GIB, str(tmp_path / "log"))
    assert outcome.status == KILLED_DEADLINE
    assert outcome.returncode == -9  # SIGKILL
    assert 1.5 <= outcome.seconds < 5 and time.monotonic() - started < 5
    assert outcome.peak_rss_mb > 0


def test_an_allocator_is_killed_at_its_ceiling(tmp_path):
    outcome = run_bounded(python(ALLOCATE), 120, 200 * 2**20, str(tmp_path / "log"))
    assert outcome.status == KILLED_MEMORY and outcome.returncode == -9
    # Seen past the ceiling, killed long before its 4 GiB: the ceiling is soft by one poll's allocation.
    assert 200 < outcome.peak_rss_mb < 1024
    assert outcome.seconds < 60


def test_what_the_command_started_is_killed_with_it(tmp_path):
    log = tmp_path / "log"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)"
    )
    outcome = run_bounded(python(code), 5, GIB, str(log))
    assert outcome.status == KILLED_DEADLINE, log.read_text()
    grandchild = int(re.findall(r"\d+", log.read_text())[0])
    deadline = time.monotonic() + 30
    while not gone(grandchild) and time.monotonic() < deadline:  # the kill is sent; init reaps it
        time.sleep(0.1)
    assert gone(grandchild)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
