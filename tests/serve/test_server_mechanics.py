"""Unit tests of the server's mechanics with a stand-in predictor (tests/serve/fake_predictor.py):
request checks, body limit, error format, batching, metrics. No model is involved here; the answers of a
trained model are tested in test_api.py and test_browser.py."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient

from quickdraw_tf.data import limits
from quickdraw_tf.serve import schemas
from quickdraw_tf.serve.app import create_app
from quickdraw_tf.serve.batcher import Batcher
from tests.serve.fake_predictor import FakePredictor

STROKE = [[10, 20.5, 30], [5, 6, 7.25], [0, 16, 33]]

JSON = {"content-type": "application/json"}  # the server takes POST bodies only as JSON


@pytest.fixture()
def client():
    predictor = FakePredictor()
    with TestClient(create_app(predictor, max_batch=8, max_wait_ms=2), headers=JSON) as test_client:
        test_client.predictor = predictor
        yield test_client


def test_predict_answers_top_k_with_model_and_timing(client):
    response = client.post("/v1/predict", json={"drawing": [STROKE], "top_k": 2})
    assert response.status_code == 200
    body = response.json()
    assert [p["word"] for p in body["predictions"]] == ["cow", "cat"]  # 3 points: index 3 gets 0.7
    assert body["model"] == "fake"
    assert set(body["timing_ms"]) == {"preprocess", "inference"}


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b"{", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not UTF-8"),
        (b"[1, 2]", 422, "not an object"),
        (b'{"drawing": []}', 422, "empty"),
        (b'{"drawing": "abc"}', 422, "not an array of strokes"),
        (b'{"drawing": [[[1, NaN], [2, 3]]]}', 422, "not finite"),
        (b'{"drawing": [[[1, Infinity], [2, 3]]]}', 422, "not finite"),
        (b'{"drawing": [[[1, 1e400], [2, 3]]]}', 422, "not finite"),
        (b'{"drawing": [[[1, 2], [2]]]}', 422, "mismatched lengths"),
        (b'{"drawing": [[[1, 2], [2, 3], [0]]]}', 422, "mismatched lengths"),
        (b'{"drawing": [[[1, 2], [2, 3]], [[1, 2], [2, 3], [0, 1]]]}', 422, "all strokes need t"),
        (b'{"drawing": [[[1, "2"], [2, 3]]]}', 422, "string, not a number"),
        (b'{"drawing": [[[1, true], [2, 3]]]}', 422, "boolean, not a number"),
        (b'{"drawing": [[[], []]]}', 422, "no points"),
        (b'{"drawing": [[[1, 2], [2, 3]]], "top_k": "3"}', 422, "top_k"),
        (b'{"drawing": [[[1, 2], [2, 3]]], "top_k": 0}', 422, "top_k 0"),
        (b'{"drawing": [[[1, 2], [2, 3]]], "colour": 1}', 422, "unknown field"),
        (b'{"image": [0, 1]}', 422, "784"),
        (b'{"top_k": 3}', 422, "exactly one"),
        (b'{"drawing": [[[1], [2]]]}', 422, "too_short"),  # the predictor's own one-line reason
    ],
)
def test_bad_input_gets_one_json_message(client, body, status, words):
    response = client.post("/v1/predict", content=body)
    assert response.status_code == status
    assert list(response.json()) == ["error"]
    assert words in response.json()["error"]
    assert "\n" not in response.json()["error"]


def test_limits_on_strokes_and_points(client):
    too_many_strokes = {"drawing": [[[1, 2], [1, 2]]] * (schemas.MAX_STROKES + 1)}
    response = client.post("/v1/predict", json=too_many_strokes)
    assert response.status_code == 422 and "201 strokes" in response.json()["error"]
    at_the_limit = {"drawing": [[[1, 2], [1, 2]]] * schemas.MAX_STROKES}
    assert client.post("/v1/predict", json=at_the_limit).status_code == 200
    stroke = list(range(schemas.MAX_POINTS // 3 + 1))
    too_many_points = {"drawing": [[stroke, stroke]] * 3}
    response = client.post("/v1/predict", json=too_many_points)
    assert response.status_code == 422 and "20000 points" in response.json()["error"]
    long_stroke = list(range(limits.MAX_POINTS_PER_STROKE + 1))
    response = client.post("/v1/predict", json={"drawing": [[long_stroke, long_stroke]]})
    assert response.status_code == 422 and "10001 points; the limit is 10000" in response.json()["error"]


@pytest.mark.parametrize("value, status", [
    (1e6, 200), (-1e6, 200), (1_000_001, 422), (-1e6 - 0.5, 422), (1.7e308, 422), (-(10**300), 422),
])
def test_coordinates_follow_the_readers_limit(client, value, status):
    for stroke in ([[0, value], [0, 5]], [[0, 5], [0, value], [0, 16]]):  # x, then y with times
        response = client.post("/v1/predict", json={"drawing": [stroke]})
        assert response.status_code == status, response.text
        if status == 422:
            axis = "x" if stroke[0][1] == value else "y"
            message = f"bad_coordinate: stroke 0: {axis} {value:g} is beyond ±1e+06"
            assert response.json() == {"error": message}


def test_body_over_1_mib_is_refused_before_parsing(client, monkeypatch):
    parsed = []
    monkeypatch.setattr(schemas, "parse_json", lambda body: parsed.append(body))
    response = client.post("/v1/predict", content=b"[" * (schemas.MAX_BODY_BYTES + 1))
    assert response.status_code == 413 and "limit is 1048576" in response.json()["error"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(20):
            yield b" " * 65536
    response = client.post("/v1/predict", content=chunks())
    assert response.status_code == 413
    assert parsed == []


def test_unknown_paths_and_methods_answer_json(client):
    assert client.get("/nope").json() == {"error": "Not Found"}
    assert client.get("/v1/predict").status_code == 405


def test_classes_healthz_metrics_and_page(client):
    assert client.get("/v1/classes").json()["classes"] == list(FakePredictor.class_names)
    assert client.get("/healthz").json()["status"] == "ready"
    client.post("/v1/predict", content=b"{")
    client.post("/v1/predict", json={"drawing": [STROKE]})
    text = client.get("/metrics").text
    assert 'quickdraw_requests_total{path="/v1/predict",status="400"} 1.0' in text
    assert 'quickdraw_requests_total{path="/v1/predict",status="200"} 1.0' in text
    assert 'quickdraw_errors_total{status="400"} 1.0' in text
    assert 'quickdraw_request_latency_seconds_count{path="/v1/predict"} 2.0' in text
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "touch-action: none" in client.get("/static/app.css").text
    assert "getCoalescedEvents" in client.get("/static/app.js").text


def test_healthz_is_503_until_warm_up():
    app = create_app(FakePredictor())
    with TestClient(app, headers=JSON) as test_client:  # the context runs the lifespan start-up (warm-up)
        assert test_client.get("/healthz").status_code == 200
    assert TestClient(app, headers=JSON).get("/healthz").status_code == 503  # no start-up ran


def test_model_failure_is_a_500_message_and_the_server_stays_up():
    predictor = FakePredictor()
    with TestClient(create_app(predictor), raise_server_exceptions=False, headers=JSON) as test_client:
        predictor.fail = True
        response = test_client.post("/v1/predict", json={"drawing": [STROKE]})
        assert response.status_code == 500 and "the model broke" in response.json()["error"]
        predictor.fail = False
        assert test_client.post("/v1/predict", json={"drawing": [STROKE]}).status_code == 200


def _run_batcher(max_batch: int, requests: int) -> tuple[list[int], list[np.ndarray]]:
    predictor = FakePredictor()

    async def main():
        batcher = Batcher(predictor.probabilities, max_batch=max_batch, max_wait_s=0.05)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(n) for n in range(requests)))
        await batcher.stop()
        return results

    results = asyncio.run(main())
    return predictor.batch_sizes, [r.probabilities for r in results]


def test_batcher_gathers_concurrent_requests_and_keeps_each_answer():
    sizes, rows = _run_batcher(max_batch=8, requests=20)
    assert sum(sizes) == 20 and max(sizes) == 8 and len(sizes) < 20
    for n, row in enumerate(rows):  # each caller gets its own row back
        assert int(np.argmax(row)) == n % 4


def test_batcher_with_max_batch_1_calls_the_model_per_request():
    sizes, _ = _run_batcher(max_batch=1, requests=5)
    assert sizes == [1] * 5


def test_batcher_model_error_reaches_every_caller():
    predictor = FakePredictor(fail=True)

    async def main():
        batcher = Batcher(predictor.probabilities, max_batch=4, max_wait_s=0.01)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(n) for n in range(3)), return_exceptions=True)
        await batcher.stop()
        return results

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(main()))


def test_error_bodies_are_single_json_objects(client):
    response = client.post("/v1/predict", content=json.dumps({"drawing": [[[1, 2]]]}))
    assert response.headers["content-type"] == "application/json"
    assert response.status_code == 422


@pytest.mark.integration
@pytest.mark.parametrize("given, expected", [(None, "0"), ("1", "1")])
def test_the_server_turns_tensorflows_onednn_kernels_off_unless_told(given, expected):
    # they keep a primitive per input shape, which a batching server meets by the thousand (docs/serving.md)
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if given is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = given
    code = "import os, quickdraw_tf.serve.__main__; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
