"""beam_jobs.local_workers: a local worker process always ends with its run, even one that connects after
the runner has closed its streams (what a failed multi_processing run left waiting for ever)."""

from __future__ import annotations

import shlex
import sys
import threading
import time

import pytest
from apache_beam.portability.api import beam_provision_api_pb2, beam_runner_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner, worker_handlers

from beam_jobs import local_workers, runtime


def _python(code: str) -> str:
    return shlex.join([sys.executable, "-c", code])


def _run_in_thread(worker: local_workers.WorkerProcess) -> tuple[threading.Thread, list]:
    errors: list = []

    def run():
        try:
            worker.run()
        except RuntimeError as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def test_a_worker_that_outlives_its_grace_is_killed_quietly():
    worker = local_workers.WorkerProcess(_python("import time; time.sleep(120)"), env={})
    thread, errors = _run_in_thread(worker)
    started = time.monotonic()
    assert worker.stop(grace_s=0.5) is True
    thread.join(10)
    assert not thread.is_alive() and errors == []  # killed by us: not reported as the worker's failure
    assert time.monotonic() - started < 10


def test_a_worker_that_ends_is_waited_for_and_its_failure_reported():
    ends = local_workers.WorkerProcess(_python("pass"), env={})
    thread, errors = _run_in_thread(ends)
    assert ends.stop(grace_s=30) is False
    thread.join(10)
    assert errors == []
    fails = local_workers.WorkerProcess(_python("raise SystemExit(3)"), env={})
    thread, errors = _run_in_thread(fails)
    thread.join(30)
    assert [str(error) for error in errors] == ["Worker subprocess exited with return code 3"]


def test_a_worker_that_cannot_start_is_not_waited_for():
    missing = local_workers.WorkerProcess("/nonexistent/quickdraw-worker", env={})
    with pytest.raises(FileNotFoundError):
        missing.run()
    started = time.monotonic()
    assert missing.stop(grace_s=30) is False
    assert time.monotonic() - started < 5


@pytest.mark.integration
def test_a_worker_connecting_after_the_runner_closed_its_stream_still_ends():
    # The worker starts 1.5 s late, as a slow worker does on a loaded machine; the runner gives up before
    # it connects, as a failed run does. Beam's own handler would wait for it for ever.
    late = shlex.join(["sh", "-c", f"sleep 1.5; exec {runtime.WORKER_COMMAND}"])
    environment = beam_runner_api_pb2.Environment(urn=local_workers.URN, payload=late.encode())
    local_workers.register()
    manager = worker_handlers.WorkerHandlerManager(
        {"late": environment}, fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo()))
    manager.get_worker_handlers("late", 1)
    started = time.monotonic()
    closing = threading.Thread(target=manager.close_all, daemon=True)
    closing.start()
    closing.join(local_workers.STOP_GRACE_S + 30)
    assert not closing.is_alive(), "close_all is still waiting for the late worker"
    # it read the end of its stream and left by itself, before the grace after which it would be killed
    assert time.monotonic() - started < local_workers.STOP_GRACE_S
