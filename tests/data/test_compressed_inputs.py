"""Gzipped inputs: Beam's FileSystems.open gives a CompressedFile for a .gz path, whose readline()
takes no size; the job's reader (beam_jobs/records.read_file) must read it as it reads the plain file."""

from __future__ import annotations

import gzip
import json
import os
import shutil

import pytest

from beam_jobs import make_tfrecords, records
from quickdraw_tf.data import formats, layout
from quickdraw_tf.data.drawing import Drawing
from tests import sample

SAMPLE = str(sample.SAMPLE)
RAW_BELT = os.path.join(SAMPLE, "raw", "borismus-exupery", "belt.ndjson")
SIMPLIFIED_BELT = os.path.join(SAMPLE, "simplified", "lamnguyen5464-Sketch-dataset", "belt.ndjson")
EYES = os.path.join(SAMPLE, "bitmap", "sukumr-Doodle-Classifier", "eye.npy")


def _gzipped(path: str, directory) -> str:
    target = os.path.join(str(directory), os.path.basename(path) + ".gz")
    with open(path, "rb") as plain, gzip.open(target, "wb") as packed:
        shutil.copyfileobj(plain, packed)
    return target


def _real_drawings(count: int = 40) -> list[Drawing]:
    with open(SIMPLIFIED_BELT, encoding="utf-8") as f:
        lines = [json.loads(line) for _, line in zip(range(count), f, strict=False)]
    return [
        Drawing(int(r["key_id"]), r["word"], r["countrycode"], strokes=tuple(r["drawing"])) for r in lines
    ]


def _csv_and_bin(directory) -> list[str]:
    """The real belt drawings written as csv and as Google's binary format (the writers' round trip)."""
    drawings, paths = _real_drawings(), [str(directory / "belt.csv"), str(directory / "belt.bin")]
    with open(paths[0], "w", encoding="utf-8", newline="") as f:
        formats.write_csv(drawings, f)
    with open(paths[1], "wb") as f:
        formats.write_bin(drawings, f)
    return paths


def _records(path: str) -> list[tuple]:
    fmt = formats.format_for_path(path)
    return [
        (r.position, r.split, bytes(r.payload) if isinstance(r.payload, bytes) else r.payload.tobytes())
        for r in records.read_file((path, fmt))
    ]


@pytest.mark.parametrize("name", ["raw ndjson", "simplified ndjson", "npy", "csv", "bin"])
def test_a_gzipped_file_gives_the_records_of_the_plain_one(name, tmp_path):
    csv_path, bin_path = _csv_and_bin(tmp_path)
    plain = {
        "raw ndjson": RAW_BELT, "simplified ndjson": SIMPLIFIED_BELT, "npy": EYES, "csv": csv_path,
        "bin": bin_path,
    }[name]
    expected = _records(plain)
    assert len(expected) >= 20
    assert _records(_gzipped(plain, tmp_path)) == expected


def test_a_long_line_in_a_gzipped_file_is_cut_and_the_next_line_read(tmp_path):
    with open(SIMPLIFIED_BELT, "rb") as f:
        first, second = f.readline(), f.readline()
    path = tmp_path / "long.ndjson.gz"
    with gzip.open(path, "wb") as f:
        f.write(b'{"padding": "' + b"x" * 5000 + b'"}\n' + first + second)
    found = list(records.read_file((str(path), "ndjson"), max_record_bytes=1000))
    assert [r.position for r in found] == [1, 2, 3]
    assert len(found[0].payload) == 1000  # kept: the first max_record_bytes bytes only
    assert [r.payload for r in found[1:]] == [first.rstrip(b"\n"), second.rstrip(b"\n")]


@pytest.mark.integration
def test_make_tfrecords_converts_a_gzipped_ndjson(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    gz = _gzipped(SIMPLIFIED_BELT, source)
    out = tmp_path / "out"
    assert make_tfrecords.main(["--runner=DirectRunner", f"--input={gz}", f"--output_dir={out}"]) == 0
    with open(out / layout.STATS_FILE, encoding="utf-8") as f:
        stats = json.load(f)
    with open(SIMPLIFIED_BELT, "rb") as f:
        lines = sum(1 for _ in f)
    assert stats["read"] == lines and stats["written"] > 0
