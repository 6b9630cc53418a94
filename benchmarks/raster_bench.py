r"""Raster speed on CPU: the TF renderer in tf.data versus PIL through tf.py_function, and the
training examples/s of each raster model through the real training loop.

  .venv/bin/python benchmarks/raster_bench.py --stroke_data_dir=runs/raster/data24 \
      --image_data_dir=data/bitmap10

Render rows, on the same real drawings (the train split of --stroke_data_dir, parsed and cached in
memory first so that neither side pays for reading), 64x64 greyscale with stroke-order colouring:
  tf.data + raster.render   padded batches of 64, one vectorized map call per batch
  tf.py_function + PIL      the seed notebooks' way (the Kaggle kernel's draw_cv2 with PIL instead
                            of OpenCV): per drawing, lines 6 wide on 256x256, resized to 64x64
Training rows: `python -m quickdraw_tf.train --flagfile=F` (input pipeline included) for --train_steps
steps; examples/s from its TensorBoard log, the first quarter (which holds the tracing) left out; each
beside the first flagfile's row (default rnn_cpu.flags, the RNN recognizer) as the baseline.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as `python benchmarks/raster_bench.py`: import from this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from benchmarks.common import REPO, flagfile_config, logged_examples_per_second
from quickdraw_tf import models
from quickdraw_tf.models import raster
from quickdraw_tf.training import input_pipeline

# The first flagfile is the training rows' baseline: the RNN recognizer of the training stack.
FLAGFILES = ("rnn_cpu.flags", "scatter_cpu.flags", "mobilenet_cpu.flags", "bitmap_cnn.flags")
SIZE, BATCH = 64, 64


def pil_render(ink: np.ndarray, length: int, base_size: int = 256, line_width: int = 6) -> np.ndarray:
    """The Kaggle greyscale kernel's drawing, with PIL: uint8 [SIZE, SIZE] from one delta ink."""
    ink = ink[:length]
    points = np.concatenate([[[0.0, 0.0]], np.cumsum(ink[:, :2], axis=0)])
    points = (points - points.min(0)) / max(float((points.max(0) - points.min(0)).max()), 1e-6)
    points *= base_size - 1
    ends = np.flatnonzero(ink[:, 2]) + 1  # point k + 1 ends a stroke where row k's flag is set
    image = Image.new("L", (base_size, base_size))
    draw = ImageDraw.Draw(image)
    for stroke, chunk in enumerate(np.split(points, ends + 1)):
        colour = 255 - min(stroke, 10) * 13
        if len(chunk) > 1:
            draw.line([tuple(p) for p in chunk], fill=colour, width=line_width)
    return np.asarray(image.resize((SIZE, SIZE), Image.BILINEAR))


def _drawings(data_dir: str, count: int) -> tf.data.Dataset:
    files = input_pipeline.split_files(data_dir, "train")
    dataset = tf.data.TFRecordDataset(files).map(input_pipeline.parse_stroke).map(lambda x, y: x)
    return dataset.take(count).cache()


def _images_per_second(dataset: tf.data.Dataset, count: int, repeats: int) -> float:
    for _ in dataset.take(2):  # warm-up: tracing, thread pools
        pass
    started = time.perf_counter()
    for _ in range(repeats):
        for _ in dataset:
            pass
    return count * repeats / (time.perf_counter() - started)


def render_rows(data_dir: str, count: int, repeats: int) -> list[tuple[str, float]]:
    drawings = _drawings(data_dir, count)
    for _ in drawings:  # fill the cache
        pass
    ours = drawings.padded_batch(BATCH).map(
        lambda x: raster.render(x["ink"], x["length"], SIZE, line_width=1.5, colour="stroke_order"),
        num_parallel_calls=tf.data.AUTOTUNE,
    )

    def py_render(x):
        image = tf.py_function(lambda i, n: pil_render(i.numpy(), int(n)), [x["ink"], x["length"]], tf.uint8)
        return tf.ensure_shape(image, [SIZE, SIZE])

    seed = drawings.map(py_render, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH)
    return [
        ("tf.data + raster.render (batched)", _images_per_second(ours.prefetch(2), count, repeats)),
        ("tf.py_function + PIL (per drawing)", _images_per_second(seed.prefetch(2), count, repeats)),
    ]


def training_row(flagfile: str, data_dir: str, steps: int) -> tuple[str, int, float]:
    """(name, parameters, examples/s) of `python -m quickdraw_tf.train --flagfile=...` for `steps` steps,
    each in a fresh process, as a user runs it."""
    config = flagfile_config(flagfile, data_dir, model_dir="")
    num_classes = len(input_pipeline.read_classes(data_dir))
    parameters = models.get_model(config.model, num_classes, **config.hparams).count_params()
    with tempfile.TemporaryDirectory() as model_dir:
        subprocess.run(
            [
                sys.executable, "-m", "quickdraw_tf.train", f"--flagfile={flagfile}",
                f"--data_dir={data_dir}", f"--model_dir={model_dir}", f"--train_steps={steps}",
                f"--eval_every={steps}", f"--checkpoint_every={steps}", f"--log_every={max(1, steps // 4)}",
            ],
            check=True, cwd=REPO, capture_output=True,
        )  # fmt: skip
        speed = logged_examples_per_second(model_dir)
    name = f"{config.model} ({os.path.basename(flagfile)}, batch {config.input.batch_size})"
    return name, parameters, speed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stroke_data_dir", required=True, help="make_tfrecords stroke output")
    parser.add_argument("--image_data_dir", help="make_tfrecords bitmap output (for bitmap_cnn)")
    parser.add_argument("--drawings", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train_steps", type=int, default=40)
    parser.add_argument("--flagfiles", default=",".join(os.path.join(REPO, "configs", f) for f in FLAGFILES))
    parser.add_argument("--skip_training", action="store_true")
    args = parser.parse_args()
    print(f"CPU load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    rows = render_rows(args.stroke_data_dir, args.drawings, args.repeats)
    for name, speed in rows:
        print(f"render {name:40s} {speed:8.0f} images/s", flush=True)
    print(f"render speed-up of the TF renderer: {rows[0][1] / rows[1][1]:.1f}x", flush=True)
    if args.skip_training:
        return
    baseline = None
    for flagfile in args.flagfiles.split(","):
        model = flagfile_config(flagfile, data_dir="", model_dir="").model
        data_dir = args.image_data_dir if model == "bitmap_cnn" else args.stroke_data_dir
        if data_dir is None:
            print(f"train  {model}: skipped (no --image_data_dir)")
            continue
        name, parameters, speed = training_row(flagfile, data_dir, args.train_steps)
        baseline = baseline or speed
        print(
            f"train  {name:50s} {parameters:>10,d} parameters {speed:8.0f} examples/s"
            f" ({speed / baseline:.2f}x the first row)",
            flush=True,
        )
    print(f"CPU load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
