r"""Training examples/s of ours (configs/rnn.flags through the real trainer) against the same model in
plain PyTorch (benchmarks/peers/torch_rnn.py), alternately in one run, at batch 8 and 64.

  python benchmarks/train_vs_peers.py            # or: python -m benchmarks.train_vs_peers
  python benchmarks/train_vs_peers.py --data_dir=DIR --rounds=2 --keras_lstm

Data: the train split of a make_tfrecords output (--data_dir); by default the 10,810 real simplified
drawings under ../shared/data/quickdraw/simplified, converted by the Beam job on first use into
runs/peers/simplified. The peer trains on exactly the stored inks (written once to an .npz) and runs in
its own process (its thread pool never competes with TensorFlow's). Each round runs, for each batch
size: ours, the peer, [ours with Keras' LSTM loop (--keras_lstm)], [ours XLA-compiled with static
bucket shapes (--xla; the fused kernel has no XLA kernel, so that is Keras' loop compiled)]. Ours is
`trainer.train` on the flagfile's config (batch size and step count overridden), its first logged
chunk (the tracing) left out.
Needs torch (`pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile

if __package__ in (None, ""):  # run as `python benchmarks/train_vs_peers.py`: import from this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import tensorflow as tf

from benchmarks import common
from quickdraw_tf import cli
from quickdraw_tf.training import input_pipeline, trainer

RNN_FLAGFILE = os.path.join(common.REPO, "configs", "rnn.flags")
PEER = os.path.join(common.REPO, "benchmarks", "peers", "torch_rnn.py")
DEFAULT_INPUT = "../shared/data/quickdraw/simplified/*/*.ndjson"


def convert(input_glob: str, data_dir: str) -> None:
    """The Beam job, once: the drawings exactly as training reads them."""
    command = [
        sys.executable,
        "-m",
        "beam_jobs.make_tfrecords",
        f"--input={input_glob}",
        f"--output_dir={data_dir}",
    ]
    subprocess.run(command, check=True, cwd=common.REPO)


def write_drawings(data_dir: str, path: str) -> int:
    """The train split's inks, labels and class count as the .npz the peer reads; returns N."""
    records = tf.data.TFRecordDataset(input_pipeline.split_files(data_dir, "train"))
    inks, labels = [], []
    for inputs, label in records.map(input_pipeline.parse_stroke):
        inks.append(inputs["ink"].numpy())
        labels.append(int(label))
    np.savez(
        path,
        ink=np.concatenate(inks).astype(np.float32),
        lengths=np.array([len(ink) for ink in inks]),
        labels=np.array(labels),
        num_classes=len(input_pipeline.read_classes(data_dir)),
    )
    return len(inks)


def ours(data_dir: str, batch_size: int, steps: int, hparams: dict | None = None, xla: bool = False) -> float:
    """Examples/s of `python -m quickdraw_tf.train --flagfile=configs/rnn.flags --batch_size=B`
    (xla: plus --jit_compile --static_shapes)."""
    with tempfile.TemporaryDirectory() as model_dir:
        config = common.flagfile_config(RNN_FLAGFILE, data_dir, model_dir)
        config = dataclasses.replace(
            config,
            input=dataclasses.replace(config.input, batch_size=batch_size, static_shapes=xla),
            jit_compile=xla,
            hparams={**config.hparams, **(hparams or {})},
            **common.short_run(steps),
        )
        trainer.train(config)
        return common.logged_examples_per_second(model_dir)


def peer(drawings: str, batch_size: int, steps: int, threads: int) -> float:
    args = [
        f"--drawings={drawings}",
        f"--batch_size={batch_size}",
        f"--steps={steps}",
        f"--threads={threads}",
    ]
    # Passive OpenMP waits: with torch's spinning barriers, a CPU shared with other jobs stalls the peer
    # (20-50x slower steps measured here); passive, it runs both threads like TensorFlow does.
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    result = subprocess.run(
        [sys.executable, PEER, *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])["examples_per_second"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=os.path.join(common.REPO, "runs", "peers", "simplified"))
    parser.add_argument("--input", default=DEFAULT_INPUT, help="converted when --data_dir does not exist")
    parser.add_argument("--batch_sizes", default="8,64")
    parser.add_argument("--examples", type=int, default=2560, help="examples per measurement (ours x4)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--peer_threads",
        type=int,
        default=0,
        help="torch threads (0: torch's default, one per core, as TensorFlow uses)",
    )
    parser.add_argument("--keras_lstm", action="store_true", help="also ours with Keras' LSTM loop")
    parser.add_argument("--xla", action="store_true", help="also ours with --jit_compile --static_shapes")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        import torch  # noqa: F401  (only to fail early, in one line, without it)
    except ImportError:
        cli.fail("the PyTorch peer needs torch: pip install -e .[bench]")
    if not os.path.isdir(args.data_dir):
        convert(args.input, args.data_dir)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    print(f"load average at start: {os.getloadavg()}", flush=True)
    rows: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        drawings = os.path.join(scratch, "drawings.npz")
        print(f"{write_drawings(args.data_dir, drawings)} training drawings from {args.data_dir}", flush=True)
        for round_index in range(args.rounds):
            for batch in batch_sizes:
                # Ours logs 4 equal chunks and the first (tracing) is dropped: 3 chunks are measured.
                steps = 4 * max(2, args.examples // (3 * batch))
                runs = {
                    "ours": lambda b=batch, s=steps: ours(args.data_dir, b, s),
                    "PyTorch peer": lambda b=batch: peer(
                        drawings, b, max(8, args.examples // b), args.peer_threads
                    ),
                }
                if args.keras_lstm:
                    runs["ours, Keras LSTM loop"] = lambda b=batch, s=steps: ours(
                        args.data_dir, b, s, {"fused_lstm": False}
                    )
                if args.xla:
                    runs["ours, XLA static shapes"] = lambda b=batch, s=steps: ours(
                        args.data_dir, b, s, xla=True
                    )
                for name, run in runs.items():
                    speed = run()
                    rows.setdefault((name, batch), []).append(speed)
                    print(
                        f"round {round_index + 1} batch {batch:3d} {name:24s} {speed:7.1f} examples/s",
                        flush=True,
                    )
    print_table(rows, batch_sizes)
    print(f"load average at end: {os.getloadavg()}")


def print_table(rows: dict[tuple[str, int], list[float]], batch_sizes: list[int]) -> None:
    print("\n| batch | setup | examples/s (each round) | vs PyTorch (each round) |\n|---|---|---|---|")
    for batch in batch_sizes:
        baseline = rows[("PyTorch peer", batch)]
        for (name, b), speeds in rows.items():
            if b != batch:
                continue
            ratios = " / ".join(f"{s / p:.2f}x" for s, p in zip(speeds, baseline, strict=True))
            print(f"| {batch} | {name} | {' / '.join(f'{s:.1f}' for s in speeds)} | {ratios} |")


if __name__ == "__main__":
    main()
