"""Readers and writers of every Quick, Draw! file format, on the real drawings in data/sample.

Formats with no real file in the sample (.bin, Kaggle CSV, sketch-rnn .npz) are tested on fixtures built
here field by field from their published specs, and on round trips of real drawings.
"""

import dataclasses
import datetime
import gzip
import io
import json
import pathlib
import pickle
import struct

import numpy as np
import pytest

from quickdraw_tf.data import formats, safe_npz
from quickdraw_tf.data.drawing import REJECTION_REASONS, Drawing, InvalidRecord
from quickdraw_tf.data.formats import SourceRecord
from tests.sample import EYE_NPY, SAMPLE

SIMPLIFIED_FILES = sorted((SAMPLE / "simplified").glob("*/*.ndjson"))
RAW_FILES = sorted((SAMPLE / "raw").glob("*/*.ndjson"))
BELT_SIMPLIFIED = SAMPLE / "simplified" / "lamnguyen5464-Sketch-dataset" / "belt.ndjson"
BELT_RAW = SAMPLE / "raw" / "borismus-exupery" / "belt.ndjson"
NOSE_SIMPLIFIED = SAMPLE / "simplified" / "goberoi-sketch_face" / "nose.ndjson"


def json_lines(path: pathlib.Path) -> list[dict]:
    """The file's records decoded with the standard library alone: the reference the reader must match."""
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def epoch_seconds(text: str) -> int:
    """Whole seconds of "2017-03-17 12:18:08.94609 UTC", computed without formats.parse_timestamp."""
    moment = datetime.datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.UTC)
    return int(moment.timestamp())


def parse_all(records) -> tuple[list[Drawing], list[tuple[int, str]]]:
    """Good drawings and (position, reason) of rejected records, as the Beam job sees them."""
    drawings, rejected = [], []
    for record in records:
        try:
            drawings.append(formats.parse_record(record))
        except InvalidRecord as error:
            rejected.append((record.position, error.reason))
    return drawings, rejected


def records_of(data: bytes, fmt: str, source: str = "belt.bin") -> list[SourceRecord]:
    return list(formats.read_source_records(io.BytesIO(data), source, fmt))


def eye_rows(count: int) -> np.ndarray:
    return np.load(EYE_NPY)[:count].reshape(count, 784)


# ---------------------------------------------------------------------------------------------------
# File names


@pytest.mark.parametrize(
    "path, fmt",
    [
        ("data/cat.ndjson", "ndjson"),
        ("cat.jsonl", "ndjson"),
        ("cat.json", "ndjson"),
        ("gs://quickdraw_dataset/full/simplified/The Eiffel Tower.NDJSON", "ndjson"),
        ("full_binary_cat.bin", "bin"),
        ("train_simplified/cat.csv", "csv"),
        ("full_numpy_bitmap_cat.npy", "npy"),
        ("sketchrnn_cat.npz", "npz"),
        ("cat.ndjson.gz", "ndjson"),
    ],
)
def test_format_for_path_by_extension(path, fmt):
    assert formats.format_for_path(path) == fmt


def test_format_override_wins_and_bitmap_raw_needs_it():
    path = "my.cat.test.data.4000.images.starting.at.0.bin"
    assert formats.format_for_path(path) == "bin"
    assert formats.format_for_path(path, "bitmap_raw") == "bitmap_raw"
    assert formats.format_for_path("drawings.txt", "ndjson") == "ndjson"


def test_unknown_extension_and_unknown_override_fail_with_one_clear_line():
    expected = r"cannot tell the format of 'cat\.txt' from its extension \.txt"
    with pytest.raises(ValueError, match=expected) as error:
        formats.format_for_path("cat.txt")
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="from its extension \\(none\\)"):
        formats.format_for_path("README")
    with pytest.raises(ValueError, match="unknown format 'parquet'"):
        formats.format_for_path("cat.ndjson", "parquet")


@pytest.mark.parametrize(
    "path, word",
    [
        ("cat.bin", "cat"),
        ("/data/full_binary_cat.bin", "cat"),
        ("gs://quickdraw_dataset/numpy_bitmap/full_numpy_bitmap_The Eiffel Tower.npy", "The Eiffel Tower"),
        ("full_numpy_bitmap_The%20Eiffel%20Tower.npy", "The Eiffel Tower"),
        ("sketchrnn_cat.npz", "cat"),
        ("cat.npz", "cat"),
        ("my.rainbow.test.data.4000.images.starting.at.0.bin", "rainbow"),
        ("C:\\data\\eye.npy", "eye"),
    ],
)
def test_word_from_path(path, word):
    assert formats.word_from_path(path) == word


def test_derived_key_ids_are_stable_63_bit_and_distinct():
    keys = [formats.derived_key_id("eye.npy", row) for row in range(1000)]
    assert keys == [formats.derived_key_id("eye.npy", row) for row in range(1000)]
    assert len(set(keys)) == 1000
    assert all(0 <= key < 2**63 for key in keys)
    assert formats.derived_key_id("cat.npz", "train", 0) != formats.derived_key_id("cat.npz", "valid", 0)


# ---------------------------------------------------------------------------------------------------
# ndjson on the real sample


def sample_id(path: pathlib.Path) -> str:
    return f"{path.parts[-3]}/{path.name}"


@pytest.mark.parametrize("path", SIMPLIFIED_FILES + RAW_FILES, ids=sample_id)
def test_every_sample_ndjson_file_reads_like_the_standard_json_parser(path):
    expected = json_lines(path)
    drawings = list(formats.iter_drawings(str(path)))
    assert len(drawings) == len(expected) > 0
    for drawing, fields in zip(drawings, expected, strict=True):
        assert drawing.word == fields["word"]
        assert drawing.key_id == int(fields["key_id"])
        assert drawing.countrycode == fields["countrycode"]
        assert drawing.recognized is fields["recognized"]
        assert drawing.timestamp == epoch_seconds(fields["timestamp"])
        assert drawing.strokes == tuple(fields["drawing"])
        assert drawing.is_raw == (path.parts[-3] == "raw")


def test_simplified_keeps_ints_and_raw_keeps_times():
    simplified = next(formats.iter_drawings(str(BELT_SIMPLIFIED)))
    raw = next(formats.iter_drawings(str(BELT_RAW)))
    # SOURCES.md: these two files hold the same drawings, in the same order.
    assert simplified.key_id == raw.key_id == 4670637907902464
    assert simplified.timestamp == raw.timestamp == epoch_seconds("2017-03-17 12:18:08 UTC")
    assert all(type(value) is int for stroke in simplified.strokes for values in stroke for value in values)
    assert all(len(stroke) == 3 for stroke in raw.strokes)
    assert len(raw.strokes) == len(simplified.strokes)


def test_one_ndjson_file_may_mix_raw_and_simplified_records():
    first_lines = [BELT_RAW.read_bytes().splitlines()[0], BELT_SIMPLIFIED.read_bytes().splitlines()[0]]
    data = b"\n".join(first_lines) + b"\n"
    drawings, rejected = parse_all(records_of(data, "ndjson", "mixed.ndjson"))
    assert rejected == []
    assert [drawing.is_raw for drawing in drawings] == [True, False]


def test_a_bad_line_inside_a_good_file_is_rejected_alone_with_its_line_number():
    lines = BELT_SIMPLIFIED.read_bytes().splitlines()
    cut_line = b'{"word":"belt","key_id":"1","drawing":[[[1,2],[3'
    broken = lines[:4] + [cut_line] + lines[4:9] + [b"  "] + lines[9:]
    records = records_of(b"\r\n".join(broken) + b"\r\n", "ndjson", str(BELT_SIMPLIFIED))

    drawings, rejected = parse_all(records)

    assert rejected == [(5, "invalid_json")]
    assert not any(record.payload.endswith((b"\r", b"\n")) for record in records)
    expected_keys = [int(fields["key_id"]) for fields in json_lines(BELT_SIMPLIFIED)]
    assert [drawing.key_id for drawing in drawings] == expected_keys
    good_positions = [record.position for record in records if record.position != 5]
    assert good_positions == [1, 2, 3, 4, *range(6, 11), *range(12, len(broken) + 1)]  # line 11 is blank


# ---------------------------------------------------------------------------------------------------
# numpy bitmaps


def test_real_npy_file_gives_one_bitmap_drawing_per_row():
    pixels = np.load(EYE_NPY)  # (3000, 1, 784): the sample's extra middle axis
    drawings = list(formats.iter_drawings(str(EYE_NPY)))

    assert len(drawings) == len(pixels) == 3000
    for row in (0, 1, 1023, 1024, 2999):  # rows on both sides of the reader's 1024-row chunks
        np.testing.assert_array_equal(drawings[row].image, pixels[row].reshape(28, 28))
    assert {drawing.word for drawing in drawings} == {"eye"}
    assert all(drawing.image.dtype == np.uint8 and drawing.strokes == () for drawing in drawings)
    keys = [drawing.key_id for drawing in drawings]
    assert len(set(keys)) == 3000
    assert keys[:5] == [formats.derived_key_id("eye.npy", row) for row in range(5)]


@pytest.mark.parametrize("shape", [(1100, 784), (1100, 1, 784), (1100, 28, 28)])
def test_npy_row_layouts(shape):
    rows = eye_rows(1100)
    buffer = io.BytesIO()
    np.save(buffer, rows.reshape(shape))

    drawings, rejected = parse_all(records_of(buffer.getvalue(), "npy", "full_numpy_bitmap_eye.npy"))

    assert rejected == []
    images = np.stack([drawing.image for drawing in drawings])
    np.testing.assert_array_equal(images, rows.reshape(1100, 28, 28))
    assert drawings[0].word == "eye"


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((3, 784), np.float32), "float32 array of shape (3, 784)"),
        (np.zeros((3, 785), np.uint8), "shape (3, 785)"),
        (np.asfortranarray(np.zeros((3, 28, 28), np.uint8)), "in Fortran order"),
    ],
)
def test_unusable_npy_file_is_one_bad_image_record(array, message):
    buffer = io.BytesIO()
    np.save(buffer, array)

    (record,) = records_of(buffer.getvalue(), "npy", "eye.npy")

    with pytest.raises(InvalidRecord, match="bad_image") as error:
        formats.parse_record(record)
    assert message in str(error.value)


def test_npy_cut_inside_a_row_rejects_only_that_row():
    buffer = io.BytesIO()
    np.save(buffer, eye_rows(3))

    drawings, rejected = parse_all(records_of(buffer.getvalue()[:-100], "npy", "eye.npy"))

    assert len(drawings) == 2
    assert rejected == [(2, "bad_image")]


def test_bitmap_raw_file_of_real_rows(tmp_path):
    rows = eye_rows(10)
    path = tmp_path / "my.eye.test.data.10.images.starting.at.0.bin"
    path.write_bytes(rows.tobytes() + rows[0, :100].tobytes())  # plus the start of an 11th row

    with path.open("rb") as fileobj:
        fmt = formats.format_for_path(str(path), "bitmap_raw")
        records = list(formats.read_source_records(fileobj, str(path), fmt))
    drawings, rejected = parse_all(records)

    assert rejected == [(10, "bad_image")]
    np.testing.assert_array_equal(np.stack([drawing.image for drawing in drawings]), rows.reshape(10, 28, 28))
    assert {drawing.word for drawing in drawings} == {"eye"}


# ---------------------------------------------------------------------------------------------------
# The binary format, built field by field as examples/binary_file_parser.py reads it


def pack_bin_drawing(fields: dict) -> bytes:
    """One record of the official binary format from a simplified ndjson record."""
    parts = [
        struct.pack("<Q", int(fields["key_id"])),  # key_id
        struct.pack("2s", fields["countrycode"].encode("ascii")),  # countrycode
        struct.pack("<b", int(fields["recognized"])),  # recognized
        struct.pack("<I", epoch_seconds(fields["timestamp"])),  # timestamp
        struct.pack("<H", len(fields["drawing"])),  # n_strokes
    ]
    for xs, ys in fields["drawing"]:
        points = f"{len(xs)}B"
        parts += [struct.pack("<H", len(xs)), struct.pack(points, *xs), struct.pack(points, *ys)]
    return b"".join(parts)


def test_binary_file_built_from_the_spec(tmp_path):
    expected = json_lines(BELT_SIMPLIFIED)[:5]
    path = tmp_path / "full_binary_belt.bin"
    path.write_bytes(b"".join(pack_bin_drawing(fields) for fields in expected))

    drawings = list(formats.iter_drawings(str(path)))

    assert len(drawings) == 5
    for drawing, fields in zip(drawings, expected, strict=True):
        assert drawing.word == "belt"  # from the file name
        assert drawing.key_id == int(fields["key_id"])
        assert drawing.countrycode == fields["countrycode"]
        assert drawing.recognized is fields["recognized"]
        assert drawing.timestamp == epoch_seconds(fields["timestamp"])
        assert drawing.strokes == tuple(fields["drawing"])


@pytest.mark.parametrize(
    "cut, message",
    [(10, "less than the 17-byte header"), (18, "cut off before stroke 0"), (25, "stroke 0: ")],
    ids=["in the header", "in a point count", "in the points"],
)
def test_truncated_binary_record(cut, message):
    first, second = (pack_bin_drawing(fields) for fields in json_lines(BELT_SIMPLIFIED)[:2])

    records = records_of(first + second[:cut], "bin")

    assert [record.position for record in records] == [0, len(first)]
    assert records[1].payload == second[:cut]  # the rest of the file, for the rejection to show
    assert formats.parse_record(records[0]).key_id == 4670637907902464
    with pytest.raises(InvalidRecord, match=message) as error:
        formats.parse_record(records[1])
    assert error.value.reason == "truncated_record"


# ---------------------------------------------------------------------------------------------------
# Kaggle CSV, written out as the competition's files lay it out

KAGGLE_TRAIN_CSV = """countrycode,drawing,key_id,recognized,timestamp,word
US,"[[[17, 18, 20], [12, 8, 3]]]",5152802093400064,False,2017-03-08 21:12:07.266040,The Eiffel Tower
BR,"[[[0, 255], [0, 255]], [[9], [9]]]",4577203284754432,True,2017-01-27 13:26:29.55452,The Eiffel Tower
"""

KAGGLE_TEST_CSV = """key_id,countrycode,drawing
9000003627287624,DE,"[[[17, 18], [12, 8]], [[3], [4]]]"
"""


def test_kaggle_train_csv():
    records = records_of(KAGGLE_TRAIN_CSV.encode(), "csv", "The Eiffel Tower.csv")
    drawings = [formats.parse_record(record) for record in records]

    assert drawings == [
        Drawing(
            key_id=5152802093400064,
            word="The Eiffel Tower",
            countrycode="US",
            recognized=False,
            timestamp=epoch_seconds("2017-03-08 21:12:07"),
            strokes=([[17, 18, 20], [12, 8, 3]],),
        ),
        Drawing(
            key_id=4577203284754432,
            word="The Eiffel Tower",
            countrycode="BR",
            recognized=True,
            timestamp=epoch_seconds("2017-01-27 13:26:29"),
            strokes=([[0, 255], [0, 255]], [[9], [9]]),
        ),
    ]


def test_kaggle_test_csv_has_no_word():
    (record,) = records_of(KAGGLE_TEST_CSV.encode(), "csv", "test_simplified.csv")

    assert record.position == 2
    assert formats.parse_record(record) == Drawing(
        key_id=9000003627287624, word="", countrycode="DE", strokes=([[17, 18], [12, 8]], [[3], [4]])
    )


def test_csv_without_header_is_read_and_a_foreign_header_rejected():
    rows = KAGGLE_TRAIN_CSV.encode().splitlines()[1:]
    assert len(records_of(b"\n".join(rows), "csv", "cat.csv")) == 2
    foreign = b"word,drawing,key_id,recognized,timestamp,countrycode\n" + b"\n".join(rows)
    _, rejected = parse_all(records_of(foreign, "csv", "cat.csv"))
    assert rejected == [(1, "invalid_csv")]
    concatenated = KAGGLE_TRAIN_CSV.encode() * 2  # only line 1 may be a header
    drawings, rejected = parse_all(records_of(concatenated, "csv", "cat.csv"))
    assert len(drawings) == 4
    assert rejected == [(4, "invalid_csv")]


# ---------------------------------------------------------------------------------------------------
# sketch-rnn .npz, built with np.savez_compressed as in sketch-rnn's data


def object_array(sketches: list) -> np.ndarray:
    array = np.empty(len(sketches), dtype=object)
    for index, sketch in enumerate(sketches):
        array[index] = np.array(sketch, dtype=np.int16)
    return array


def test_sketch_rnn_npz_built_by_hand():
    # Rows are (dx, dy, pen lifted after this point); the first row offsets the first point from the origin.
    cat = [[10, 20, 0], [5, 0, 0], [0, 5, 1], [-5, -5, 0], [3, 0, 1]]
    buffer = io.BytesIO()
    splits = {"train": object_array([cat, cat[:3]]), "valid": object_array([]), "test": object_array([cat])}
    np.savez_compressed(buffer, **splits)

    records = records_of(buffer.getvalue(), "npz", "sketchrnn_cat.npz")
    drawings = [formats.parse_record(record) for record in records]

    places = [(record.split, record.position) for record in records]
    assert places == [("train", 0), ("train", 1), ("test", 0)]
    assert drawings[0].strokes == ([[10, 15, 15], [20, 20, 25]], [[10, 13], [20, 20]])
    assert drawings[1].strokes == ([[10, 15, 15], [20, 20, 25]],)
    assert {drawing.word for drawing in drawings} == {"cat"}
    assert drawings[0].key_id == formats.derived_key_id("sketchrnn_cat.npz", "train", 0)
    assert drawings[0].key_id != drawings[2].key_id  # same sketch, other split


def test_npz_strokes_may_leave_0_to_255():
    buffer = io.BytesIO()
    np.savez_compressed(buffer, train=object_array([[[0, 0, 0], [-30, 400, 1]]]))
    (record,) = records_of(buffer.getvalue(), "npz", "cat.npz")
    assert formats.parse_record(record).strokes == ([[0, -30], [0, 400]],)


# ---------------------------------------------------------------------------------------------------
# Round trips of real drawings


def sample_drawings(path: pathlib.Path) -> list[Drawing]:
    return list(formats.iter_drawings(str(path)))


def test_binary_round_trip(tmp_path):
    nose = sample_drawings(NOSE_SIMPLIFIED)
    originals = nose + [dataclasses.replace(nose[0], countrycode="")]  # written as two NUL bytes
    path = tmp_path / "nose.bin"
    with path.open("wb") as fileobj:
        formats.write_bin(originals, fileobj)
    assert sample_drawings(path) == originals


def test_csv_round_trip(tmp_path):
    originals = sample_drawings(NOSE_SIMPLIFIED) + sample_drawings(BELT_SIMPLIFIED)
    path = tmp_path / "train.csv"
    with path.open("w", newline="") as fileobj:
        formats.write_csv(originals, fileobj)
    assert path.read_text().splitlines()[0] == "countrycode,drawing,key_id,recognized,timestamp,word"
    assert sample_drawings(path) == originals


@pytest.mark.parametrize("source", [BELT_SIMPLIFIED, BELT_RAW], ids=["simplified", "raw"])
def test_ndjson_round_trip_keeps_the_official_layout(source):
    text = io.StringIO()
    formats.write_ndjson(sample_drawings(source), text)

    written = text.getvalue().splitlines()
    assert sample_drawings_from_text(text.getvalue()) == sample_drawings(source)
    for line, fields in zip(written, json_lines(source), strict=True):
        whole_seconds = fields["timestamp"][:19] + ".000000 UTC"  # the record keeps whole seconds
        assert json.loads(line) == {**fields, "timestamp": whole_seconds}
        assert list(json.loads(line)) == list(fields)  # the official key order


def sample_drawings_from_text(text: str) -> list[Drawing]:
    return [formats.parse_record(record) for record in records_of(text.encode(), "ndjson", "out.ndjson")]


def test_npz_round_trip_gives_the_same_absolute_strokes(tmp_path):
    originals = sample_drawings(BELT_SIMPLIFIED)
    path = tmp_path / "sketchrnn_belt.npz"
    formats.write_npz(str(path), {"train": originals[:20], "valid": originals[20:]})

    archive = safe_npz.load_npz(path.read_bytes())  # never np.load(allow_pickle=True)
    assert sorted(archive) == ["test", "train", "valid"]
    assert archive["train"][0].dtype == np.int16
    drawings = sample_drawings(path)

    assert [drawing.strokes for drawing in drawings] == [drawing.strokes for drawing in originals]
    assert {drawing.word for drawing in drawings} == {"belt"}


def test_writers_refuse_what_their_format_cannot_hold():
    raw = sample_drawings(BELT_RAW)[0]
    with pytest.raises(ValueError, match="simplified"):
        formats.write_bin([raw], io.BytesIO())
    bitmap = next(formats.iter_drawings(str(EYE_NPY)))
    for write, fileobj in [(formats.write_bin, io.BytesIO()), (formats.write_ndjson, io.StringIO())]:
        with pytest.raises(ValueError, match="no strokes"):
            write([bitmap], fileobj)
    with pytest.raises(ValueError, match="unknown splits"):
        formats.write_npz(io.BytesIO(), {"training": [raw]})


# ---------------------------------------------------------------------------------------------------
# Every rejection reason, from a concrete bad input

FIRST_BELT = json.loads(BELT_SIMPLIFIED.read_bytes().splitlines()[0])
DROP = object()


def ndjson(**changes) -> SourceRecord:
    """The first real belt record with some fields replaced (or dropped with DROP)."""
    fields = {**FIRST_BELT, **changes}
    line = json.dumps({name: value for name, value in fields.items() if value is not DROP})
    return SourceRecord("belt.ndjson", 1, line.encode(), "ndjson")


def line(fmt: str, payload: bytes, source: str = "belt") -> SourceRecord:
    return SourceRecord(f"{source}.{fmt}", 1, payload, fmt)


def stroke3(array, split: str = "train") -> SourceRecord:
    return SourceRecord("cat.npz", 0, np.asarray(array), "npz", split)


BELT_RECORD = pack_bin_drawing(FIRST_BELT)

REJECTIONS = [
    (line("ndjson", b'{"word":"belt","key_id":"1",'), "invalid_json", "not valid JSON"),
    (line("ndjson", b'{"word":"b\xe9lt"}'), "invalid_json", "not valid UTF-8"),
    (line("csv", b'US,"[[[1,2],[3,4]]",5,True,2017-03-08 21:12:07.2,cat'), "invalid_json", "drawing column"),
    (line("csv", b"US,[[[1,2],[3,4]]],5,True,2017-03-08 21:12:07.2,cat"), "invalid_csv", "columns"),
    (line("csv", b'US,"[[[1,2],[3,4]]]'), "invalid_csv", "unreadable CSV line"),
    (line("csv", b"\xff,[],5"), "invalid_csv", "not valid UTF-8"),
    (line("ndjson", b'{"key_id": ' + b"9" * 5000 + b"}"), "invalid_json", "not usable JSON"),
    (line("ndjson", b"[1, 2, 3]"), "not_an_object", "JSON array, not an object"),
    (ndjson(word=DROP), "missing_field", "'word'"),
    (ndjson(key_id=DROP), "missing_field", "'key_id'"),
    (ndjson(drawing=DROP), "missing_field", "'drawing'"),
    (ndjson(key_id="46706x"), "bad_field", "key_id '46706x' is not a string of digits"),
    (ndjson(key_id=str(2**64)), "bad_field", "does not fit"),
    (ndjson(key_id="9" * 5000), "bad_field", "does not fit"),
    (ndjson(recognized="maybe"), "bad_field", "recognized 'maybe'"),
    (ndjson(timestamp="yesterday"), "bad_field", "timestamp 'yesterday'"),
    (ndjson(countrycode=7), "bad_field", "countrycode is a JSON number"),
    (ndjson(drawing="[[[1, 2], [3, 4]]]"), "bad_field", "drawing is a JSON string"),
    (ndjson(drawing=[]), "empty_drawing", "no strokes"),
    (ndjson(drawing=[[[1, 2], [3, 4]], [[], []]]), "empty_drawing", "stroke 1 has no points"),
    (ndjson(drawing=[[[5], [7]]]), "too_short", "1 point in all"),
    (ndjson(drawing=[[[1, 2, 3], [4, 5]]]), "mismatched_lengths", "stroke 0: 3 x values but 2 y values"),
    (ndjson(drawing=[[[1, 2], [3, 4], [0, 5], [1, 1]]]), "mismatched_lengths", "not a list of 2 or 3 arrays"),
    (ndjson(drawing=[[[1, 2], [3, 4]], 7]), "mismatched_lengths", "stroke 1 is not a list"),
    (ndjson(drawing=[[[1, 2], [3, 4]], [[1, 2], [3, 4], [0, 9]]]), "mismatched_lengths", "stroke 1 has 3"),
    (ndjson(drawing=[[[1.5, 2], [3, 4], [0]]]), "mismatched_lengths", "2 x values, 2 y values but 1 t"),
    (ndjson(drawing=[[[1, 300], [3, 4]]]), "bad_coordinate", "stroke 0: x[1] = 300 is outside 0..255"),
    (ndjson(drawing=[[[1, 2], [3, 4.5]]]), "bad_coordinate", "y[1] = 4.5 is not an integer"),
    (ndjson(drawing=[[[1, "2"], [3, 4]]]), "bad_coordinate", "x[1] = '2' is a string"),
    (ndjson(drawing=[[[1, True], [3, 4]]]), "bad_coordinate", "is a boolean"),
    (ndjson(drawing=[[[1.5, None], [3, 4], [0, 9]]]), "bad_coordinate", "x[1] = None is a null"),
    (ndjson(drawing=[[[1.5, float("nan")], [3, 4], [0, 9]]]), "bad_coordinate", "x[1] = nan is not finite"),
    (ndjson(drawing=[[[1.5, 2], [3, 4], [0, float("inf")]]]), "bad_coordinate", "t[1] = inf is not finite"),
    (stroke3([[1, 2, 0], [3, 4, 2]]), "bad_coordinate", "pen_lifted"),
    (stroke3([[1, 2, 0], [3.5, 4, 1]]), "bad_coordinate", "finite integers"),
    (stroke3([[1, 2], [3, 4]]), "mismatched_lengths", "shape (2, 2)"),
    (stroke3(np.zeros((0, 3), np.int16)), "empty_drawing", "no rows"),
    (stroke3([[1, 2, 0], [3, 4, 1]], split="extra"), "bad_field", "unknown split 'extra'"),
    (line("bin", BELT_RECORD[:-3]), "truncated_record", "stroke 1: "),
    (line("bin", BELT_RECORD + b"\0"), "bad_field", "1 unexpected bytes"),
    (line("bin", BELT_RECORD[:8] + b"\xff\xfe" + BELT_RECORD[10:]), "bad_field", "countrycode"),
    (SourceRecord("eye.npy", 4, np.zeros(700, np.uint8), "npy"), "bad_image", "row has 700 pixels"),
    (SourceRecord("eye.npy", 4, np.zeros(784, np.int64), "npy"), "bad_image", "pixels are int64"),
    (SourceRecord("eye.npy", 0, b"\x93NUMPY\x01", "npy"), "bad_image", "unreadable .npy header"),
    (SourceRecord("my.eye.x.bin", 3, b"\0" * 100, "bitmap_raw"), "bad_image", "row has 100 pixels"),
    (SourceRecord("cat.npz", 0, b"PK\x03\x04 not really", "npz"), "truncated_record", "unreadable .npz"),
    (ndjson(word="two\nlines"), "bad_field", "control character '\\n'"),
    (ndjson(word="   "), "bad_field", "is blank"),
    (ndjson(drawing=[[[1.5, 7e305], [3, 4], [0, 9]]]), "bad_coordinate", "beyond ±1e+06"),
    (SourceRecord("belt.ndjson", 1, b'{"word":', "ndjson", skipped=99), "too_large", "107 bytes, over the 8"),
    (SourceRecord("a.bin", 40, bytes(10) + b"\7" + bytes(6), "bin", skipped=5), "unreadable_tail", "byte 40"),
]


@pytest.mark.parametrize("record, reason, message", REJECTIONS, ids=[f"{r}: {m}" for _, r, m in REJECTIONS])
def test_rejections(record, reason, message):
    with pytest.raises(InvalidRecord) as error:
        formats.parse_record(record)
    assert error.value.reason == reason
    assert message in str(error.value)


def test_every_parse_time_rejection_reason_is_covered():
    # duplicate_key and unknown_class need the whole data set: the Beam job decides them.
    decided_later = {"duplicate_key", "unknown_class"}
    assert {reason for _, reason, _ in REJECTIONS} == set(REJECTION_REASONS) - decided_later


def test_validate_returns_the_drawing_or_names_the_problem():
    drawing = sample_drawings(BELT_SIMPLIFIED)[0]
    assert formats.validate(drawing) is drawing
    with pytest.raises(InvalidRecord, match="bad_field: key_id -1"):
        formats.validate(dataclasses.replace(drawing, key_id=-1))
    bitmap = next(formats.iter_drawings(str(EYE_NPY)))
    with pytest.raises(InvalidRecord, match="bad_image"):
        formats.validate(dataclasses.replace(bitmap, image=bitmap.image[:20]))
    shifted = dataclasses.replace(drawing, strokes=([[-5, 300], [0, 1]],))
    assert formats.validate(shifted, simplified_range=False) is shifted
    with pytest.raises(InvalidRecord, match="bad_coordinate"):
        formats.validate(shifted)


# ---------------------------------------------------------------------------------------------------
# Robustness, for the Beam job


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_splitting_and_parsing_garbage_never_crashes(fmt):
    rng = np.random.default_rng(0)
    samples = [rng.bytes(6000), b"PK\x03\x04" + rng.bytes(500), b"\x93NUMPY" + rng.bytes(500), b"", b"\n\n"]
    for data in samples:
        for record in records_of(data, fmt, f"cat.{fmt}"):
            try:
                formats.parse_record(record)
            except InvalidRecord:
                pass


def test_npz_reader_never_unpickles_a_bare_pickle():
    (record,) = records_of(pickle.dumps({"train": []}), "npz", "cat.npz")
    with pytest.raises(InvalidRecord, match="not a zip archive"):
        formats.parse_record(record)


def test_source_records_survive_pickling():
    record = records_of(EYE_NPY.read_bytes()[:2000], "npy", "eye.npy")[0]
    copy = pickle.loads(pickle.dumps(record))
    assert copy.source == "eye.npy" and copy.position == 0
    np.testing.assert_array_equal(copy.payload, record.payload)


def test_iter_drawings_reads_gzip_and_stops_at_the_first_bad_record(tmp_path):
    path = tmp_path / "belt.ndjson.gz"
    path.write_bytes(gzip.compress(BELT_SIMPLIFIED.read_bytes()))
    assert list(formats.iter_drawings(str(path))) == sample_drawings(BELT_SIMPLIFIED)

    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(BELT_SIMPLIFIED.read_bytes() + b"[]\n")
    with pytest.raises(InvalidRecord, match="not_an_object"):
        list(formats.iter_drawings(str(bad)))
