"""ONNX Runtime as the Predictor's engine: a run's model.onnx (training/onnx_export.py) in one session.

The graph takes what the SavedModel's serving signature takes (ink + length, or image) and returns
the softmax probabilities itself, so a call is one session.run of one output.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from quickdraw_tf.training import onnx_export, run_dir

ENGINES = ("tensorflow", "onnxruntime")
PROBABILITIES = "probabilities"


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")


class OnnxProbabilities:
    """model.onnx in an onnxruntime.InferenceSession: __call__(*inputs in the graph's input order) ->
    float32 [N, C] probabilities. `threads`: ONNX Runtime's intra-op threads (0: its default, one a core)."""

    def __init__(self, model_bytes: bytes, threads: int = 0):
        try:
            import onnxruntime
        except ImportError:
            raise ImportError(f"onnxruntime is not installed: {onnx_export.INSTALL_HINT}") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only: its warnings name graph nodes, not user errors
        self._session = onnxruntime.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_names = tuple(node.name for node in self._session.get_inputs())

    @property
    def outputs(self) -> int | None:
        """The probabilities' width (the model's classes), None when the graph leaves it open."""
        (width,) = [node.shape[-1] for node in self._session.get_outputs() if node.name == PROBABILITIES]
        return width if isinstance(width, int) else None

    @property
    def takes_images(self) -> bool:
        return self.input_names == ("image",)

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        feeds = dict(zip(self.input_names, inputs, strict=True))
        return self._session.run([PROBABILITIES], feeds)[0]


def load(model_dir: str, threads: int = 0) -> OnnxProbabilities:
    """model_dir's model.onnx; FileNotFoundError (one line) when the run has none."""
    path = run_dir.path(model_dir, run_dir.ONNX_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(onnx_export.missing_message(model_dir))
    with tf.io.gfile.GFile(path, "rb") as f:
        return OnnxProbabilities(f.read(), threads)
