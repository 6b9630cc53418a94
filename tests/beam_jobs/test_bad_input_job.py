"""The Beam job survives hostile input: every bad record is one rejection with its reason, nothing in a
data file runs, and the TFRecord framing (google-crc32c) stays byte for byte TensorFlow's."""

from __future__ import annotations

import collections
import json
import os
import pathlib
import time

import pytest
import tensorflow as tf

from beam_jobs import make_tfrecords, outputs
from quickdraw_tf.data import formats, limits
from quickdraw_tf.data.formats import binary
from tests.npz_payloads import malicious_npz
from tests.sample import SAMPLE

PIG_RAW = SAMPLE / "raw" / "borismus-exupery" / "pig.ndjson"
NOSE_SIMPLIFIED = SAMPLE / "simplified" / "goberoi-sketch_face" / "nose.ndjson"


@pytest.mark.parametrize("sizes", [[0], [1, 2, 3, 4, 5, 6, 7, 8, 9], [100, 0, 65536, 1 << 20]])
def test_tfrecord_framing_is_tensorflows_byte_for_byte(tmp_path, sizes):
    real = NOSE_SIMPLIFIED.read_bytes()
    records = [(real * (size // len(real) + 1))[:size] for size in sizes]
    path = str(tmp_path / "tf.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    assert outputs.tfrecord_bytes(records) == pathlib.Path(path).read_bytes()


def test_a_long_record_is_framed_fast():
    record = NOSE_SIMPLIFIED.read_bytes() * 20  # ~10 MB; the old numpy crc32c took ~5 s per MB
    start = time.perf_counter()
    framed = outputs.tfrecord_bytes([record])
    assert time.perf_counter() - start < 1.0 and len(framed) == len(record) + 16


def _hostile_inputs(src: pathlib.Path) -> dict[str, int]:
    """Real records plus one of each hostile kind; returns the rejections expected per reason."""
    lines = PIG_RAW.read_bytes().splitlines()[:5]
    first = json.loads(lines[0])
    far = json.loads(lines[0])
    far["drawing"][0][0][2] = 7e305  # crashed ink.simplify and the whole job
    xs, ys, _ = first["drawing"][0]
    points = limits.MAX_POINTS_PER_STROKE
    zigzag = dict(
        first, drawing=[[[xs[0], xs[-1]] * (points // 2), ys[:2] * (points // 2), list(range(points))]]
    )
    newline = dict(first, word="pi\ng")
    huge = lines[0][:-2] + b"," + b"[[1,2],[3,4],[5,6]]," * 120_000 + b"[[1],[2],[3]]]}"  # ~2.4 MB
    hostile = [json.dumps(far).encode(), json.dumps(zigzag).encode(), json.dumps(newline).encode(), huge]
    (src / "pig.ndjson").write_bytes(b"\n".join(lines + hostile) + b"\n")
    nose = list(formats.iter_drawings(str(NOSE_SIMPLIFIED)))
    data = bytearray(b"".join(binary.record_bytes(drawing) for drawing in nose[:5]))
    corrupt = len(data)
    data += b"".join(binary.record_bytes(drawing) for drawing in nose[5:])
    data[corrupt + 15 : corrupt + 17] = b"\0\0"  # 0 strokes: the walk loses the record boundaries
    (src / "nose.bin").write_bytes(bytes(data))
    (src / "sketchrnn_belt.npz").write_bytes(malicious_npz(src.parent / "pwned"))
    return {"bad_coordinate": 1, "too_large": 2, "bad_field": 1, "unreadable_tail": 1, "truncated_record": 1}


@pytest.mark.integration
def test_hostile_inputs_are_rejected_one_by_one_and_run_no_code(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    expected = _hostile_inputs(src)
    out = tmp_path / "out"
    stats = make_tfrecords.run(
        ["--runner=DirectRunner", f"--input={src}/*", f"--output_dir={out}", "--num_shards=2"]
    )
    assert not (tmp_path / "pwned").exists()
    assert stats["rejected_per_reason"] == expected
    assert stats["written"] == 5 + 5  # the real pig lines and the nose drawings before the corrupt one
    assert stats["read"] == stats["written"] + stats["rejected"]
    rejected = []
    for name in sorted(os.listdir(out)):
        if name.startswith("rejected-"):
            rejected += [json.loads(line) for line in (out / name).read_text().splitlines()]
    by_reason = collections.defaultdict(list)
    for entry in rejected:
        by_reason[entry["reason"]].append(entry)
    assert "io.open" in by_reason["truncated_record"][0]["message"]
    (tail,) = by_reason["unreadable_tail"]
    assert tail["source"].endswith("nose.bin") and "to the end were not read" in tail["message"]
    messages = " | ".join(entry["message"] for entry in by_reason["too_large"])
    assert "px of ink to resample" in messages and "bytes, over the 1,048,576-byte cap" in messages
