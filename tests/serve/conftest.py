"""Fixtures of the server tests: a tiny model trained in the session, the real Predictor on it, a
held-out raw drawing from the embedded sample, and a real `python -m quickdraw_tf.serve` process."""

from __future__ import annotations

import glob
import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from quickdraw_tf.data import formats, splits
from quickdraw_tf.data.drawing import Drawing
from quickdraw_tf.training import train_config, trainer
from quickdraw_tf.training.input_pipeline import InputConfig
from tests.harness import tiny_config, write_eye_records
from tests.sample import REPO, SAMPLE, sample_drawings


@pytest.fixture(scope="session")
def model_dir(tfrecord_dir, tmp_path_factory) -> str:
    """A tiny RNN trained for a few seconds on the sample's 10 classes (what it guesses is not the
    point; that the server and page give exactly the Predictor's answer is)."""
    out = str(tmp_path_factory.mktemp("serve_model"))
    input_config = InputConfig(batch_size=32, shuffle_buffer=100, bucket_boundaries=(32, 64))
    trainer.train(tiny_config(tfrecord_dir, out, steps=40, input=input_config, learning_rate=1e-2))
    return out


@pytest.fixture(scope="session")
def bitmap_model_dir(tmp_path_factory) -> str:
    """A tiny bitmap_cnn trained for a few steps on real eye bitmaps (class 0) and the same bitmaps
    transposed (class 1): enough to serve {"image": ...} requests through the real Predictor."""
    data_dir, out = str(tmp_path_factory.mktemp("eyes")), str(tmp_path_factory.mktemp("bitmap_model"))
    write_eye_records(data_dir, 96)
    input_config = InputConfig(batch_size=8, shuffle_buffer=50)
    trainer.train(tiny_config(data_dir, out, model="bitmap_cnn", steps=6, input=input_config))
    return out


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, for one test file: Playwright's sync API keeps an event loop running in this
    thread while it is open, which later files' asyncio.run would trip over. Missing browser or
    Playwright is a FAILURE with one line, never a skip."""
    from tests.serve.browser_helpers import CHROMIUM, CHROMIUM_ARGS

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]' (make test does it)",
                    pytrace=False)
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no browser at {CHROMIUM}: apt-get install -y chromium (make test does it as root)",
                    pytrace=False)
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except Exception as error:  # noqa: BLE001 - any launch failure is reported in one line
            pytest.fail(f"{CHROMIUM} did not start: {str(error).strip().splitlines()[0]}", pytrace=False)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def predictor(model_dir):
    from quickdraw_tf.inference.predictor import Predictor

    return Predictor.load(model_dir)


def raw_sample_drawings() -> list[Drawing]:
    """Every raw drawing of the embedded sample, parsed by the toolkit's own reader."""
    drawings = []
    for path in sorted(glob.glob(os.path.join(SAMPLE, "raw", "*", "*.ndjson"))):
        with open(path, "rb") as f:
            for record in formats.read_source_records(f, path, "ndjson"):
                drawings.append(formats.parse_record(record))
    return drawings


def held_out_raw_drawings(classes: list[str]) -> list[Drawing]:
    """Raw drawings of the model's classes that training never saw: in the test split (the rule of the
    tfrecord fixture) and not among the fixture's training records."""
    seen = {int(record["key_id"]) for record in sample_drawings()}
    return [
        drawing for drawing in raw_sample_drawings()
        if drawing.word in classes
        and drawing.key_id not in seen
        and _split_of(drawing.key_id) == "test"
    ]


def _split_of(key_id: int) -> str:
    return splits.assign_split(splits.key_hash(key_id), eval_fraction=0.1, test_fraction=0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    model_dirs: list[str], *extra: str, timeout_s: float = 180.0
) -> tuple[subprocess.Popen, str]:
    """A real server process on a free loopback port, returned once /healthz says ready."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "quickdraw_tf.serve", f"--port={port}", "--log_level=warning", *extra]
    command += [f"--model_dir={m}" for m in model_dirs]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited {process.returncode}: {process.stdout.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_server(process)
    raise RuntimeError(f"serve did not become ready in {timeout_s:.0f} s")


def start_static_server(folder: str, timeout_s: float = 30.0) -> tuple[subprocess.Popen, str]:
    """`python -m http.server` serving `folder` on a free loopback port, returned once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", folder]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stderr.read().decode()[-2000:]
            raise RuntimeError(f"http.server exited {process.returncode}: {output}")
        try:
            httpx.get(f"{url}/", timeout=1.0)
            return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    stop_server(process)
    raise RuntimeError(f"http.server did not answer in {timeout_s:.0f} s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def server(model_dir, sketch_model_dir):
    """One real server for every test: the classifier, and the Sketch-RNN for 'Finish my drawing'."""
    process, url = start_server([model_dir], "--max_wait_ms=2", f"--generator_dir={sketch_model_dir}")
    yield url
    stop_server(process)


@pytest.fixture(scope="session")
def sketch_model_dir(tfrecord_dir, tmp_path_factory) -> str:
    """configs/sketch_rnn_tiny.flags trained for a few dozen steps: it draws badly, but it draws."""
    out = str(tmp_path_factory.mktemp("sketch_model"))
    flagfile = os.path.join(REPO, "configs", "sketch_rnn_tiny.flags")
    trainer.train(train_config.config_from_flagfile(
        flagfile, data_dir=tfrecord_dir, model_dir=out, train_steps=30, eval_every=30, checkpoint_every=30,
        log_every=30, num_summary_drawings=0,
    ))
    return out


def as_request(drawing: Drawing) -> dict:
    return {"drawing": [list(map(list, stroke)) for stroke in drawing.strokes], "top_k": 3}


def ndjson_line(drawing: Drawing) -> str:
    record = {"word": drawing.word, "key_id": str(drawing.key_id), "drawing": as_request(drawing)["drawing"]}
    return json.dumps(record)
