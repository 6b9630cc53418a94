"""POST /v1/complete with a tiny Sketch-RNN trained in the session: the continuation comes back as new,
finite strokes in the canvas' coordinates (moving and scaling the drawing moves and scales them the
same way), and every refusal is one JSON message with its status."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient

from quickdraw_tf.serve.app import create_app
from quickdraw_tf.serve.completion import Generator
from tests.sample import REPO
from tests.serve.conftest import as_request, held_out_raw_drawings

pytestmark = pytest.mark.integration

JSON = {"content-type": "application/json"}  # the server takes POST bodies only as JSON


@pytest.fixture(scope="module")
def generator(sketch_model_dir) -> Generator:
    return Generator.load(sketch_model_dir)


@pytest.fixture(scope="module")
def client(predictor, generator):
    with TestClient(create_app(predictor, generator=generator), headers=JSON) as test_client:
        yield test_client


def _partial(generator: Generator) -> tuple[list, str]:
    """The first half of the strokes (at least one) of a held-out raw drawing the generator knows."""
    drawing = next(d for d in held_out_raw_drawings(generator.classes) if len(d.strokes) >= 3)
    strokes = as_request(drawing)["drawing"]
    return strokes[: max(1, len(strokes) // 2)], drawing.word


def _moved(strokes: list, scale: float, dx: float, dy: float) -> list:
    return [[[x * scale + dx for x in s[0]], [y * scale + dy for y in s[1]], s[2]] for s in strokes]


def test_completion_is_new_finite_strokes_in_canvas_coordinates(client, generator):
    strokes, word = _partial(generator)
    # A tiny generator trained for a few steps may end a sample at once: the first seed that continues
    # the drawing is checked (each answer is still checked for its form).
    for seed in range(3, 11):
        body = {"drawing": _moved(strokes, 2.0, 500.0, 300.0), "word": word, "temperature": 0.5, "seed": seed}
        response = client.post("/v1/complete", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["word"] == word and answer["model"].startswith("sketch_rnn@")
        assert answer["timing_ms"] > 0
        new = answer["strokes"]
        if new:
            break
    assert new, "the generator added no stroke for any of 8 seeds"
    given = np.concatenate([np.array(s[:2]).T for s in body["drawing"]])
    points = np.concatenate([np.array(s).T for s in new])
    assert all(len(s) == 2 and len(s[0]) == len(s[1]) >= 1 for s in new)
    assert np.isfinite(points).all()
    # on the canvas near the drawing (not in the model's unit box), and not a copy of the given points
    extent = np.ptp(given, axis=0).max()
    assert (points > given.min(axis=0) - 3 * extent).all() and (points < given.max(axis=0) + 3 * extent).all()
    assert not {tuple(p) for p in points.round(2)} <= {tuple(p) for p in given.round(2)}
    # the same drawing moved and scaled on the canvas gets the same continuation, moved and scaled
    body["drawing"] = _moved(body["drawing"], 0.5, -40.0, 25.0)
    again = client.post("/v1/complete", json=body).json()["strokes"]
    assert [len(s[0]) for s in again] == [len(s[0]) for s in new]
    np.testing.assert_allclose(np.concatenate([np.array(s).T for s in again]), points * 0.5 + (-40.0, 25.0),
                               atol=0.05)


@pytest.mark.parametrize("body, status, message", [
    ({"drawing": [], "word": "cat"}, 422, "the drawing is empty"),
    ({"drawing": [[[1, 2], [3]]], "word": "cat"}, 422, "mismatched lengths"),
    ({"drawing": [[[1, 2], [3, 4]]]}, 422, "give 'drawing' (strokes) and 'word'"),
    ({"drawing": [[[1, 2], [3, 4]]], "word": 7}, 422, "word is a JSON number"),
    ({"drawing": [[[1, 2], [3, 4]]], "word": "cat", "temperature": 0}, 422, "temperature 0 is not"),
    ({"drawing": [[[1, 2], [3, 4]]], "word": "cat", "seed": -1}, 422, "seed -1 is not"),
    ({"drawing": [[[1, 2], [3, 4]]], "word": "cat", "top_k": 3}, 422, "unknown field 'top_k'"),
    ({"drawing": [[[5, 5], [3, 3]]], "word": "cat"}, 422, "the drawing is a single point"),
    ({"drawing": [[[1, 2], [3, 4]]], "word": "no such word"}, 409, "does not draw 'no such word'"),
])
def test_bad_requests_get_one_json_message(client, generator, body, status, message):
    if body.get("word") == "cat":
        body = {**body, "word": generator.classes[0]}
        message = message.replace("cat", generator.classes[0])
    response = client.post("/v1/complete", json=body)
    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"] and message in response.json()["error"]
    assert "\n" not in response.json()["error"]


def test_invalid_json_is_400_and_no_generator_is_404(client, predictor):
    response = client.post("/v1/complete", content=b'{"drawing": [[[1, NaN]')
    assert response.status_code == 400 and list(response.json()) == ["error"]
    assert client.get("/v1/classes").json()["generator"]["classes"]
    with TestClient(create_app(predictor), headers=JSON) as plain:
        assert plain.get("/v1/classes").json()["generator"] is None
        response = plain.post("/v1/complete", json={"drawing": [[[1, 2], [3, 4]]], "word": "cat"})
        assert response.status_code == 404
        assert response.json() == {"error": "no generator loaded: start serve with --generator_dir"}


def test_cli_refuses_a_missing_generator_dir_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "quickdraw_tf.serve", f"--model_dir={tmp_path}",
         f"--generator_dir={tmp_path}/none"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--generator_dir" in result.stderr
