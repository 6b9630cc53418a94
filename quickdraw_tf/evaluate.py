r"""Evaluates a trained model on one split: top-1/3/5, MAP@3, per-class recall, confusion matrix.

  python -m quickdraw_tf.evaluate --model_dir=runs/rnn --split=test

--data_dir defaults to the one the run trained on (model_dir/config.json; data/tfrecords by default).

Writes model_dir/eval_results.json, model_dir/confusion_matrix_<split>.png and TensorBoard summaries
under model_dir/eval_<split>/ (quickdraw_tf/training/evaluation.py). The model is restored from
--checkpoint: best (the eval-MAP@3 selected one; the latest if there is none), latest, or a path.
"""

from __future__ import annotations

from absl import app, flags

from quickdraw_tf import cli, quiet
from quickdraw_tf.data import layout

quiet.import_tensorflow_quietly()  # before anything imports TensorFlow: see quiet.py

# isort: split

from quickdraw_tf.training import evaluation, run_dir


def _define_flags() -> None:
    """Only when run as a program: importing evaluate() must not claim --model_dir and --data_dir."""
    flags.DEFINE_string("model_dir", None, "The training run's model_dir.")
    flags.DEFINE_string("data_dir", None, "make_tfrecords output dir (default: the run's, from config.json).")
    flags.DEFINE_enum("split", "test", layout.SPLITS, "Split to evaluate.")
    flags.DEFINE_string("checkpoint", "best", "best, latest, or a checkpoint path.")
    flags.DEFINE_integer("batch_size", 256, "Evaluation batch size.")
    flags.mark_flags_as_required(["model_dir"])


def main(argv: list[str]) -> None:
    del argv
    FLAGS = flags.FLAGS  # noqa: N806
    try:
        results = evaluation.evaluate(
            FLAGS.model_dir, FLAGS.data_dir, FLAGS.split, FLAGS.checkpoint, FLAGS.batch_size
        )
    except (ValueError, OSError) as error:  # FileNotFoundError is an OSError
        cli.fail(error)
    summary = " ".join(f"{key} {results[key]:.4f}" for key in ("top1", "top3", "top5", "map3"))
    print(f"{results['split']}: {summary} on {results['num_examples']} drawings (step {results['step']})")
    print("\n".join(evaluation.per_class_lines(results)))
    results_file = run_dir.path(FLAGS.model_dir, run_dir.RESULTS_FILE)
    print(f"wrote {results_file} and {results['confusion_matrix_png']}")


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=cli.flags_parser(flags.FLAGS))
