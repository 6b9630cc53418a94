r"""Writes model_dir/model.onnx for a trained run: the serving signature as an ONNX graph.

  python -m quickdraw_tf.export_onnx --model_dir=runs/rnn

Training writes model.onnx itself at its end; this command is for runs trained before it did, or on a
machine without the onnx extra (pip install -e '.[onnx]'). The graph takes what the SavedModel's
serving signature takes and returns the same outputs (quickdraw_tf/training/onnx_export.py); ONNX
Runtime runs it in the server (python -m quickdraw_tf.serve --engine=onnxruntime) and in the browser
(the drawing page, and python -m quickdraw_tf.static_page). A model that cannot be converted is
reported in one line naming the TensorFlow op, and exits 2.
"""

from __future__ import annotations

import os
import time

from absl import app, flags

from quickdraw_tf import cli, quiet

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A trained run's model_dir (train.py's --model_dir).")
flags.DEFINE_integer("top_k", 3, "Words in the graph's top_k_classes output (as the SavedModel's).")


def main(argv: list[str]) -> None:
    del argv
    if not FLAGS.model_dir:
        cli.fail("--model_dir is required")
    if FLAGS.top_k < 1:
        cli.fail("--top_k must be >= 1")
    quiet.import_tensorflow_quietly()
    from quickdraw_tf.training import onnx_export, run_dir

    start = time.perf_counter()
    try:
        model = run_dir.load_keras_model(FLAGS.model_dir)
        classes = run_dir.read_classes(FLAGS.model_dir)
        run_dir.check_outputs(run_dir.output_count(model), classes, FLAGS.model_dir)
        target = onnx_export.export_onnx(
            model, classes, run_dir.path(FLAGS.model_dir, run_dir.ONNX_FILE), FLAGS.top_k
        )
    except (ValueError, OSError) as error:  # OnnxExportError is a ValueError; FileNotFoundError an OSError
        cli.fail(error)
    size_kb = os.path.getsize(target) / 1024 if os.path.exists(target) else float("nan")
    print(f"wrote {target} ({size_kb:,.0f} KB) in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    app.run(main, flags_parser=cli.flags_parser(FLAGS))
