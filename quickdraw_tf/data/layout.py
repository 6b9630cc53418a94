"""The layout of a make_tfrecords output directory: file names, classes.txt, stats.json, manifest.json.

The Beam job writes this layout; the input pipeline and evaluation read it. Both import their file
names and formats from here, so the two sides cannot drift apart.

  quickdraw-{split}.tfrecord-{i:05d}-of-{n:05d}   the shards (TFDS's naming)
  classes.txt     one word a line, line i = class_index i (classes_text / parse_classes)
  stats.json      counts of the run (read, written, rejected, shard_lengths, ...)
  rejected-*.ndjson, dataset_info.json, features.json
  manifest.json   written LAST by a finished run: every file's name, byte size and sha256, and every
                  shard's record count. A directory without it is an unfinished or older conversion.

No TensorFlow here (the job's workers import this module): callers open files themselves, or pass an
`open_fn`; the readers' checks (check_data_dir) take tf.io.gfile, so they work on gs:// too.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import BinaryIO

from quickdraw_tf.data.drawing import word_problem

SPLITS = ("train", "eval", "test")
KINDS = ("strokes", "images")  # stats.json's and manifest.json's "kind"
DATASET_NAME = "quickdraw"
CLASSES_FILE = "classes.txt"
DEFAULT_DATA_DIR = "data/tfrecords"  # where make_tfrecords writes and train/evaluate read by default
STATS_FILE = "stats.json"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "quickdraw_tf.make_tfrecords"
MANIFEST_VERSION = 1
# A class list is read no further than this: Quick, Draw!'s 345 words are 3.3 kB, and a 10-million-line
# file must be refused without being read whole (room for ~50,000 words).
MAX_CLASSES_BYTES = 1 << 20
# Every name a conversion writes: what --overwrite may replace without deleting someone's other files.
OUTPUT_NAME = re.compile(
    r"(quickdraw-(train|eval|test)\.tfrecord-\d{5}-of-\d{5}|rejected-\d{5}-of-\d{5}\.ndjson"
    r"|classes\.txt|stats\.json|manifest\.json|dataset_info\.json|features\.json)"
)
_CHUNK = 1 << 20


class DataDirError(ValueError):
    """A data directory that is not a complete, consistent make_tfrecords output: a one-line message."""


def shard_name(split: str, index: int, num_shards: int) -> str:
    """TFDS's default file naming, so tfds.builder_from_directory finds the shards."""
    return f"{DATASET_NAME}-{split}.tfrecord-{index:05d}-of-{num_shards:05d}"


def shard_glob(split: str) -> str:
    return f"{DATASET_NAME}-{split}.tfrecord-*"


def rejected_name(index: int, num_files: int) -> str:
    return f"rejected-{index:05d}-of-{num_files:05d}.ndjson"


# ---------------------------------------------------------------------------------------------------
# classes.txt: one function pair writes and reads it


def check_word(word: str) -> None:
    """A class word must survive a round trip through classes.txt: a word by drawing.word_problem's rules
    (a newline would split it into two classes), and not empty."""
    if not isinstance(word, str) or word == "":
        raise ValueError(f"class word {word!r} is empty")
    problem = word_problem(word)
    if problem:
        raise ValueError(f"class {problem}")


def classes_text(words: Sequence[str]) -> str:
    """classes.txt's content: one word a line, each ended by '\\n'. Raises ValueError for a word that
    would not read back as itself, or a repeated word."""
    for word in words:
        check_word(word)
    if len(set(words)) != len(words):
        repeated = sorted(word for word, count in collections.Counter(words).items() if count > 1)
        shown = ", ".join(repr(word) for word in repeated[:5]) + (", ..." if len(repeated) > 5 else "")
        raise ValueError(f"{len(repeated)} class word(s) repeat: {shown}")
    return "".join(f"{word}\n" for word in words)


def read_classes(fileobj: BinaryIO, path: str = CLASSES_FILE) -> list[str]:
    """The words of an open classes.txt (binary), reading no more than MAX_CLASSES_BYTES + 1 bytes of it:
    the one reader of a class list, for data directories and run directories alike. DataDirError (one
    line) for a file over the bound, not UTF-8, or failing parse_classes."""
    return parse_classes(_classes_bytes(fileobj.read(MAX_CLASSES_BYTES + 1), path), path)


def _classes_bytes(data: bytes, path: str) -> str:
    if len(data) > MAX_CLASSES_BYTES:
        raise DataDirError(
            f"{path} is over {MAX_CLASSES_BYTES:,} bytes: not a class list (Quick, Draw!'s 345 words are "
            "3.3 kB)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataDirError(f"{path} is not UTF-8 text (byte {error.start})") from None


def parse_classes(text: str, path: str = CLASSES_FILE) -> list[str]:
    """The words of classes_text's output, in order (line i = class_index i); DataDirError otherwise."""
    if not text.endswith("\n"):
        raise DataDirError(f"{path} is empty or does not end with a newline: not written by make_tfrecords")
    words = text[:-1].split("\n")
    try:
        classes_text(words)
    except ValueError as error:
        raise DataDirError(f"{path}: {error}") from None
    return words


# ---------------------------------------------------------------------------------------------------
# manifest.json


def digest(fileobj: BinaryIO) -> tuple[int, str]:
    """(byte size, sha256 hex) of a file's content, read in 1 MiB chunks."""
    sha, size = hashlib.sha256(), 0
    while chunk := fileobj.read(_CHUNK):
        sha.update(chunk)
        size += len(chunk)
    return size, sha.hexdigest()


def build_manifest(
    directory: str, names: Iterable[str], stats: dict, open_fn: Callable[[str], BinaryIO]
) -> dict:
    """The manifest of a finished output: every named file's size and sha256, every shard's records.

    `stats` is the run's stats.json (its kind and shard_lengths); `open_fn(path)` opens a file for
    reading bytes (Beam's FileSystems.open, tf.io.gfile.GFile(path, "rb") or open(path, "rb")).
    """
    files = {}
    for name in sorted(names):
        with open_fn(join(directory, name)) as f:
            size, sha = digest(f)
        files[name] = {"bytes": size, "sha256": sha}
    shards = {}
    for split in SPLITS:
        lengths = stats["shard_lengths"][split]
        shards[split] = [
            {"name": shard_name(split, i, len(lengths)), "records": n} for i, n in enumerate(lengths)
        ]
        missing = [shard["name"] for shard in shards[split] if shard["name"] not in files]
        if missing:
            raise ValueError(f"the manifest lists shard {missing[0]}, which was not written")
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "kind": stats["kind"],
        "classes": CLASSES_FILE,
        "stats": STATS_FILE,
        "shards": shards,
        "files": files,
    }


def manifest_text(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def parse_manifest(text: str, path: str = MANIFEST_FILE) -> dict:
    try:
        manifest = json.loads(text)
    except ValueError:
        raise DataDirError(f"{path} is not JSON: re-run make_tfrecords") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DataDirError(f"{path} is not a make_tfrecords manifest")
    if manifest.get("version") != MANIFEST_VERSION:
        raise DataDirError(
            f"{path} has version {manifest.get('version')}, this reader knows {MANIFEST_VERSION}"
        )
    return manifest


# ---------------------------------------------------------------------------------------------------
# The readers' check


def check_data_dir(data_dir: str, gfile) -> tuple[dict, list[str], dict]:
    """(manifest, classes, stats) of a finished conversion, after cheap checks; DataDirError otherwise.

    `gfile` is tf.io.gfile (passed in: this module imports no TensorFlow). Checked: the manifest exists
    (written last, so its absence means an older conversion or a killed run); classes.txt and
    stats.json are the ones the manifest hashed (sha256 of two small files); every shard's record count
    agrees with stats.json and its size on disk with the manifest (a truncated or replaced shard); no
    shard file lies in the directory that the manifest does not list (e.g. from another --num_shards).
    Shard contents are not hashed here (that would read all the data); verify_shards does it.
    """
    manifest_path = join(data_dir, MANIFEST_FILE)
    if not gfile.exists(manifest_path):
        if not gfile.isdir(data_dir):
            raise DataDirError(f"data directory {data_dir} does not exist")
        raise DataDirError(
            f"{data_dir} has no {MANIFEST_FILE}: not a finished make_tfrecords output (an older "
            "conversion or an interrupted run); re-run beam_jobs.make_tfrecords (--overwrite replaces it)"
        )
    manifest = parse_manifest(_read(gfile, manifest_path).decode("utf-8"), manifest_path)
    texts = {}
    for name in (manifest["classes"], manifest["stats"]):
        path = join(data_dir, name)
        if not gfile.exists(path):
            raise DataDirError(f"{path} is missing")
        data = _read(gfile, path, MAX_CLASSES_BYTES + 1)  # stats.json is a few kB as well
        if len(data) > MAX_CLASSES_BYTES:
            raise DataDirError(f"{path} is over {MAX_CLASSES_BYTES:,} bytes: not a file make_tfrecords wrote")
        expected = manifest["files"].get(name, {}).get("sha256")
        if hashlib.sha256(data).hexdigest() != expected:
            raise DataDirError(
                f"{path} is not the one this conversion wrote (sha256 differs from {MANIFEST_FILE})"
            )
        texts[name] = data.decode("utf-8")
    classes = parse_classes(texts[manifest["classes"]], join(data_dir, manifest["classes"]))
    stats = json.loads(texts[manifest["stats"]])
    if stats.get("num_classes") != len(classes):
        raise DataDirError(
            f"{join(data_dir, CLASSES_FILE)} has {len(classes)} words, "
            f"stats.json says {stats.get('num_classes')}: the two come from different conversions"
        )
    for split in SPLITS:
        _check_split(data_dir, split, manifest, stats, gfile)
    return manifest, classes, stats


def _check_split(data_dir: str, split: str, manifest: dict, stats: dict, gfile) -> None:
    shards = manifest["shards"][split]
    lengths = stats["shard_lengths"][split]
    if len(shards) != len(lengths):
        raise DataDirError(
            f"{join(data_dir, STATS_FILE)} lists {len(lengths)} {split} shards, the manifest {len(shards)}"
        )
    listed = {shard["name"] for shard in shards}
    for found in sorted(gfile.glob(join(data_dir, shard_glob(split)))):
        if os.path.basename(found) not in listed:
            raise DataDirError(f"{found} is not in {MANIFEST_FILE} (left by another conversion?): remove it")
    for shard, length in zip(shards, lengths, strict=True):
        path = join(data_dir, shard["name"])
        if shard["records"] != length:
            raise DataDirError(
                f"{path}: {MANIFEST_FILE} says {shard['records']} records, stats.json {length}"
            )
        if not gfile.exists(path):
            raise DataDirError(f"{path} is missing")
        size, expected = gfile.stat(path).length, manifest["files"][shard["name"]]["bytes"]
        if size != expected:
            raise DataDirError(
                f"{path} has {size} bytes, {MANIFEST_FILE} says {expected}: truncated or replaced"
            )


def verify_shards(data_dir: str, manifest: dict, gfile, split: str | None = None) -> None:
    """Hashes the shards (all, or one split's) against the manifest; DataDirError naming the first bad one."""
    for name in (shard["name"] for s in SPLITS if split in (None, s) for shard in manifest["shards"][s]):
        path = join(data_dir, name)
        with gfile.GFile(path, "rb") as f:
            _, sha = digest(f)
        if sha != manifest["files"][name]["sha256"]:
            raise DataDirError(f"{path} is corrupt: its sha256 differs from {MANIFEST_FILE}")


def _read(gfile, path: str, limit: int = -1) -> bytes:
    with gfile.GFile(path, "rb") as f:
        return f.read(limit)


def join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name if "://" in directory else os.path.join(directory, name)
