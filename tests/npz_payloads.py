"""Crafted sketch-rnn .npz files for the safety tests: real drawings plus a pickle that runs code.

np.load(allow_pickle=True) on `malicious_npz(marker)` creates the file `marker`: the tests assert that no
reader of this project ever does.
"""

from __future__ import annotations

import io
import json
import pathlib

import numpy as np

from quickdraw_tf.data import ink
from tests.sample import SAMPLE

BELT = SAMPLE / "simplified" / "lamnguyen5464-Sketch-dataset" / "belt.ndjson"


class CreatesFile:
    """Unpickled, this calls open(path, "w"): what any code a crafted file could run stands for."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def real_stroke3(count: int) -> list[np.ndarray]:
    """The first `count` real belt drawings as int16 stroke-3, as in sketch-rnn's files."""
    lines = BELT.read_bytes().splitlines()[:count]
    return [ink.to_stroke3(json.loads(line)["drawing"]) for line in lines]


def object_array(elements: list) -> np.ndarray:
    array = np.empty(len(elements), dtype=object)
    for index, element in enumerate(elements):
        array[index] = element
    return array


def malicious_npz(marker: str | pathlib.Path, good: int = 3) -> bytes:
    """A sketch-rnn .npz of `good` real drawings whose valid split hides a pickle that creates `marker`."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        train=object_array(real_stroke3(good)),
        valid=object_array([CreatesFile(str(marker))]),
        test=object_array([]),
    )
    return buffer.getvalue()
