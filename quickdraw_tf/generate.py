r"""Draws with a trained Sketch-RNN: simplified ndjson, SVG/PNG grids and one animated GIF per drawing.

  python -m quickdraw_tf.generate --model_dir=runs/sketch --word=cat --num=16 --temperature=0.5 \
      --output_dir=out
  python -m quickdraw_tf.generate --model_dir=runs/sketch --word=cat --complete=partial.ndjson \
      --output_dir=out       # continues the file's first drawing (the decoder primed with its strokes)

Writes, for word W: W.ndjson (Google's simplified layout, readable by formats.iter_drawings and the
Beam job), W_grid.png, W_grid.svg and W_NN.gif, W spelled as data/file_names.py spells a word in a file
name (猫 stays 猫, "../x" is %2E%2E%2Fx: never a path), each through data/output_files.py (never
through a planted link). In completions the given strokes are drawn in red.
"""

from __future__ import annotations

import os

import numpy as np
from absl import app, flags

from quickdraw_tf import cli, quiet
from quickdraw_tf.data import file_names, formats, ink, output_files

quiet.import_tensorflow_quietly()  # before anything imports TensorFlow: see quiet.py

# isort: split

from quickdraw_tf.inference.generator import load_generator
from quickdraw_tf.models import sketch_sampling
from quickdraw_tf.pictures import sample_grids


def prefix_ink(path: str) -> np.ndarray:
    """The delta ink of the first drawing in `path` (any format formats reads; raw drawings simplified)."""
    for drawing in formats.iter_drawings(path):
        if not drawing.strokes:
            raise ValueError(f"{path}: the first drawing has no strokes")
        strokes = ink.simplify(drawing.strokes) if drawing.is_raw else drawing.strokes
        return ink.to_ink(strokes)
    raise ValueError(f"{path} holds no drawing")


def generate(
    model,
    classes: list[str],
    word: str,
    num: int,
    temperature: float,
    output_dir: str,
    seed: int = 0,
    prefix: np.ndarray | None = None,
) -> dict[str, list[str]]:
    """Samples `num` drawings of `word` (continuing `prefix` delta ink if given) and writes the files."""
    if word not in classes:
        raise ValueError(f"unknown word {word!r}; the model draws: {', '.join(classes)}")
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    os.makedirs(output_dir, exist_ok=True)
    stem = os.path.join(output_dir, file_names.word_stem(word))  # a class word is no path: ../x is %2E%2E%2Fx
    gifs = [f"{stem}_{i:02d}.gif" for i in range(num)]
    written = {"ndjson": [stem + ".ndjson"], "grid": [stem + "_grid.png", stem + "_grid.svg"], "gif": gifs}
    for path in (path for paths in written.values() for path in paths):
        output_files.check_target(path)  # a planted link is refused before the sampling, not after
    if prefix is None:
        samples = sketch_sampling.sample(model, classes.index(word), num, temperature, seed)
    else:  # a continuation that adds nothing is drawn again, a bounded number of times
        samples = sketch_sampling.complete(model, classes.index(word), num, temperature, prefix, seed)
    with output_files.replacing(stem + ".ndjson", text=True) as f:
        keys = [formats.derived_key_id(word, seed, temperature, i) for i in range(num)]
        formats.write_ndjson([s.to_drawing(word, k) for s, k in zip(samples, keys, strict=True)], f)
    strokes = [s.strokes for s in samples]
    given = [s.prefix_length + 1 if s.prefix_length else 0 for s in samples]
    columns = min(num, 4)
    output_files.write_bytes(stem + "_grid.png", sample_grids.grid_png(strokes, columns, given=given))
    output_files.write_text(stem + "_grid.svg", sample_grids.grid_svg(strokes, columns))
    for path, sample, prefix_points in zip(gifs, samples, given, strict=True):
        output_files.write_bytes(path, sample_grids.drawing_gif(sample.strokes, given=prefix_points))
    written["added_nothing"] = [i for i, s in enumerate(samples) if prefix is not None and s.added_nothing]
    return written


def _define_flags() -> None:
    """Only when run as a program: importing generate() must not claim --model_dir and --data_dir."""
    flags.DEFINE_string("model_dir", None, "A sketch_rnn training run's model_dir.")
    flags.DEFINE_string("word", None, "The class to draw (one the model was trained on).")
    flags.DEFINE_integer("num", 16, "How many drawings.")
    flags.DEFINE_float("temperature", 0.5, "Sampling temperature (> 0; lower: tidier).")
    flags.DEFINE_string("output_dir", None, "Where the ndjson, grids and GIFs go.")
    flags.DEFINE_string("complete", None, "A drawing file: continue its first drawing.")
    flags.DEFINE_integer("seed", 0, "Random seed.")
    flags.DEFINE_string("checkpoint", "best", "best, latest, or a checkpoint path.")
    flags.DEFINE_string("data_dir", None, "Read classes.txt from this data dir instead of the run's own.")
    flags.mark_flags_as_required(["model_dir", "word", "output_dir"])


def main(argv: list[str]) -> None:
    del argv
    f = flags.FLAGS
    try:
        prefix = prefix_ink(f.complete) if f.complete else None
        model, classes, step = load_generator(f.model_dir, f.checkpoint, f.data_dir)
        written = generate(model, classes, f.word, f.num, f.temperature, f.output_dir, f.seed, prefix)
    except (ValueError, FileNotFoundError, OSError) as error:
        cli.fail(error)
    grids = ", ".join(written["grid"])
    print(f"step {step}: wrote {written['ndjson'][0]}, {grids} and {len(written['gif'])} GIFs")
    if written["added_nothing"]:
        tries = sketch_sampling.COMPLETION_TRIES
        print(f"{len(written['added_nothing'])} of {f.num} completions added nothing after {tries} tries "
              f"(drawings {', '.join(map(str, written['added_nothing']))}): the model ended them at once")


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=cli.flags_parser(flags.FLAGS))
