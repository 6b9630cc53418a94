"""What the predict CLI reads and writes: input records with their positions, rejections, the CSVs.

Inputs are read through the Beam job's own readers (formats.read_source_records, parse_record), so
every format it takes works here, with the same positions in rejected-predict.ndjson (1-based line
for ndjson/csv, byte offset for bin, 0-based row for bitmaps, index for npz).
"""

from __future__ import annotations

import base64
import csv
import glob
import gzip
import io
import json
import os
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

from quickdraw_tf.data import formats, output_files
from quickdraw_tf.data.drawing import InvalidRecord

REJECTED_FILE = "rejected-predict.ndjson"
KAGGLE_HEADER = ("key_id", "word")
MAX_ORIGINAL_BYTES = 1 << 20
# A cell starting with one of these is a formula to a spreadsheet (OWASP's "CSV injection"): = + - @,
# and tab and carriage return, which some spreadsheets strip before looking at the rest.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class InputFile(NamedTuple):
    path: str
    format: str
    size: int


def expand_inputs(patterns: Sequence[str], fmt: str | None = None) -> list[InputFile]:
    """Every file the comma-separated patterns match, sorted and unique; ValueError (one line) for a
    pattern that matches nothing or a file whose format cannot be told."""
    found: dict[str, str] = {}
    for pattern in patterns:
        matched = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        matched = [path for path in matched if os.path.isfile(path)]
        if not matched:
            what = "matches no file" if any(c in pattern for c in "*?[") else "does not exist"
            raise FileNotFoundError(f"input {pattern} {what}")
        for path in matched:
            found[path] = formats.format_for_path(path, fmt)
    return [InputFile(path, found[path], os.path.getsize(path)) for path in sorted(found)]


def read_records(inputs: Sequence[InputFile], progress=None) -> Iterator[formats.SourceRecord]:
    """The undecoded records of every input, in order. `progress(bytes_done)` is told how far the
    reading got in compressed bytes, for an ETA."""
    done = 0
    for item in inputs:
        with open(item.path, "rb") as raw:
            fileobj = gzip.GzipFile(fileobj=raw) if item.path.lower().endswith(".gz") else raw
            for record in formats.read_source_records(fileobj, item.path, item.format):
                yield record
                if progress is not None:
                    progress(done + raw.tell())
        done += item.size


def original_bytes(record: formats.SourceRecord) -> bytes:
    payload = record.payload
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    if record.format == "npz" and payload.dtype != object:
        buffer = io.BytesIO()
        np.save(buffer, payload, allow_pickle=False)
        return buffer.getvalue()
    return repr(payload).encode() if record.format == "npz" else np.ascontiguousarray(payload).tobytes()


def rejection(record: formats.SourceRecord, error: Exception, key_id: int | None = None) -> dict:
    """A rejected-predict.ndjson entry, in the layout of the Beam job's rejected-*.ndjson."""
    reason = error.reason if isinstance(error, InvalidRecord) else "unusable"
    entry = {
        "source": record.source,
        "position": record.position,
        "format": record.format,
        "reason": reason,
        "message": str(error).removeprefix(f"{reason}: "),
    }
    if record.split:
        entry["split"] = record.split
    if key_id is not None:
        entry["key_id"] = key_id
    original = original_bytes(record)
    kept = original[:MAX_ORIGINAL_BYTES]
    try:
        if record.format not in ("ndjson", "csv"):
            raise UnicodeDecodeError("binary", b"", 0, 1, "not a text format")
        entry["text"] = kept.decode("utf-8")
    except UnicodeDecodeError:
        entry["base64"] = base64.b64encode(kept).decode("ascii")
    if len(original) > MAX_ORIGINAL_BYTES:
        entry["truncated"] = True
    return entry


def write_rejected(path: str, entries: Sequence[dict]) -> None:
    with output_files.replacing(path, text=True) as f:
        f.writelines(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)


class Row(NamedTuple):
    key_id: int
    word: str
    top: list[tuple[str, float]]


def kaggle_word(word: str) -> str:
    """Kaggle's submission spelling: spaces inside a word become underscores."""
    return word.replace(" ", "_")


def spreadsheet_cell(text: str) -> str:
    """A text cell no spreadsheet runs: one that starts like a formula gets a leading apostrophe (OWASP's
    advice for CSV injection), which spreadsheets show as text and do not display."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def check_kaggle_classes(class_names: Sequence[str]) -> None:
    """ValueError (one line) if a class word would start a formula in a spreadsheet: Kaggle's submission is
    byte-exact, so it cannot carry the escape the top-k CSV adds. Checked before predicting anything."""
    for word in class_names:
        if kaggle_word(word).startswith(FORMULA_STARTS):
            raise ValueError(
                f"class {word!r} starts with {word[:1]!r}, which a spreadsheet runs as a formula: a Kaggle "
                "submission cannot escape it (write the top-k CSV instead)"
            )


def write_predictions(path: str, rows: Sequence[Row], top_k: int, kaggle: bool) -> None:
    """The top-k CSV (key_id[,word],word_1..k,probability_1..k), its words escaped for spreadsheets
    (spreadsheet_cell), or Kaggle's `key_id,word` with the three words space-separated, byte for byte.
    Written through output_files (a temporary name, then a rename), so a failed run leaves no half file
    and a planted link is never written through."""
    with_word = not kaggle and any(row.word for row in rows)
    with output_files.replacing(path, text=True, newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        if kaggle:
            writer.writerow(KAGGLE_HEADER)
            writer.writerows((row.key_id, " ".join(kaggle_word(w) for w, _ in row.top)) for row in rows)
        else:
            header = ["key_id"] + (["word"] if with_word else [])
            header += [f"word_{i}" for i in range(1, top_k + 1)]
            header += [f"probability_{i}" for i in range(1, top_k + 1)]
            writer.writerow(header)
            for row in rows:
                words = [spreadsheet_cell(word) for word, _ in row.top]
                probabilities = [f"{p:.6f}" for _, p in row.top]
                given = [spreadsheet_cell(row.word)] if with_word else []
                writer.writerow([row.key_id] + given + words + probabilities)
