r"""Training examples/s with length buckets versus padding, on the same data and model, and the share
of padded time steps in each.

  .venv/bin/python benchmarks/train_bench.py --data_dir=runs/accuracy/tfrecords

Rows: length buckets (configs/rnn_cpu.flags), the baseline plain padded_batch (each batch padded to
its longest drawing), and static shapes with one bucket (every batch padded to --max_length, what an
XLA/TPU run without buckets would do).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

if __package__ in (None, ""):  # run as `python benchmarks/train_bench.py`: import from this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import padded_share, rnn_cpu_input, training_examples_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--train_steps", type=int, default=200)
    parser.add_argument("--max_length", type=int, default=200)
    args = parser.parse_args()
    rnn_cpu = rnn_cpu_input()
    setups = {
        "buckets " + ",".join(map(str, rnn_cpu.bucket_boundaries)): rnn_cpu,
        "padded to the longest in the batch (baseline)": dataclasses.replace(rnn_cpu, bucket_boundaries=()),
        f"padded to {args.max_length} (static, one bucket)": dataclasses.replace(
            rnn_cpu, bucket_boundaries=(args.max_length,), static_shapes=True
        ),
    }
    rows = []
    for name, config in setups.items():
        share = padded_share(args.data_dir, config, batches=200)
        speed = training_examples_per_second(args.data_dir, config, args.train_steps)
        rows.append((name, speed, share))
        print(f"{name:50s} {speed:8.0f} examples/s  {100 * share:5.1f}% padded steps", flush=True)
    baseline = rows[1][1]
    print(f"buckets vs baseline: {rows[0][1] / baseline:.2f}x the training examples/s")


if __name__ == "__main__":
    main()
