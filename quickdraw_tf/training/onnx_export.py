"""model.onnx: the serving signature of training/export.py as an ONNX graph, through tf2onnx.

Same inputs and outputs as the SavedModel's "serving_default":
  stroke models: ink float32 [N, T, 3] (delta ink, zero-padded), length int32 [N]
  image models:  image uint8 [N, 28, 28]
  -> probabilities float32 [N, C], top_k_classes string [N, k], top_k_probabilities float32 [N, k]
ONNX has no asserts: the signature's input checks are left out (tf2onnx drops them); the padding is
still zeroed in the graph. ONNX Runtime runs it in Python (inference/onnx_engine.py) and in the
browser (onnxruntime-web, serve/static/engine.js).

What the conversion changes, and why the graph stays the model's own:
- An RnnClassifier is exported with Keras' plain LSTM loop (models/rnn.py with_lstm_kernel "keras",
  same weights): our CPU kernels (fused BlockLSTMV2, or the projected loop with its hand-written
  gradient) are a training speed choice, and a fused op has no ONNX equivalent.
- Keras runs grouped convolutions (scatter_raster's ResNeXt) on CPU as an XLA-compiled function;
  XLA is a way to run that function, so the frozen graph's functions lose their must-compile and
  no-inline marks and grappler inlines them like any other.
- Two ops of the in-graph renderer get conversions of ours (training/onnx_ops.py).
Anything else tf2onnx cannot convert fails the export with OnnxExportError, one line naming the op.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import keras
import tensorflow as tf

from quickdraw_tf.training import export, onnx_ops, run_dir

INSTALL_HINT = "pip install -e '.[onnx]'"
_NOT_COMPILED = ("_XlaMustCompile", "_noinline")


def missing_message(model_dir: str) -> str:
    """What to say when a run has no model.onnx."""
    command = f"python -m quickdraw_tf.export_onnx --model_dir={model_dir}"
    return f"no model.onnx in {model_dir}: {command} writes it"


class OnnxExportError(ValueError):
    """The model could not be converted (one line: which op, or which package is missing)."""


def converter_ready(model: keras.Model) -> keras.Model:
    """The model to convert: for an RnnClassifier, a same-weights copy running Keras' own LSTM loop."""
    from quickdraw_tf.models.rnn import RnnClassifier, with_lstm_kernel

    if isinstance(model, RnnClassifier) and model.hparams["lstm_kernel"] != "keras":
        return with_lstm_kernel(model, "keras")
    return model


def to_onnx(
    model: keras.Model,
    class_names: Sequence[str],
    top_k: int = 3,
    op_handlers: dict | None = None,
):
    """The ModelProto of the model's serving signature. OnnxExportError when it cannot be converted.

    `op_handlers`: tf2onnx custom-op conversions (default: onnx_ops.HANDLERS)."""
    try:
        import tf2onnx
    except ImportError:
        raise OnnxExportError(f"tf2onnx is not installed: {INSTALL_HINT}") from None
    module = export.Serving(converter_ready(model), class_names, top_k)
    concrete = module.serve.get_concrete_function()
    graph_def, inputs, outputs = _inlinable_frozen_graph(concrete)
    graph_inputs = [t.name for t in concrete.inputs if t.dtype != tf.resource]
    graph_outputs = [t.name for t in concrete.outputs]
    renames = tf2onnx.convert.tensor_names_from_structed(concrete, graph_inputs, graph_outputs)
    handlers = onnx_ops.HANDLERS if op_handlers is None else op_handlers
    with _quiet_converter() as messages:
        try:
            proto, _ = tf2onnx.convert.from_graph_def(
                graph_def, name=model.name, input_names=inputs, output_names=outputs, opset=onnx_ops.OPSET,
                custom_op_handlers=handlers, tensors_to_rename=renames,
            )
        except Exception as error:  # noqa: BLE001 - whatever the converter raises is reported in one line
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise OnnxExportError(f"cannot convert {model.name} to ONNX: tf2onnx failed: {first}") from None
    unconverted = unconverted_nodes(proto)
    if unconverted:
        op, node = unconverted[0]
        why = next((m for m in messages if node in m and "not supported" not in m), "")
        reason = f" ({why})" if why else ""
        raise OnnxExportError(
            f"cannot convert {model.name} to ONNX: TensorFlow op {op} (node {node}) has no ONNX "
            f"conversion in tf2onnx {tf2onnx.__version__}{reason}"
        )
    return proto


def export_onnx(
    model: keras.Model, class_names: Sequence[str], path: str, top_k: int = 3, op_handlers: dict | None = None
) -> str:
    """Writes `path` (model.onnx) as every run file is written (run_dir.write_file: a fresh name, then a
    rename; never through a link); returns it. OnnxExportError when it cannot be converted."""
    run_dir.check_target(path)
    proto = to_onnx(model, class_names, top_k, op_handlers)
    run_dir.write_file(path, proto.SerializeToString())
    return path


def unconverted_nodes(proto) -> list[tuple[str, str]]:
    """(op, node name) of every node, subgraphs included, that is no ONNX operator of its domain: what
    tf2onnx leaves in place of a TensorFlow op it could not convert."""
    import onnx

    found = []

    def visit(graph) -> None:
        for node in graph.node:
            if not onnx.defs.has(node.op_type, node.domain):
                found.append((node.op_type, node.name))
            for attribute in node.attribute:
                for sub in [attribute.g] if attribute.HasField("g") else list(attribute.graphs):
                    visit(sub)

    visit(proto.graph)
    return found


def _inlinable_frozen_graph(concrete) -> tuple[tf.compat.v1.GraphDef, list[str], list[str]]:
    """The function with its variables frozen into constants and its called functions inlinable."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=False, aggressive_inlining=True)
    graph_def = frozen.graph.as_graph_def(add_shapes=True)
    for node in graph_def.node:
        for mark in _NOT_COMPILED:
            node.attr.pop(mark, None)
    for function in graph_def.library.function:
        for mark in _NOT_COMPILED:
            function.attr.pop(mark, None)
        for node in function.node_def:
            for mark in _NOT_COMPILED:
                node.attr.pop(mark, None)
    inputs = [t.name for t in frozen.inputs if t.dtype != tf.resource]
    return graph_def, inputs, [t.name for t in frozen.outputs]


@contextlib.contextmanager
def _quiet_converter():
    """tf2onnx logs each conversion step (and its failures) through the "tf2onnx" logger, and its
    TensorFlow 1 calls make TensorFlow's logger warn about them: keep tf2onnx's errors for the error
    message instead of printing them, and restore both loggers afterwards."""
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage().strip()
            messages.append(text.splitlines()[0] if text else "")

    loggers = [logging.getLogger("tf2onnx"), logging.getLogger("tensorflow")]
    saved = [(logger.propagate, logger.level, list(logger.handlers)) for logger in loggers]
    keep = Keep(logging.ERROR)
    for logger in loggers:
        logger.propagate = False
        logger.setLevel(logging.ERROR)
        logger.handlers = [keep] if logger.name == "tf2onnx" else []
    try:
        yield messages
    finally:
        for logger, (propagate, level, handlers) in zip(loggers, saved, strict=True):
            logger.propagate, logger.handlers = propagate, handlers
            logger.setLevel(level)
