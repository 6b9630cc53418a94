"""Mutated copies of the real sample files in every format, and the job's per-record step, for the
fuzz test (tests/data/test_fuzz.py) and the long run (benchmarks/fuzz_bench.py), which imports it from
the test harness.

Every seed is a real file of data/sample or real sample drawings written with formats' writers; each
mutant applies 1-4 random mutations to one seed: byte flips, cuts, insertions, repeated or deleted
slices, numbers replaced by hostile ones (7e305, NaN, 20-digit integers, strings, nulls), words with
control characters, deep nesting, and for .npz stroke-3 arrays scaled, cast or reshaped, or a pickle
that would create a file if it ever ran.
"""

from __future__ import annotations

import collections
import functools
import io
import os
import pathlib
import re
import time
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np

from quickdraw_tf.data import formats, ink
from tests.sample import EYE_NPY, SAMPLE

HOSTILE_NUMBERS = [
    b"7e305", b"-1e400", b"NaN", b"Infinity", b"1e999", b"99999999999999999999", b"-0.0", b"1.5",
    b"1000001", b'"12"', b"null", b"true", b"[]", b"{}", b"-5",
]  # fmt: skip
HOSTILE_WORDS = [b"pi\\ng", b"\\t", b"  ", b"", b"\\u0000x", b"\\u2028", b" pig"]


class Seed(NamedTuple):
    name: str  # the file name: bin, npy and npz readers take the word from it
    fmt: str
    data: bytes


@functools.cache
def seeds() -> tuple[Seed, ...]:
    """One or more real seed files per format."""
    raw = sorted((SAMPLE / "raw").glob("*/*.ndjson"))[:6]
    simplified = sorted((SAMPLE / "simplified").glob("*/*.ndjson"))[:6]
    found = [Seed(path.name, "ndjson", _head_lines(path, 8)) for path in raw + simplified]
    nose = list(formats.iter_drawings(str(SAMPLE / "simplified" / "goberoi-sketch_face" / "nose.ndjson")))
    text = io.StringIO(newline="")
    formats.write_csv(nose[:20], text)
    found.append(Seed("nose.csv", "csv", text.getvalue().encode()))
    binary = io.BytesIO()
    formats.write_bin(nose[:40], binary)
    found.append(Seed("nose.bin", "bin", binary.getvalue()))
    found.append(Seed("sketchrnn_nose.npz", "npz", _npz([ink.to_stroke3(d.strokes) for d in nose[:30]])))
    eye = np.load(EYE_NPY)[:20].reshape(20, 784)
    npy = io.BytesIO()
    np.save(npy, eye)
    found.append(Seed("eye.npy", "npy", npy.getvalue()))
    found.append(Seed("my.eye.rows.bin", "bitmap_raw", eye.tobytes()))
    return tuple(found)


def _head_lines(path: pathlib.Path, count: int) -> bytes:
    return b"".join(path.read_bytes().splitlines(keepends=True)[:count])


def _npz(sketches: list) -> bytes:
    array = np.empty(len(sketches), dtype=object)
    for index, sketch in enumerate(sketches):
        array[index] = sketch
    buffer = io.BytesIO()
    np.savez_compressed(buffer, train=array, valid=array[:0], test=array[:0])
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------
# Mutations


def _flip(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for at in rng.integers(0, len(out), size=int(rng.integers(1, 8))):
        out[at] = int(rng.integers(0, 256))
    return bytes(out)


def _cut(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(0, len(data)))]


def _insert(data: bytes, rng: np.random.Generator) -> bytes:
    at = int(rng.integers(0, len(data) + 1))
    return data[:at] + rng.bytes(int(rng.integers(1, 64))) + data[at:]


def _repeat(data: bytes, rng: np.random.Generator) -> bytes:
    """A slice repeated a few times, or (1 in 50) up to 10,000 times: long lines (past the 1 MiB cap),
    long strokes, many records."""
    start = int(rng.integers(0, len(data)))
    piece = data[start : start + int(rng.integers(1, 200))]
    times = int(rng.integers(2, 10_000 if rng.random() < 0.02 else 50))
    return data[:start] + piece * times + data[start:]


def _zigzag(data: bytes, rng: np.random.Generator) -> bytes:
    """A line's first stroke replaced by one that jumps 1,000 px back and forth from its first point,
    200 to 4,000 times: a long stroke with up to ~1 M px of ink to resample."""
    match = re.search(rb'"drawing":\[\[\[(-?\d+)[^\]]*\],\[(-?\d+)', data)
    if not match:
        return _repeat(data, rng)
    half = int(rng.integers(100, 2000))
    low, y = int(match[1]), match[2]
    xs = b",".join([match[1], str(low + 1000).encode()] * half)
    ys = b",".join([y, y] * half)
    ts = b",".join(str(t).encode() for t in range(2 * half))
    stroke = b"[[" + xs + b"],[" + ys + b"],[" + ts + b"]]"
    end = data.find(b"]]", match.end())
    end = len(data) if end < 0 else end + 2
    return data[: match.start()] + b'"drawing":[' + stroke + data[end:]


def _delete(data: bytes, rng: np.random.Generator) -> bytes:
    start = int(rng.integers(0, len(data)))
    return data[:start] + data[start + int(rng.integers(1, 500)) :]


def _hostile_number(data: bytes, rng: np.random.Generator) -> bytes:
    numbers = list(re.finditer(rb"-?\d+(\.\d+)?", data[:200_000]))
    if not numbers:
        return _flip(data, rng)
    match = numbers[int(rng.integers(0, len(numbers)))]
    value = HOSTILE_NUMBERS[int(rng.integers(0, len(HOSTILE_NUMBERS)))]
    return data[: match.start()] + value + data[match.end() :]


def _hostile_word(data: bytes, rng: np.random.Generator) -> bytes:
    word = HOSTILE_WORDS[int(rng.integers(0, len(HOSTILE_WORDS)))]
    replacement = b'"word":"' + word + b'"'
    return re.sub(rb'"word":"[^"]*"', lambda _: replacement, data, count=int(rng.integers(1, 5)))


def _nest(data: bytes, rng: np.random.Generator) -> bytes:
    at = int(rng.integers(0, len(data) + 1))
    return data[:at] + b"[" * int(rng.integers(100, 20_000)) + data[at:]


BYTE_MUTATIONS = (_flip, _cut, _insert, _repeat, _delete, _hostile_number, _hostile_word, _nest, _zigzag)


def _mutated_npz(rng: np.random.Generator, marker: str) -> bytes:
    """Real stroke-3 arrays scaled, cast, reshaped or replaced, or a pickle that would create `marker`."""
    sketches: list = list(_nose_stroke3())
    for index in rng.integers(0, len(sketches), size=int(rng.integers(1, 5))):
        sketch = sketches[index]
        if not isinstance(sketch, np.ndarray):
            continue
        choice = int(rng.integers(0, 7))
        if choice == 0:
            with np.errstate(over="ignore"):
                sketches[index] = sketch.astype(np.float64) * 1e300
        elif choice == 1:
            sketches[index] = np.where(sketch == 0, np.nan, sketch.astype(np.float32))
        elif choice == 2:
            sketches[index] = sketch.astype(np.int64) * 100_000
        elif choice == 3:
            sketches[index] = sketch[:, :2]
        elif choice == 4:
            sketches[index] = np.tile(sketch, (3000, 1))
        elif choice == 5:
            sketches[index] = sketch.astype(np.uint8)
        else:
            sketches[index] = _RunsCode(marker)
    return _npz(sketches)


@functools.cache
def _nose_stroke3() -> tuple[np.ndarray, ...]:
    nose = formats.iter_drawings(str(SAMPLE / "simplified" / "goberoi-sketch_face" / "nose.ndjson"))
    return tuple(ink.to_stroke3(drawing.strokes) for drawing in list(nose)[:20])


class _RunsCode:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def mutants(count: int, seed: int, marker: str) -> Iterator[Seed]:
    """`count` mutated files, the same for the same seed. `marker`: the file a hostile pickle would create."""
    rng = np.random.default_rng(seed)
    pool = seeds()
    for number in range(count):
        base = pool[number % len(pool)]
        if base.fmt == "npz" and rng.random() < 0.5:
            data = _mutated_npz(rng, marker)
        else:
            data = base.data
            for _ in range(int(rng.integers(1, 5))):
                if data:
                    data = BYTE_MUTATIONS[int(rng.integers(0, len(BYTE_MUTATIONS)))](data, rng)
        stem, extension = os.path.splitext(base.name)
        yield Seed(f"{number:05d}-{stem}{extension}", base.fmt, data)


class Tally(NamedTuple):
    files: int
    read: int
    written: int
    rejected: dict  # reason -> count
    crashes: list  # (file, position, repr of the exception)
    slowest_s: float  # the longest one record took through the per-record step


def run_per_record_step(files: Iterable[Seed], budget_s: float | None = None, min_files: int = 0) -> Tally:
    """Every record of every file through the job's per-record step (prepare.prepare_batch: parse,
    validate, word, ink; the fast ndjson path where it applies). Counts what it writes and rejects; any
    other exception is a crash. After min_files, stops starting new files once `budget_s` seconds have
    passed, if given (the job's import is not counted)."""
    from beam_jobs import job_config, prepare

    deadline = None if budget_s is None else time.monotonic() + budget_s
    config = job_config.JobConfig()
    done = read = written = 0
    rejected: collections.Counter = collections.Counter()
    crashes, slowest = [], 0.0
    for file in files:
        if done >= min_files and deadline is not None and time.monotonic() > deadline:
            break
        done += 1
        records = formats.read_source_records(io.BytesIO(file.data), file.name, file.fmt)
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except Exception as error:  # the splitter itself must never raise on content
                crashes.append((file.name, "split", repr(error)[:300]))
                break
            read += 1
            start = time.perf_counter()
            try:
                (outcome,) = prepare.prepare_batch([record], config)
            except Exception as error:
                crashes.append((file.name, record.position, repr(error)[:300]))
                continue
            slowest = max(slowest, time.perf_counter() - start)
            if isinstance(outcome, dict):
                rejected[outcome["reason"]] += 1
            else:
                written += 1
    return Tally(done, read, written, dict(rejected), crashes, slowest)
