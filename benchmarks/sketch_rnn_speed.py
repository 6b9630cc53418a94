r"""Training speed of the Sketch-RNN variants that docs/generate.md compares, in minutes per 1,000 steps:

  .venv/bin/python -m benchmarks.sketch_rnn_speed --data_dir=runs/accuracy/tfrecords [--steps=300 --rounds=3]

Each variant is configs/sketch_rnn_cpu.flags with a few hyper-parameters changed (the first is the VAE the
table's rows change one thing of). The variants run in turn, round after round, so that a change in the
machine's load falls on all of them; each figure is the median over the rounds, with the range. A run's
first logged chunk (which holds the tf.function tracing) is left out.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile

if __package__ in (None, ""):  # run as `python benchmarks/sketch_rnn_speed.py`: import from this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks import common
from quickdraw_tf.training import trainer

FLAGFILE = os.path.join(common.REPO, "configs", "sketch_rnn_cpu.flags")
VAE = dict(decoder_only=False, enc_size=128, z_size=64)
VARIANTS = {
    "VAE, recurrent dropout 0.1": VAE,
    "VAE, pen loss over the padding": {**VAE, "pen_loss_padding": True},
    "VAE, recurrent dropout off": {**VAE, "recurrent_dropout": 0.0},
    "decoder-only (configs/sketch_rnn_cpu.flags)": {},
    "decoder-only, pen loss over the padding": {"pen_loss_padding": True},
    "decoder-only, recurrent dropout off": {"recurrent_dropout": 0.0},
}


def minutes_per_1000_steps(data_dir: str, hparams: dict, steps: int) -> float:
    with tempfile.TemporaryDirectory() as model_dir:
        config = common.flagfile_config(FLAGFILE, data_dir, model_dir, **common.short_run(steps))
        config = dataclasses.replace(config, hparams={**config.hparams, **hparams})
        trainer.train(config)
        examples_per_second = common.logged_examples_per_second(model_dir)
    return 1000 * config.input.batch_size / examples_per_second / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, help="the benchmark split's TFRecords")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    figures = {name: [] for name in VARIANTS}
    for round_index in range(args.rounds):
        for name, hparams in VARIANTS.items():
            figures[name].append(minutes_per_1000_steps(args.data_dir, hparams, args.steps))
            print(f"round {round_index + 1}: {name}: {figures[name][-1]:.2f} min / 1,000 steps "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"\nminutes per 1,000 steps, median [min-max] of {args.rounds} rounds "
          f"(load average at the end {os.getloadavg()[0]:.2f}):")
    for name, values in figures.items():
        print(f"  {name:48s} {np.median(values):6.2f} [{min(values):.2f}-{max(values):.2f}]")


if __name__ == "__main__":
    main()
