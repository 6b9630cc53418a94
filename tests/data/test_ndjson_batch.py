"""The ndjson batch fast path against the slow path, on every real sample line, mutants and edge cases.

A FastDrawing must be exactly what formats.parse_record + the job's word check + preprocess.drawing_data
give for the same line (both simplify settings); None is always allowed (the slow path then decides),
but the real simplified lines, and the harmless variants below, must take the fast path.
"""

from __future__ import annotations

import gc
import glob
import os
import random

import numpy as np
import pytest

from tests import fuzz_corpus
from quickdraw_tf.data import formats, ndjson_batch, preprocess
from quickdraw_tf.data.drawing import InvalidRecord
from tests.sample import SAMPLE

NORMALIZATIONS = ("uniform", "per_axis")


def sample_lines(layout: str) -> list[bytes]:
    """Every line of the sample's simplified or raw ndjson files, as the reader yields them."""
    lines = []
    for path in sorted(glob.glob(os.path.join(SAMPLE, layout, "*", "*.ndjson"))):
        with open(path, "rb") as f:
            lines += [record.payload for record in formats.read_source_records(f, path, "ndjson")]
    return lines


def slow_path(payload: bytes, normalize: str) -> tuple | None:
    """(key_id, word, countrycode, recognized, timestamp, ink bytes for simplify=True, for False) or None
    where the job rejects the line."""
    try:
        drawing = formats.parse_record(formats.SourceRecord("test.ndjson", 1, payload, "ndjson"))
        if not drawing.word:  # beam_jobs' check_labelled
            return None
        data = [preprocess.drawing_data(drawing, normalize, simplify) for simplify in (True, False)]
    except InvalidRecord:
        return None
    fields = (drawing.key_id, drawing.word, drawing.countrycode, drawing.recognized, drawing.timestamp)
    return (*fields, *data)


def check_batch(payloads: list[bytes], normalize: str = "uniform") -> list[bool]:
    """Asserts every FastDrawing of the batch equals the slow path; returns which lines took the fast path."""
    results = ndjson_batch.parse_simplified_batch(payloads, normalize)
    assert len(results) == len(payloads)
    for payload, fast in zip(payloads, results, strict=True):
        if fast is None:
            continue
        expected = slow_path(payload, normalize)
        assert expected is not None, f"fast path accepted a line the job rejects: {payload[:200]!r}"
        assert fast.ink.dtype == np.float32 and fast.ink.ndim == 2 and fast.ink.shape[1] == 3
        got = (*fast[:5], fast.ink.tobytes(), fast.ink.tobytes())
        assert got == expected, payload[:200]
        assert [type(value) for value in fast[:5]] == [int, str, str, bool, int]
    return [fast is not None for fast in results]


@pytest.mark.parametrize("normalize", NORMALIZATIONS)
def test_every_sample_line(normalize):
    simplified, raw = sample_lines("simplified"), sample_lines("raw")
    assert len(simplified) > 1000 and len(raw) > 200
    # Whole files' worth in one batch, and small batches: the result must not depend on the batching.
    assert all(check_batch(simplified, normalize))  # the real simplified lines all take the fast path
    assert check_batch(raw, normalize) == [False] * len(raw)  # raw lines carry times: slow path
    mixed = [line for pair in zip(simplified, raw, strict=False) for line in pair]
    known = set(simplified)
    for start in range(0, len(mixed), 37):
        taken = check_batch(mixed[start : start + 37], normalize)
        assert taken == [line in known for line in mixed[start : start + 37]]


def test_mutated_lines():
    """Real lines mutated by the fuzz corpus' byte mutators (seeded), checked in mixed batches."""
    rng = np.random.default_rng(11)
    lines = sample_lines("simplified") + sample_lines("raw")
    mutators = (
        fuzz_corpus._flip, fuzz_corpus._cut, fuzz_corpus._insert, fuzz_corpus._delete,
        fuzz_corpus._hostile_number, fuzz_corpus._hostile_word, fuzz_corpus._repeat,
    )  # fmt: skip
    mutants = []
    for _ in range(3000):
        line = lines[int(rng.integers(0, len(lines)))]
        for _ in range(int(rng.integers(1, 3))):
            line = mutators[int(rng.integers(0, len(mutators)))](line, rng) or line
        # A mutant may hold a line break: the reader would split it, so test its lines one by one.
        mutants += [part.rstrip(b"\r") for part in line.split(b"\n") if part.strip()]
    taken = []
    for start in range(0, len(mutants), 256):
        taken += check_batch(mutants[start : start + 256], "uniform" if start % 512 else "per_axis")
    assert 0 < sum(taken) < len(taken)  # both paths exercised


LINE = sample_lines("simplified")[0]  # a real line: {"word":"monkey",...,"drawing":[[[121,112,...


def _line(old: bytes, new: bytes, count: int = 1) -> bytes:
    assert old in LINE, old
    return LINE.replace(old, new, count)


def _key(name: bytes) -> bytes:
    """The line's `"name":value` item (with its trailing comma), to drop or repeat."""
    start = LINE.index(b'"' + name + b'":')
    end = LINE.index(b',"', start) + 1
    return LINE[start:end]


FIRST_X = b'"drawing":[[[121,'
EDGE_CASES = {
    # name: (line, takes the fast path)
    "as read": (LINE, True),
    "float coordinate 1.0": (_line(FIRST_X, b'"drawing":[[[1.0,'), False),
    "coordinate 1e2": (_line(FIRST_X, b'"drawing":[[[1e2,'), False),
    "coordinate 255": (_line(FIRST_X, b'"drawing":[[[255,'), True),
    "coordinate 256": (_line(FIRST_X, b'"drawing":[[[256,'), False),
    "coordinate -1": (_line(FIRST_X, b'"drawing":[[[-1,'), False),
    "coordinate -0": (_line(FIRST_X, b'"drawing":[[[-0,'), True),
    "coordinate NaN": (_line(FIRST_X, b'"drawing":[[[NaN,'), False),
    "coordinate Infinity": (_line(FIRST_X, b'"drawing":[[[Infinity,'), False),
    "coordinate true": (_line(FIRST_X, b'"drawing":[[[true,'), False),
    "coordinate false": (_line(FIRST_X, b'"drawing":[[[false,'), False),
    "coordinate null": (_line(FIRST_X, b'"drawing":[[[null,'), False),
    "coordinate string": (_line(FIRST_X, b'"drawing":[[["121",'), False),
    "coordinate 2**64": (_line(FIRST_X, b'"drawing":[[[18446744073709551616,'), False),
    "coordinate 2**64-1": (_line(FIRST_X, b'"drawing":[[[18446744073709551615,'), False),
    "coordinate leading zero": (_line(FIRST_X, b'"drawing":[[[0121,'), False),
    "whitespace in the drawing": (_line(FIRST_X, b'"drawing": [ [ [ 121 ,'), True),
    "key_id 2**63-1": (_line(b'"5566648650039296"', b'"9223372036854775807"'), True),
    "key_id 2**63": (_line(b'"5566648650039296"', b'"9223372036854775808"'), False),
    "key_id of 20 digits": (_line(b'"5566648650039296"', b'"00000000000000000001"'), False),
    "key_id huge": (_line(b'"5566648650039296"', b'"' + b"9" * 5000 + b'"'), False),
    "key_id as a JSON int": (_line(b'"5566648650039296"', b"5566648650039296"), True),
    "key_id int 2**64-1": (_line(b'"5566648650039296"', b"18446744073709551615"), False),
    "key_id int huge": (_line(b'"5566648650039296"', b"9" * 30), False),
    "key_id negative": (_line(b'"5566648650039296"', b"-5"), False),
    "key_id empty": (_line(b'"5566648650039296"', b'""'), False),
    "key_id not digits": (_line(b'"5566648650039296"', b'"55a6"'), False),
    "key_id float": (_line(b'"5566648650039296"', b"5.0"), False),
    "key_id with leading zeros": (_line(b'"5566648650039296"', b'"0005566648650039296"'), True),
    "no word": (LINE.replace(_key(b"word"), b""), False),
    "no key_id": (LINE.replace(_key(b"key_id"), b""), False),
    "no drawing": (LINE[: LINE.index(b',"drawing"')] + b"}", False),
    "no countrycode": (LINE.replace(_key(b"countrycode"), b""), True),
    "no recognized": (LINE.replace(_key(b"recognized"), b""), True),
    "no timestamp": (LINE.replace(_key(b"timestamp"), b""), True),
    "word repeated": (_line(b'{"word":"monkey",', b'{"word":"monkey","word":"pig",'), False),
    "drawing repeated": (_line(b"{", b'{"drawing":[[[1,2],[3,4]]],'), False),
    "recognized repeated": (_line(b'"recognized":true,', b'"recognized":true,"recognized":false,'), False),
    "drawing repeated, deep": (_line(b"{", b'{"drawing":' + b"[" * 990 + b"]" * 990 + b","), False),
    "extra field": (_line(b"{", b'{"extra":1,'), False),
    "empty word": (_line(b'"word":"monkey"', b'"word":""'), False),
    "blank word": (_line(b'"word":"monkey"', b'"word":"   "'), False),
    "word with a space around": (_line(b'"word":"monkey"', b'"word":" monkey"'), False),
    "word with an escape": (_line(b'"word":"monkey"', b'"word":"mon\\u006bey"'), False),
    "word with a tab escape": (_line(b'"word":"monkey"', b'"word":"mon\\tkey"'), False),
    "word with a raw control character": (_line(b'"word":"monkey"', b'"word":"mon\x01key"'), False),
    "word with a space inside": (_line(b'"word":"monkey"', b'"word":"The Eiffel Tower"'), True),
    "word holding true": (_line(b'"word":"monkey"', b'"word":"true love"'), False),
    "word not UTF-8": (_line(b'"word":"monkey"', b'"word":"mon\xffkey"'), False),
    "word UTF-8, not ASCII": (_line(b'"word":"monkey"', "\"word\":\"café\"".encode()), False),
    "word a number": (_line(b'"word":"monkey"', b'"word":7'), False),
    "byte order mark": (b"\xef\xbb\xbf" + LINE, False),
    "countrycode a number": (_line(b'"countrycode":"AU"', b'"countrycode":61'), False),
    "countrycode empty": (_line(b'"countrycode":"AU"', b'"countrycode":""'), True),
    "recognized false": (_line(b'"recognized":true', b'"recognized":false'), True),
    "recognized 1": (_line(b'"recognized":true', b'"recognized":1'), False),
    "recognized string": (_line(b'"recognized":true', b'"recognized":"true"'), False),
    "recognized null": (_line(b'"recognized":true', b'"recognized":null'), False),
    "timestamp without fraction": (_line(b'07:09:16.54707 UTC', b'07:09:16 UTC'), True),
    "timestamp without UTC": (_line(b'07:09:16.54707 UTC', b'07:09:16.54707'), True),
    "timestamp of 6 fraction digits": (_line(b'07:09:16.54707 UTC', b'07:09:16.547071 UTC'), True),
    "timestamp of 7 fraction digits": (_line(b'07:09:16.54707 UTC', b'07:09:16.5470712 UTC'), False),
    "timestamp with spaces": (_line(b"2017-03-26 07:09:16.54707 UTC", b" 2017-03-26 07:09:16.5 UTC "), True),
    "timestamp before 1970": (_line(b'"2017-03-26 07:09', b'"1969-12-31 23:59'), False),
    "timestamp 1970": (_line(b'"2017-03-26 07:09:16', b'"1970-01-01 00:00:00'), True),
    "timestamp 29 February 2017": (_line(b'"2017-03-26', b'"2017-02-29'), False),
    "timestamp 29 February 2016": (_line(b'"2017-03-26', b'"2016-02-29'), True),
    "timestamp hour 24": (_line(b' 07:09:16', b' 24:09:16'), False),
    "timestamp second 60": (_line(b' 07:09:16', b' 07:09:60'), False),
    "timestamp ISO T": (_line(b'2017-03-26 07', b'2017-03-26T07'), False),
    "timestamp one-digit month": (_line(b'2017-03-26', b'2017-3-26'), True),
    "timestamp a number": (_line(b'"2017-03-26 07:09:16.54707 UTC"', b"1490512156"), False),
    "timestamp year 9999": (_line(b'"2017-03-26', b'"9999-12-31'), True),
    "drawing empty": (LINE[: LINE.index(b'"drawing":')] + b'"drawing":[]}', False),
    "drawing an object": (LINE[: LINE.index(b'"drawing":')] + b'"drawing":{}}', False),
    "one point in all": (LINE[: LINE.index(b'"drawing":')] + b'"drawing":[[[1],[2]]]}', False),
    "two points in one stroke": (LINE[: LINE.index(b'"drawing":')] + b'"drawing":[[[1,1],[2,2]]]}', True),
    "one point in each of two strokes": (
        LINE[: LINE.index(b'"drawing":')] + b'"drawing":[[[1],[2]],[[1],[2]]]}', True
    ),
    "an empty stroke": (LINE[: LINE.index(b'"drawing":')] + b'"drawing":[[[],[]],[[1,3],[2,4]]]}', False),
    "lengths differ": (LINE[: LINE.index(b'"drawing":')] + b'"drawing":[[[1,2,3],[2,4]]]}', False),
    "raw stroke": (LINE[: LINE.index(b'"drawing":')] + b'"drawing":[[[1,2],[2,4],[0,5]]]}', False),
    "stroke not a list": (LINE[: LINE.index(b'"drawing":')] + b'"drawing":[[[1,2],[2,4]],7]}', False),
    "over the stroke cap": (
        LINE[: LINE.index(b'"drawing":')] + b'"drawing":[[[' + b",".join([b"1"] * 10_001) + b"],["
        + b",".join([b"2"] * 10_001) + b"]]]}",
        False,
    ),
    "not an object": (b"[" + LINE + b"]", False),
    "not JSON": (LINE[:-1], False),
    "trailing bytes": (LINE + b"x", False),
    "trailing whitespace": (LINE + b" \t", True),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases(name):
    line, fast = EDGE_CASES[name]
    assert check_batch([line]) == [fast]
    assert check_batch([LINE, line, LINE], "per_axis") == [True, fast, True]


def test_random_timestamps_as_formats_reads_them():
    rng = random.Random(5)
    lines = []
    for _ in range(400):
        year = rng.choice([1969, 1970, 2016, 2017, 2100, rng.randint(0, 9999)])
        month, day, hour = rng.randint(0, 13), rng.randint(0, 32), rng.randint(0, 25)
        minute, second, fraction = rng.randint(0, 61), rng.randint(0, 61), rng.randint(0, 10**6 - 1)
        stamp = f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}.{fraction} UTC"
        lines.append(_line(b"2017-03-26 07:09:16.54707 UTC", stamp.encode()))
    taken = check_batch(lines)
    assert 50 < sum(taken) < len(taken)


def test_batch_sizes_and_arguments():
    lines = sample_lines("simplified")[:300]
    whole = ndjson_batch.parse_simplified_batch(lines, "uniform")
    for size in (1, 7, 256):
        parts = [
            ndjson_batch.parse_simplified_batch(lines[i : i + size], "uniform") for i in range(0, 300, size)
        ]
        assert [d.ink.tobytes() for part in parts for d in part] == [d.ink.tobytes() for d in whole]
    # Drawings that fail only the batch-wide stroke checks, among good ones: each found, the rest kept.
    bad = {0: "coordinate 256", 17: "float coordinate 1.0", 18: "lengths differ", 99: "stroke not a list"}
    mixed = [EDGE_CASES[bad[i]][0] if i in bad else line for i, line in enumerate(lines[:100])]
    assert check_batch(mixed) == [i not in bad for i in range(100)]
    assert ndjson_batch.parse_simplified_batch([], "uniform") == []
    assert ndjson_batch.parse_simplified_batch([bytearray(LINE), LINE.decode()], "uniform") == [None, None]
    # A line as long as the reader's cap may have been cut there (SourceRecord.skipped): slow path.
    assert ndjson_batch.parse_simplified_batch([LINE], "uniform", max_record_bytes=len(LINE)) == [None]
    assert ndjson_batch.parse_simplified_batch([LINE], "uniform", max_record_bytes=len(LINE) + 1)[0]
    with pytest.raises(ValueError, match="normalize"):
        ndjson_batch.parse_simplified_batch([LINE], "none")


def test_the_garbage_collector_is_paused_only_while_parsing(monkeypatch):
    lines = sample_lines("simplified")[:50]
    seen = []
    candidate = ndjson_batch._candidate
    monkeypatch.setattr(
        ndjson_batch, "_candidate", lambda *args: seen.append(gc.isenabled()) or candidate(*args)
    )
    assert gc.isenabled()
    assert all(ndjson_batch.parse_simplified_batch(lines, "uniform"))
    assert seen and not any(seen) and gc.isenabled()  # off while parsing, back on after
    gc.disable()  # a caller that runs without the collector keeps it off
    try:
        ndjson_batch.parse_simplified_batch(lines, "uniform")
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(ValueError, match="normalize"):  # an error on the way out restores it too
        monkeypatch.setattr(
            ndjson_batch, "_batch_ink", lambda *args: (_ for _ in ()).throw(ValueError("normalize"))
        )
        ndjson_batch.parse_simplified_batch(lines, "uniform")
    assert gc.isenabled()
