r"""Top-k guesses (or a Kaggle submission) for every drawing of any input, from one or more model dirs.

  python -m quickdraw_tf.predict --model_dir=runs/rnn --input='data/raw/*.ndjson' --output=preds.csv
  python -m quickdraw_tf.predict --model_dir=runs/rnn --model_dir=runs/mobilenet --weights=2,1 \
      --input=test_simplified.csv --output=submission.csv --kaggle_submission

Reads every format the Beam job reads, through the same readers (--format overrides the extension;
bitmap_raw must be named). Writes --output (top-k CSV, its words escaped so that no spreadsheet runs
them, or Kaggle's key_id,word byte for byte with --kaggle_submission) and rejected-predict.ndjson
beside it (one line per record that could not be predicted, with its reason and position), both
through data/output_files.py (never through a planted link); prints read = predicted + rejected, and
top-1 / top-3 / MAP@3 when the drawings carry words. Progress (records/s, ETA) goes to stderr every
few seconds.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from quickdraw_tf.data import formats, output_files
from quickdraw_tf.data.drawing import Drawing
from quickdraw_tf.inference import prediction_io

PROGRESS_SECONDS = 5.0


def chunk_size(batch_size: int) -> int:
    """Records prepared and predicted together: many batches, so stroke models get similar lengths."""
    return max(1024, 16 * batch_size)


class Progress:
    """records/s and ETA on stderr, at most every PROGRESS_SECONDS; the ETA from the bytes read."""

    def __init__(self, total_bytes: int, stream=sys.stderr, every: float = PROGRESS_SECONDS):
        self.total_bytes, self.stream, self.every = max(total_bytes, 1), stream, every
        self.started = self.last = time.perf_counter()
        self.bytes_done = 0

    def bytes_read(self, done: int) -> None:
        self.bytes_done = done

    def report(self, records: int, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < self.every:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        fraction = min(self.bytes_done / self.total_bytes, 1.0)
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else float("nan")
        print(
            f"predict: {records:,} records, {records / elapsed:,.0f} records/s, "
            f"{100 * fraction:.0f}% of the input, ETA {eta:,.0f} s",
            file=self.stream,
            flush=True,
        )


def _prepare_chunk(predictor, records: Sequence[formats.SourceRecord], rejected: list):
    """(drawings, prepared inputs) of the usable records; the others go to `rejected`."""
    drawings, prepared = [], []
    for record in records:
        drawing: Drawing | None = None
        try:
            drawing = formats.parse_record(record)
            prepared.append(predictor.prepare(drawing))
            drawings.append(drawing)
        except ValueError as error:  # InvalidRecord, or a drawing a model cannot take
            rejected.append(prediction_io.rejection(record, error, drawing.key_id if drawing else None))
    return drawings, prepared


class Scores:
    """Sums of top-1, top-3 and MAP@3 over drawings whose word is a class (metrics.py's definitions)."""

    def __init__(self, class_names: Sequence[str]):
        self.index = {word: i for i, word in enumerate(class_names)}
        self.top1 = self.top3 = self.map3 = 0.0
        self.count = self.unknown_words = 0

    def add(self, words: Sequence[str], top_indices: np.ndarray) -> None:
        for word, top in zip(words, top_indices, strict=True):
            if not word:
                continue
            if word not in self.index:
                self.unknown_words += 1
                continue
            hits = np.flatnonzero(top[:3] == self.index[word])
            self.count += 1
            self.top1 += float(top[0] == self.index[word])
            self.top3 += float(len(hits) > 0)
            self.map3 += 1.0 / (hits[0] + 1) if len(hits) else 0.0

    def results(self) -> dict | None:
        if not self.count:
            return None
        return {key: getattr(self, key) / self.count for key in ("top1", "top3", "map3")} | {
            "num_examples": self.count
        }


def top_indices(probabilities: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best classes per row, ties to the lower index (tf.math.top_k's order)."""
    return np.argsort(-probabilities, axis=1, kind="stable")[:, :k]


def run_predict(
    predictor,
    inputs: Sequence[prediction_io.InputFile],
    output: str,
    top_k: int = 3,
    kaggle_submission: bool = False,
    batch_size: int = 64,
    rejected_path: str | None = None,
    progress: Progress | None = None,
) -> dict:
    """Predicts every record of `inputs`, writes the CSV and the rejections; returns the counts and scores."""
    k = 3 if kaggle_submission else top_k
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    rejected_path = rejected_path or os.path.join(os.path.dirname(output) or ".", prediction_io.REJECTED_FILE)
    if kaggle_submission:
        prediction_io.check_kaggle_classes(predictor.class_names)
    for target in (output, rejected_path):  # a planted link is refused before the work, not after it
        output_files.check_target(target)
    rows: list[prediction_io.Row] = []
    rejected: list[dict] = []
    scores = Scores(predictor.class_names)
    read = 0
    callback: Callable | None = progress.bytes_read if progress else None
    records = prediction_io.read_records(inputs, callback)
    chunk: list = []
    pending = None  # the previous chunk: (drawings, future of its probabilities)

    def collect(drawings, future) -> None:
        probabilities = future.result()
        best = top_indices(probabilities, min(k, probabilities.shape[1]))
        scores.add([drawing.word for drawing in drawings], best)
        for drawing, row_best, row in zip(drawings, best, probabilities, strict=True):
            top = [(predictor.class_names[i], float(row[i])) for i in row_best]
            rows.append(prediction_io.Row(drawing.key_id, drawing.word, top))

    # The models of one chunk run in a thread (TensorFlow releases the GIL) while this thread parses and
    # prepares the next chunk, so preprocessing and inference overlap; results are taken in input order.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as model_thread:
        for record in itertools.chain(records, [None]):  # None: flush the last chunk
            if record is not None:
                read += 1
                chunk.append(record)
                if len(chunk) < chunk_size(batch_size):
                    continue
            drawings, prepared = _prepare_chunk(predictor, chunk, rejected)
            chunk = []
            if pending:
                collect(*pending)
            pending = None
            if prepared:
                pending = (drawings, model_thread.submit(predictor.probabilities, prepared, batch_size))
            if progress:
                progress.report(read)
        if pending:
            collect(*pending)
    if progress:
        progress.report(read, force=True)
    prediction_io.write_predictions(output, rows, min(k, len(predictor.class_names)), kaggle_submission)
    prediction_io.write_rejected(rejected_path, rejected)
    summary = {
        "read": read,
        "predicted": len(rows),
        "rejected": len(rejected),
        "rejected_file": rejected_path,
    }
    summary["scores"] = scores.results()
    summary["unknown_words"] = scores.unknown_words
    if summary["read"] != summary["predicted"] + summary["rejected"]:
        raise RuntimeError(f"counts do not reconcile: {summary}")
    return summary


def summary_lines(summary: dict, output: str) -> list[str]:
    lines = [
        f"read {summary['read']} = predicted {summary['predicted']} + rejected {summary['rejected']}",
        f"wrote {output} and {summary['rejected_file']}",
    ]
    scores = summary["scores"]
    if scores:
        lines.append(
            f"top-1 {scores['top1']:.4f}  top-3 {scores['top3']:.4f}  MAP@3 {scores['map3']:.4f} "
            f"on {scores['num_examples']} drawings with words"
            + (
                f" ({summary['unknown_words']} with words outside the classes left out)"
                if summary["unknown_words"]
                else ""
            )
        )
    return lines


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_multi_string("model_dir", None, "A trained model_dir; repeat for an ensemble.")
    flags.DEFINE_list("input", None, "Comma-separated files or globs.")
    flags.DEFINE_string("format", None, f"Read every input as one of {', '.join(formats.FORMATS)}.")
    flags.DEFINE_string("output", None, "The CSV to write.")
    flags.DEFINE_integer("top_k", 3, "Guesses per drawing.")
    flags.DEFINE_bool("kaggle_submission", False, "Write Kaggle's key_id,word (3 words, underscores).")
    flags.DEFINE_integer("batch_size", 64, "Drawings per model call.")
    flags.DEFINE_list("weights", None, "Ensemble weights, one per --model_dir (default: equal).")
    flags.DEFINE_string(
        "rejected", None, f"Where rejections go (default: {prediction_io.REJECTED_FILE} beside --output)."
    )
    flags.mark_flags_as_required(["model_dir", "input", "output"])


def main(argv: list[str]) -> None:
    del argv
    from absl import flags

    from quickdraw_tf import cli, quiet
    from quickdraw_tf.inference import gc_freeze

    FLAGS = flags.FLAGS  # noqa: N806
    try:
        if FLAGS.kaggle_submission and FLAGS.top_k != 3:
            raise ValueError("--kaggle_submission writes exactly 3 words: leave --top_k at 3")
        if FLAGS.top_k < 1 or FLAGS.batch_size < 1:
            raise ValueError("--top_k and --batch_size must be >= 1")
        weights = [float(w) for w in FLAGS.weights] if FLAGS.weights else None
        inputs = prediction_io.expand_inputs(FLAGS.input, FLAGS.format)
        output_dir = os.path.dirname(os.path.abspath(FLAGS.output))
        if not os.path.isdir(output_dir):
            raise FileNotFoundError(f"the directory of --output {output_dir} does not exist")
        quiet.import_tensorflow_quietly()  # TensorFlow only once the flags are fine
        from quickdraw_tf.inference.predictor import Predictor

        predictor = Predictor.load(FLAGS.model_dir, weights)
        gc_freeze.freeze_startup_objects()  # a long run: TensorFlow's objects stay out of every collection
        progress = Progress(sum(item.size for item in inputs))
        summary = run_predict(
            predictor,
            inputs,
            FLAGS.output,
            FLAGS.top_k,
            FLAGS.kaggle_submission,
            FLAGS.batch_size,
            FLAGS.rejected,
            progress,
        )
    except (ValueError, FileNotFoundError, OSError) as error:
        cli.fail(error)
    print("\n".join(summary_lines(summary, FLAGS.output)))


if __name__ == "__main__":
    from absl import app, flags

    from quickdraw_tf import cli

    _define_flags()
    app.run(main, flags_parser=cli.flags_parser(flags.FLAGS))
