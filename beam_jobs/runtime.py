"""The runner the job gives beam.Pipeline: `job_runner(options, ...)`, for the duration of the run.

DirectRunner (or no --runner): `direct_runner(options)` keeps it off the network and its workers quick to
stop. DaskRunner: beam_jobs.dask_cluster (Beam's DaskRunner on a cluster, a local one started for the run
unless one is named). Any other --runner: None, and beam.Pipeline resolves the name itself.

With --direct_running_mode=multi_processing the SDK worker processes run beam_jobs.sdk_worker, Beam's
worker followed by an immediate exit (its docstring says why that is safe): DirectRunner stops its
workers one after the other, and Beam's own takes about half a second each to shut down. They are
started and stopped by beam_jobs.local_workers, which ends a worker Beam forgot to stop (a failed run).
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Iterator, Sequence

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, WorkerOptions
from apache_beam.portability import python_urns
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.runner import PipelineRunner

from beam_jobs import local_workers, sdk_worker
from beam_jobs.job_config import UsageError

# The names under which Beam's SwitchingDirectRunner is asked for (create_runner lower-cases them).
_DIRECT_RUNNER_NAMES = ("direct", "directrunner", "switchingdirectrunner")
# The names under which the job runs Beam's DaskRunner (Beam itself registers none but the class path).
DASK_RUNNER_NAMES = ("dask", "daskrunner", "apache_beam.runners.dask.dask_runner.daskrunner")
# The worker command FnApiRunner gives multi_processing runs, and ours.
BEAM_WORKER_COMMAND = f"{sys.executable} -m apache_beam.runners.worker.sdk_worker_main"
WORKER_COMMAND = shlex.join([sys.executable, "-m", sdk_worker.__name__])


class LocalRunner(fn_runner.FnApiRunner):
    """FnApiRunner whose multi_processing workers run WORKER_COMMAND instead of Beam's own, started and
    stopped by beam_jobs.local_workers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        local_workers.register()

    def run_via_runner_api(self, pipeline_proto, options):
        return super().run_via_runner_api(with_our_worker(pipeline_proto), options)


def with_our_worker(pipeline_proto):
    """The pipeline proto with Beam's worker environment swapped for ours (in place): our command, run by
    local_workers' handler.

    FnApiRunner writes its worker command into the pipeline's environments (a SUBPROCESS_SDK
    environment's payload is the command line). Should a later Beam build it some other way, nothing
    matches and the run keeps Beam's worker: slower to stop, and a failed run may wait for a worker
    that never ends (local_workers says when)."""
    beams = (python_urns.SUBPROCESS_SDK, BEAM_WORKER_COMMAND.encode())
    for environment in pipeline_proto.components.environments.values():
        if (environment.urn, environment.payload) == beams:
            environment.urn = local_workers.URN
            environment.payload = WORKER_COMMAND.encode()
    return pipeline_proto


def direct_runner(options: PipelineOptions) -> PipelineRunner | None:
    """The runner to give beam.Pipeline: the FnApiRunner when DirectRunner (or no runner) is asked for.

    Beam 2.77's DirectRunner (SwitchingDirectRunner.run_pipeline) first tries the Prism runner, which
    downloads a Go binary from GitHub; offline that fails, logs, and only then falls back to the
    FnApiRunner. For a batch pipeline like ours the fallback is what DirectRunner would pick anyway,
    so we build it directly, the way SwitchingDirectRunner does (pipeline options in the provision
    info, which multi_processing workers read). It honours --direct_num_workers and
    --direct_running_mode. Returns None for any other --runner (PrismRunner, DataflowRunner, ...),
    so beam.Pipeline resolves that name itself.

    Local SDK workers (multi_processing) log at WARNING instead of INFO (a dozen start/stop lines
    each) unless --default_sdk_harness_log_level says otherwise, and their startup warning "No
    semi_persistent_directory found" (always true locally) is dropped unless
    --sdk_harness_log_level_overrides is given. Only options set explicitly are sent to the workers:
    the full set includes flags the worker's parser cannot read back ("Discarding unparseable args").
    """
    name = options.view_as(StandardOptions).runner
    if name is not None and runner_name(options) not in _DIRECT_RUNNER_NAMES:
        return None
    worker_options = options.view_as(WorkerOptions)
    if worker_options.default_sdk_harness_log_level is None:
        worker_options.default_sdk_harness_log_level = "WARNING"
    if worker_options.sdk_harness_log_level_overrides is None:
        worker_options.sdk_harness_log_level_overrides = {sdk_worker.WORKER_LOGGER: "ERROR"}
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded_options = JobServiceHandle.encode_pipeline_options(options.get_all_options(drop_default=True))
    provision_info = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded_options)
    )
    return LocalRunner(provision_info=provision_info)


def runner_name(options: PipelineOptions) -> str | None:
    name = options.view_as(StandardOptions).runner
    return name.lower() if isinstance(name, str) else None


def uses_dask(options: PipelineOptions) -> bool:
    """Whether --runner names Beam's DaskRunner (DASK_RUNNER_NAMES, any case)."""
    return runner_name(options) in DASK_RUNNER_NAMES


def check_runner(options: PipelineOptions, dask_workers: int | None = None) -> None:
    """UsageError for runner flags that do not go together (--dask_workers without --runner=DaskRunner, or
    with a cluster named), or for DaskRunner without Dask installed: said before anything starts."""
    if uses_dask(options):
        _dask_cluster().check_options(options, dask_workers)
    elif dask_workers is not None:
        raise UsageError("--dask_workers sizes the local cluster of --runner=DaskRunner only")


@contextlib.contextmanager
def job_runner(
    options: PipelineOptions, dask_workers: int | None = None, paths: Sequence[str] = ()
) -> Iterator[PipelineRunner | None]:
    """The runner for beam.Pipeline, for the block: direct_runner's, or for --runner=DaskRunner Beam's
    DaskRunner on a cluster (a LocalCluster of `dask_workers` processes started and stopped here unless
    the options name one; `paths`, the job's inputs and output, are checked against a remote one), or None.
    UsageError as check_runner says."""
    check_runner(options, dask_workers)
    if not uses_dask(options):
        yield direct_runner(options)
        return
    with _dask_cluster().cluster_runner(options, dask_workers, paths) as runner:
        yield runner


def _dask_cluster():
    """beam_jobs.dask_cluster, imported only for a DaskRunner run: Dask is an optional dependency."""
    try:
        from beam_jobs import dask_cluster
    except ImportError as error:
        raise UsageError(f"--runner=DaskRunner needs Dask ({error}): pip install -e '.[dask]'") from None
    return dask_cluster
