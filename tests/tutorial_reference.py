"""The TF RNN tutorial's per-line conversion (tensorflow/models tutorials/rnn/quickdraw/create_dataset.py),
kept once: the ink tests compare `ink.to_ink(..., "per_axis")` with it, and benchmarks/convert_bench.py times
it as the baseline (benchmarks may import tests/, never the other way round)."""

from __future__ import annotations

import json

import numpy as np


def tutorial_parse_line(ndjson_line: str) -> tuple[np.ndarray, str]:
    """The tutorial's parse_line, loop for loop: json, numpy ink [n, 3], per-axis size normalization, deltas;
    returns (ink, word)."""
    sample = json.loads(ndjson_line)
    class_name = sample["word"]
    inkarray = sample["drawing"]
    stroke_lengths = [len(stroke[0]) for stroke in inkarray]
    total_points = sum(stroke_lengths)
    np_ink = np.zeros((total_points, 3), dtype=np.float32)
    current_t = 0
    for stroke in inkarray:
        for i in [0, 1]:
            np_ink[current_t : (current_t + len(stroke[0])), i] = stroke[i]
        current_t += len(stroke[0])
        np_ink[current_t - 1, 2] = 1  # stroke_end
    lower = np.min(np_ink[:, 0:2], axis=0)
    upper = np.max(np_ink[:, 0:2], axis=0)
    scale = upper - lower
    scale[scale == 0] = 1
    np_ink[:, 0:2] = (np_ink[:, 0:2] - lower) / scale
    np_ink[1:, 0:2] -= np_ink[0:-1, 0:2]
    np_ink = np_ink[1:, :]
    return np_ink, class_name
