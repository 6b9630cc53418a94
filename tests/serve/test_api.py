"""The API with the real Predictor and a model trained in the session: answers equal the Predictor's,
every malformed body gets its status and one JSON message, and a real server process batches."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from quickdraw_tf.data.drawing import Drawing
from quickdraw_tf.inference.predictor import Predictor
from quickdraw_tf.serve.app import create_app
from tests.sample import REPO, eye_bitmaps, sample_drawings
from tests.serve.conftest import as_request, held_out_raw_drawings, raw_sample_drawings
from tests.serve.mutations import mutations

pytestmark = pytest.mark.integration

JSON = {"content-type": "application/json"}  # the server takes POST bodies only as JSON


def _expected(predictor, drawing: Drawing) -> list[tuple[str, float]]:
    return predictor.predict([drawing], top_k=3)[0]


def _assert_same_answer(answer: dict, expected: list[tuple[str, float]]) -> None:
    assert [p["word"] for p in answer["predictions"]] == [word for word, _ in expected]
    np.testing.assert_allclose([p["probability"] for p in answer["predictions"]],
                               [p for _, p in expected], rtol=1e-4, atol=1e-6)


def test_answers_equal_the_predictor_for_raw_simplified_and_untimed_strokes(predictor):
    raw = held_out_raw_drawings(list(predictor.class_names))[:3]
    simplified = [Drawing(key_id=int(r["key_id"]), word=r["word"], strokes=tuple(r["drawing"]))
                  for r in sample_drawings(1)[:3]]
    untimed = [Drawing(key_id=0, word="", strokes=tuple(s[:2] for s in d.strokes)) for d in raw]
    with TestClient(create_app(predictor), headers=JSON) as client:
        for drawing in raw + simplified + untimed:
            response = client.post("/v1/predict", json=as_request(drawing))
            assert response.status_code == 200, response.text
            body = response.json()
            _assert_same_answer(body, _expected(predictor, drawing))
            assert body["model"] == predictor.name
            assert body["timing_ms"]["preprocess"] >= 0 and body["timing_ms"]["inference"] > 0
        assert client.get("/v1/classes").json()["classes"] == list(predictor.class_names)


def test_bitmap_model_serves_images_and_rendered_strokes(bitmap_model_dir, predictor):
    bitmaps = Predictor.load(bitmap_model_dir)
    assert bitmaps.accepts_images
    image = eye_bitmaps(200)[150]  # not among the 96 the model trained on
    strokes = raw_sample_drawings()[0]
    with TestClient(create_app(bitmaps, max_batch=4), headers=JSON) as client:
        response = client.post("/v1/predict", json={"image": image.reshape(-1).tolist(), "top_k": 2})
        assert response.status_code == 200, response.text
        expected = bitmaps.top_k(bitmaps.probabilities([bitmaps.prepare(Drawing(0, "", image=image))])[0], 2)
        _assert_same_answer(response.json(), expected)
        response = client.post("/v1/predict", json={**as_request(strokes), "top_k": 2})
        assert response.status_code == 200, response.text  # strokes are rendered to 28x28 for it
        _assert_same_answer(response.json(), bitmaps.predict([strokes], top_k=2)[0])
        bad = client.post("/v1/predict", json={"image": [0] * 783 + [256]})
        assert bad.status_code == 422 and "783" in bad.json()["error"]
    with TestClient(create_app(predictor), headers=JSON) as client:  # a stroke model takes no image
        response = client.post("/v1/predict", json={"image": image.reshape(-1).tolist()})
        assert response.status_code == 422 and "takes strokes" in response.json()["error"]


def test_1000_malformed_requests_then_a_valid_one_gets_the_right_answer(predictor):
    real = [{"drawing": r["drawing"], "top_k": 3} for r in sample_drawings(4)]
    real += [as_request(d) for d in raw_sample_drawings()[:40:4]]
    bad = mutations(real, count=1100, seed=9)
    valid = held_out_raw_drawings(list(predictor.class_names))[0]
    with TestClient(create_app(predictor, max_batch=8), headers=JSON) as client:
        for kind, body, status in bad:
            response = client.post("/v1/predict", content=body)
            assert response.status_code == status, (kind, response.text)
            message = response.json()
            assert list(message) == ["error"] and isinstance(message["error"], str), kind
            assert message["error"] and "\n" not in message["error"], kind
        assert client.get("/healthz").json()["status"] == "ready"
        response = client.post("/v1/predict", json=as_request(valid))
        assert response.status_code == 200
        _assert_same_answer(response.json(), _expected(predictor, valid))
        metrics = client.get("/metrics").text
    counts = re.findall(r'^quickdraw_errors_total\{status="\d+"\} (\S+)$', metrics, re.M)
    errors = sum(float(count) for count in counts)
    assert errors == len(bad)
    kinds = {kind for kind, _, _ in bad}
    assert len(kinds) >= 25 and {400, 413, 422} == {status for _, _, status in bad}


async def _post_all(url: str, bodies: list[dict]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return await asyncio.gather(*(client.post("/v1/predict", json=body) for body in bodies))


def test_real_server_process_batches_concurrent_requests_and_survives_bad_ones(server, predictor):
    drawings = held_out_raw_drawings(list(predictor.class_names))[:32]
    responses = asyncio.run(_post_all(server, [as_request(d) for d in drawings]))
    expected = predictor.predict(drawings, top_k=3)
    for response, answer in zip(responses, expected, strict=True):
        assert response.status_code == 200
        _assert_same_answer(response.json(), answer)
    assert max(r.json()["batch_size"] for r in responses) > 1  # gathered into shared model calls
    bodies = (b"{", b'{"drawing": []}', b"[" * 1_100_000)
    bad = [httpx.post(f"{server}/v1/predict", content=body, headers=JSON) for body in bodies]
    assert [r.status_code for r in bad] == [400, 422, 413]
    assert httpx.get(f"{server}/healthz").json()["status"] == "ready"
    metrics = httpx.get(f"{server}/metrics").text
    assert 'quickdraw_errors_total{status="413"} 1.0' in metrics
    frozen = re.search(r"^quickdraw_gc_frozen_objects (\S+)$", metrics, re.M)
    assert float(frozen.group(1)) > 100_000  # start-up's objects are out of the collector's walks
    assert "quickdraw_request_latency_seconds_bucket" in metrics


def test_cli_refuses_a_missing_model_dir_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "quickdraw_tf.serve", f"--model_dir={tmp_path}/none"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no such directory" in result.stderr
