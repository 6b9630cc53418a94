"""Converts Quick, Draw! files into train/eval/test TFRecord shards with Apache Beam.

    python -m beam_jobs.make_tfrecords --runner=DirectRunner --output_dir=data/tfrecords
    python -m beam_jobs.make_tfrecords --input='data/raw/*.ndjson' --output_dir=out \\
        --direct_num_workers=2 --direct_running_mode=multi_processing
    python -m beam_jobs.make_tfrecords --input='gs://quickdraw_dataset/full/simplified/*.ndjson' \\
        --output_dir=gs://BUCKET/quickdraw --runner=DataflowRunner --project=P --region=R \\
        --temp_location=gs://BUCKET/tmp

Flags this job does not define go to Beam's PipelineOptions unchanged. DirectRunner (the default) runs
on Beam's FnApiRunner without first trying to download the Prism runner (see beam_jobs.runtime);
--runner=PrismRunner still asks for Prism.

Steps: Read -> Prepare (parse, validate, [recognized_only], ink, split: one fused DoFn) -> GroupByShard
-> Unbatch -> DropDuplicateKeys -> KnownClasses -> CapPerClass -> Encode -> WriteShards; beside them
ShardTallies -> Classes and CapThresholds (side inputs), WriteClasses, WriteRejected, WriteStats; then
run_job writes the TFDS metadata. The steps need no TensorFlow: examples and TFRecord framing are written
directly (features.serialize_*_example, tfrecord_bytes), so multi_processing workers never import it.

The drawings are shuffled once: split and shard depend on the key_id only, so every copy of a key_id
lands in the same shard group, which drops its duplicates, unknown classes and over-cap drawings
itself. What it needs to know about the whole input (the class list, each class's cap threshold) comes
from small per-shard tallies of the kept drawings ((split, word) -> count, smallest ranks), as side inputs.

  Split        sha256 of the decimal key_id as a number h in [0, 1): h < test_fraction -> test,
               h < test_fraction + eval_fraction -> eval, else train (quickdraw_tf.splits).
  CapPerClass  per (split, class) keeps the cap drawings with the lowest (h, key_id); the others are
               counted as over_cap (not rejected, not written to rejected-*).
  Duplicates   of a key_id, the record with the smallest (format, source, position, npz split) is kept,
               whatever the file order; the others are rejected as duplicate_key, even with another word.
  Unrecognized with --recognized_only, drawings the game did not recognize are counted as
               unrecognized (like over_cap: dropped on purpose, not bad records).
  Images       .npy and bitmap_raw inputs become image examples (features.image_example) with the same
               splits, caps, stats and rejections. One run converts strokes or images: a glob list that
               mixes them is refused with a one-line error.

Output directory:
  quickdraw-{train,eval,test}.tfrecord-{i:05d}-of-{n:05d}  every shard, empty ones included; the
        records of a shard sorted by (h, key_id), so two runs on the same input give identical bytes
  classes.txt            one word a line; the line number (from 0) is class_index
  dataset_info.json, features.json   TFDS metadata: tfds.builder_from_directory(output_dir) loads it
                         (TFDS itself refuses to read a split with 0 examples, e.g. --test_fraction=0)
  stats.json             counts: read, written (per split, per class), rejected (per reason), over_cap,
                         unrecognized, shard lengths; read = written + rejected + over_cap + unrecognized
  rejected-{i:05d}-of-{n:05d}.ndjson   n = --num_shards files, all written, each sorted by source and
                         position: one JSON object per bad record with source, position (1-based line
                         for ndjson and csv, byte offset for bin, 0-based row for npy/bitmap_raw,
                         0-based index in the split for npz), format, reason, message, key_id (when
                         known) and the original record: "text" (the line, for ndjson/csv lines that are
                         valid UTF-8) or "base64" (the bytes: a bin record, a bitmap row's pixels, an npz
                         sketch saved with numpy.save, or a line that is not UTF-8). Originals over 1 MiB
                         are cut, with "truncated": true. Rejections are also counted in Beam metrics:
                         Metrics.counter("quickdraw", reason).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import heapq
import io
import itertools
import json
import os
import struct
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from beam_jobs import runtime  # first: it quiets the TensorFlow and Beam imports below

# isort: split

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from quickdraw_tf import features, formats, ink, splits
from quickdraw_tf.drawing import Drawing, InvalidRecord

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_INPUTS = (
    os.path.join(REPO_ROOT, "data", "sample", "raw", "*", "*.ndjson"),
    os.path.join(REPO_ROOT, "data", "sample", "simplified", "*", "*.ndjson"),
)
DEFAULT_OUTPUT_DIR = splits.DEFAULT_DATA_DIR
DATASET_NAME = "quickdraw"
STATS_FILE = "stats.json"
IMAGE_FORMATS = ("npy", "bitmap_raw")
MAX_ORIGINAL_BYTES = 1 << 20
COUNTER_NAMESPACE = "quickdraw"
REJECTED = "rejected"


class UsageError(ValueError):
    """A bad flag value or input path: reported as one line on stderr, exit status 2."""


@dataclasses.dataclass(frozen=True)
class JobConfig:
    """Everything the pipeline needs besides Beam's own options."""

    inputs: tuple[str, ...] = DEFAULT_INPUTS
    output_dir: str = DEFAULT_OUTPUT_DIR
    format: str | None = None
    recognized_only: bool = False
    classes: tuple[str, ...] | None = None  # from --classes_file; None: the distinct words found
    eval_fraction: float = 0.1
    test_fraction: float = 0.1
    caps: tuple[tuple[str, int], ...] = (("train", 10000), ("eval", 1000), ("test", 1000))
    num_shards: int = 4
    normalize: str = "uniform"
    simplify: bool = True


class Origin(NamedTuple):
    """Where a record came from; also the order that decides which duplicate is kept."""

    format: str
    source: str
    position: int
    split: str


class Candidate(NamedTuple):
    """A valid drawing, reduced to what the later steps need. `data` is float32 ink or uint8 pixels.

    Steps pass it on as a plain tuple (as_tuple, from_tuple): wherever Beam encodes elements (shuffles,
    side-input stages), its fast coder handles tuples natively but pickles NamedTuples, ~4x slower.
    """

    key_id: int
    word: str
    origin: Origin
    original: bytes  # kept until the last step that can reject the record
    data: bytes
    countrycode: str
    recognized: bool
    timestamp: int

    def as_tuple(self) -> tuple:
        return (self.key_id, self.word, tuple(self.origin), *self[3:])

    @classmethod
    def from_tuple(cls, value: tuple) -> Candidate:
        key_id, word, origin, *rest = value
        return cls(key_id, word, Origin(*origin), *rest)


# ---------------------------------------------------------------------------------------------------
# Flags and inputs (checked before the pipeline is built, so bad ones cost no Beam start-up)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _csv_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def build_arg_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="make_tfrecords", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--input",
        type=_csv_list,
        default=list(DEFAULT_INPUTS),
        help="comma-separated files or globs (local or any Beam filesystem, e.g. gs://); "
        "default: the embedded sample's raw and simplified ndjson",
    )
    parser.add_argument("--output_dir", default=DEFAULT_OUTPUT_DIR)
    parser.add_argument(
        "--format",
        default=None,
        help=f"read every input as one of {', '.join(formats.FORMATS)} "
        "instead of guessing from the extension (needed for bitmap_raw)",
    )
    parser.add_argument(
        "--recognized_only",
        action="store_true",
        help="drop drawings the game did not recognize (counted as unrecognized)",
    )
    parser.add_argument(
        "--classes_file",
        default=None,
        help="one word a line: the classes and their order; other words are rejected "
        "(unknown_class). Default: the sorted distinct words of the input",
    )
    parser.add_argument("--eval_fraction", type=float, default=0.1)
    parser.add_argument("--test_fraction", type=float, default=0.1)
    parser.add_argument("--train_per_class", type=int, default=10000)
    parser.add_argument("--eval_per_class", type=int, default=1000)
    parser.add_argument("--test_per_class", type=int, default=1000)
    parser.add_argument("--num_shards", type=int, default=4, help="shards per split")
    parser.add_argument("--normalize", default="uniform", help=f"one of {', '.join(ink.NORMALIZATIONS)}")
    parser.add_argument(
        "--no_simplify",
        dest="simplify",
        action="store_false",
        help="keep raw drawings as they are instead of applying Google's simplification",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> JobConfig:
    """Checks the job's flag values; raises UsageError on the first bad one."""
    for name in ("eval_fraction", "test_fraction"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise UsageError(f"--{name} must be in [0, 1], got {getattr(args, name)}")
    if args.eval_fraction + args.test_fraction > 1.0:
        raise UsageError(
            f"--eval_fraction + --test_fraction must be <= 1, got {args.eval_fraction} + {args.test_fraction}"
        )
    caps = (("train", args.train_per_class), ("eval", args.eval_per_class), ("test", args.test_per_class))
    for split, cap in caps:
        if cap < 1:
            raise UsageError(f"--{split}_per_class must be >= 1, got {cap}")
    if args.num_shards < 1:
        raise UsageError(f"--num_shards must be >= 1, got {args.num_shards}")
    if args.format is not None and args.format not in formats.FORMATS:
        raise UsageError(f"--format must be one of {', '.join(formats.FORMATS)}, got {args.format!r}")
    if args.normalize not in ink.NORMALIZATIONS:
        raise UsageError(
            f"--normalize must be one of {', '.join(ink.NORMALIZATIONS)}, got {args.normalize!r}"
        )
    if not args.input:
        raise UsageError("--input names no file")
    return JobConfig(
        inputs=tuple(args.input),
        output_dir=args.output_dir,
        format=args.format,
        recognized_only=args.recognized_only,
        classes=read_classes_file(args.classes_file) if args.classes_file else None,
        eval_fraction=args.eval_fraction,
        test_fraction=args.test_fraction,
        caps=caps,
        num_shards=args.num_shards,
        normalize=args.normalize,
        simplify=args.simplify,
    )


def read_classes_file(path: str) -> tuple[str, ...]:
    """The words of a classes file, one a line (blank lines skipped); UsageError if unusable."""
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError) as error:  # Beam's BeamIOError is an OSError
        raise UsageError(f"cannot read --classes_file {path}: {error}") from None
    words = tuple(line.strip() for line in text.splitlines() if line.strip())
    duplicated = sorted(word for word, n in Counter(words).items() if n > 1)
    if not words or duplicated:
        raise UsageError(f"--classes_file {path} " + (f"repeats {duplicated}" if words else "lists no word"))
    return words


def expand_inputs(patterns: Sequence[str], fmt: str | None = None) -> list[tuple[str, str]]:
    """(path, format) of every file the patterns match, sorted and unique; UsageError if one matches none."""
    found = {}
    for pattern in patterns:
        try:
            matched = [m.path for result in FileSystems.match([pattern]) for m in result.metadata_list]
        except OSError:  # BeamIOError: e.g. a missing local path
            matched = []
        if not matched:
            if any(char in pattern for char in "*?["):
                raise UsageError(f"input glob {pattern} matches no file")
            raise UsageError(f"input {pattern} does not exist")
        for path in matched:
            try:
                found[path] = formats.format_for_path(path, fmt)
            except ValueError as error:
                raise UsageError(str(error)) from None
    return sorted(found.items())


def input_kind(paths_and_formats: Sequence[tuple[str, str]]) -> str:
    """'images' when every input is a bitmap, 'strokes' when none is; UsageError for a mix."""
    images = [path for path, fmt in paths_and_formats if fmt in IMAGE_FORMATS]
    if not images:
        return "strokes"
    if len(images) == len(paths_and_formats):
        return "images"
    strokes = next(path for path, fmt in paths_and_formats if fmt not in IMAGE_FORMATS)
    raise UsageError(
        f"inputs mix bitmaps ({images[0]}) and strokes ({strokes}); convert them in separate runs"
    )


# ---------------------------------------------------------------------------------------------------
# Per-element functions (plain Python: unit-testable without Beam)


def read_file(path_and_format: tuple[str, str]) -> Iterator[formats.SourceRecord]:
    """The undecoded records of one file, opened through Beam's FileSystems (gs://, .gz, ...)."""
    path, fmt = path_and_format
    with FileSystems.open(path) as fileobj:
        yield from formats.read_source_records(fileobj, path, fmt)


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


def check_labelled(drawing: Drawing) -> Drawing:
    """The job's own check on top of formats.validate (which parse_record already ran): a word to learn.

    Kaggle's test CSV layout has no word column; such drawings cannot become labelled examples.
    """
    if not drawing.word:
        raise InvalidRecord("missing_field", "no word: the drawing cannot be labelled")
    return drawing


def drawing_data(drawing: Drawing, normalize: str, simplify: bool) -> bytes:
    """What the example stores: float32 delta ink (raw drawings simplified first) or the 28x28 pixels."""
    if drawing.image is not None:
        return np.ascontiguousarray(drawing.image, np.uint8).tobytes()
    strokes = drawing.strokes
    if simplify and drawing.is_raw:
        # Google's simplification makes a raw drawing's ink equal to that of its simplified twin. It never
        # leaves fewer than 2 points (a 1-point stroke becomes 2 equal points), so to_ink cannot fail here.
        strokes = ink.simplify(strokes)
    return ink.to_ink(strokes, normalize).tobytes()


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


def rank(key_id: int) -> tuple[float, int]:
    """The order of drawings within a split: what caps keep (lowest first) and how shards are sorted."""
    return splits.key_hash(key_id), key_id


def over_cap_threshold(
    count: int, smallest: Sequence[tuple[float, int]], cap: int
) -> tuple[float, int] | None:
    """The largest rank a (split, class) keeps, or None when all `count` of its drawings fit the cap."""
    return smallest[cap - 1] if count > cap else None


def within_cap(ranking: tuple[float, int], threshold: tuple[float, int] | None) -> bool:
    return threshold is None or ranking <= threshold


def encode(candidate: Candidate, class_index: int, kind: str) -> bytes:
    """The serialized tf.train.Example, built by the shared schema in quickdraw_tf.features."""
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


def shard_name(split: str, index: int, num_shards: int) -> str:
    """TFDS's default file naming, so tfds.builder_from_directory finds the shards."""
    return f"{DATASET_NAME}-{split}.tfrecord-{index:05d}-of-{num_shards:05d}"


def write_records(path: str, records: Iterable[bytes]) -> int:
    """Writes a TFRecord file through Beam's FileSystems (any filesystem); returns its size in bytes.

    The same bytes as tf.io.TFRecordWriter (record checksums included), framed by tfrecord_bytes.
    """
    data = tfrecord_bytes(list(records))
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as dst:
        dst.write(data)
    return len(data)


def write_text(path: str, text: str) -> None:
    with FileSystems.create(
        path, mime_type="text/plain", compression_type=CompressionTypes.UNCOMPRESSED
    ) as f:
        f.write(text.encode("utf-8"))


def read_text(path: str) -> str:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read().decode("utf-8")


# ---------------------------------------------------------------------------------------------------
# TFRecord framing without TensorFlow: length, masked crc32c of the length, data, masked crc32c of the data.
# crc32c (Castagnoli) is computed with numpy for all records of a shard at once (slicing-by-4 tables,
# one vector step per 4 bytes), since neither TensorFlow nor a crc32c package is needed in the workers.


def _crc32c_tables() -> np.ndarray:
    table = np.zeros((4, 256), np.uint32)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table[0, byte] = crc
    for k in range(1, 4):
        table[k] = (table[k - 1] >> 8) ^ table[0][table[k - 1] & 0xFF]
    return table


_CRC_TABLES = _crc32c_tables()
_CRC_CHUNK = 512  # records padded together: sorted by length, so a chunk's lengths are close


def crc32c_many(records: Sequence[bytes]) -> np.ndarray:
    """The crc32c of each record (uint32), computed for all of them together."""
    t0, t1, t2, t3 = _CRC_TABLES
    lengths = np.fromiter(map(len, records), np.int64, len(records))
    order = np.argsort(-lengths, kind="stable")
    result = np.zeros(len(records), np.uint32)
    for begin in range(0, len(records), _CRC_CHUNK):
        chunk = order[begin : begin + _CRC_CHUNK]
        sizes = lengths[chunk]  # descending
        width = -(-int(sizes[0]) // 4) * 4
        padded = np.zeros((len(chunk), width), np.uint8)
        padded[np.arange(width) < sizes[:, None]] = np.frombuffer(
            b"".join(records[i] for i in chunk.tolist()), np.uint8
        )
        words = padded.view("<u4")
        crc = np.full(len(chunk), 0xFFFFFFFF, np.uint32)
        # Whole words: record r takes word w while 4 * (w + 1) <= its length, a prefix of the chunk.
        whole = sizes // 4
        active = np.searchsorted(-whole, -np.arange(1, int(whole[0]) + 1), side="right")
        for w, k in enumerate(active.tolist()):
            c = crc[:k] ^ words[:k, w]
            crc[:k] = t3[c & 0xFF] ^ t2[(c >> 8) & 0xFF] ^ t1[(c >> 16) & 0xFF] ^ t0[c >> 24]
        # The last 1-3 bytes of each record, one byte at a time.
        for j in range(3):
            rows = np.flatnonzero(sizes % 4 > j)
            if len(rows):
                byte = padded[rows, whole[rows] * 4 + j]
                crc[rows] = t0[(crc[rows] ^ byte) & 0xFF] ^ (crc[rows] >> 8)
        result[chunk] = crc ^ 0xFFFFFFFF
    return result


def _masked(crc: np.ndarray) -> np.ndarray:
    crc = crc.astype(np.uint64)
    return ((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF).astype("<u4")


def tfrecord_bytes(records: Sequence[bytes]) -> bytes:
    """The records framed as a TFRecord file (what tf.io.TFRecordWriter writes, no compression)."""
    records = list(records)
    if not records:
        return b""
    lengths = np.fromiter(map(len, records), "<u8", len(records))
    length_bytes = [length.tobytes() for length in lengths]
    length_crcs = _masked(crc32c_many(length_bytes)).tolist()
    data_crcs = _masked(crc32c_many(records)).tolist()
    pack = struct.Struct("<I").pack
    parts = []
    for length, length_crc, record, data_crc in zip(
        length_bytes, length_crcs, records, data_crcs, strict=True
    ):
        parts += (length, pack(length_crc), record, pack(data_crc))
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------------
# DoFns and composite steps


def place(
    value: tuple, eval_fraction: float, test_fraction: float, num_shards: int
) -> tuple[tuple[str, int], tuple]:
    """candidate tuple -> ((split, shard), (rank, candidate tuple)): all three depend on the key_id only."""
    key_id = value[0]
    hash_value, shard = splits.key_hash_and_shard(key_id, num_shards)  # one sha256 per drawing
    split = splits.assign_split(hash_value, eval_fraction, test_fraction)
    return (split, shard), ((hash_value, key_id), value)  # (hash_value, key_id) is rank(key_id)


UNRECOGNIZED = "unrecognized"
READ = "read"
BATCH_SIZE = 256  # placed candidates per element shuffled by GroupByShard


class PrepareFn(beam.DoFn):
    """SourceRecord -> placed candidates, in batches: ((split, shard), [(rank, candidate tuple), ...]).

    Parse, check_labelled, [the recognized_only filter], to_candidate and place one after
    the other, fused into one DoFn: every step costs Beam per-element work. The candidates of a shard
    are passed on up to BATCH_SIZE at a time, so the shuffle moves a few hundred elements, not one per
    drawing (Unbatch puts a shard's group back together). Bad records go to the `rejected` output,
    unrecognized drawings (with recognized_only) to `unrecognized` as a 1, and each bundle's count of
    records read to `read`.
    """

    def __init__(self, config: JobConfig):
        self._normalize = config.normalize
        self._simplify = config.simplify
        self._recognized_only = config.recognized_only
        self._place_args = (config.eval_fraction, config.test_fraction, config.num_shards)
        self._batches: dict = {}
        self._read = 0

    def start_bundle(self):
        self._batches, self._read = {}, 0

    def process(self, record: formats.SourceRecord):
        self._read += 1
        for output in self._prepare(record):
            if isinstance(output, beam.pvalue.TaggedOutput):
                yield output
                continue
            key, value = output
            batch = self._batches.setdefault(key, [])
            batch.append(value)
            if len(batch) >= BATCH_SIZE:
                del self._batches[key]
                yield key, batch

    def finish_bundle(self):
        for key, batch in self._batches.items():
            yield WindowedValue((key, batch), MIN_TIMESTAMP, [GlobalWindow()])
        yield beam.pvalue.TaggedOutput(READ, WindowedValue(self._read, MIN_TIMESTAMP, [GlobalWindow()]))
        self._batches, self._read = {}, 0

    def _prepare(self, record: formats.SourceRecord):
        try:
            drawing = formats.parse_record(record)
        except InvalidRecord as error:
            yield beam.pvalue.TaggedOutput(
                REJECTED, rejection(origin_of(record), original_bytes(record), error)
            )
            return
        try:
            check_labelled(drawing)
        except InvalidRecord as error:
            yield beam.pvalue.TaggedOutput(
                REJECTED, rejection(origin_of(record), original_bytes(record), error, drawing.key_id)
            )
            return
        if self._recognized_only and not drawing.recognized:
            yield beam.pvalue.TaggedOutput(UNRECOGNIZED, 1)
            return
        data = drawing_data(drawing, self._normalize, self._simplify)
        yield place(to_candidate(record, drawing, data).as_tuple(), *self._place_args)


def unbatch(group: tuple[tuple[str, int], Iterable[list]]) -> tuple[tuple[str, int], list]:
    """A shard's batches of placed candidates (PrepareFn) -> the shard's (rank, candidate tuple)s."""
    key, batches = group
    return key, [entry for batch in batches for entry in batch]


class WithEmptyFiles(beam.PTransform):
    """Infos of the files written, (file key, ...) -> the same plus those of empty files written for every
    other key in `keys` by write_fn((key, []), *args): every expected file exists, even with nothing to
    hold, so the file count in the shard names is always right.
    """

    def __init__(self, keys: Iterable, write_fn, *args):
        super().__init__()
        self._keys = list(keys)
        self._write_fn = write_fn
        self._args = args

    def expand(self, written):
        done = beam.pvalue.AsList(written | "WrittenKeys" >> beam.Map(lambda info: info[0]))
        empty = (
            written.pipeline
            | "AllFiles" >> beam.Create(self._keys)
            | "WriteEmpty" >> beam.FlatMap(_write_if_missing, done, self._write_fn, *self._args)
        )
        return (written, empty) | "WrittenAndEmpty" >> beam.Flatten()


def _write_if_missing(key, done: list, write_fn, *args):
    if key not in done:
        yield write_fn((key, []), *args)


# The winners of each key_id are what DropDuplicateKeys keeps (duplicates share a key_id, hence a shard):
# per shard, ShardTallies sums them up per (split, word) into small tuples that give the class list and
# the cap thresholds as side inputs, so the drawings are shuffled once, by shard, where each shard group
# drops its duplicates, unknown classes and over-cap drawings itself.


class Classes(beam.PTransform):
    """The class list as a one-element PCollection: the given one, or the sorted distinct words."""

    def __init__(self, given: Sequence[str] | None):
        super().__init__()
        self._given = None if given is None else list(given)

    def expand(self, tallies):
        if self._given is not None:
            return tallies.pipeline | "Given" >> beam.Create([self._given])
        return (
            tallies
            | "Words" >> beam.Map(lambda tally: tally[0][1])
            | "Distinct" >> beam.Distinct()
            | "Collect" >> beam.combiners.ToList()
            | "Sort" >> beam.Map(sorted)
        )


def shard_tallies(group: tuple[tuple[str, int], list], n: int) -> Iterator[tuple]:
    """A deduplicated shard's ((split, word), (count, its n smallest ranks, ascending)), one per word.

    Duplicates share a shard, so once a shard group is deduplicated its drawings are the winners of
    their key_ids: these tallies, merged over shards (MergeTallies), give the class list and each
    (split, class)'s cap threshold without grouping every key_id separately.
    """
    (split, _), entries = group  # sorted by rank (drop_duplicates)
    counts: Counter = Counter()
    smallest: dict[str, list] = {}
    for ranking, value in entries:
        word = value[1]  # Candidate.word
        counts[word] += 1
        ranks = smallest.setdefault(word, [])
        if len(ranks) < n:
            ranks.append(ranking)
    for word, count in counts.items():
        yield (split, word), (count, smallest[word])


class MergeTallies(beam.CombineFn):
    """(count, ascending smallest ranks) partials -> their sum and the `n` smallest ranks overall."""

    def __init__(self, n: int):
        self._n = n

    def create_accumulator(self):
        return 0, []

    def _merge(self, tallies):
        tallies = list(tallies)
        count = sum(count for count, _ in tallies)
        return count, list(itertools.islice(heapq.merge(*(ranks for _, ranks in tallies)), self._n))

    def add_input(self, accumulator, tally):
        return self._merge([accumulator, tally])

    def merge_accumulators(self, accumulators):
        return self._merge(accumulators)

    def extract_output(self, accumulator):
        return accumulator


class CapThresholds(beam.PTransform):
    """shard tallies ((split, word), (count, smallest ranks)) -> ((split, word), (count, largest rank
    kept or None if all fit)).

    Winners of words outside the class list are left out: they are rejected, not capped.
    """

    def __init__(self, caps: dict[str, int], class_index):
        super().__init__()
        self._caps = dict(caps)
        self._class_index = class_index

    def expand(self, tallies):
        caps = self._caps
        return (
            tallies
            | "KnownWords" >> beam.Filter(lambda tally, known: tally[0][1] in known, self._class_index)
            | "MergeTallies" >> beam.CombinePerKey(MergeTallies(max(caps.values())))
            | "Thresholds"
            >> beam.MapTuple(
                lambda key, tally: (key, (tally[0], over_cap_threshold(tally[0], tally[1], caps[key[0]])))
            )
        )


# The steps on a shard's group pass (rank, candidate tuple) lists on: Beam samples the size of every
# step's output, and sizing a NamedTuple means pickling it.


def drop_duplicates(group: tuple[tuple[str, int], Iterable[tuple]]):
    """A shard's (rank, candidate tuple)s -> one per key_id, sorted by rank; the others are rejected."""
    key, values = group
    by_rank: dict[tuple[float, int], list[Candidate]] = {}
    for ranking, value in values:  # the rank holds the key_id: one rank per key_id
        by_rank.setdefault(ranking, []).append(Candidate.from_tuple(value))
    kept = []
    for ranking in sorted(by_rank):
        winner, duplicates = choose_kept(by_rank[ranking])
        for duplicate in duplicates:
            yield beam.pvalue.TaggedOutput(REJECTED, duplicate_rejection(duplicate, winner))
        kept.append((ranking, winner.as_tuple()))
    yield key, kept


def known_classes(group: tuple[tuple[str, int], list], class_index: dict[str, int]):
    key, entries = group
    known = []
    for ranking, value in entries:
        candidate = Candidate.from_tuple(value)
        if candidate.word in class_index:
            known.append((ranking, value))
        else:
            yield beam.pvalue.TaggedOutput(REJECTED, unknown_class_rejection(candidate))
    yield key, known


def within_caps(group: tuple[tuple[str, int], list], tallies: dict) -> tuple[tuple[str, int], list]:
    """Keeps the drawings whose rank is within their (split, class) cap; the others are counted in tallies."""
    (split, index), entries = group
    kept = [
        (ranking, value)
        for ranking, value in entries
        if within_cap(ranking, tallies[(split, Candidate.from_tuple(value).word)][1])
    ]
    return (split, index), kept


def encode_group(group: tuple[tuple[str, int], list], class_index: dict[str, int], kind: str):
    """(rank, candidate tuple)s -> (word, serialized example)s, in the same order."""
    key, entries = group
    encoded = []
    for _, value in entries:
        candidate = Candidate.from_tuple(value)
        encoded.append((candidate.word, encode(candidate, class_index[candidate.word], kind)))
    return key, encoded


def write_shard(group: tuple[tuple[str, int], list], output_dir: str, num_shards: int) -> tuple:
    """Writes a shard of (word, example)s in order; returns ((split, index), count, bytes, {word: count})."""
    (split, index), entries = group
    path = FileSystems.join(output_dir, shard_name(split, index, num_shards))
    num_bytes = write_records(path, (example for _, example in entries))
    Metrics.counter(COUNTER_NAMESPACE, "written").inc(len(entries))
    return (split, index), len(entries), num_bytes, dict(Counter(word for word, _ in entries))


def rejected_name(index: int, num_files: int) -> str:
    return f"rejected-{index:05d}-of-{num_files:05d}.ndjson"


def rejected_file_of(entry: dict, num_files: int) -> tuple[int, tuple]:
    """(file index, (sort key, JSON line)) of a rejection; the file: a stable hash of source and position."""
    place_name = f"{entry['source']}\0{entry.get('split', '')}\0{entry['position']}".encode()
    order = (entry["source"], entry.get("split", ""), entry["position"], entry["reason"])
    return zlib.crc32(place_name) % num_files, (order, json.dumps(entry, ensure_ascii=False))


def write_rejected(group: tuple[int, Iterable[tuple]], output_dir: str, num_files: int) -> tuple[int, int]:
    """Writes one rejected-*.ndjson file, sorted by source and position; returns (index, lines)."""
    index, entries = group
    lines = [line for _, line in sorted(entries)]
    write_text(
        FileSystems.join(output_dir, rejected_name(index, num_files)), "".join(f"{line}\n" for line in lines)
    )
    return index, len(lines)


# ---------------------------------------------------------------------------------------------------
# Stats and metadata


def build_stats(facts: Iterable[tuple], classes: Sequence[str], kind: str, num_shards: int) -> dict:
    """stats.json from (what, key, value) facts gathered from the PCollections (so correct on any runner)."""
    read = unrecognized = 0
    rejected: Counter = Counter()
    over_cap = {split: Counter() for split in splits.SPLITS}
    written = {split: Counter() for split in splits.SPLITS}
    shards = {split: [0] * num_shards for split in splits.SPLITS}
    shard_bytes = dict.fromkeys(splits.SPLITS, 0)
    for what, key, value in facts:
        if what == "read":
            read += value
        elif what == "unrecognized":
            unrecognized += value
        elif what == "rejected":
            rejected[key] += value
        elif what == "over_cap":
            over_cap[key[0]][key[1]] += value
        elif what == "shard":
            split, index = key
            count, num_bytes, per_word = value
            shards[split][index] = count
            shard_bytes[split] += num_bytes
            written[split].update(per_word)
    stats = {
        "kind": kind,
        "read": read,
        "written": sum(sum(shards[split]) for split in splits.SPLITS),
        "rejected": sum(rejected.values()),
        "over_cap": sum(sum(counts.values()) for counts in over_cap.values()),
        "unrecognized": unrecognized,
        "written_per_split": {split: sum(shards[split]) for split in splits.SPLITS},
        "rejected_per_reason": dict(sorted(rejected.items())),
        "over_cap_per_split": {split: sum(over_cap[split].values()) for split in splits.SPLITS},
        "num_classes": len(classes),
        "written_per_class": {split: _per_class(written[split], classes) for split in splits.SPLITS},
        "over_cap_per_class": {split: dict(sorted(over_cap[split].items())) for split in splits.SPLITS},
        "shard_lengths": shards,
        "num_bytes_per_split": shard_bytes,
    }
    stats["reconciled"] = reconciliation_error(stats) is None
    return stats


def _per_class(counts: Counter, classes: Sequence[str]) -> dict[str, int]:
    return {word: counts.get(word, 0) for word in classes}


def reconciliation_error(stats: dict) -> str | None:
    """None when every record read is accounted for exactly once, else what does not add up."""
    accounted = stats["written"] + stats["rejected"] + stats["over_cap"] + stats["unrecognized"]
    if stats["read"] == accounted:
        return None
    return (
        f"read {stats['read']} != written {stats['written']} + rejected {stats['rejected']} "
        f"+ over_cap {stats['over_cap']} + unrecognized {stats['unrecognized']} = {accounted}"
    )


def _write_stats(facts, classes, output_dir: str, kind: str, num_shards: int) -> dict:
    stats = build_stats(facts, classes, kind, num_shards)
    write_text(FileSystems.join(output_dir, STATS_FILE), json.dumps(stats, indent=2) + "\n")
    return stats


def _write_classes(classes: Sequence[str], output_dir: str) -> None:
    write_text(FileSystems.join(output_dir, splits.CLASSES_FILE), "".join(f"{word}\n" for word in classes))


def tfds_features(kind: str):
    """A tfds FeaturesDict whose examples have the same features as features.stroke_example/image_example.

    ink is declared (None, 3) so TFDS hands it back as [n, 3] rows; serialized it is the same flat list.
    """
    import tensorflow_datasets as tfds

    def scalar_int64():
        return tfds.features.Tensor(shape=(1,), dtype=np.int64)

    if kind == "images":
        return tfds.features.FeaturesDict(
            {
                "image": tfds.features.Tensor(shape=(), dtype=np.str_),
                "class_index": scalar_int64(),
                "key_id": scalar_int64(),
                "word": tfds.features.Text(),
            }
        )
    return tfds.features.FeaturesDict(
        {
            "ink": tfds.features.Tensor(shape=(None, 3), dtype=np.float32),
            "shape": tfds.features.Tensor(shape=(2,), dtype=np.int64),
            "class_index": scalar_int64(),
            "key_id": scalar_int64(),
            "word": tfds.features.Text(),
            "countrycode": tfds.features.Text(),
            "recognized": scalar_int64(),
            "timestamp": scalar_int64(),
        }
    )


def write_tfds_metadata(stats: dict, output_dir: str, kind: str) -> None:
    """dataset_info.json and features.json (split shard lengths included) for tfds.builder_from_directory."""
    runtime.import_tensorflow_quietly()
    import tensorflow_datasets as tfds

    template = tfds.core.ShardedFileTemplate(
        data_dir=output_dir, dataset_name=DATASET_NAME, filetype_suffix="tfrecord"
    )
    split_infos = [
        tfds.core.SplitInfo(
            name=split,
            shard_lengths=stats["shard_lengths"][split],
            num_bytes=stats["num_bytes_per_split"][split],
            filename_template=template.replace(split=split),
        )
        for split in splits.SPLITS
    ]
    tfds.folder_dataset.write_metadata(
        data_dir=output_dir,
        features=tfds_features(kind),
        split_infos=split_infos,
        filename_template=template,
        version="1.0.0",
        check_data=False,  # the shards were just written by this job; reading them back again costs time
        description=f"Quick, Draw! {kind}, {stats['num_classes']} classes, from beam_jobs.make_tfrecords",
        homepage="https://github.com/googlecreativelab/quickdraw-dataset",
    )


# ---------------------------------------------------------------------------------------------------
# The pipeline


def _fact(what: str):
    return lambda key_and_value: (what, key_and_value[0], key_and_value[1])


def build_pipeline(p: beam.Pipeline, config: JobConfig, inputs: Sequence[tuple[str, str]], kind: str) -> None:
    """Adds the job's steps to `p`: `inputs` are (path, format) pairs from expand_inputs."""
    records = p | "ListFiles" >> beam.Create(list(inputs)) | "Read" >> beam.FlatMap(read_file)
    prepared = records | "Prepare" >> beam.ParDo(PrepareFn(config)).with_outputs(
        REJECTED, UNRECOGNIZED, READ, main="placed"
    )
    facts = []
    if config.recognized_only:
        facts.append(
            prepared[UNRECOGNIZED]
            | "CountUnrecognized" >> beam.combiners.Count.Globally()
            | "UnrecognizedFact" >> beam.Map(lambda n: ("unrecognized", "", n))
        )
    deduped = (
        prepared.placed
        | "GroupByShard" >> beam.GroupByKey()
        | "Unbatch" >> beam.Map(unbatch)
        | "DropDuplicateKeys" >> beam.FlatMap(drop_duplicates).with_outputs(REJECTED, main="groups")
    )
    tallies = deduped.groups | "ShardTallies" >> beam.FlatMap(shard_tallies, max(dict(config.caps).values()))
    classes = tallies | "Classes" >> Classes(config.classes)
    class_index = beam.pvalue.AsSingleton(
        classes | "ClassIndex" >> beam.Map(lambda words: {word: index for index, word in enumerate(words)})
    )
    thresholds = tallies | "CapThresholds" >> CapThresholds(dict(config.caps), class_index)

    known = deduped.groups | "KnownClasses" >> beam.FlatMap(known_classes, class_index).with_outputs(
        REJECTED, main="groups"
    )
    shard_infos = (
        known.groups
        | "CapPerClass" >> beam.Map(within_caps, beam.pvalue.AsDict(thresholds))
        | "Encode" >> beam.Map(encode_group, class_index, kind)
        | "WriteShards" >> beam.Map(write_shard, config.output_dir, config.num_shards)
        | "EmptyShards"
        >> WithEmptyFiles(
            [(split, index) for split in splits.SPLITS for index in range(config.num_shards)],
            write_shard,
            config.output_dir,
            config.num_shards,
        )
    )

    _ = classes | "WriteClasses" >> beam.Map(_write_classes, config.output_dir)
    rejected = (prepared[REJECTED], deduped.rejected, known.rejected) | ("AllRejected" >> beam.Flatten())
    _ = (
        rejected
        | "ToRejectedFiles" >> beam.Map(rejected_file_of, config.num_shards)
        | "GroupRejected" >> beam.GroupByKey()
        | "WriteRejected" >> beam.Map(write_rejected, config.output_dir, config.num_shards)
        | "EmptyRejected"
        >> WithEmptyFiles(range(config.num_shards), write_rejected, config.output_dir, config.num_shards)
    )
    over_cap = thresholds | "OverCap" >> beam.MapTuple(
        lambda key, tally: (key, max(0, tally[0] - dict(config.caps)[key[0]]))
    )
    facts += [
        prepared[READ]
        | "CountRead" >> beam.CombineGlobally(sum)
        | "ReadFact" >> beam.Map(lambda n: ("read", "", n)),
        rejected
        | "Reasons" >> beam.Map(lambda entry: entry["reason"])
        | "CountReasons" >> beam.combiners.Count.PerElement()
        | "RejectedFacts" >> beam.Map(_fact("rejected")),
        over_cap | "OverCapFacts" >> beam.Map(_fact("over_cap")),
        shard_infos | "ShardFacts" >> beam.Map(lambda info: ("shard", info[0], info[1:])),
    ]
    _ = (
        tuple(facts)
        | "AllFacts" >> beam.Flatten()
        | "CollectFacts" >> beam.combiners.ToList()
        | "WriteStats"
        >> beam.Map(
            _write_stats, beam.pvalue.AsSingleton(classes), config.output_dir, kind, config.num_shards
        )
    )
    # The TFDS metadata is written by run_job once the pipeline is done, in this process: written by a
    # step, it would make an SDK worker import TensorFlow Datasets (and TensorFlow) for one element.


def run_job(config: JobConfig, beam_args: Sequence[str] = (), save_main_session: bool = True) -> dict:
    """Runs the job to completion and returns stats.json; raises UsageError for bad inputs."""
    inputs = expand_inputs(config.inputs, config.format)
    kind = input_kind(inputs)
    options = PipelineOptions(list(beam_args))
    options.view_as(SetupOptions).save_main_session = save_main_session
    with beam.Pipeline(runner=runtime.direct_runner(options), options=options) as p:
        build_pipeline(p, config, inputs, kind)
    stats = json.loads(read_text(FileSystems.join(config.output_dir, STATS_FILE)))
    error = reconciliation_error(stats)
    if error is not None:
        raise RuntimeError(f"counts do not reconcile: {error}")
    write_tfds_metadata(stats, config.output_dir, kind)
    return stats


def summary(stats: dict, output_dir: str) -> str:
    """A few lines for the console: what was read, written, rejected and dropped, and where it went."""
    per_split = ", ".join(f"{split} {n}" for split, n in stats["written_per_split"].items())
    reasons = ", ".join(f"{reason} {n}" for reason, n in stats["rejected_per_reason"].items()) or "none"
    return "\n".join(
        [
            f"read {stats['read']} records ({stats['kind']}), {stats['num_classes']} classes",
            f"written {stats['written']}: {per_split}",
            f"rejected {stats['rejected']}: {reasons}",
            f"over_cap {stats['over_cap']}, unrecognized {stats['unrecognized']}",
            f"reconciled: read {stats['read']} = written {stats['written']} + rejected {stats['rejected']}"
            f" + over_cap {stats['over_cap']} + unrecognized {stats['unrecognized']}",
            f"output: {output_dir}",
        ]
    )


def run(argv: Sequence[str] | None = None, save_main_session: bool = True) -> dict:
    """The command line: job flags as documented in --help, every other flag to Beam."""
    args, beam_args = build_arg_parser().parse_known_args(argv)
    config = config_from_args(args)
    stats = run_job(config, beam_args, save_main_session)
    print(summary(stats, config.output_dir))
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    try:
        run(argv)
    except UsageError as error:
        print(f"make_tfrecords: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    # Run the importable module rather than this __main__ copy: its functions then pickle by reference,
    # so multi-process workers import beam_jobs.make_tfrecords (quiet TensorFlow import included).
    from beam_jobs import make_tfrecords

    sys.exit(make_tfrecords.main())
