"""model.onnx against TensorFlow: each classifier (tiny, weights drawn at random) converted by
training/onnx_export.py, run in ONNX Runtime on every drawing of the embedded sample and compared with
the SavedModel's serving function; the graph's inputs and outputs; no custom LSTM kernel in the graph;
a model that cannot convert; and the export_onnx command."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import onnx
import onnxruntime
import pytest

from quickdraw_tf import models
from quickdraw_tf.data import preprocess
from quickdraw_tf.training import export, onnx_export
from tests.harness import TINY_HPARAMS
from tests.sample import EYE_NPY, REPO, every_drawing

pytestmark = pytest.mark.integration  # converts graphs and runs two engines over the whole sample

CLASSES = ["cat", "dog", "pig", "cow", "owl"]
TOLERANCE = 1e-4
BATCH = 64
RNN = {**TINY_HPARAMS["rnn"], "num_layers": 2, "batch_norm": True}  # lstm_kernel "auto": ours on CPU
MODELS = {
    "rnn": RNN,
    # grouped convolutions, which Keras runs through XLA on CPU
    "scatter_raster": {**TINY_HPARAMS["scatter_raster"], "cardinality": 4},
    "mobilenet": TINY_HPARAMS["mobilenet"],  # the in-graph renderer
    "bitmap_cnn": TINY_HPARAMS["bitmap_cnn"],
}


def _random_model(key: str, drawings: list) -> keras.Model:
    """The tiny model as initialized, with the batch-norm statistics of real inputs (a new model's are
    zeros and ones, which leave mobilenet's answer the same for every drawing), so that its
    probabilities differ between drawings and between classes: a comparison that can fail."""
    keras.utils.set_random_seed(0)
    model = models.get_model(key, len(CLASSES), **MODELS[key])
    norms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:  # one training-mode call sets the statistics to the batch's own
        layer.momentum = 0.0
    model(next(_batches(key, drawings[::4])), training=True)
    return model


@pytest.fixture(scope="module")
def drawings() -> list:
    found = every_drawing()
    assert len(found) > 1500  # raw and simplified
    return found


def _ink_batches(drawings: list):
    """Every drawing's delta ink, in batches of similar lengths padded to their longest (as the
    Predictor sends them)."""
    inks = [preprocess.model_input(d, preprocess.Preprocessing())["ink"] for d in drawings]
    order = np.argsort([len(one) for one in inks], kind="stable")
    for start in range(0, len(order), BATCH):
        chosen = [inks[i] for i in order[start : start + BATCH]]
        lengths = np.array([len(one) for one in chosen], np.int32)
        ink = np.zeros((len(chosen), lengths.max(), 3), np.float32)
        for row, one in enumerate(chosen):
            ink[row, : len(one)] = one
        yield {"ink": ink, "length": lengths}


def _image_batches(drawings: list):
    """Every drawing as the 28x28 bitmap of the numpy_bitmap recipe, then real numpy_bitmap rows."""
    images = [preprocess.model_input(d, preprocess.Preprocessing(kind="images"))["image"] for d in drawings]
    eyes = np.load(EYE_NPY)[:256]
    images = np.concatenate([np.stack(images), eyes.reshape(-1, 28, 28)])
    for start in range(0, len(images), BATCH):
        yield {"image": images[start : start + BATCH]}


def _batches(key: str, drawings: list):
    return _image_batches(drawings) if key == "bitmap_cnn" else _ink_batches(drawings)


@pytest.fixture(scope="module", params=sorted(MODELS))
def converted(request, drawings, tmp_path_factory):
    key = request.param
    model = _random_model(key, drawings)
    path = str(tmp_path_factory.mktemp(f"onnx_{key}") / "model.onnx")
    onnx_export.export_onnx(model, CLASSES, path)
    return key, model, path


def test_onnx_runtime_gives_tensorflows_probabilities_on_every_sample_drawing(converted, drawings):
    key, model, path = converted
    serve = export.Serving(model, CLASSES).serve
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    ours, theirs, count = [], [], 0
    for feeds in _batches(key, drawings):
        expected = serve(*feeds.values())
        got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))
        np.testing.assert_allclose(got["probabilities"], expected["probabilities"], atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(got["top_k_probabilities"], expected["top_k_probabilities"],
                                   atol=TOLERANCE, rtol=0)
        ours.append(got["probabilities"])
        theirs.append(expected["probabilities"].numpy())
        count += len(got["probabilities"])
    assert count >= len(drawings)
    ours, theirs = np.concatenate(ours), np.concatenate(theirs)
    difference = np.abs(ours - theirs).max()
    print(f"{key}: {count} inputs, largest probability difference {difference:.2e}")
    # The comparison can fail: the random model's answers differ between drawings and classes.
    assert ours.std(axis=0).max() > 0.01 and ours.max(axis=1).mean() > 1.5 / len(CLASSES)
    assert len(set(ours.argmax(axis=1))) > 1


def test_the_graph_has_the_serving_signatures_inputs_and_outputs(converted):
    key, _, path = converted
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    inputs = {node.name: node.type for node in session.get_inputs()}
    expected = {"image": "tensor(uint8)"} if key == "bitmap_cnn" else {
        "ink": "tensor(float)", "length": "tensor(int32)"}
    assert inputs == expected
    outputs = {node.name: node.type for node in session.get_outputs()}
    assert outputs == {"probabilities": "tensor(float)", "top_k_classes": "tensor(string)",
                       "top_k_probabilities": "tensor(float)"}
    assert onnx_export.unconverted_nodes(onnx.load(path)) == []


def test_top_k_classes_are_the_class_words(converted, drawings):
    key, model, path = converted
    feeds = next(_batches(key, drawings[:8]))
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    words, probabilities = session.run(["top_k_classes", "top_k_probabilities"], feeds)
    expected = export.Serving(model, CLASSES).serve(*feeds.values())
    assert words.tolist() == expected["top_k_classes"].numpy().astype(str).tolist()
    assert set(words.ravel()) <= set(CLASSES) and np.all(np.diff(probabilities, axis=1) <= 0)


@pytest.mark.parametrize("kernel", ["block", "projected"])
def test_no_custom_lstm_kernel_reaches_the_graph(kernel, tmp_path):
    """Whatever kernel the run trained with, the graph is Keras' plain LSTM loop: standard ONNX ops
    only, and the same probabilities as the run's own model."""
    model = models.get_model("rnn", len(CLASSES), **{**RNN, "lstm_kernel": kernel})
    proto = onnx_export.to_onnx(model, CLASSES)
    assert onnx_export.unconverted_nodes(proto) == []
    ops = {node.op_type for node in proto.graph.node}
    assert "Loop" in ops and not any("LSTM" in op for op in ops)
    feeds = next(_ink_batches(every_drawing()[:16]))
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = export.Serving(model, CLASSES).serve(**feeds)["probabilities"]
    np.testing.assert_allclose(session.run(["probabilities"], feeds)[0], expected, atol=TOLERANCE)


def test_a_model_that_cannot_convert_fails_with_one_line_naming_the_op():
    """mobilenet's renderer without our conversions of its two ops: tf2onnx has none for UpperBound."""
    model = models.get_model("mobilenet", len(CLASSES), **TINY_HPARAMS["mobilenet"])
    with pytest.raises(onnx_export.OnnxExportError) as failure:
        onnx_export.to_onnx(model, CLASSES, op_handlers={})
    message = str(failure.value)
    assert "\n" not in message and "UpperBound" in message, message


def _command(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.run([sys.executable, "-m", "quickdraw_tf.export_onnx", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)


def test_export_onnx_command_writes_model_onnx_for_an_existing_run(tmp_path):
    model = models.get_model("rnn", len(CLASSES), **RNN)
    model.save(str(tmp_path / "model.keras"))
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    done = _command(f"--model_dir={tmp_path}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"wrote {tmp_path / 'model.onnx'}")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [node.name for node in session.get_inputs()] == ["ink", "length"]
    # A run without model.keras: one line, status 2, nothing written.
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _command(f"--model_dir={empty}")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "model.keras is missing" in done.stderr and not (empty / "model.onnx").exists()
