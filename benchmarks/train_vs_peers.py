r"""Training examples/s of ours (configs/rnn.flags through the real trainer) against the same model in
plain PyTorch (benchmarks/peers/torch_rnn.py), alternately in one run, at batch 8 and 64.

  python -m benchmarks.train_vs_peers                       # or: python benchmarks/train_vs_peers.py
  python -m benchmarks.train_vs_peers --rounds=3 --kernels=keras,block --peer_passive

Data: the train split of a make_tfrecords output (--data_dir); by default the 10,810 real simplified
drawings under ../shared/data/quickdraw/simplified, converted by the Beam job on first use into
runs/peers/simplified. The peer trains on exactly the stored inks (written once to an .npz) and runs in
its own process (its thread pool never competes with TensorFlow's) with torch's defaults, as a PyTorch
user runs it. Each round runs, for each batch size: ours (the flagfile's configuration, the default LSTM
kernel), the peer, then the optional rows: ours with each LSTM kernel of --kernels (same model and
weights), the peer with passive OpenMP waits (--peer_passive), ours XLA-compiled with static bucket shapes
(--xla). Every row names the LSTM kernel it ran. Ours is `trainer.train` on the flagfile's config (batch
size and step count overridden), its first logged chunk (the tracing) left out.
Needs torch (`pip install -e .[bench]`; see setup.py for PyTorch's CPU build).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable

if __package__ in (None, ""):  # run as `python benchmarks/train_vs_peers.py`: import from this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import tensorflow as tf

from benchmarks import common
from quickdraw_tf import cli, models
from quickdraw_tf.models.fused_lstm import KERNELS, FusedLSTM
from quickdraw_tf.training import input_pipeline, trainer

RNN_FLAGFILE = os.path.join(common.REPO, "configs", "rnn.flags")
PEER = os.path.join(common.REPO, "benchmarks", "peers", "torch_rnn.py")
DEFAULT_INPUT = "../shared/data/quickdraw/simplified/*/*.ndjson"
PASSIVE_ROW = "PyTorch peer, OMP_WAIT_POLICY=PASSIVE"


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


def flagfile_config(data_dir: str, model_dir: str, batch_size: int, steps: int, hparams: dict, xla: bool):
    """configs/rnn.flags' TrainConfig at this batch size and step count (xla: plus --jit_compile
    --static_shapes), `hparams` over the flagfile's."""
    config = common.flagfile_config(RNN_FLAGFILE, data_dir, model_dir)
    return dataclasses.replace(
        config,
        input=dataclasses.replace(config.input, batch_size=batch_size, static_shapes=xla),
        jit_compile=xla,
        hparams={**config.hparams, **hparams},
        **common.short_run(steps),
    )


def kernel_used(hparams: dict, batch_size: int, xla: bool) -> str:
    """The LSTM kernel a run with these hparams takes: the layer's own choice, asked in the same context
    (device, XLA or not, batch size) as the training step traces it."""
    kernel = {**models.model_hparams("rnn"), **hparams}["lstm_kernel"]
    layer, chosen = FusedLSTM(8, kernel=kernel), []

    def trace(sequences):
        chosen.append(layer.kernel_for(sequences))
        return sequences

    spec = tf.TensorSpec([batch_size, None, 8], tf.float32)
    tf.function(trace, jit_compile=xla).get_concrete_function(spec)
    return chosen[0]


def ours(data_dir: str, batch_size: int, steps: int, hparams: dict, xla: bool = False) -> float:
    """Examples/s of `python -m quickdraw_tf.train --flagfile=configs/rnn.flags --batch_size=B [hparams]`."""
    with tempfile.TemporaryDirectory() as model_dir:
        trainer.train(flagfile_config(data_dir, model_dir, batch_size, steps, hparams, xla))
        return common.logged_examples_per_second(model_dir)


def peer(drawings: str, batch_size: int, steps: int, threads: int, passive: bool = False) -> float:
    """Examples/s of the PyTorch peer in its own process: torch's defaults, unless passive (OpenMP threads
    sleep instead of spinning at barriers, which helps only when other jobs share the cores)."""
    args = [
        f"--drawings={drawings}",
        f"--batch_size={batch_size}",
        f"--steps={steps}",
        f"--threads={threads}",
    ]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"} if passive else None
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
    parser.add_argument("--examples", type=int, default=2560, help="examples per measurement (ours x4/3)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--peer_threads",
        type=int,
        default=0,
        help="torch threads (0: torch's default, one per core, as TensorFlow uses)",
    )
    parser.add_argument(
        "--kernels",
        default="",
        help=f"also ours with these LSTM kernels (comma-separated, of {', '.join(KERNELS[1:])})",
    )
    parser.add_argument("--keras_lstm", action="store_true", help="the same as --kernels=keras")
    parser.add_argument("--peer_passive", action="store_true", help="also the peer with passive OpenMP waits")
    parser.add_argument("--xla", action="store_true", help="also ours with --jit_compile --static_shapes")
    args = parser.parse_args()
    args.kernels = [k for k in args.kernels.split(",") if k]
    if args.keras_lstm and "keras" not in args.kernels:
        args.kernels.append("keras")
    unknown = sorted(set(args.kernels) - set(KERNELS[1:]))
    if unknown:
        cli.fail(f"--kernels: unknown {', '.join(unknown)}; known: {', '.join(KERNELS[1:])}")
    return args


def peer_row(threads: int) -> str:
    """The baseline's row name: torch's defaults unless --peer_threads set the threads."""
    if not threads:
        return "PyTorch peer (torch defaults)"
    return f"PyTorch peer ({threads} thread{'s' if threads > 1 else ''}, else torch defaults)"


def setups(args, drawings: str, batch: int) -> dict[str, Callable[[], float]]:
    """The rows of one batch size in the order they run: ours and the peer first, then the optional ones.
    Each name says the LSTM kernel ours ran."""
    # Ours logs 4 equal chunks and the first (tracing) is dropped: 3 chunks are measured.
    steps = 4 * max(2, args.examples // (3 * batch))
    peer_steps = max(8, args.examples // batch)

    def ours_row(label: str, hparams: dict, xla: bool = False) -> tuple[str, Callable[[], float]]:
        name = f"{label} [LSTM kernel: {kernel_used(hparams, batch, xla)}]"
        return name, lambda: ours(args.data_dir, batch, steps, hparams, xla)

    rows = dict([ours_row("ours, configs/rnn.flags", {})])
    rows[peer_row(args.peer_threads)] = lambda: peer(drawings, batch, peer_steps, args.peer_threads)
    rows.update(ours_row(f"ours, lstm_kernel={kernel}", {"lstm_kernel": kernel}) for kernel in args.kernels)
    if args.peer_passive:
        rows[PASSIVE_ROW] = lambda: peer(drawings, batch, peer_steps, args.peer_threads, passive=True)
    if args.xla:
        rows.update([ours_row("ours, --jit_compile --static_shapes", {}, xla=True)])
    return rows


def main() -> None:
    args = parse_args()
    try:
        import torch
    except ImportError:
        cli.fail("the PyTorch peer needs torch: pip install -e .[bench]")
    if not os.path.isdir(args.data_dir):
        convert(args.input, args.data_dir)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    print(f"load average at start: {_load()}", flush=True)
    print(f"TensorFlow {tf.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs", flush=True)
    rows: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        drawings = os.path.join(scratch, "drawings.npz")
        print(f"{write_drawings(args.data_dir, drawings)} training drawings from {args.data_dir}", flush=True)
        runs = {batch: setups(args, drawings, batch) for batch in batch_sizes}
        for round_index in range(args.rounds):
            for batch in batch_sizes:
                for name, run in runs[batch].items():
                    speed = run()
                    rows.setdefault((name, batch), []).append(speed)
                    print(
                        f"round {round_index + 1} batch {batch:3d} {name:58s} {speed:7.1f} examples/s"
                        f"  (load {_load()})",
                        flush=True,
                    )
    print_table(rows, batch_sizes, peer_row(args.peer_threads))
    print(f"load average at end: {_load()}")


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _spread(values: list[float], spec: str, unit: str = "") -> str:
    """median [min–max] of the rounds."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:{spec}}{unit} [{low:{spec}}–{high:{spec}}{unit}]"


def print_table(rows: dict[tuple[str, int], list[float]], batch_sizes: list[int], baseline_row: str) -> None:
    """Per row: examples/s and the ratio to the peer (baseline_row) of the same round, each as the median
    [min–max] over the rounds."""
    print("\n| batch | setup | examples/s, median [min–max] | / PyTorch peer, same round |")
    print("|---|---|---|---|")
    for batch in batch_sizes:
        baseline = rows[(baseline_row, batch)]
        for (name, b), speeds in rows.items():
            if b != batch:
                continue
            ratios = [s / p for s, p in zip(speeds, baseline, strict=True)]
            print(f"| {batch} | {name} | {_spread(speeds, '.1f')} | {_spread(ratios, '.2f', '×')} |")


if __name__ == "__main__":
    main()
