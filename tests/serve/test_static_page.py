"""python -m quickdraw_tf.static_page: one folder (page, scripts, WASM runtime, model.onnx, classes) that
`python -m http.server` serves as it is; in Chromium it guesses a drawing drawn by mouse with the
Predictor's top-3, asking nothing but its own files."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from quickdraw_tf.data.drawing import Drawing
from tests.serve import browser_helpers
from tests.serve.conftest import REPO, held_out_raw_drawings, start_static_server, stop_server

pytestmark = pytest.mark.integration  # a command, a static file server and a browser


def _static_page(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.run([sys.executable, "-m", "quickdraw_tf.static_page", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def folder(model_dir, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("static") / "page")
    done = _static_page(f"--model_dir={model_dir}", f"--output_dir={out}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"wrote {out}")
    return out


def test_the_folder_holds_the_page_the_runtime_and_the_model(folder, model_dir):
    files = {os.path.relpath(os.path.join(d, n), folder) for d, _, names in os.walk(folder) for n in names}
    assert files == {
        "index.html", "static/app.js", "static/app.css", "static/engine.js", "static/preprocess.js",
        "static/ort/ort.bundle.js", "static/ort/ort-wasm-simd-threaded.wasm",
        "model/model.onnx", "model/model.json",
    }
    with open(os.path.join(model_dir, "model.onnx"), "rb") as ours:
        with open(os.path.join(folder, "model", "model.onnx"), "rb") as copied:
            assert ours.read() == copied.read()


def test_the_static_page_guesses_a_mouse_drawing_with_the_predictors_top3(browser, folder, predictor):
    process, url = start_static_server(folder)
    try:
        page = browser.new_page(viewport={"width": 1000, "height": 760})
        page.goto(f"{url}/")
        page.wait_for_selector("body[data-ready=true]")
        assert page.get_attribute("body", "data-engine") == "browser"
        assert page.is_hidden("#finish")  # no server to finish drawings
        candidates = [d for d in held_out_raw_drawings(list(predictor.class_names)) if len(d.strokes) <= 6]
        probabilities = predictor.probabilities([predictor.prepare(d) for d in candidates])
        top4 = -np.sort(-probabilities, axis=1)[:, :4]
        drawing = candidates[int(np.argmax(np.min(top4[:, :3] - top4[:, 1:], axis=1)))]  # clear gaps
        strokes = browser_helpers.to_canvas(drawing, page.locator("#canvas").bounding_box())
        strokes = [(xs, ys, [0.0] * len(xs)) for xs, ys, _ in strokes]  # as fast as the browser takes them
        browser_helpers.draw(page, strokes, *browser_helpers.mouse_actions(page))
        browser_helpers.wait_for_newest_answer(page)
        recorded = Drawing(key_id=0, word="", strokes=tuple(page.evaluate("window.quickdraw.strokes")))
        shown = browser_helpers.shown_top3(page)
        expected = predictor.predict([recorded], top_k=3)[0]
        assert [w for w, _ in shown] == [w for w, _ in expected]
        np.testing.assert_allclose([p for _, p in shown], [p for _, p in expected], atol=1e-4)
        assert [w for w, _ in shown] == [w for w, _ in predictor.predict([drawing], top_k=3)[0]]
        page.close()
    finally:
        stop_server(process)
    requests = re.findall(r'"GET (\S+) HTTP/[\d.]+" (\d+)', process.stderr.read().decode())
    assert requests and all(status in ("200", "304") for _, status in requests), requests
    assert {path for path, _ in requests} >= {"/", "/static/app.js", "/model/model.onnx",
                                             "/static/ort/ort-wasm-simd-threaded.wasm"}


def test_static_page_errors_are_one_line(folder, model_dir, tmp_path):
    for args, words in [
        ([f"--model_dir={model_dir}", f"--output_dir={folder}"], "exists"),
        ([f"--model_dir={tmp_path}", f"--output_dir={tmp_path / 'page'}"], "no model.onnx"),
        ([f"--model_dir={model_dir}"], "required"),
    ]:
        done = _static_page(*args)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert words in done.stderr
    assert not (tmp_path / "page").exists()
