"""beam_jobs.runtime and beam_jobs.sdk_worker: local runs whose workers stop as soon as they are done."""

from __future__ import annotations

import sys

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import python_urns
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import environments

from beam_jobs import local_workers, runtime, sdk_worker

TWO_WORKERS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def _worker_module(_) -> str:
    return sys.modules["__main__"].__spec__.name


def _fail(_) -> None:
    raise ValueError("a step failed in a worker")


def test_our_worker_command_replaces_beams_and_nothing_else():
    for command, expected in (
        (runtime.BEAM_WORKER_COMMAND, runtime.WORKER_COMMAND),
        ("some-other-worker --flag", "some-other-worker --flag"),
    ):
        pipeline = beam.Pipeline()
        _ = pipeline | beam.Create([1])
        environment = environments.SubprocessSDKEnvironment.from_command_string(command)
        proto = runtime.with_our_worker(pipeline.to_runner_api(default_environment=environment))
        ours = {(env.urn, env.payload.decode()) for env in proto.components.environments.values()}
        urn = local_workers.URN if command == runtime.BEAM_WORKER_COMMAND else python_urns.SUBPROCESS_SDK
        assert (urn, expected) in ours and (command == expected or command not in {p for _, p in ours})
    assert runtime.WORKER_COMMAND.endswith(f"-m {sdk_worker.__name__}")


@pytest.mark.integration
def test_worker_processes_run_our_worker_and_report_a_failing_step():
    options = PipelineOptions(TWO_WORKERS)
    with beam.Pipeline(runner=runtime.direct_runner(options), options=options) as p:
        assert_that(p | beam.Create([0, 1]) | beam.Map(_worker_module), equal_to([sdk_worker.__name__] * 2))
    options = PipelineOptions(TWO_WORKERS)
    with pytest.raises(Exception, match="a step failed in a worker"):
        with beam.Pipeline(runner=runtime.direct_runner(options), options=options) as p:
            _ = p | beam.Create([0]) | beam.Map(_fail)
