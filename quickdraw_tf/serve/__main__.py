"""python -m quickdraw_tf.serve --model_dir=M [--generator_dir=G]: the model server and drawing page.

Loads the model(s) once (several model dirs are an ensemble), warms them up, then opens the port.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from quickdraw_tf import cli, quiet  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string(
    "model_dir", None, "Trained model dir (train.py's --model_dir); repeat for an ensemble."
)
flags.DEFINE_string(
    "generator_dir", None, "Optional Sketch-RNN model_dir: enables /v1/complete and 'Finish my drawing'."
)
flags.DEFINE_list("weights", None, "Ensemble weights, one per --model_dir (default: equal).")
flags.DEFINE_string("host", "127.0.0.1", "Interface to listen on (0.0.0.0 for every interface).")
flags.DEFINE_integer("port", 8000, "TCP port.")
flags.DEFINE_integer("max_batch", 32, "Most requests gathered into one model call; 1 turns batching off.")
flags.DEFINE_float("max_wait_ms", 5.0, "Longest a request waits for others to fill its batch.")
flags.DEFINE_enum(
    "log_level", "info", ["critical", "error", "warning", "info", "debug"], "uvicorn log level."
)
flags.DEFINE_bool("access_log", False, "Log every request (costs throughput).")


def main(argv: list[str]) -> None:
    del argv
    if not FLAGS.model_dir:
        cli.fail("--model_dir is required")
    if not 1 <= FLAGS.port <= 65535:
        cli.fail(f"--port={FLAGS.port} is not in 1..65535")
    if FLAGS.max_batch < 1 or FLAGS.max_wait_ms < 0:
        cli.fail("--max_batch must be >= 1 and --max_wait_ms >= 0")
    for model_dir in FLAGS.model_dir:
        if not os.path.isdir(model_dir):
            cli.fail(f"--model_dir={model_dir}: no such directory")
    if FLAGS.generator_dir and not os.path.isdir(FLAGS.generator_dir):
        cli.fail(f"--generator_dir={FLAGS.generator_dir}: no such directory")
    import uvicorn

    quiet.import_tensorflow_quietly()
    from quickdraw_tf.inference.predictor import Predictor
    from quickdraw_tf.serve.app import create_app
    from quickdraw_tf.serve.completion import Generator

    try:
        weights = [float(w) for w in FLAGS.weights] if FLAGS.weights else None
        predictor = Predictor.load(FLAGS.model_dir, weights=weights)
        generator = Generator.load(FLAGS.generator_dir) if FLAGS.generator_dir else None
    except (ValueError, OSError) as error:
        cli.fail(error)
    server_app = create_app(predictor, max_batch=FLAGS.max_batch, max_wait_ms=FLAGS.max_wait_ms,
                            generator=generator)
    uvicorn.run(server_app, host=FLAGS.host, port=FLAGS.port, log_level=FLAGS.log_level,
                access_log=FLAGS.access_log)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.flags_parser(FLAGS))
