"""Converts Quick, Draw! files into train/eval/test TFRecord shards with Apache Beam.

    python -m beam_jobs.make_tfrecords --runner=DirectRunner --output_dir=data/tfrecords
    python -m beam_jobs.make_tfrecords --input='data/raw/*.ndjson' --output_dir=out \\
        --direct_num_workers=2 --direct_running_mode=multi_processing
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

The output directory appears whole or not at all (beam_jobs/atomic_output.py).
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
    """Adds the job's steps to the beam.Pipeline `p`: `inputs` are (path, format) pairs from expand_inputs."""
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems

    from beam_jobs import outputs, shards, spill, tallies
    from beam_jobs.prepare import FACTS, ConvertFiles
    from quickdraw_tf.data import preprocess, splits

    spill_dir = FileSystems.join(config.output_dir, spill.SPILL_DIR)
    caps = dict(config.caps)
    keys = [(split, index) for split in splits.SPLITS for index in range(config.num_shards)]

    converted = (
        p
        | "ListFiles" >> beam.Create(list(inputs))
        | "ConvertFiles" >> beam.ParDo(ConvertFiles(config, spill_dir)).with_outputs(FACTS, main="runs")
    )
    runs = beam.pvalue.AsList(converted.runs)
    shard_keys = p | "ShardKeys" >> beam.Create(keys)  # read twice: tallies, then the shards
    plan = (
        shard_keys
        | "ShardTallies" >> beam.FlatMap(tallies.shard_tallies, runs, spill_dir, caps)
        | "CollectTallies" >> beam.combiners.ToList()
        | "PlanCaps" >> beam.Map(tallies.plan_caps, caps, config.classes)
    )
    classes = plan | "Classes" >> beam.Map(lambda plan: plan.classes)
    written = shard_keys | "WriteShards" >> beam.ParDo(
        shards.WriteShard(config.output_dir, spill_dir, config.num_shards, kind),
        runs,
        beam.pvalue.AsSingleton(plan),
    ).with_outputs(shards.REJECTED_RUNS, FACTS, main="shards")
    rejected_runs = (converted.runs, written[shards.REJECTED_RUNS]) | "AllRuns" >> beam.Flatten()
    _ = (
        p
        # Light work (a merge of pre-sorted runs per file): one bundle, without Create's reshuffle step.
        | "RejectedFiles" >> beam.Create(range(config.num_shards), reshuffle=False)
        | "WriteRejected"
        >> beam.Map(
            outputs.write_rejected, beam.pvalue.AsList(rejected_runs), config.output_dir, config.num_shards
        )
    )
    _ = classes | "WriteClasses" >> beam.Map(outputs.write_classes, config.output_dir)

    over_cap = plan | "OverCap" >> beam.FlatMap(tallies.over_cap_facts, caps)
    shard_facts = written.shards | "ShardFacts" >> beam.Map(lambda info: ("shard", info[0], info[1:]))
    _ = (
        (converted[FACTS], written[FACTS], over_cap, shard_facts)
        | "AllFacts" >> beam.Flatten()
        | "CollectFacts" >> beam.combiners.ToList()
        | "WriteStats"
        >> beam.Map(
            outputs.write_stats,
            beam.pvalue.AsSingleton(classes),
            config.output_dir,
            kind,
            config.num_shards,
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
    with atomic_output.claim(config.output_dir, config.overwrite) as staging:
        with beam.Pipeline(runner=runtime.direct_runner(options), options=options) as p:
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
