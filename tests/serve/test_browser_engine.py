"""The page's browser engine (static/engine.js: preprocess.js + the run's model.onnx in onnxruntime-web)
against the server's TensorFlow, on every drawing of the embedded sample: the same top-3, the same
probabilities within 1e-4, for a stroke model and for an image model."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from quickdraw_tf.inference.predictor import Predictor
from tests.sample import every_drawing
from tests.serve.conftest import as_request, start_server, stop_server

pytestmark = pytest.mark.integration  # a browser and a real server

TOLERANCE = 1e-4
CHUNK = 200


def _page_guesses(browser, url: str, drawings: list, top_k: int) -> tuple[list, str]:
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    engine = page.get_attribute("body", "data-engine")
    answers = []
    for start in range(0, len(drawings), CHUNK):
        answers += page.evaluate(
            """async ([all, k]) => {
                const out = [];
                for (const strokes of all) {
                    out.push((await window.quickdraw.browser.guess(strokes, k)).predictions);
                }
                return out;
            }""",
            [[as_request(d)["drawing"] for d in drawings[start : start + CHUNK]], top_k],
        )
    page.close()
    return answers, engine


def _compare(answers: list, probabilities: np.ndarray, classes: tuple, top_k: int) -> int:
    """Asserts the page's top-k are the words and probabilities of `probabilities` rows; returns how many
    drawings had a top-k whose order a 1e-4 difference could change (their words are compared as sets)."""
    close_calls = 0
    for answer, row in zip(answers, probabilities, strict=True):
        order = np.argsort(-row, kind="stable")[: top_k + 1]
        expected = [classes[i] for i in order[:top_k]]
        words = [a["word"] for a in answer]
        np.testing.assert_allclose([a["probability"] for a in answer], row[order[:top_k]], atol=TOLERANCE)
        if np.min(np.abs(np.diff(row[order]))) > 2 * TOLERANCE:
            assert words == expected
        else:
            close_calls += 1
            near = np.flatnonzero(row >= row[order[top_k - 1]] - 2 * TOLERANCE)
            assert set(words) <= {classes[i] for i in near}
    return close_calls


def test_the_page_guesses_in_the_browser_with_the_servers_top3_on_every_sample_drawing(
    browser, server, predictor
):
    drawings = every_drawing()
    assert len(drawings) > 1500
    answers, engine = _page_guesses(browser, server, drawings, 3)
    assert engine == "browser"
    probabilities = predictor.probabilities([predictor.prepare(d) for d in drawings])
    close_calls = _compare(answers, probabilities, predictor.class_names, 3)
    print(f"{len(drawings)} drawings, {close_calls} with near-ties in their top-4")
    assert close_calls < len(drawings) // 20
    # The server's own answers (HTTP, TensorFlow) for some of them: the same words.
    with httpx.Client(base_url=server, timeout=30) as client:
        for drawing, answer in list(zip(drawings, answers, strict=True))[::50]:
            served = client.post("/v1/predict", json=as_request(drawing)).json()["predictions"]
            assert [p["word"] for p in served] == [a["word"] for a in answer]


@pytest.fixture(scope="module")
def bitmap_server(bitmap_model_dir):
    process, url = start_server([bitmap_model_dir], "--max_wait_ms=2")
    yield url
    stop_server(process)


def test_an_image_model_guesses_in_the_browser_from_the_pages_own_bitmaps(browser, bitmap_server,
                                                                          bitmap_model_dir):
    """The page draws the 28x28 bitmap itself (canvas, not PIL): the same top-1 as the server wherever
    the server's top-2 are apart by more than the bitmaps' small differences can move them."""
    predictor = Predictor.load(bitmap_model_dir)
    drawings = every_drawing()
    answers, engine = _page_guesses(browser, bitmap_server, drawings, 2)
    assert engine == "browser"
    probabilities = predictor.probabilities([predictor.prepare(d) for d in drawings])
    gaps = np.abs(probabilities[:, 0] - probabilities[:, 1])
    clear = gaps > 0.05
    assert clear.sum() > 100
    top1 = np.array([predictor.class_names[i] for i in probabilities.argmax(axis=1)])
    shown = np.array([answer[0]["word"] for answer in answers])
    assert (shown[clear] == top1[clear]).all()
    shown_probability = np.array([answer[0]["probability"] for answer in answers])
    print(f"image model: {clear.sum()} clear calls of {len(drawings)}, top-1 agreement overall "
          f"{(shown == top1).mean():.3f}, mean |p1 difference| "
          f"{np.abs(shown_probability - probabilities.max(axis=1)).mean():.4f}")
