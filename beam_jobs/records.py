"""Per-record logic of the job, in plain functions (unit-testable without Beam).

A record read from a file becomes either a Candidate (a valid, labelled drawing with its model input)
or a rejection entry (a line of rejected-*.ndjson); packed.py turns both into the sortable bytes the
spill holds, and encode() a kept candidate into its tf.train.Example.
"""

from __future__ import annotations

import base64
import io
import zlib
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from quickdraw_tf.data import features, formats, limits, preprocess, splits
from quickdraw_tf.data.drawing import Drawing, InvalidRecord

MAX_ORIGINAL_BYTES = 1 << 20
COUNTER_NAMESPACE = "quickdraw"


class Origin(NamedTuple):
    """Where a record came from; also the order that decides which duplicate is kept."""

    format: str
    source: str
    position: int
    split: str


class Candidate(NamedTuple):
    """A valid drawing, reduced to what the later steps need. `data` is float32 ink or uint8 pixels."""

    key_id: int
    word: str
    origin: Origin
    original: bytes  # kept until the last step that can reject the record
    data: bytes
    countrycode: str
    recognized: bool
    timestamp: int


# ---------------------------------------------------------------------------------------------------
# Reading and preparing


def read_file(
    path_and_format: tuple[str, str], max_record_bytes: int = limits.MAX_RECORD_BYTES
) -> Iterator[formats.SourceRecord]:
    """The undecoded records of one file, opened through Beam's FileSystems (gs://, .gz, ...)."""
    path, fmt = path_and_format
    with FileSystems.open(path) as fileobj:
        yield from formats.read_source_records(fileobj, path, fmt, max_record_bytes)


def origin_of(record: formats.SourceRecord) -> Origin:
    return Origin(record.format, record.source, record.position, record.split)


def original_bytes(record: formats.SourceRecord) -> bytes:
    """The record as stored: a line's or bin record's bytes, a bitmap row's pixels, an npz sketch as .npy."""
    payload = record.payload
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    if record.format != "npz":
        return np.ascontiguousarray(payload).tobytes()
    if payload.dtype == object:  # a ragged or odd npz element: .npy would need pickle, so keep its repr
        return repr(payload).encode("utf-8")
    buffer = io.BytesIO()
    np.save(buffer, payload, allow_pickle=False)
    return buffer.getvalue()


def check_labelled(drawing: Drawing) -> Drawing:
    """The job's own check on top of formats.validate (which parse_record already ran): a word to learn.

    Kaggle's test CSV layout has no word column; such drawings cannot become labelled examples.
    """
    if not drawing.word:
        raise InvalidRecord("missing_field", "no word: the drawing cannot be labelled")
    return drawing


def drawing_data(drawing: Drawing, normalize: str, simplify: bool) -> bytes:
    """What the example stores: float32 delta ink (raw drawings simplified first) or the 28x28 pixels.

    The one preprocessing function the Predictor uses too (quickdraw_tf.data.preprocess)."""
    return preprocess.drawing_data(drawing, normalize, simplify)


def to_candidate(record: formats.SourceRecord, drawing: Drawing, data: bytes) -> Candidate:
    return Candidate(
        key_id=drawing.key_id,
        word=drawing.word,
        origin=origin_of(record),
        original=original_bytes(record),
        data=data,
        countrycode=drawing.countrycode,
        recognized=drawing.recognized,
        timestamp=drawing.timestamp,
    )


def prepare(record: formats.SourceRecord, normalize: str, simplify: bool, recognized_only: bool):
    """One record -> a Candidate, a rejection entry (dict) or None (unrecognized, with recognized_only)."""
    try:
        drawing = formats.parse_record(record)
    except InvalidRecord as error:
        return rejection(origin_of(record), original_bytes(record), error)
    try:
        check_labelled(drawing)
        if recognized_only and not drawing.recognized:
            return None
        data = drawing_data(drawing, normalize, simplify)  # too_large: ink to resample
    except InvalidRecord as error:
        return rejection(origin_of(record), original_bytes(record), error, drawing.key_id)
    return to_candidate(record, drawing, data)


# ---------------------------------------------------------------------------------------------------
# Rejections


def rejection(origin: Origin, original: bytes, error: InvalidRecord, key_id: int | None = None) -> dict:
    """The rejected-*.ndjson entry of a bad record; also counts it in the Beam counter of its reason."""
    Metrics.counter(COUNTER_NAMESPACE, error.reason).inc()
    entry = {
        "source": origin.source,
        "position": origin.position,
        "format": origin.format,
        "reason": error.reason,
        "message": str(error).removeprefix(f"{error.reason}: "),
    }
    if origin.split:
        entry["split"] = origin.split
    if key_id is not None:
        entry["key_id"] = key_id
    kept = original[:MAX_ORIGINAL_BYTES]
    text = None
    if origin.format in ("ndjson", "csv"):
        try:
            text = kept.decode("utf-8")
        except UnicodeDecodeError:
            pass  # not text: stored as base64 below
    if text is not None:
        entry["text"] = text
    else:
        entry["base64"] = base64.b64encode(kept).decode("ascii")
    if len(original) > MAX_ORIGINAL_BYTES:
        entry["truncated"] = True
    return entry


def choose_kept(candidates: Iterable[Candidate]) -> tuple[Candidate, list[Candidate]]:
    """Of the records sharing a key_id, the one with the smallest origin, and the others.

    Origins are unique (one record per file position), so the choice never depends on input order.
    """
    ordered = sorted(candidates, key=lambda candidate: candidate.origin)
    return ordered[0], ordered[1:]


def duplicate_rejection(duplicate: Candidate, kept: Candidate) -> dict:
    error = InvalidRecord(
        "duplicate_key",
        f"key_id {duplicate.key_id} already read from {kept.origin.source} at {kept.origin.position}"
        + (f" (word {kept.word!r}, here {duplicate.word!r})" if kept.word != duplicate.word else ""),
    )
    return rejection(duplicate.origin, duplicate.original, error, duplicate.key_id)


def unknown_class_rejection(candidate: Candidate) -> dict:
    error = InvalidRecord("unknown_class", f"word {candidate.word!r} is not in the classes file")
    return rejection(candidate.origin, candidate.original, error, candidate.key_id)


def rejected_file_of(entry: dict, num_files: int) -> int:
    """The rejected-*.ndjson file of an entry: a stable hash of its source and position."""
    place_name = f"{entry['source']}\0{entry.get('split', '')}\0{entry['position']}".encode()
    return zlib.crc32(place_name) % num_files


# ---------------------------------------------------------------------------------------------------
# Order and encoding


def rank(key_id: int) -> tuple[float, int]:
    """The order of drawings within a split: what caps keep (lowest first) and how shards are sorted."""
    return splits.key_hash(key_id), key_id


def encode(candidate: Candidate, class_index: int, kind: str) -> bytes:
    """The serialized tf.train.Example, built by the shared schema in quickdraw_tf.data.features."""
    if kind == "images":
        image = np.frombuffer(candidate.data, np.uint8).reshape(features.BITMAP_SIZE, features.BITMAP_SIZE)
        return features.serialize_image_example(image, class_index, candidate.key_id, candidate.word)
    # Byte for byte TensorFlow's SerializeToString(deterministic=True) of the same Example (the feature
    # map ordered by name, so equal examples always give equal bytes), without TensorFlow in the workers.
    return features.serialize_stroke_example(
        np.frombuffer(candidate.data, np.float32).reshape(-1, 3),
        class_index,
        candidate.key_id,
        candidate.word,
        candidate.countrycode,
        candidate.recognized,
        candidate.timestamp,
    )
