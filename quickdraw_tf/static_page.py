r"""Writes the drawing page as a folder that any static file host serves: it guesses in the browser.

  python -m quickdraw_tf.static_page --model_dir=runs/demo --output_dir=page
  python -m http.server --directory page 8080        # then open http://127.0.0.1:8080/

The folder holds index.html, static/ (the page's scripts and styles, static/ort/ ONNX Runtime Web's
WASM build from its npm package: `make web` installs it) and model/ (the run's model.onnx and
model.json: its name, classes and preprocessing). The page prepares each drawing itself
(static/preprocess.js, the same numbers as quickdraw_tf/data/preprocess.py) and runs the model at every
pointer move; nothing is sent anywhere. "Finish my drawing" needs the server and is not offered.
"""

from __future__ import annotations

from absl import app, flags

from quickdraw_tf import cli, quiet

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A trained run's model_dir with a model.onnx (training writes it).")
flags.DEFINE_string("output_dir", None, "The folder to write (a new one, or any with --overwrite).")
flags.DEFINE_bool("overwrite", False, "Replace --output_dir if it exists.")


def main(argv: list[str]) -> None:
    del argv
    if not FLAGS.model_dir or not FLAGS.output_dir:
        cli.fail("--model_dir and --output_dir are required")
    quiet.import_tensorflow_quietly()
    from quickdraw_tf.serve import browser_model

    try:
        files = browser_model.write_static_page(FLAGS.model_dir, FLAGS.output_dir, FLAGS.overwrite)
    except (ValueError, OSError) as error:
        cli.fail(error)
    print(f"wrote {FLAGS.output_dir}: {len(files)} files; serve it with "
          f"python -m http.server --directory {FLAGS.output_dir}")


if __name__ == "__main__":
    app.run(main, flags_parser=cli.flags_parser(FLAGS))
