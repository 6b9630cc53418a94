r"""One row of benchmarks/device_check.py, in the child process device_check starts for it.

  python -m benchmarks.device_row --spec=JSON --result=FILE

The spec is {"row": {Row's fields} | null, "smoke": bool, "data_dir": DIR}. A null row is the setup:
the device (GPU name, TensorFlow, TF32), the precisions it runs fast and the flagfiles' batch sizes.
The result, a JSON object, is written to a temporary name and renamed: FILE exists only whole. An
error in the row is the result's "error" (exit status 0); only a crash leaves no FILE.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys

if __package__ in (None, ""):  # run as `python benchmarks/device_row.py`: import from this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf

from benchmarks import common, device_plan, device_probes
from benchmarks.device_plan import FLAGFILES, Row
from quickdraw_tf.training import input_pipeline, trainer

# Smoke mode: the same rows on models small enough for a CPU test.
SMOKE_HPARAMS = {
    "rnn": dict(num_conv=(8,), conv_len=(3,), num_layers=1, num_nodes=8),
    "scatter": dict(
        grid_size=8, conv_filters=(8,), dilations=(1,), point_features=8, blocks=(1,), widths=(16,),
        strides=(1,), stem_width=8, cardinality=1,
    ),
    "mobilenet": dict(image_size=32, alpha=0.35),
}  # fmt: skip


def base_config(model: str, data_dir: str, smoke: bool) -> trainer.TrainConfig:
    """The model's GPU flagfile as `python -m quickdraw_tf.train --flagfile=F` reads it."""
    config = common.flagfile_config(os.path.join(common.REPO, "configs", FLAGFILES[model]), data_dir, "")
    if smoke:
        config = dataclasses.replace(config, hparams={**config.hparams, **SMOKE_HPARAMS[model]})
        config = device_probes.with_input(config, batch_size=device_plan.SMOKE_BATCH, shuffle_buffer=100)
    return dataclasses.replace(config, num_summary_drawings=0)


def row_config(row: Row, base: trainer.TrainConfig, precision: str, batch_size: int) -> trainer.TrainConfig:
    config = dataclasses.replace(base, mixed_precision=precision, jit_compile=row.xla)
    config = device_probes.with_input(config, batch_size=batch_size)
    if row.static:
        length = device_plan.STATIC_LENGTH[row.model]
        config = device_probes.with_input(config, bucket_boundaries=(length,), static_shapes=True)
    return config


def device_info() -> dict:
    return {
        "gpu": device_probes.gpu_name(),
        "devices": [d.name for d in tf.config.list_logical_devices()],
        "tensorflow": tf.__version__,
        "tf32": tf.config.experimental.tensor_float_32_execution_enabled(),
        "python": platform.python_version(),
        "cuda_build": tf.test.is_built_with_cuda(),
    }


def setup(data_dir: str, smoke: bool) -> dict:
    own = {model: base_config(model, data_dir, smoke).input.batch_size for model in FLAGFILES}
    return {
        "status": "ok",
        "device": device_info(),
        "supported": device_probes.supported_precisions(),
        "batch_sizes": device_plan.batch_sizes(own, smoke),
    }


def measure(row: Row, config: trainer.TrainConfig, num_classes: int, smoke: bool) -> dict:
    if row.kind == "cudnn":
        return device_probes.cudnn_probe(config, num_classes)
    if row.kind == "correctness":
        batch = next(iter(input_pipeline.make_dataset(config.data_dir, "eval", config.input, training=False)))
        return device_probes.one_step_on_each_device(config, num_classes, batch, tolerance=1e-4)
    if row.kind == "finite":
        return device_probes.finite_losses(config, num_classes, steps=4 if smoke else 200, chunks=10)
    steps = dict(warmup_steps=2, min_seconds=0.0, max_steps=2) if smoke else {}
    steps = steps or dict(warmup_steps=10, min_seconds=3.0, max_steps=3000)
    cached = (3 if smoke else 20) if row.cached else 0
    return device_probes.throughput(config, num_classes, cached_batches=cached, **steps)


def run_row(row: Row, data_dir: str, smoke: bool) -> dict:
    """The row resolved on this device (as device_check resolves it) and, unless skipped, measured."""
    base = base_config(row.model, data_dir, smoke)
    sizes = device_plan.batch_sizes({row.model: base.input.batch_size}, smoke)
    resolved = device_plan.resolve(row, sizes, device_probes.supported_precisions(), smoke)
    skip = resolved.pop("skip")
    if skip:
        return {**resolved, "status": f"skipped: {skip}"}
    config = row_config(row, base, resolved["precision"], resolved["batch_size"])
    num_classes = len(input_pipeline.read_classes(data_dir))
    try:
        return {**resolved, **measure(row, config, num_classes, smoke)}
    except Exception as error:  # the row's failure is its result; the supervisor goes on with the next
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        unsupported = isinstance(error, trainer.JitUnsupportedError)
        error_text = f"{type(error).__name__}: {message}"[:500]
        return {**resolved, "status": "unsupported" if unsupported else "error", "error": error_text}


def write_json(path: str, value: dict) -> None:
    """Whole or not at all: a temporary name in the same directory, then an atomic rename."""
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
    os.replace(path + ".tmp", path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="JSON: row (null: the setup), smoke, data_dir")
    parser.add_argument("--result", required=True, help="where the result's JSON goes")
    args = parser.parse_args()
    spec = json.loads(args.spec)
    if spec["row"] is None:
        result = setup(spec["data_dir"], spec["smoke"])
    else:
        result = run_row(Row(**spec["row"]), spec["data_dir"], spec["smoke"])
    write_json(args.result, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
