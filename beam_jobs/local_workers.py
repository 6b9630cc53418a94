"""The SDK worker processes of local multi_processing runs, always stopped when the run ends.

FnApiRunner stops a worker process by closing its control stream and waiting for the process to exit.
When a step fails, the runner closes every worker's stream at once. A worker that had not connected its
stream yet (still importing, on a loaded machine) connects a moment later to a stream that nobody will
close (Beam 2.78's ControlConnection.close ends only streams already started), sits idle, and the run
waits for it for ever. Our handler starts the worker as Beam's does (beam_jobs.sdk_worker, with Beam's
logging service). To stop it, it ends the worker's control stream once more, which a late stream reads as
soon as it connects (for a stream already ended it is never read), and waits for the process as Beam's
does, but for STOP_GRACE_S at most; then it kills it. When the handler is asked to stop, every bundle
has been answered or the run has already failed, so the kill loses nothing.

The handler answers to its own environment URN, which runtime.with_our_worker puts in the pipeline; it is
registered with Beam when runtime.direct_runner builds a runner, not on import.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading

import grpc
from apache_beam.portability.api import beam_fn_api_pb2_grpc, endpoints_pb2
from apache_beam.runners.portability.fn_api_runner import worker_handlers
from apache_beam.utils import thread_pool_executor
from google.protobuf import json_format, text_format

# The environment of the pipelines runtime.LocalRunner runs: a local process running the payload's command.
URN = "quickdraw_tf:env:local_subprocess_python:v1"
# How long a worker may take to exit once its run is over (it takes well under a second when told).
STOP_GRACE_S = 5.0


class WorkerProcess:
    """One worker process: run() starts it and waits for it (in the handler's thread), stop() ends it."""

    def __init__(self, command: str, env: dict[str, str]):
        self._command = shlex.split(command)
        self._env = env
        self._process: subprocess.Popen | None = None
        self._started = threading.Event()
        self._killed = False

    def run(self) -> None:
        """Starts the process and waits for it; RuntimeError when it fails by itself (not when stopped)."""
        try:
            with worker_handlers.SUBPROCESS_LOCK:  # Beam's: no other worker inherits this one's pipes
                self._process = subprocess.Popen(self._command, env=self._env)
        finally:
            self._started.set()  # stop() need not wait for a process that could not start
        returncode = self._process.wait()
        if returncode and not self._killed:
            raise RuntimeError(f"Worker subprocess exited with return code {returncode}")

    def stop(self, grace_s: float) -> bool:
        """Waits up to grace_s for the process to exit, then kills it; whether it had to be killed."""
        if not self._started.wait(grace_s) or self._process is None:
            return False
        try:
            self._process.wait(grace_s)
            return False
        except subprocess.TimeoutExpired:
            self._killed = True
            self._process.kill()
            self._process.wait()
            return True


class LocalWorkerHandler(worker_handlers.GrpcWorkerHandler):
    """Beam's SubprocessSdkWorkerHandler, whose worker always ends with its run (the module says how)."""

    def __init__(self, command: bytes, state, provision_info, grpc_server):
        super().__init__(state, provision_info, grpc_server)
        self._command = command.decode()
        self._worker: WorkerProcess | None = None
        self._thread: threading.Thread | None = None
        self._logging_server = None

    def start_worker(self) -> None:
        self._logging_server, logging_port = _logging_server()
        self._worker = WorkerProcess(self._command, self._worker_env(logging_port))
        self._thread = threading.Thread(name="run_worker", target=self._worker.run, daemon=True)
        self._thread.start()

    def stop_worker(self) -> None:
        # Beam's end-of-stream marker (a private name: without it the worker is killed after the grace).
        done = getattr(worker_handlers.BeamFnControlServicer, "_DONE_MARKER", None)
        if done is not None:
            self.control_conn.push(done)
        self._worker.stop(STOP_GRACE_S)
        self._thread.join()
        self._logging_server.stop(0)

    def _worker_env(self, logging_port: int) -> dict[str, str]:
        """What Beam's SubprocessSdkWorker gives its process: where to connect, and the pipeline options."""
        return dict(
            os.environ,
            CONTROL_API_SERVICE_DESCRIPTOR=_descriptor(self.control_address),
            LOGGING_API_SERVICE_DESCRIPTOR=_descriptor(f"localhost:{logging_port}"),
            PIPELINE_OPTIONS=json_format.MessageToJson(self.provision_info.provision_info.pipeline_options),
            WORKER_ID=self.worker_id,
        )


def register() -> None:
    """Lets FnApiRunner create LocalWorkerHandler for URN environments (idempotent)."""
    worker_handlers.WorkerHandler.register_environment(URN, bytes)(LocalWorkerHandler)


def _descriptor(url: str) -> str:
    return text_format.MessageToString(endpoints_pb2.ApiServiceDescriptor(url=url))


def _logging_server():
    """A gRPC server printing the worker's log records, as Beam's SubprocessSdkWorker starts; and its port."""
    # imported here, as Beam's own handler does: the job service module is needed only once workers start
    from apache_beam.runners.portability.local_job_service import BeamFnLoggingServicer

    options = [("grpc.http2.max_pings_without_data", 0), ("grpc.http2.max_ping_strikes", 0)]
    server = grpc.server(thread_pool_executor.shared_unbounded_instance(), options=options)
    port = server.add_insecure_port("[::]:0")
    beam_fn_api_pb2_grpc.add_BeamFnLoggingServicer_to_server(BeamFnLoggingServicer(), server)
    server.start()
    return server, port
