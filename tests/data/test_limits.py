"""One record can never take a run's memory or time: byte caps, point and coordinate limits, bounded
simplification, the binary reader's unreadable tail, and class words. Built from real sample records."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import pathlib
import time
import tracemalloc

import numpy as np
import pytest

from quickdraw_tf.data import formats, ink, limits, preprocess
from quickdraw_tf.data.drawing import Drawing, InvalidRecord
from quickdraw_tf.data.formats import binary
from tests.sample import SAMPLE

PIG_RAW = SAMPLE / "raw" / "borismus-exupery" / "pig.ndjson"
NOSE_SIMPLIFIED = SAMPLE / "simplified" / "goberoi-sketch_face" / "nose.ndjson"
RAW_LINES = [
    line for path in sorted((SAMPLE / "raw").glob("*/*.ndjson")) for line in path.read_bytes().splitlines()
]


def pig(**changes) -> dict:
    """The first real raw pig record, with some fields replaced."""
    return {**json.loads(PIG_RAW.read_bytes().splitlines()[0]), **changes}


def zigzag_pig(points: int) -> list:
    """The real pig's first stroke stretched to `points` points that jump between its extremes."""
    xs, ys, _ = pig()["drawing"][0]
    low, high = min(xs), max(xs)
    zig_x = [high if i % 2 else low for i in range(points)]
    zig_y = [ys[i % len(ys)] for i in range(points)]
    return [[zig_x, zig_y, list(range(points))]]


def records(data: bytes, fmt: str, source: str, **kwargs) -> list[formats.SourceRecord]:
    return list(formats.read_source_records(io.BytesIO(data), source, fmt, **kwargs))


def outcome(record: formats.SourceRecord) -> str:
    try:
        formats.parse_record(record)
    except InvalidRecord as error:
        return error.reason
    return "ok"


# ---------------------------------------------------------------------------------------------------
# Bytes per record, checked before decoding


def test_a_10_mb_line_is_rejected_as_too_large_in_under_a_second():
    first, second = PIG_RAW.read_bytes().splitlines()[:2]
    huge = first[:-2] + b"," + b"[[1,2],[3,4],[5,6]]," * 500_000 + b"[[1],[2],[3]]]}"  # 10 MB of strokes
    assert len(huge) > 10_000_000
    start = time.perf_counter()
    found = records(b"\n".join([first, huge, second]) + b"\n", "ndjson", "pig.ndjson")
    assert [outcome(record) for record in found] == ["ok", "too_large", "ok"]
    assert time.perf_counter() - start < 1.0
    assert found[1].position == 2 and len(found[1].payload) == limits.MAX_RECORD_BYTES
    assert f"{len(huge):,} bytes, over the 1,048,576-byte cap" in str(_error(found[1]))


def _error(record: formats.SourceRecord) -> InvalidRecord:
    with pytest.raises(InvalidRecord) as error:
        formats.parse_record(record)
    return error.value


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b""])
def test_the_byte_cap_counts_the_line_without_its_break(ending):
    line = PIG_RAW.read_bytes().splitlines()[0]
    assert outcome(records(line + ending, "ndjson", "pig.ndjson", max_record_bytes=len(line))[0]) == "ok"
    (cut,) = records(line + ending, "ndjson", "pig.ndjson", max_record_bytes=len(line) - 1)
    assert outcome(cut) == "too_large" and cut.skipped == 1


def test_a_long_csv_line_is_too_large_and_the_next_one_still_reads():
    drawings = list(formats.iter_drawings(str(NOSE_SIMPLIFIED)))[:3]
    text = io.StringIO(newline="")
    formats.write_csv(drawings, text)
    lines = text.getvalue().encode().splitlines()
    found = records(b"\n".join(lines) + b"\n", "csv", "nose.csv", max_record_bytes=len(lines[2]) - 1)
    assert [(r.position, outcome(r)) for r in found] == [(2, "ok"), (3, "too_large"), (4, "ok")]


def test_a_binary_record_over_the_cap_is_skipped_and_the_next_one_read():
    drawings = list(formats.iter_drawings(str(NOSE_SIMPLIFIED)))[:3]
    data = io.BytesIO()
    formats.write_bin(drawings, data)
    sizes = [len(binary.record_bytes(drawing)) for drawing in drawings]
    cap = sizes[1] - 1
    found = records(data.getvalue(), "bin", "nose.bin", max_record_bytes=cap)
    if sizes[0] > cap or sizes[2] > cap:
        pytest.skip("the sample's first records are not ordered as this test needs")
    assert [(r.position, outcome(r)) for r in found] == [
        (0, "ok"),
        (sizes[0], "too_large"),
        (sum(sizes[:2]), "ok"),
    ]
    assert found[1].skipped == 1


# ---------------------------------------------------------------------------------------------------
# Points and coordinates


@pytest.mark.parametrize("value", [7e305, 1e6 + 1, -2e6])
def test_absurd_raw_coordinates_are_bad_coordinate_and_never_reach_simplify(value):
    drawing = pig()["drawing"]
    drawing[0][0][3] = value
    record = formats.SourceRecord("pig.ndjson", 1, json.dumps(pig(drawing=drawing)).encode(), "ndjson")
    error = _error(record)
    assert error.reason == "bad_coordinate" and "beyond ±1e+06" in str(error)


@pytest.mark.parametrize("value", [7e305, 1e6 + 1, -2e6, 10**20])
def test_the_predictor_and_the_server_apply_the_readers_coordinate_rule(value):
    """One rule for every way in: a raw pig with one coordinate beyond ±1e6 gets the same one-line reason
    from the reader, from the Predictor's preparation and from the server's request check (its 422)."""
    from quickdraw_tf.serve import schemas  # no web framework: only the body checks

    drawing = pig()["drawing"]
    drawing[0][1][3] = value  # a y
    line = json.dumps(pig(drawing=drawing)).encode()
    reader = _error(formats.SourceRecord("pig.ndjson", 1, line, "ndjson"))
    with pytest.raises(InvalidRecord) as predictor:
        preprocess.model_input(Drawing(0, "", strokes=tuple(drawing)), preprocess.Preprocessing())
    with pytest.raises(schemas.RequestError) as server:
        schemas.parse_request({"drawing": drawing}, num_classes=3)
    assert str(reader) == str(predictor.value) == str(server.value) and server.value.status == 422
    assert str(server.value) == f"bad_coordinate: stroke 0: y {value:g} is beyond ±1e+06"
    bound = limits.MAX_ABS_COORDINATE
    at_the_bound = [[0.0, bound], [-bound, 0.0], [0, 1]]
    prepared = preprocess.model_input(Drawing(0, "", strokes=(at_the_bound,)), preprocess.Preprocessing())
    assert len(prepared["ink"]) and np.isfinite(prepared["ink"]).all()
    assert schemas.parse_request({"drawing": [at_the_bound]}, num_classes=3)[0].strokes == (at_the_bound,)


def test_the_predictor_refuses_more_points_than_the_readers():
    many = zigzag_pig(limits.MAX_POINTS_PER_STROKE) * 3
    with pytest.raises(InvalidRecord, match="too_large: 30,000 points, more than 20,000"):
        preprocess.model_input(Drawing(0, "", strokes=tuple(many)), preprocess.Preprocessing())


def test_points_per_stroke_and_per_drawing_are_limited():
    one_stroke = zigzag_pig(limits.MAX_POINTS_PER_STROKE + 1)
    with pytest.raises(InvalidRecord, match="too_large: stroke 0 has 10,001 points"):
        formats.validate(Drawing(1, "pig", strokes=tuple(one_stroke)))
    many = zigzag_pig(limits.MAX_POINTS_PER_STROKE) * 3
    with pytest.raises(InvalidRecord, match="too_large: 30,000 points, more than 20,000"):
        formats.validate(Drawing(1, "pig", strokes=tuple(many)))


# ---------------------------------------------------------------------------------------------------
# Simplification in bounded memory


def _peak_mb(function, *args):
    tracemalloc.start()  # numpy reports its array buffers to tracemalloc
    try:
        result = function(*args)
    finally:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return result, peak


def test_a_zigzag_with_too_much_ink_is_too_large_at_once_in_little_memory():
    # 10,000 points allowed by validate, but ~3.6 M px of ink to resample (the old code took ~1 GB).
    strokes = zigzag_pig(limits.MAX_POINTS_PER_STROKE)
    formats.validate(Drawing(1, "pig", strokes=tuple(strokes)))
    start = time.perf_counter()
    with pytest.raises(InvalidRecord, match="too_large: .* px of ink to resample"):
        _, peak = _peak_mb(ink.simplify, strokes)
    assert time.perf_counter() - start < 1.0


def test_the_longest_allowed_stroke_simplifies_in_bounded_memory():
    # A real stroke walked back and forth up to the ink cap: a single long stroke, still allowed.
    xs, ys, _ = pig()["drawing"][0]
    repeats = limits.MAX_POINTS_PER_STROKE // (2 * len(xs))
    long_x = (xs + xs[::-1]) * repeats
    long_y = (ys + ys[::-1]) * repeats
    stroke = [long_x, long_y]
    ink_px = ink._ink_lengths(
        *ink._scale_to_top_left_box(np.array(long_x, float), np.array(long_y, float)), np.array([len(long_x)])
    ).sum()
    assert 100_000 < ink_px < limits.MAX_RESAMPLED_POINTS
    simplified, peak = _peak_mb(ink.simplify, [stroke])
    assert len(simplified) == 1 and len(simplified[0][0]) > 10
    assert peak < 64, f"peak {peak:.0f} MB"


def test_simplifying_in_batches_gives_the_same_drawings(monkeypatch):
    drawings = [json.loads(line)["drawing"] for line in RAW_LINES[:300]]
    whole = [ink.simplify(drawing) for drawing in drawings]
    monkeypatch.setattr(ink, "_BATCH_POINTS", 1)  # every stroke its own batch
    assert [ink.simplify(drawing) for drawing in drawings] == whole


# ---------------------------------------------------------------------------------------------------
# The binary format has no sync marker: one rejection for an unreadable tail


def _nose_bin() -> tuple[bytearray, list[int]]:
    data, offsets = bytearray(), []
    for drawing in formats.iter_drawings(str(NOSE_SIMPLIFIED)):
        offsets.append(len(data))
        data += binary.record_bytes(drawing)
    return data, offsets


def test_a_corrupt_stroke_count_gives_one_rejection_for_the_rest_of_the_file():
    data, offsets = _nose_bin()
    bad = offsets[10]
    data[bad + 15 : bad + 17] = b"\0\0"  # drawing 10 now has 0 strokes: its points read as headers
    found = records(bytes(data), "bin", "nose.bin")
    assert [outcome(record) for record in found] == ["ok"] * 10 + ["unreadable_tail"]
    tail = found[-1]
    assert tail.position == bad and len(tail.payload) + tail.skipped == len(data) - bad
    message = str(_error(tail))
    assert f"no record can start at byte {bad} (0 strokes)" in message
    assert f"the {len(data) - bad:,} bytes from there to the end were not read" in message


def test_a_bad_header_whose_record_is_followed_by_a_sound_one_costs_only_that_record():
    data, offsets = _nose_bin()
    data[offsets[10] + 10] = 7  # drawing 10's recognized byte: its length, hence the next header, holds
    reasons = [outcome(record) for record in records(bytes(data), "bin", "nose.bin")]
    assert reasons == ["ok"] * 10 + ["bad_field"] + ["ok"] * (len(offsets) - 11)


@pytest.mark.parametrize("count", [1, 2, 60000])
def test_a_corrupt_point_count_costs_one_rejection_for_the_rest(count):
    drawings = list(formats.iter_drawings(str(NOSE_SIMPLIFIED)))[:30]
    data = bytearray(b"".join(binary.record_bytes(drawing) for drawing in drawings))
    first = len(binary.record_bytes(drawings[0]))
    at = first + binary.HEADER.size  # drawing 1's first point count
    data[at : at + 2] = count.to_bytes(2, "little")
    found = records(bytes(data), "bin", "nose.bin")
    reasons = [outcome(record) for record in found]
    # The walk reads point bytes as counts and headers: it either meets a header no record has
    # (unreadable_tail) or runs past the end of the file (truncated_record). Either way the rest of the
    # file is one rejection, not one per stray header.
    assert reasons[0] == "ok" and len(reasons) <= 3
    assert reasons[-1] in ("unreadable_tail", "truncated_record")
    assert found[-1].position + len(found[-1].payload) + found[-1].skipped == len(data)


# ---------------------------------------------------------------------------------------------------
# Words


WORDS = ["two\nlines", "tab\there", "nul\x00", "line\u2028sep", "  ", " pig", "pig "]


@pytest.mark.parametrize("word", WORDS)
def test_words_with_control_characters_or_blank_are_bad_field_in_every_reader(word):
    line = json.dumps(pig(word=word)).encode()
    assert outcome(formats.SourceRecord("pig.ndjson", 1, line, "ndjson")) == "bad_field"
    real = list(formats.iter_drawings(str(NOSE_SIMPLIFIED)))[0]
    row = io.StringIO(newline="")
    csv.writer(row, lineterminator="").writerow(
        ["US", json.dumps(list(real.strokes)), real.key_id, "True", "2017-03-08 21:12:07.2", word]
    )
    if "\n" not in word and "\u2028" not in word:  # a newline splits a CSV line, caught as invalid_csv
        assert outcome(formats.SourceRecord("x.csv", 2, row.getvalue().encode(), "csv")) == "bad_field"
    record = formats.SourceRecord(f"{word}.bin", 0, binary.record_bytes(real), "bin")
    assert outcome(record) == "bad_field"


def test_writers_refuse_words_that_would_not_read_back():
    real = list(formats.iter_drawings(str(NOSE_SIMPLIFIED)))[0]
    for writer, out in ((formats.write_csv, io.StringIO()), (formats.write_ndjson, io.StringIO())):
        with pytest.raises(ValueError, match="control character"):
            writer([dataclasses.replace(real, word="two\nlines")], out)


def test_tricky_real_words_round_trip_through_csv():
    eiffel = SAMPLE / "simplified" / "lamnguyen5464-Sketch-dataset" / "The Eiffel Tower.ndjson"
    originals = list(formats.iter_drawings(str(eiffel)))[:5]
    originals += [dataclasses.replace(originals[0], word='cat\'s "paw", café')]
    text = io.StringIO(newline="")
    formats.write_csv(originals, text)
    back = [formats.parse_record(r) for r in records(text.getvalue().encode(), "csv", "x.csv")]
    assert back == originals
