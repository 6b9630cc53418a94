"""The job's flags and inputs: argparse flags -> JobConfig, checked before any pipeline is built.

A bad flag or input costs no Beam start-up: it is a one-line UsageError (exit status 2 in main). Beam
itself (1.5 s to import) is imported only to read a classes file or match the inputs, through its
FileSystems (local paths, gs://, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import os
from collections import Counter
from collections.abc import Sequence

from quickdraw_tf.data import formats, ink, layout, limits

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_INPUTS = (
    os.path.join(REPO_ROOT, "data", "sample", "raw", "*", "*.ndjson"),
    os.path.join(REPO_ROOT, "data", "sample", "simplified", "*", "*.ndjson"),
)
DEFAULT_OUTPUT_DIR = layout.DEFAULT_DATA_DIR
IMAGE_FORMATS = ("npy", "bitmap_raw")


class UsageError(ValueError):
    """A bad flag value or input path: reported as one line on stderr, exit status 2."""


@dataclasses.dataclass(frozen=True)
class JobConfig:
    """Everything the pipeline needs besides Beam's own options."""

    inputs: tuple[str, ...] = DEFAULT_INPUTS
    output_dir: str = DEFAULT_OUTPUT_DIR
    overwrite: bool = False
    format: str | None = None
    recognized_only: bool = False
    classes: tuple[str, ...] | None = None  # from --classes_file; None: the distinct words found
    eval_fraction: float = 0.1
    test_fraction: float = 0.1
    caps: tuple[tuple[str, int], ...] = (("train", 10000), ("eval", 1000), ("test", 1000))
    num_shards: int = 4
    normalize: str = "uniform"
    simplify: bool = True
    max_record_bytes: int = limits.MAX_RECORD_BYTES
    dask_workers: int | None = None  # the processes of the local cluster of --runner=DaskRunner


# ---------------------------------------------------------------------------------------------------
# Flags and inputs (checked before the pipeline is built, so bad ones cost no Beam start-up)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _csv_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def build_arg_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="make_tfrecords",
        description="Converts Quick, Draw! files into train/eval/test TFRecord shards with Apache Beam.",
    )
    parser.add_argument(
        "--input",
        type=_csv_list,
        default=list(DEFAULT_INPUTS),
        help="comma-separated files or globs (local or any Beam filesystem, e.g. gs://); "
        "default: the embedded sample's raw and simplified ndjson",
    )
    parser.add_argument("--output_dir", default=DEFAULT_OUTPUT_DIR)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a non-empty --output_dir (an earlier conversion) whole; without it, it is refused",
    )
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
        "--max_record_bytes",
        type=int,
        default=limits.MAX_RECORD_BYTES,
        help="a longer line (ndjson, csv) or binary record is rejected as too_large before it is decoded",
    )
    parser.add_argument(
        "--no_simplify",
        dest="simplify",
        action="store_false",
        help="keep raw drawings as they are instead of applying Google's simplification",
    )
    parser.add_argument(
        "--dask_workers",
        type=int,
        default=None,
        help="with --runner=DaskRunner and no --dask_client_address: the worker processes (one thread "
        "each) of the local Dask cluster the job starts and stops; default: one per CPU",
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
    if args.max_record_bytes < 1:
        raise UsageError(f"--max_record_bytes must be >= 1, got {args.max_record_bytes}")
    if args.dask_workers is not None and args.dask_workers < 1:
        raise UsageError(f"--dask_workers must be >= 1, got {args.dask_workers}")
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
        overwrite=args.overwrite,
        format=args.format,
        recognized_only=args.recognized_only,
        classes=read_classes_file(args.classes_file) if args.classes_file else None,
        eval_fraction=args.eval_fraction,
        test_fraction=args.test_fraction,
        caps=caps,
        num_shards=args.num_shards,
        normalize=args.normalize,
        simplify=args.simplify,
        max_record_bytes=args.max_record_bytes,
        dask_workers=args.dask_workers,
    )


def read_classes_file(path: str) -> tuple[str, ...]:
    """The words of a classes file, one a line (blank lines skipped); UsageError if unusable."""
    from beam_jobs import outputs

    try:
        text = outputs.read_text(path)
    except (OSError, UnicodeDecodeError) as error:  # Beam's BeamIOError is an OSError
        raise UsageError(f"cannot read --classes_file {path}: {error}") from None
    words = tuple(line.strip() for line in text.splitlines() if line.strip())
    for word in words:
        try:
            layout.check_word(word)  # what classes.txt can hold
        except ValueError as error:
            raise UsageError(f"--classes_file {path}: {error}") from None
    duplicated = sorted(word for word, n in Counter(words).items() if n > 1)
    if not words or duplicated:
        raise UsageError(f"--classes_file {path} " + (f"repeats {duplicated}" if words else "lists no word"))
    return words


def expand_inputs(patterns: Sequence[str], fmt: str | None = None) -> list[tuple[str, str]]:
    """(path, format) of every file the patterns match, sorted and unique; UsageError if one matches none."""
    for pattern in patterns:
        if "://" not in pattern and not glob.glob(pattern, recursive=True):
            _no_match(pattern)  # a local path: said before Beam is imported
    from apache_beam.io.filesystems import FileSystems

    found = {}
    for pattern in patterns:
        try:
            matched = [m.path for result in FileSystems.match([pattern]) for m in result.metadata_list]
        except OSError:  # BeamIOError: e.g. a missing local path
            matched = []
        if not matched:
            _no_match(pattern)
        for path in matched:
            try:
                found[path] = formats.format_for_path(path, fmt)
            except ValueError as error:
                raise UsageError(str(error)) from None
    return sorted(found.items())


def _no_match(pattern: str):
    if any(char in pattern for char in "*?["):
        raise UsageError(f"input glob {pattern} matches no file")
    raise UsageError(f"input {pattern} does not exist")


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
