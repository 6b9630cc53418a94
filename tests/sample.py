"""The embedded sample as the tests read it: where it is (SAMPLE, the one spelling of its path), its real
drawings and bitmaps, and drawings batched as the input pipeline batches them. TensorFlow-free, like the
readers and the Beam job's steps it feeds."""

from __future__ import annotations

import glob
import json
import os
import pathlib

import numpy as np

from quickdraw_tf.data import formats, ink

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = pathlib.Path(REPO, "data", "sample")  # the real drawings the project ships: every test's input
EYE_NPY = SAMPLE / "bitmap" / "sukumr-Doodle-Classifier" / "eye.npy"  # 28x28 numpy_bitmap rows
PER_CLASS = 40


def sample_drawings(per_class: int = PER_CLASS) -> list[dict]:
    """Up to per_class real simplified drawings of each of the sample's 10 words, in file order."""
    by_word: dict[str, list[dict]] = {}
    for path in sorted(glob.glob(os.path.join(SAMPLE, "simplified", "*", "*.ndjson"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                drawings = by_word.setdefault(record["word"], [])
                if len(drawings) < per_class:
                    drawings.append(record)
    return [record for word in sorted(by_word) for record in by_word[word]]


def every_drawing() -> list:
    """Every drawing of the sample's ndjson files, raw and simplified, as the toolkit's reader yields them."""
    paths = sorted(glob.glob(os.path.join(SAMPLE, "*", "*", "*.ndjson")))
    return [drawing for path in paths for drawing in formats.iter_drawings(path)]


def ink_batch(records: list[dict], pad_to: int | None = None, junk: float = 0.0) -> dict[str, np.ndarray]:
    """The drawings' delta ink as the input pipeline batches it: {"ink" [B, T, 3], "length" [B]}, padded
    with `junk` past each drawing's length to the longest one (or to pad_to)."""
    inks = [ink.to_ink(record["drawing"]) for record in records]
    steps = pad_to or max(map(len, inks))
    batch = np.full((len(inks), steps, 3), junk, np.float32)
    for i, one in enumerate(inks):
        batch[i, : len(one)] = one
    return {"ink": batch, "length": np.array([len(one) for one in inks], np.int32)}


def eye_bitmaps(count: int) -> np.ndarray:
    """The first `count` real 28x28 bitmaps of the sample's numpy_bitmap file, uint8 [count, 28, 28]."""
    return np.load(EYE_NPY)[:count].reshape(-1, 28, 28)
