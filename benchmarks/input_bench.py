r"""Input pipeline alone versus what the model trains on per second, on the same data and config.

  .venv/bin/python benchmarks/input_bench.py --data_dir=runs/accuracy/tfrecords

The pipeline is configs/rnn_cpu.flags' (shuffle, parse, augment, bucket, prefetch); the target is a
pipeline at least 20x faster than training, so that input never limits the accelerator-free loop.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time

if __package__ in (None, ""):  # run as `python benchmarks/input_bench.py`: import from this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import rnn_cpu_input, training_examples_per_second
from quickdraw_tf.training import input_pipeline


def pipeline_examples_per_second(data_dir: str, config: input_pipeline.InputConfig, batches: int) -> float:
    dataset = input_pipeline.make_dataset(data_dir, "train", config, training=True)
    iterator = iter(dataset)
    for _ in range(20):  # fill the shuffle buffer and the prefetch, start the threads
        next(iterator)
    started, examples = time.perf_counter(), 0
    for _ in range(batches):
        inputs, _ = next(iterator)
        examples += int(inputs["length"].shape[0])
    return examples / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--batches", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3, help="pipeline passes; the median is printed")
    parser.add_argument("--train_steps", type=int, default=200)
    args = parser.parse_args()

    def median_speed(config: input_pipeline.InputConfig) -> float:
        passes = range(args.repeats)
        runs = [pipeline_examples_per_second(args.data_dir, config, args.batches) for _ in passes]
        return statistics.median(runs)

    rnn_cpu = rnn_cpu_input()
    pipeline = median_speed(rnn_cpu)
    plain = dataclasses.replace(rnn_cpu, augment_scale=0.0, augment_drop_prob=0.0, augment_rotation=0.0)
    pipeline_plain = median_speed(plain)
    training = training_examples_per_second(args.data_dir, rnn_cpu, args.train_steps)
    print(f"input pipeline (rnn_cpu config, augmented): {pipeline:10.0f} examples/s")
    print(f"input pipeline (no augmentation):           {pipeline_plain:10.0f} examples/s")
    print(f"training (rnn_cpu model, same input):        {training:10.0f} examples/s")
    print(f"pipeline / training: {pipeline / training:.0f}x (target >= 20x)")


if __name__ == "__main__":
    main()
