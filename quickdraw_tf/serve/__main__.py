"""python -m quickdraw_tf.serve --model_dir=M [--generator_dir=G]: the model server and drawing page.

Loads the model(s) once (several model dirs are an ensemble), warms them up, then opens the port.
--engine picks what runs the model for /v1/predict: TensorFlow (model.keras) or ONNX Runtime (the run's
model.onnx, the onnx extra). The page runs the model itself in the browser when the run has a
model.onnx (a single model); ?engine=server makes it ask the server.
"""

from __future__ import annotations

import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's oneDNN CPU kernels keep a primitive for every input shape they meet, and a server meets a new
# (batch, length) shape on most batches: with them the server grew ~170 MiB over 3,000 requests with batching
# on, without them ~25 MiB, at the same speed (docs/serving.md). TF_ENABLE_ONEDNN_OPTS=1 brings them back.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

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
flags.DEFINE_enum(
    "engine", "tensorflow", ["tensorflow", "onnxruntime"],
    "What runs the model for /v1/predict: TensorFlow (model.keras) or ONNX Runtime (model.onnx)."
)
flags.DEFINE_string("host", "127.0.0.1", "Interface to listen on (0.0.0.0 for every interface).")
flags.DEFINE_integer("port", 8000, "TCP port.")
flags.DEFINE_integer("max_batch", 32, "Most requests gathered into one model call; 1 turns batching off.")
flags.DEFINE_float("max_wait_ms", 5.0, "Longest a request waits for others to fill its batch.")
flags.DEFINE_enum(
    "log_level", "info", ["critical", "error", "warning", "info", "debug"], "uvicorn log level."
)
flags.DEFINE_bool("access_log", False, "Log every request (costs throughput).")
flags.DEFINE_multi_string(
    "allow_origin", [], "An origin (scheme://host:port) whose pages may call the API; repeat. Requests from "
    "any other page are refused (403)."
)
flags.DEFINE_float("header_timeout_s", 10.0, "Longest a request's line and headers may take to arrive (408).")
flags.DEFINE_float("body_timeout_s", 20.0, "Longest a request's body may take to arrive after them (408).")
flags.DEFINE_integer("max_connections", 100, "Open connections served at once; more are answered 503.")
flags.DEFINE_float("complete_timeout_s", 10.0, "Deadline of one /v1/complete, waiting included (503).")
flags.DEFINE_integer("complete_queue", 4, "Completions that may wait behind the running one; more get 503.")


def main(argv: list[str]) -> None:
    del argv
    if not FLAGS.model_dir:
        cli.fail("--model_dir is required")
    if not 1 <= FLAGS.port <= 65535:
        cli.fail(f"--port={FLAGS.port} is not in 1..65535")
    if FLAGS.max_batch < 1 or FLAGS.max_wait_ms < 0:
        cli.fail("--max_batch must be >= 1 and --max_wait_ms >= 0")
    if min(FLAGS.header_timeout_s, FLAGS.body_timeout_s, FLAGS.complete_timeout_s) <= 0:
        cli.fail("--header_timeout_s, --body_timeout_s and --complete_timeout_s must be > 0")
    if FLAGS.max_connections < 1 or FLAGS.complete_queue < 0:
        cli.fail("--max_connections must be >= 1 and --complete_queue >= 0")
    for origin in FLAGS.allow_origin:
        if not re.fullmatch(r"https?://[^/\s]+", origin):
            cli.fail(f"--allow_origin={origin} is not an origin like http://example.org:8080")
    for model_dir in FLAGS.model_dir:
        if not os.path.isdir(model_dir):
            cli.fail(f"--model_dir={model_dir}: no such directory")
    if FLAGS.generator_dir and not os.path.isdir(FLAGS.generator_dir):
        cli.fail(f"--generator_dir={FLAGS.generator_dir}: no such directory")
    import uvicorn

    quiet.import_tensorflow_quietly()
    from quickdraw_tf.inference.predictor import Predictor
    from quickdraw_tf.serve import transport
    from quickdraw_tf.serve.app import create_app
    from quickdraw_tf.serve.completion import Generator

    try:
        weights = [float(w) for w in FLAGS.weights] if FLAGS.weights else None
        predictor = Predictor.load(FLAGS.model_dir, weights=weights, engine=FLAGS.engine)
        generator = Generator.load(FLAGS.generator_dir) if FLAGS.generator_dir else None
    except (ValueError, OSError, ImportError) as error:
        cli.fail(error)
    server_app = create_app(
        predictor, max_batch=FLAGS.max_batch, max_wait_ms=FLAGS.max_wait_ms, generator=generator,
        body_timeout_s=FLAGS.body_timeout_s, host=FLAGS.host, port=FLAGS.port,
        allow_origins=tuple(FLAGS.allow_origin), complete_timeout_s=FLAGS.complete_timeout_s,
        complete_max_waiting=FLAGS.complete_queue, freeze_gc=True,
    )
    config = transport.server_config(
        server_app, FLAGS.host, FLAGS.port, header_timeout_s=FLAGS.header_timeout_s,
        max_connections=FLAGS.max_connections, log_level=FLAGS.log_level, access_log=FLAGS.access_log,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    app.run(main, flags_parser=cli.flags_parser(FLAGS))
