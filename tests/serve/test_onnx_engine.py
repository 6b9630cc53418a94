"""ONNX Runtime as the Predictor's and the server's engine (--engine=onnxruntime): the same answers as
TensorFlow on the sample's drawings, from the model.onnx that training wrote; one-line errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import httpx
import numpy as np
import pytest

from quickdraw_tf.inference.predictor import Predictor
from tests.serve.conftest import (
    REPO,
    as_request,
    held_out_raw_drawings,
    raw_sample_drawings,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.integration  # a trained model (and a server)


def test_training_wrote_model_onnx(model_dir, bitmap_model_dir):
    for run in (model_dir, bitmap_model_dir):
        assert os.path.getsize(os.path.join(run, "model.onnx")) > 1000


def test_predictor_on_onnxruntime_gives_tensorflows_probabilities(model_dir, predictor):
    onnx = Predictor.load(model_dir, engine="onnxruntime")
    assert onnx.engine == "onnxruntime" and onnx.class_names == predictor.class_names
    assert onnx.name == predictor.name
    drawings = raw_sample_drawings()
    prepared = [predictor.prepare(d) for d in drawings]
    np.testing.assert_allclose(onnx.probabilities(prepared, batch_size=16), predictor.probabilities(prepared),
                               atol=1e-5)
    assert onnx.predict(drawings[:5]) and np.isfinite(onnx.probabilities(prepared[:1])).all()


def test_engine_errors_are_one_line(model_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown engine 'torch'"):
        Predictor.load(model_dir, engine="torch")
    bare = tmp_path / "run"
    shutil.copytree(model_dir, bare, ignore=shutil.ignore_patterns("model.onnx"))
    with pytest.raises(FileNotFoundError) as missing:
        Predictor.load(str(bare), engine="onnxruntime")
    assert "\n" not in str(missing.value) and "quickdraw_tf.export_onnx" in str(missing.value)
    env = {**os.environ, "PYTHONPATH": REPO}
    done = subprocess.run([sys.executable, "-m", "quickdraw_tf.serve", f"--model_dir={bare}",
                           "--engine=onnxruntime", "--port=1"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "no model.onnx" in done.stderr


def test_server_on_onnxruntime_answers_as_the_tensorflow_predictor(model_dir, predictor):
    process, url = start_server([model_dir], "--engine=onnxruntime", "--max_wait_ms=2")
    try:
        drawings = held_out_raw_drawings(list(predictor.class_names))
        assert len(drawings) >= 10
        expected = predictor.predict(drawings, top_k=3)
        with httpx.Client(base_url=url, timeout=30) as client:
            for drawing, want in zip(drawings, expected, strict=True):
                got = client.post("/v1/predict", json=as_request(drawing)).json()["predictions"]
                np.testing.assert_allclose([p["probability"] for p in got], [p for _, p in want], atol=1e-5)
                if min(abs(a[1] - b[1]) for a, b in zip(want, want[1:], strict=False)) > 1e-4:
                    assert [p["word"] for p in got] == [w for w, _ in want]
            assert client.get("/healthz").json()["status"] == "ready"
    finally:
        stop_server(process)
