r"""Drawings of any input format as pictures: PNG, SVG, GIF (the strokes replayed), contact sheets, or
28x28 numpy bitmaps made the way Google made numpy_bitmap.

  python -m quickdraw_tf.render --input='data/sample/raw/*/*.ndjson' --output_dir=out --format=gif
  python -m quickdraw_tf.render --input='data/sample/simplified/*/*.ndjson' --output_dir=out \
      --format=png --grid=24 --size=96 --colour=stroke
  python -m quickdraw_tf.render --input=cat.ndjson --output_dir=bitmaps --format=npy   # -> bitmaps/cat.npy

png/svg/gif: one file per drawing, <word>-<key_id>.<ext>; with --grid=N (png only), sheets of N
drawings titled by word, sheet-0001.png, ... npy: one <word>.npy per word, [N, 784] uint8 rows, the
layout of Google's full_numpy_bitmap_<word>.npy (make_tfrecords reads it back). <word> is the word as
data/file_names.py spells it in a file name (猫 stays 猫, "cat's" is cat%27s, a space is _); a name a
run already wrote (a repeated drawing) gets ~2, ~3, ... so that "wrote N file(s)" counts files that
exist. Every file is written through data/output_files.py (never through a planted link). Records that
cannot be rendered go to rejected-render.ndjson with their reason and position; read = rendered +
rejected (+ skipped: drawings beyond --per_word of their word).
"""

from __future__ import annotations

import io
import math
import os

import numpy as np

from quickdraw_tf import pictures
from quickdraw_tf.data import file_names, formats, output_files, preprocess
from quickdraw_tf.data.drawing import Drawing, InvalidRecord
from quickdraw_tf.inference import prediction_io

OUTPUT_FORMATS = ("png", "svg", "gif", "npy")
REJECTED_FILE = "rejected-render.ndjson"
_IMAGES = preprocess.Preprocessing(kind="images")


def file_stem(drawing: Drawing) -> str:
    return f"{file_names.word_stem(drawing.word)}-{drawing.key_id}"


def _checked(drawing: Drawing, fmt: str) -> list:
    if drawing.image is not None and not drawing.strokes:
        if fmt in ("svg", "gif"):
            raise InvalidRecord("bad_image", f"a bitmap has no strokes to draw as {fmt}")
        return []
    return preprocess.checked_strokes(drawing.strokes)


def picture(drawing: Drawing, size: int, colour: str):
    """A PIL picture of a drawing (strokes or a 28x28 bitmap)."""
    strokes = _checked(drawing, "png")
    if not strokes:
        return pictures.bitmap_image(drawing.image, size)
    return pictures.png_image(strokes, size, colour)


def file_content(drawing: Drawing, fmt: str, size: int, colour: str) -> bytes:
    """The bytes of one drawing's png, svg or gif; InvalidRecord (a ValueError) if it cannot be drawn."""
    strokes = _checked(drawing, fmt)
    if fmt == "png":
        buffer = io.BytesIO()
        picture(drawing, size, colour).save(buffer, format="PNG")
        return buffer.getvalue()
    if fmt == "svg":
        return pictures.svg_text(strokes, size, colour).encode("utf-8")
    return pictures.gif_bytes(strokes, size, colour)


def render(
    inputs: list[prediction_io.InputFile],
    output_dir: str,
    fmt: str = "png",
    size: int = 256,
    colour: str = "none",
    grid: int = 0,
    limit: int = 0,
    per_word: int = 0,
) -> dict:
    """Renders every record (or the first `limit`; with `per_word`, the first per_word drawings of
    each word, the others counted as skipped); returns the counts and the files written."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {fmt!r}")
    if colour not in pictures.COLOURS:
        raise ValueError(f"--colour must be one of {', '.join(pictures.COLOURS)}, got {colour!r}")
    if grid and fmt != "png":
        raise ValueError("--grid makes PNG contact sheets: use it with --format=png")
    if size < 8 or min(grid, limit, per_word) < 0:
        raise ValueError("--size must be >= 8, --grid, --limit and --per_word >= 0")
    os.makedirs(output_dir, exist_ok=True)
    rejected_path = os.path.join(output_dir, REJECTED_FILE)
    output_files.check_target(rejected_path)  # a planted link is refused before the work, not after
    read, rendered, skipped, rejected, bitmaps, cells, files = 0, 0, 0, [], {}, [], []
    names = file_names.UniqueNames()
    per_word_count: dict[str, int] = {}
    for record in prediction_io.read_records(inputs):
        if limit and read >= limit:
            break
        read += 1
        drawing, content = None, None
        try:
            drawing = formats.parse_record(record)
            if per_word and per_word_count.get(drawing.word, 0) >= per_word:
                skipped += 1
                continue
            if fmt == "npy":
                bitmaps.setdefault(drawing.word, []).append(preprocess.model_input(drawing, _IMAGES)["image"])
            elif grid:
                cells.append((drawing.word, picture(drawing, size, colour)))
            else:
                content = file_content(drawing, fmt, size, colour)
        except ValueError as error:
            rejected.append(prediction_io.rejection(record, error, drawing.key_id if drawing else None))
            continue
        per_word_count[drawing.word] = per_word_count.get(drawing.word, 0) + 1
        rendered += 1
        if content is not None:  # written outside the try: a refused output path is no record's fault
            files.append(os.path.join(output_dir, names.take(file_stem(drawing), f".{fmt}")))
            output_files.write_bytes(files[-1], content)
    files += _write_sheets(cells, grid, size, output_dir) + _write_bitmaps(bitmaps, output_dir, names)
    prediction_io.write_rejected(rejected_path, rejected)
    return {"read": read, "rendered": rendered, "rejected": len(rejected), "skipped": skipped, "files": files}


def _write_sheets(cells: list, grid: int, size: int, output_dir: str) -> list[str]:
    paths = []
    columns = max(1, math.ceil(math.sqrt(grid))) if grid else 1
    for number, start in enumerate(range(0, len(cells), grid or 1), 1):
        paths.append(os.path.join(output_dir, f"sheet-{number:04d}.png"))
        sheet = pictures.contact_sheet(cells[start : start + grid], columns, size)
        with output_files.replacing(paths[-1]) as f:
            sheet.save(f, format="PNG", optimize=True)
    return paths


def _write_bitmaps(bitmaps: dict, output_dir: str, names: file_names.UniqueNames) -> list[str]:
    paths = []
    for word, images in sorted(bitmaps.items()):
        paths.append(os.path.join(output_dir, names.take(file_names.word_stem(word), ".npy")))
        with output_files.replacing(paths[-1]) as f:
            np.save(f, np.stack(images).reshape(len(images), -1))
    return paths


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_list("input", None, "Comma-separated files or globs.")
    flags.DEFINE_string("output_dir", None, "Where the pictures go.")
    flags.DEFINE_enum("format", "png", OUTPUT_FORMATS, "What to write.")
    flags.DEFINE_string("input_format", None, f"Read every input as one of {', '.join(formats.FORMATS)}.")
    flags.DEFINE_integer("size", 256, "Picture side in pixels (png, svg, gif; npy is always 28).")
    flags.DEFINE_enum("colour", "none", pictures.COLOURS, "Black, a colour per stroke, or by time.")
    flags.DEFINE_integer(
        "grid", 0, "PNG contact sheets of N drawings each, titled by word (0: one file each)."
    )
    flags.DEFINE_integer("limit", 0, "Render only the first N records (0: all).")
    flags.DEFINE_integer("per_word", 0, "Render only the first N drawings of each word (0: all).")
    flags.mark_flags_as_required(["input", "output_dir"])


def main(argv: list[str]) -> None:
    del argv
    from absl import flags

    from quickdraw_tf import cli

    FLAGS = flags.FLAGS  # noqa: N806
    try:
        inputs = prediction_io.expand_inputs(FLAGS.input, FLAGS.input_format)
        result = render(
            inputs,
            FLAGS.output_dir,
            FLAGS.format,
            FLAGS.size,
            FLAGS.colour,
            FLAGS.grid,
            FLAGS.limit,
            FLAGS.per_word,
        )
    except (ValueError, OSError) as error:
        cli.fail(error)
    counts = f"read {result['read']} = rendered {result['rendered']} + rejected {result['rejected']}"
    print(counts + (f" + skipped {result['skipped']} (--per_word)" if FLAGS.per_word else ""))
    print(f"wrote {len(result['files'])} file(s) to {FLAGS.output_dir}")


if __name__ == "__main__":
    from absl import app, flags

    from quickdraw_tf import cli

    _define_flags()
    app.run(main, flags_parser=cli.flags_parser(flags.FLAGS))
