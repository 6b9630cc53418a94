"""The rows of benchmarks/device_check.py, in the order they run, and how each is named on a device.

No TensorFlow here: the supervising process (device_check) plans, names and skips rows without it; each
row runs in a child (device_row), which imports TensorFlow and resolves the row the same way.
"""

from __future__ import annotations

import dataclasses

FLAGFILES = {"rnn": "rnn.flags", "scatter": "scatter.flags", "mobilenet": "mobilenet.flags"}
LARGE_BATCH = 512
STATIC_LENGTH = {"rnn": 192, "scatter": 256, "mobilenet": 256}  # static rows: one bucket, this long
SMOKE_BATCH, SMOKE_LARGE_BATCH = 8, 16
# Seconds a row is expected to take before its model was seen (child start-up and tracing included).
FIRST_GUESS_S = {"rnn": 30.0, "scatter": 90.0, "mobilenet": 60.0}
SMOKE_GUESS_S = 1.0
KINDS = ("cudnn", "correctness", "finite", "throughput", "input")


@dataclasses.dataclass(frozen=True)
class Row:
    kind: str  # one of KINDS
    model: str  # a FLAGFILES key
    batch: str = "own"  # "own" (the flagfile's) or "large"
    precision: str = "off"  # off, float16, bfloat16, or "fast": float16 where supported, else off
    static: bool = False
    xla: bool = False
    cached: bool = False
    smoke: bool = False  # also runs in smoke mode: one row of each kind, on rnn (to stay near a minute)

    def name(self, precision: str, batch_size: int | None) -> str:
        batch = f"b{batch_size}" if batch_size else f"b({self.batch})"  # unknown when setup failed
        parts = [self.kind, self.model, batch, "float32" if precision == "off" else precision]
        if self.static:
            parts.append(f"static xla={'on' if self.xla else 'off'}")
        if self.cached:
            parts.append("cached input")
        return " ".join(parts)


def plan() -> list[Row]:
    """Every row, the most important and the least likely to hang first: a window cut short, or rows
    killed at their deadlines, cost the end of this list. XLA compiles (minutes on a slow host, the
    likeliest to hang) come last, after the batch-512 rows (the largest activations)."""
    models = tuple(FLAGFILES)
    rows = [Row(kind, "rnn", smoke=True) for kind in ("cudnn", "correctness")]
    rows += [Row("finite", "rnn", precision="float16", smoke=True)]
    rows += [Row("throughput", m, smoke=m == "rnn") for m in models]
    rows += [Row("throughput", m, precision=p) for p in ("float16", "bfloat16") for m in models]
    rows += [Row("throughput", m, static=True) for m in models]
    for m in ("rnn", "mobilenet"):
        rows += [
            Row("throughput", m, batch="large", precision="fast", smoke=m == "rnn"),
            Row("input", m, batch="large", precision="fast", cached=True, smoke=m == "rnn"),
        ]
    rows += [Row("throughput", m, batch="large") for m in ("rnn", "scatter")]
    rows += [Row("throughput", "scatter", batch="large", precision="float16")]
    rows += [Row("throughput", m, static=True, xla=True, smoke=m == "rnn") for m in models]
    rows += [Row("throughput", m, static=True, xla=True, precision="fast") for m in ("scatter", "mobilenet")]
    return rows


def batch_sizes(own: dict[str, int], smoke: bool) -> dict[str, dict[str, int]]:
    """model -> {"own": its flagfile's batch (`own`), "large": 512}, for the models in `own` (smoke mode:
    8 and 16)."""
    if smoke:
        return {m: {"own": SMOKE_BATCH, "large": SMOKE_LARGE_BATCH} for m in own}
    return {m: {"own": size, "large": LARGE_BATCH} for m, size in own.items()}


def resolve(row: Row, sizes: dict, supported: dict[str, str], smoke: bool) -> dict:
    """The row as it runs on this device: name, precision, batch size, and "skip" (why it does not run,
    or ''). `supported` maps a precision to '' (fast here) or why not; an unknown device ({}) runs all."""
    precision = row.precision
    if precision == "fast":
        precision = "off" if supported.get("float16") else "float16"
    batch_size = sizes.get(row.model, {}).get(row.batch)
    skip = ""
    if supported.get(precision) and row.kind in ("throughput", "input"):  # "where the device has them"
        skip = supported[precision]
    elif smoke and not row.smoke:
        skip = "smoke mode"
    return {
        "name": row.name(precision, batch_size),
        **dataclasses.asdict(row),
        "precision": precision,
        "batch_size": batch_size,
        "skip": skip,
    }
