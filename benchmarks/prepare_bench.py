"""Per-drawing cost of the Beam job's per-record steps: the slow path against the batch fast path.

    python -m benchmarks.prepare_bench                      # 20,000 drawings, batches of 256, 1024, 2048
    python benchmarks/prepare_bench.py --num_drawings=5000 --rounds=3

Input: every simplified line of the embedded sample (data/sample/simplified), replicated to
--num_drawings lines, in memory (no file reading on either side).

  prepare  slow: formats.parse_record + the job's word check + preprocess.drawing_data, per line;
           fast: ndjson_batch.parse_simplified_batch per batch (parse, validate, delta ink), then
           ink.tobytes() per drawing.
  encode   old: the one-call-per-value encoder serialize_stroke_example had before (kept below as the
           baseline); new: features.stroke_example_body + example_with_class_index.

Rounds alternate baseline and fast path, so both see the same load; each figure is the fastest round's
CPU time (time.process_time) per drawing, which a shared machine disturbs less than wall time.
Both sides are checked to give the same bytes before anything is timed.
"""

from __future__ import annotations

import argparse
import gc
import glob
import os
import sys
import time

if __package__ in (None, ""):  # run as a script: python benchmarks/prepare_bench.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from quickdraw_tf.data import features, formats, ndjson_batch, preprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_GLOB = os.path.join(REPO, "data", "sample", "simplified", "*", "*.ndjson")


def sample_records(num_drawings: int) -> list[formats.SourceRecord]:
    records = []
    for path in sorted(glob.glob(SAMPLE_GLOB)):
        with open(path, "rb") as f:
            records += list(formats.read_source_records(f, path, "ndjson"))
    return [records[i % len(records)] for i in range(num_drawings)]


def slow_prepare(record: formats.SourceRecord, normalize: str) -> tuple:
    drawing = formats.parse_record(record)
    if not drawing.word:  # beam_jobs' check_labelled
        raise ValueError("no word")
    return drawing, preprocess.drawing_data(drawing, normalize, True)


def fast_prepare(payloads: list[bytes], normalize: str, batch: int) -> list:
    out = []
    for start in range(0, len(payloads), batch):
        for drawing in ndjson_batch.parse_simplified_batch(payloads[start : start + batch], normalize):
            out.append((drawing, drawing.ink.tobytes()))
    return out


# The encoder serialize_stroke_example had before the body/class_index split: one call per varint.
def _old_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _old_delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + _old_varint(len(payload)) + payload


def _old_int64(values) -> bytes:
    packed = b"".join([_old_varint(int(value)) for value in values])
    return bytes((0x1A, len(packed) + 2, 0x0A, len(packed))) + packed if packed else b"\x1a\x00"


def old_serialize_stroke_example(ink, class_index, key_id, word, countrycode, recognized, timestamp) -> bytes:
    ink = np.asarray(ink, np.float32)
    raw = np.ascontiguousarray(ink, "<f4").tobytes()
    values = (
        _old_int64((class_index,)),
        _old_delimited(b"\x0a", _old_delimited(b"\x0a", countrycode.encode("utf-8"))),
        _old_delimited(b"\x12", _old_delimited(b"\x0a", raw) if raw else b""),
        _old_int64((key_id,)),
        _old_int64((int(recognized),)),
        _old_int64(ink.shape),
        _old_int64((timestamp,)),
        _old_delimited(b"\x0a", _old_delimited(b"\x0a", word.encode("utf-8"))),
    )
    names = ("class_index", "countrycode", "ink", "key_id", "recognized", "shape", "timestamp", "word")
    entries = []
    for name, feature in zip(names, values, strict=True):
        body = _old_delimited(b"\x0a", name.encode()) + b"\x12" + _old_varint(len(feature)) + feature
        entries.append(b"\x0a" + _old_varint(len(body)) + body)
    return _old_delimited(b"\x0a", b"".join(entries))


def _fastest(run, rounds: int) -> list[float]:
    """CPU seconds of each round for each of the alternated callables."""
    times = [[] for _ in run]
    for _ in range(rounds):
        for index, fn in enumerate(run):
            start = time.process_time()
            fn()
            times[index].append(time.process_time() - start)
    return [min(t) for t in times]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num_drawings", type=int, default=20_000)
    parser.add_argument("--batch_sizes", default="256,1024,2048")
    parser.add_argument("--normalize", default="uniform")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    batches = [int(size) for size in args.batch_sizes.split(",")]
    records = sample_records(args.num_drawings)
    payloads = [record.payload for record in records]
    n = len(records)

    slow = [slow_prepare(record, args.normalize) for record in records]
    fast = fast_prepare(payloads, args.normalize, batches[0])
    assert [data for _, data in slow] == [data for _, data in fast], "fast path gives other ink bytes"
    cases = [
        (np.frombuffer(data, np.float32).reshape(-1, 3), i % 345, d.key_id, d.word, d.countrycode,
         d.recognized, d.timestamp)
        for i, (d, data) in enumerate(slow)
    ]  # fmt: skip

    def new_encode():
        return [
            features.example_with_class_index(features.stroke_example_body(c[0], *c[2:]), c[1]) for c in cases
        ]

    def old_encode():
        return [old_serialize_stroke_example(*case) for case in cases]

    assert new_encode() == old_encode(), "the encoders differ"
    # Only the inputs stay alive: a heap of parsed drawings would make the garbage collector's full passes,
    # which the allocations of either side trigger, the largest cost measured.
    del slow, fast
    gc.collect()
    gc.freeze()

    print(
        f"{n:,} drawings (the sample's {len(set(payloads)):,} simplified lines, replicated); load average "
        f"at start {os.getloadavg()[0]:.2f}; fastest of {args.rounds} rounds, CPU µs/drawing"
    )
    run = [lambda: [slow_prepare(record, args.normalize) for record in records]]
    run += [lambda size=size: fast_prepare(payloads, args.normalize, size) for size in batches]
    run += [old_encode, new_encode]
    seconds = _fastest(run, args.rounds)
    per = [s / n * 1e6 for s in seconds]
    print(f"{'step':<34}{'µs/drawing':>12}{'speed-up':>10}")
    print(f"{'prepare: slow path (baseline)':<34}{per[0]:>12.1f}{'1.00×':>10}")
    for size, value in zip(batches, per[1 : 1 + len(batches)], strict=True):
        print(f"{f'prepare: fast path, batch {size}':<34}{value:>12.1f}{per[0] / value:>9.2f}×")
    old, new = per[-2:]
    print(f"{'encode: old encoder (baseline)':<34}{old:>12.1f}{'1.00×':>10}")
    print(f"{'encode: body + class_index':<34}{new:>12.1f}{old / new:>9.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
