"""The job on a Dask cluster: Beam's DaskRunner by a short name, a local cluster for the run, clients closed.

    python -m beam_jobs.make_tfrecords --runner=DaskRunner --dask_workers=2 ...          # a LocalCluster
    python -m beam_jobs.make_tfrecords --runner=DaskRunner --dask_client_address=tcp://HOST:8786 ...

Beam registers no short name for apache_beam.runners.dask.dask_runner.DaskRunner, and its run leaves its
distributed.Client connected until the process exits (and, given no address, a LocalCluster that nobody
stops). runtime.job_runner hands `--runner=DaskRunner` (or `dask`, or Beam's class path) to cluster_runner:

* with no --dask_client_address or --dask_scheduler_file it starts a LocalCluster of --dask_workers
  processes (default: one per CPU), one thread each (the steps are CPU-bound Python: threads would share a
  GIL), listening on 127.0.0.1 only and without a dashboard, and closes it when the run ends, failed or
  interrupted included. Its worker processes are children of the job's process: the job's own end ends them
  (QuickExit: without their interpreter's slow teardown);
* the runner (ClusterRunner) closes its client once the run has finished or failed, before the cluster;
* Create's elements go into one Dask partition per worker (--dask_npartitions, unless it or
  --dask_partition_size is given): the input files in as many ConvertFiles tasks as there are workers.
  Beam's default, 128 elements a partition, would convert up to 128 files in one task on one worker; one
  file a task costs more than it gains, since Beam's DaskRunner never merges partitions: every later step
  runs at least as many tasks as ConvertFiles, and each Flatten adds its inputs' partitions up;
* a cluster on another machine with a local --output_dir or --input gets one warning line: the workers
  read the inputs and write the spill runs and the output there, so every path must be one they all see.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator, Sequence

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.dask.dask_runner import DaskOptions, DaskRunner, DaskRunnerResult
from distributed import WorkerPlugin

from beam_jobs.atomic_output import is_local
from beam_jobs.job_config import UsageError

_WORKER_LOG_LEVEL = "DASK_LOGGING__DISTRIBUTED"  # read by a worker process when it imports distributed


class ClusterRunner(DaskRunner):
    """Beam's DaskRunner, whose client is closed when the run ends (ClosingResult)."""

    def run_pipeline(self, pipeline, options):
        before = _default_client()
        try:
            result = super().run_pipeline(pipeline, options)
        except BaseException:
            # Beam's run connects a client (the process's default one) before it builds the task graph.
            client = _default_client()
            if client is not None and client is not before:
                client.close()
            raise
        return ClosingResult(result.client, result.futures)


class ClosingResult(DaskRunnerResult):
    """The DaskRunner's result, closing its client once the run has finished or failed."""

    def wait_until_finish(self, duration=None) -> str:
        try:
            return super().wait_until_finish(duration)
        finally:
            self.client.close()


def _default_client():
    from distributed import default_client

    try:
        return default_client()
    except ValueError:  # none
        return None


@contextlib.contextmanager
def cluster_runner(
    options: PipelineOptions, workers: int | None, paths: Sequence[str] = ()
) -> Iterator[ClusterRunner]:
    """The runner of a --runner=DaskRunner run, on the cluster the options name or on a LocalCluster of
    `workers` processes started here and closed on leaving the block; `paths` (the job's inputs and output
    directory) are checked against a remote cluster."""
    check_options(options, workers)
    dask_options = options.view_as(DaskOptions)
    split = dask_options.npartitions is None and dask_options.partition_size is None
    if _named_cluster(dask_options):
        warn_unshared_paths(dask_options, paths)
        cluster_size = cluster_workers(dask_options)  # UsageError if it cannot be reached
        if split:
            dask_options.npartitions = cluster_size
        yield ClusterRunner()
        return
    workers = workers or os.cpu_count() or 1
    with local_cluster(workers) as address:
        dask_options.address = address
        if split:
            dask_options.npartitions = workers
        yield ClusterRunner()


def check_options(options: PipelineOptions, workers: int | None) -> None:
    """UsageError for --dask_workers with a cluster named (its own workers run the job)."""
    if workers is not None and _named_cluster(options.view_as(DaskOptions)):
        raise UsageError(
            "--dask_workers sizes the local cluster the job starts; with --dask_client_address or "
            "--dask_scheduler_file the cluster's own workers run it"
        )


def _named_cluster(dask_options: DaskOptions) -> bool:
    return bool(dask_options.address or dask_options.scheduler_file)


def cluster_workers(dask_options: DaskOptions) -> int:
    """How many worker processes the cluster the options name has now (at least 1); UsageError, in one
    line, when its scheduler cannot be reached (within --dask_connection_timeout, Dask's 30 s by default)."""
    from distributed import Client

    kwargs = {"address": dask_options.address, "scheduler_file": dask_options.scheduler_file}
    if isinstance(dask_options.timeout, int):
        kwargs["timeout"] = dask_options.timeout
    named = dask_options.address or f"in {dask_options.scheduler_file}"
    try:
        with Client(**kwargs, set_as_default=False) as client:
            return max(1, len(client.nthreads()))
    except (OSError, ValueError) as error:  # TimeoutError is an OSError; a malformed address a ValueError
        raise UsageError(f"cannot reach the Dask scheduler {named}: {error}") from None


def warn_unshared_paths(dask_options: DaskOptions, paths: Sequence[str]) -> None:
    """One line on stderr when the named cluster is on another machine and a path is local."""
    address = dask_options.address or _address_in(dask_options.scheduler_file)
    warning = unshared_paths_warning(address, paths)
    if warning:
        print(f"make_tfrecords: warning: {warning}", file=sys.stderr)


def _address_in(scheduler_file: str | None) -> str | None:
    """The scheduler's address in a --dask_scheduler_file (JSON that `dask scheduler` writes), if readable."""
    if not scheduler_file:
        return None
    try:
        with open(scheduler_file, encoding="utf-8") as f:
            address = json.load(f).get("address")
    except (OSError, ValueError, AttributeError):
        return None  # Client reports an unusable file
    return address if isinstance(address, str) else None


@contextlib.contextmanager
def local_cluster(workers: int) -> Iterator[str]:
    """A dask.distributed LocalCluster of `workers` processes for the block; yields its scheduler address."""
    import dask
    from distributed import LocalCluster

    # The scheduler and the nannies run in this process: their INFO lines (every start and stop) would
    # reach the console through the root logger, whatever LocalCluster's silence_logs says. The worker
    # processes read their level from the environment the nannies give them before they start.
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(max(logging.WARNING, level))
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), _WORKER_LOG_LEVEL: "warning"}
    previous = os.environ.get(_WORKER_LOG_LEVEL)
    try:
        # Its HTTP server (health and metrics routes) listens on 127.0.0.1 too, on a free port.
        with (
            dask.config.set({"distributed.nanny.pre-spawn-environ": environ}),
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                scheduler_kwargs={"dashboard": False},
                plugins=(QuickExit(),),  # to each worker, through its nanny
            ) as cluster,
        ):
            yield cluster.scheduler_address
    finally:
        logger.setLevel(level)
        # A nanny sets its pre-spawn environment in this process before it spawns its worker.
        if previous is None:
            os.environ.pop(_WORKER_LOG_LEVEL, None)
        else:
            os.environ[_WORKER_LOG_LEVEL] = previous


class QuickExit(WorkerPlugin):
    """A worker process of the job's LocalCluster ends as soon as its interpreter starts to exit.

    By then the worker has closed: its work is finished and reported. The interpreter's own teardown of a
    process that imported Beam (thousands of modules) takes ~0.5 s on an idle machine and, on a loaded
    one, past the 4 s after which its nanny kills it (and logs so); beam_jobs/sdk_worker.py does the same
    for DirectRunner's workers. Registered at the worker's start, its exit comes before the other exit
    handlers (they run last in, first out), with the output flushed."""

    def setup(self, worker) -> None:
        atexit.register(_exit_now)


def _exit_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def unshared_paths_warning(address: str | None, paths: Sequence[str]) -> str | None:
    """A warning when the scheduler at `address` is on another machine and some of `paths` are local."""
    if not address or _on_this_machine(address):
        return None
    local = [path for path in paths if is_local(path)]
    if not local:
        return None
    return (
        f"the Dask scheduler {address} is on another machine and {local[0]} is a local path: its workers "
        "read the inputs and write the output there, so every path must be on a filesystem they all mount "
        "at the same place (or gs://, s3://)"
    )


def _on_this_machine(address: str) -> bool:
    from distributed.comm import get_address_host

    try:
        host = get_address_host(address)
    except ValueError:
        return False
    if host in ("localhost", socket.gethostname()):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: no lookup for a warning
        return False
