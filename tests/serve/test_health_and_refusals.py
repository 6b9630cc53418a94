"""Unit tests, with the stand-in predictor and generator, of what keeps the server up: the batcher cannot
die silently, /v1/complete is bounded (queue, deadline), and requests from other hosts or origins or with
non-JSON bodies never reach the endpoints. Over real sockets: test_transport.py."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from quickdraw_tf.serve import completion_pool, guard
from quickdraw_tf.serve.app import create_app
from tests.serve.fake_generator import FakeGenerator
from tests.serve.fake_predictor import FakePredictor

JSON = {"content-type": "application/json"}
STROKE = [[10, 20.5, 30], [5, 6, 7.25], [0, 16, 33]]
DRAWING = {"drawing": [STROKE]}
COMPLETE = {"drawing": [STROKE], "word": "cat"}


def _client(predictor=None, base_url: str = "http://testserver", **options) -> TestClient:
    app = create_app(predictor or FakePredictor(), max_batch=4, max_wait_ms=1, **options)
    return TestClient(app, base_url=base_url, headers=JSON, raise_server_exceptions=False)


# ---- the batcher ----------------------------------------------------------------------------------


def test_a_stopped_batcher_makes_healthz_and_every_request_503_at_once():
    with _client() as client:
        batcher = client.app.state.batcher
        assert client.post("/v1/predict", json=DRAWING).status_code == 200

        async def broken_run(batch):  # a failure outside the model call, injected into the collector
            raise RuntimeError("injected failure")
        batcher._run = broken_run
        waiting = client.post("/v1/predict", json=DRAWING)  # gathered, then the collector dies
        assert waiting.status_code == 503
        message = "the batcher stopped (RuntimeError: injected failure); restart the server"
        assert waiting.json() == {"error": message}
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "failed"
        assert "injected failure" in health.json()["error"]
        assert client.post("/v1/predict", json=DRAWING).status_code == 503  # refused without queueing
        assert not batcher.alive and batcher._waiting == set()


def test_a_model_answer_of_the_wrong_shape_fails_its_batch_and_the_batcher_goes_on():
    predictor = FakePredictor()
    with _client(predictor) as client:
        predictor.missing_rows = 1
        response = client.post("/v1/predict", json=DRAWING)
        assert response.status_code == 500 and "1 inputs" in response.json()["error"]
        predictor.missing_rows = 0
        assert client.post("/v1/predict", json=DRAWING).status_code == 200
        assert client.get("/healthz").json()["status"] == "ready"


# ---- /v1/complete's bounds --------------------------------------------------------------------------


def test_completion_has_its_own_metrics_label_and_tries():
    with _client(generator=FakeGenerator()) as client:
        response = client.post("/v1/complete", json=COMPLETE)
        assert response.status_code == 200 and response.json()["tries"] == 1
        assert client.post("/v1/complete", json={**COMPLETE, "word": "emu"}).status_code == 409
        text = client.get("/metrics").text
    assert 'quickdraw_requests_total{path="/v1/complete",status="200"} 1.0' in text
    assert 'quickdraw_requests_total{path="/v1/complete",status="409"} 1.0' in text
    assert 'path="other"' not in text
    assert "quickdraw_completions_in_flight 0.0" in text


def test_a_completion_past_its_deadline_is_stopped_and_answers_503():
    generator = FakeGenerator()
    with _client(generator=generator, complete_timeout_s=0.5) as client:
        generator.steps = 10**9  # only a stop ends it
        response = client.post("/v1/complete", json=COMPLETE)
        assert response.status_code == 503
        assert response.json() == {"error": "the completion took longer than 0.5 s and was stopped; try a "
                                            "shorter drawing"}
        assert generator.stopped.wait(30)
        generator.steps = 3
        assert client.post("/v1/complete", json=COMPLETE).status_code == 200  # the slot came back


def test_completions_beyond_the_queue_are_refused_at_once():
    generator = FakeGenerator()
    pool = completion_pool.CompletionPool(generator, timeout_s=60, max_waiting=1)
    generator.steps = 10**9

    async def main():
        gate = asyncio.Event()  # the stand-in client never hangs up

        async def post():
            return await pool.complete([STROKE], "cat", 0.5, None, gate.wait)
        running = [asyncio.ensure_future(post()) for _ in range(2)]  # one runs, one waits
        await asyncio.sleep(0)
        assert pool.taken == 2
        with pytest.raises(completion_pool.Busy, match="2 completions are running or waiting"):
            await post()
        gate.set()  # both "clients" hang up: both are stopped, their slots released
        results = await asyncio.gather(*running, return_exceptions=True)
        assert all(isinstance(r, completion_pool.ClientGone) for r in results)
        for _ in range(300):  # the slots come back once the stopped sampler has left its step
            if pool.taken == 0:
                break
            await asyncio.sleep(0.1)
        assert pool.taken == 0

    asyncio.run(main())
    assert generator.stopped.wait(30)
    pool.shutdown()


# ---- Host, Origin and Content-Type ----------------------------------------------------------------


@pytest.mark.parametrize("headers, status, words", [
    ({"content-type": "text/plain"}, 415, "application/json, not text/plain"),
    ({"content-type": "application/x-www-form-urlencoded"}, 415, "not application/x-www-form-urlencoded"),
    ({"content-type": ""}, 415, "not none"),
    ({"content-type": "application/json; charset=utf-8"}, 200, None),
    ({"origin": "http://evil.example"}, 403, "cross-origin request from 'http://evil.example' refused"),
    ({"origin": "null"}, 403, "cross-origin"),
    ({"origin": "http://127.0.0.1:8000"}, 200, None),  # the server's own page
    ({"origin": "http://allowed.example:3000"}, 200, None),
    ({"host": "evil.example:8000"}, 403, "Host 'evil.example:8000' is not this server's address"),
    ({"host": "127.0.0.1:9999"}, 403, "not this server's address"),
    ({"host": "localhost:8000"}, 200, None),
])
def test_guard_refuses_other_hosts_origins_and_body_types(headers, status, words):
    with _client(base_url="http://127.0.0.1:8000", host="127.0.0.1", port=8000,
                 allow_origins=("http://allowed.example:3000",)) as client:
        response = client.post("/v1/predict", content=b'{"drawing": [[[1, 2], [3, 4]]]}', headers=headers)
        assert response.status_code == status, response.text
        if words:
            assert list(response.json()) == ["error"] and words in response.json()["error"]
        if headers.get("origin") == "http://allowed.example:3000":
            assert response.headers["access-control-allow-origin"] == "http://allowed.example:3000"
        errors = client.get("/metrics").text
    if status != 200:
        assert f'quickdraw_errors_total{{status="{status}"}} 1.0' in errors


def test_an_allowed_origin_gets_its_preflight_and_others_do_not():
    with _client(allow_origins=("http://allowed.example",)) as client:
        asked = {"origin": "http://allowed.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "content-type"}
        response = client.options("/v1/predict", headers=asked)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "http://allowed.example"
        assert "POST" in response.headers["access-control-allow-methods"]
        response = client.options("/v1/predict", headers={**asked, "origin": "http://evil.example"})
        assert response.status_code == 403 and "access-control-allow-origin" not in response.headers


def test_host_names_are_checked_only_on_a_loopback_address():
    assert guard.host_names("127.0.0.1", 8000) == {"127.0.0.1:8000", "localhost:8000", "[::1]:8000"}
    assert "localhost" in guard.host_names("localhost", 80)
    assert guard.host_names("0.0.0.0", 8000) is None and guard.host_names(None, None) is None
    with _client(host="0.0.0.0", port=8000) as client:  # reached by names it cannot know
        response = client.post("/v1/predict", json=DRAWING, headers={"host": "192.168.1.7:8000"})
        assert response.status_code == 200


def test_the_page_and_get_requests_need_no_content_type():
    with _client(host="127.0.0.1", port=8000, base_url="http://127.0.0.1:8000") as client:
        client.headers.pop("content-type")
        assert client.get("/").status_code == 200
        assert client.get("/v1/classes").status_code == 200


def test_freeze_gc_is_off_unless_asked():
    with _client() as client:  # a library user's app leaves the process' collector alone
        assert "quickdraw_gc_frozen_objects 0.0" in client.get("/metrics").text
