"""TrainConfig: everything a training run needs, each hyper-parameter declared ONCE, as a field with its
default and help text. The flags of `python -m quickdraw_tf.train` are derived from these fields and
from InputConfig's (quickdraw_tf/training/config_flags.py); adding a field with a help text adds its flag.
config.json in a model_dir is this dataclass as JSON (training/run_dir.py reads and writes it).

A library caller reads a flagfile with config_from_flagfile(path, **overrides): the config that
`python -m quickdraw_tf.train --flagfile=path` trains, without absl's global flags.
"""

from __future__ import annotations

import dataclasses
import json

from quickdraw_tf import models
from quickdraw_tf.data import checked_json
from quickdraw_tf.data.layout import DEFAULT_DATA_DIR
from quickdraw_tf.training import config_flags
from quickdraw_tf.training.config_flags import setting
from quickdraw_tf.training.input_pipeline import InputConfig

LR_SCHEDULES = ("constant", "cosine", "exponential")
MIXED_PRECISION = ("off", "float16", "bfloat16")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; train.py fills it from flags, tests and benchmarks build it directly."""

    data_dir: str = setting(
        help="make_tfrecords output dir (classes.txt + TFRecords).", flag_default=DEFAULT_DATA_DIR
    )
    model_dir: str = setting(
        help="Checkpoints, TensorBoard logs and exports (default: runs/<flagfile name>).", flag_default=None
    )
    model: str = setting("rnn", f"Model name, one of: {', '.join(models.MODEL_NAMES)}.")
    hparams: dict = setting(
        {}, "Model hyper-parameter key=value; repeat the flag.", parse=models.parse_hparams
    )
    input: InputConfig = InputConfig()  # its fields are flags too (--batch_size, --bucket_boundaries, ...)
    train_steps: int = setting(1000, "Total optimizer steps (a restart continues to it).")
    learning_rate: float = setting(1e-3, "Adam learning rate (peak after warmup).")
    lr_schedule: str = setting("constant", "Decay after warmup.", choices=LR_SCHEDULES)
    warmup_steps: int = setting(0, "Linear learning-rate warmup steps.")
    # exponential only: min + (peak - min) * rate ** step, as sketch-rnn
    lr_decay_rate: float = setting(0.9999, "exponential schedule: rate per step (sketch-rnn: 0.9999).")
    min_learning_rate: float = setting(1e-5, "exponential schedule: the rate it decays towards.")
    clip_norm: float = setting(9.0, "Clip the global gradient norm to this (0: no clipping).")
    eval_every: int = setting(500, "Evaluate on the eval split every N steps.")
    checkpoint_every: int = setting(500, "Checkpoint every N steps.")
    log_every: int = setting(100, "Write train summaries every N steps.")
    keep_checkpoints: int = setting(3, "Keep the last N checkpoints (plus the best).")
    mixed_precision: str = setting(
        "off", "float16 (GPU, with loss scaling) or bfloat16 (TPU).", choices=MIXED_PRECISION
    )
    jit_compile: bool = setting(False, "XLA-compile the training step (needs --static_shapes).")
    num_summary_drawings: int = 8  # eval drawings shown in TensorBoard (not a flag)
    seed: int = setting(0, "Initialization and shuffling seed.")

    def __post_init__(self):
        models.check_name(self.model)
        if self.num_summary_drawings < 0:
            raise ValueError(f"num_summary_drawings must be >= 0, got {self.num_summary_drawings}")
        for name in ("train_steps", "eval_every", "checkpoint_every", "log_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(
                f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}"
            )
        if self.learning_rate <= 0 or self.clip_norm < 0 or self.warmup_steps < 0:
            raise ValueError("learning_rate must be > 0, clip_norm and warmup_steps >= 0")
        if not 0 < self.lr_decay_rate <= 1 or not 0 <= self.min_learning_rate <= self.learning_rate:
            raise ValueError("lr_decay_rate must be in (0, 1] and min_learning_rate in [0, learning_rate]")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, data: bytes | str, where: str = "config.json") -> TrainConfig:
        """to_json's output read back, every field's type and range checked (data/checked_json.py):
        checked_json.JsonFieldError (a ValueError, one line naming `where` and the field) otherwise."""
        data = data.encode("utf-8") if isinstance(data, str) else data
        return checked_json.build(cls, checked_json.parse(data, where), where)


def config_from_flagfile(path: str, **overrides) -> TrainConfig:
    """What `python -m quickdraw_tf.train --flagfile=path` trains, with `overrides` (TrainConfig fields,
    e.g. data_dir=..., input=..., train_steps=...), read without absl's global FLAGS. As on the command
    line, an empty or absent model_dir is runs/<flagfile name>."""
    model_dir = overrides.pop("model_dir", None)
    model_dir = model_dir or config_flags.default_model_dir(["", f"--flagfile={path}"], "")
    return config_flags.config_from_flagfile(TrainConfig, path, model_dir=model_dir, **overrides)
