"""Offline local runs: `direct_runner(options)` keeps DirectRunner off the network (see its docstring).

Not silenced: with --direct_running_mode=multi_processing each SDK worker process still prints two
lines as it starts ("apitools not found", "Logging handler created"): it imports Beam and logs them
before any of our code runs. (The package's __init__ quiets this process.)
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, WorkerOptions
from apache_beam.runners.runner import PipelineRunner

# The names under which Beam's SwitchingDirectRunner is asked for (create_runner lower-cases them).
_DIRECT_RUNNER_NAMES = ("direct", "directrunner", "switchingdirectrunner")


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
    if name is not None and (not isinstance(name, str) or name.lower() not in _DIRECT_RUNNER_NAMES):
        return None
    worker_options = options.view_as(WorkerOptions)
    if worker_options.default_sdk_harness_log_level is None:
        worker_options.default_sdk_harness_log_level = "WARNING"
    if worker_options.sdk_harness_log_level_overrides is None:
        worker_options.sdk_harness_log_level_overrides = {"__main__": "ERROR"}  # sdk_worker_main's logger
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded_options = JobServiceHandle.encode_pipeline_options(options.get_all_options(drop_default=True))
    provision_info = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded_options)
    )
    return fn_runner.FnApiRunner(provision_info=provision_info)
