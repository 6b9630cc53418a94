"""Converts Quick, Draw! files into train/eval/test TFRecord shards with Apache Beam.

    python -m beam_jobs.make_tfrecords --runner=DirectRunner --output_dir=data/tfrecords
    python -m beam_jobs.make_tfrecords --input='data/raw/*.ndjson' --output_dir=out \\
        --direct_num_workers=2 --direct_running_mode=multi_processing
    python -m beam_jobs.make_tfrecords --input='data/raw/*.ndjson' --output_dir=out \\
        --runner=DaskRunner --dask_workers=2       # or --dask_client_address=tcp://HOST:8786
    python -m beam_jobs.make_tfrecords --input='gs://quickdraw_dataset/full/simplified/*.ndjson' \\
        --output_dir=gs://BUCKET/quickdraw --runner=DataflowRunner --project=P --region=R \\
        --temp_location=gs://BUCKET/tmp

Flags this job does not define go to Beam's PipelineOptions unchanged. Flags, outputs, rules (splits,
caps, duplicates, rejections): docs/beam_job.md. The steps:

  ConvertFiles  read each file, parse, validate, make the ink, place by key_id; spill sorted runs
                (prepare.py, records.py, packed.py, spill.py)
  ShardTallies  per shard: drop duplicates, count per (split, word); PlanCaps: the classes and each
                class's cap threshold (tallies.py)
  WriteShards   per shard: duplicates and unknown classes rejected, caps applied, examples encoded and
                written in rank order (shards.py, outputs.py)
  WriteRejected, WriteClasses, WriteStats; then the TFDS metadata (outputs.py, tfds_metadata.py)

The steps meet through keyed joins (joins.py), the same on every runner; the runner: runtime.py,
dask_cluster.py. The output directory appears whole or not at all (beam_jobs/atomic_output.py).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence

from beam_jobs import job_config
from beam_jobs.job_config import JobConfig, UsageError, build_arg_parser, config_from_args

# Beam and the steps are imported in build_pipeline and run_job, not here: a bad flag is reported before
# Beam's 1.5 s import.


def build_pipeline(p, config: JobConfig, inputs: Sequence[tuple[str, str]], kind: str) -> None:
    """Adds the job's steps to the beam.Pipeline `p`: `inputs` are (path, format) pairs from expand_inputs.

    One pipeline for every runner: no side inputs and no tagged outputs (beam_jobs/joins.py says why). The
    steps emit (key, value) pairs, a bucket and a spill run or FACTS and a count, and each step receives what
    it needs grouped under its own key. The last step, WriteStats, depends on every other file written
    (and checks that each was), so a runner that runs only what its last step needs runs them all."""
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems

    from beam_jobs import outputs, shards, spill, tallies
    from beam_jobs.joins import Gather, JoinOnKeys, select, to_each
    from beam_jobs.prepare import FACTS, ConvertFiles, rejected_bucket, shard_bucket
    from quickdraw_tf.data import preprocess, splits

    out, num_shards = config.output_dir, config.num_shards
    spill_dir = FileSystems.join(out, spill.SPILL_DIR)
    caps = dict(config.caps)
    shard_keys = [shard_bucket(split, index) for split in splits.SPLITS for index in range(num_shards)]
    rejected_keys = [rejected_bucket(index) for index in range(num_shards)]

    converted = (
        p
        | "ListFiles" >> beam.Create(list(inputs))
        | "ConvertFiles" >> beam.ParDo(ConvertFiles(config, spill_dir))
    )
    shard_tallies = (
        {"runs": converted}
        | "ShardRuns" >> JoinOnKeys(shard_keys)
        | "ShardTallies" >> beam.FlatMap(tallies.tally_shard, spill_dir, caps)
    )
    plan = (
        {"tallies": shard_tallies}
        | "CollectTallies" >> Gather()
        | "PlanCaps" >> beam.Map(tallies.plan_of, caps, config.classes)
    )
    written = (
        {"runs": converted, "plan": plan | "PlanPerShard" >> beam.FlatMap(to_each, shard_keys)}
        | "ShardInputs" >> JoinOnKeys(shard_keys)
        | "WriteShards" >> beam.ParDo(shards.WriteShard(out, spill_dir, num_shards, kind))
    )
    rejected_names = (
        {"runs": (converted, written)}
        | "RejectedRuns" >> JoinOnKeys(rejected_keys)
        | "WriteRejected" >> beam.Map(outputs.write_rejected, out, num_shards)
    )
    classes = plan | "Classes" >> beam.Map(lambda plan: plan.classes)
    facts = (
        converted | "ConvertedFacts" >> select(FACTS),
        written | "ShardFacts" >> select(FACTS),
        plan | "OverCap" >> beam.FlatMap(tallies.over_cap_facts, caps),
    )
    names = (
        written | "ShardNames" >> select(outputs.WRITTEN),
        rejected_names,
        classes | "WriteClasses" >> beam.Map(outputs.write_classes, out),
    )
    _ = (
        {"facts": facts, "classes": classes, "names": names}
        | "CollectFacts" >> Gather()
        | "WriteStats"
        >> beam.Map(
            outputs.write_stats_file,
            out,
            kind,
            num_shards,
            preprocess.job_record(kind, config.normalize, config.simplify),
        )
    )


def run_job(config: JobConfig, beam_args: Sequence[str] = (), save_main_session: bool = True) -> dict:
    """Runs the job to completion and returns stats.json; raises UsageError for bad inputs and
    atomic_output.OutputDirError for an --output_dir in use."""
    inputs = job_config.expand_inputs(config.inputs, config.format)
    kind = job_config.input_kind(inputs)
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

    from beam_jobs import atomic_output, outputs, runtime, spill, tfds_metadata

    options = PipelineOptions(list(beam_args))
    options.view_as(SetupOptions).save_main_session = save_main_session
    runtime.check_runner(options, config.dask_workers)
    paths = [config.output_dir, *(path for path, _ in inputs)]
    with atomic_output.claim(config.output_dir, config.overwrite) as staging:
        with runtime.job_runner(options, config.dask_workers, paths) as runner:
            with beam.Pipeline(runner=runner, options=options) as p:
                build_pipeline(p, dataclasses.replace(config, output_dir=staging), inputs, kind)
        spill.remove(FileSystems.join(staging, spill.SPILL_DIR))
        stats = outputs.reconciled_stats(staging)
        tfds_metadata.write_tfds_metadata(stats, staging, kind)
    return stats


def run(argv: Sequence[str] | None = None, save_main_session: bool = True) -> dict:
    """The command line: job flags as documented in --help, every other flag to Beam."""
    args, beam_args = build_arg_parser().parse_known_args(argv)
    config = config_from_args(args)
    stats = run_job(config, beam_args, save_main_session)
    from beam_jobs import outputs

    print(outputs.summary(stats, config.output_dir))
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    try:
        run(argv)
    except UsageError as error:  # atomic_output.OutputDirError (an --output_dir in use) is one too
        print(f"make_tfrecords: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    # Run the importable module rather than this __main__ copy: its functions then pickle by reference.
    from beam_jobs import make_tfrecords

    sys.exit(make_tfrecords.main())
