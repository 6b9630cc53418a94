r"""Guesses a second on the drawing page while real drawings are replayed in headless Chromium: the page
guessing in the browser (onnxruntime-web, a guess at every pointer move) against the page asking the
server (?engine=server, the baseline: a request at most every 150 ms), in alternation, three runs.

  .venv/bin/python -m benchmarks.browser_bench                      # the `make demo` model (runs/demo)
  .venv/bin/python -m benchmarks.browser_bench --model_dir=M --runs=3 --drawings=6

One real server (python -m quickdraw_tf.serve, TensorFlow, as `make serve` starts it) serves the page;
Debian's Chromium draws the embedded sample's raw drawings of the model's classes with the mouse:
  recorded  the drawing's own points at their recorded times (the dataset keeps fewer points than a
            mouse reports);
  mouse     the same strokes at the same speed as a mouse reports them, 125 positions a second along
            each recorded stroke (linear between its points): what a person drawing gives the page;
  fast      the drawing's own points, each sent as soon as the browser takes the last.
Per engine, replay and run it prints:
  guesses/s   guesses shown while the pen is down / the time it is down (the goal: >= 60 in the
              browser);
  moves/s     pointermove events the page got in that time (one per frame at most: Chromium aligns
              them to frames), which bounds guesses/s when every move gets one guess;
  per move    guesses / moves (1.0: a guess at every move);
  p50 / p95   ms from asking to the answer (browser: preprocessing + inference; server: the request),
              and 1000 / p50, the guesses a second one engine alone could give.
Timing figures need an idle machine: the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if __package__ in (None, ""):  # run as `python benchmarks/browser_bench.py`: import from this checkout
    sys.path.insert(0, REPO)

from benchmarks.serve_bench import start_server
from quickdraw_tf.data import formats
from quickdraw_tf.data.drawing import Drawing
from tests.serve import browser_helpers

ENGINES = ("browser", "server")
COUNTERS = ("[window.quickdraw.moves, window.quickdraw.guessTimes.length,"
            " Number(document.getElementById('guesses').dataset.liveUpdates)]")
SPEEDS = ("recorded", "mouse", "fast")
MOUSE_HZ = 125  # a USB mouse's usual report rate
GOAL = 60.0  # guesses a second in the browser, as a mouse draws


def _load_average() -> str:
    with open("/proc/loadavg", encoding="utf-8") as f:
        return f.read().strip()


def pick_drawings(classes: list[str], count: int) -> list[Drawing]:
    """The first `count` raw sample drawings of the model's classes that take 1.5-6 s to draw."""
    chosen = []
    paths = sorted(glob.glob(os.path.join(REPO, "data", "sample", "raw", "*", "*.ndjson")))
    for drawing in (d for path in paths for d in formats.iter_drawings(path)):
        duration = drawing.strokes[-1][2][-1] - drawing.strokes[0][2][0]
        if drawing.word in classes and 1500 <= duration <= 6000:
            chosen.append(drawing)
        if len(chosen) == count:
            break
    return chosen


def mouse_reports(xs: list, ys: list, ts: list) -> tuple[list, list, list]:
    """A stroke as a mouse reports it: positions every 1 / MOUSE_HZ s from its first time to its last,
    interpolated linearly between its recorded points (times that repeat keep their first point)."""
    times = np.asarray(ts, float)
    keep = np.concatenate([[True], np.diff(times) > 0])
    times, x, y = times[keep], np.asarray(xs, float)[keep], np.asarray(ys, float)[keep]
    at = np.arange(times[0], times[-1], 1000.0 / MOUSE_HZ).tolist() + [times[-1]]
    return np.interp(at, times, x).tolist(), np.interp(at, times, y).tolist(), at


def replay(page, drawing: Drawing, speed: str) -> dict:
    """Draws one drawing on a cleared canvas; returns the page's counters over it."""
    page.evaluate("document.getElementById('clear').click()")
    strokes = browser_helpers.to_canvas(drawing, page.locator("#canvas").bounding_box())
    if speed == "fast":
        strokes = [(xs, ys, [0.0] * len(xs)) for xs, ys, _ in strokes]
    elif speed == "mouse":
        strokes = [mouse_reports(xs, ys, ts) for xs, ys, ts in strokes]
    before = page.evaluate(COUNTERS)
    sent = browser_helpers.draw(page, strokes, *browser_helpers.mouse_actions(page))
    pen_down = sum(times[-1] - times[0] for times in sent) / 1000.0
    browser_helpers.wait_for_newest_answer(page)
    moves, guesses, live = (a - b for a, b in zip(page.evaluate(COUNTERS), before, strict=True))
    times = page.evaluate(f"window.quickdraw.guessTimes.slice({before[1]})")
    return {"pen_down_s": pen_down, "moves": moves, "guesses": guesses, "live": live, "times_ms": times}


def measure(browser, url: str, engine: str, speed: str, drawings: list[Drawing]) -> dict:
    page = browser.new_page(viewport={"width": 1000, "height": 760})
    page.goto(f"{url}/?engine={engine}")
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    assert page.get_attribute("body", "data-engine") == engine, page.text_content("#model")
    replay(page, drawings[0], "fast")  # warm-up: the runtime's and the page's first calls
    parts = [replay(page, drawing, speed) for drawing in drawings]
    page.close()
    pen_down = sum(p["pen_down_s"] for p in parts)
    times = sorted(t for p in parts for t in p["times_ms"])
    moves, live = sum(p["moves"] for p in parts), sum(p["live"] for p in parts)
    p50 = statistics.median(times)
    return {
        "engine": engine, "speed": speed, "drawings": len(parts), "pen_down_s": pen_down,
        "guesses_per_s": live / pen_down, "moves_per_s": moves / pen_down,
        "guesses_per_move": live / max(moves, 1), "p50_ms": p50,
        "p95_ms": times[min(len(times) - 1, int(0.95 * len(times)))], "capacity_per_s": 1000 / p50,
    }


def table(rows: list[dict], runs: int) -> str:
    lines = ["| engine | replay | " + " | ".join(
        f"run {r}: guesses/s, moves/s, per move, p50 / p95 ms, 1000/p50" for r in range(1, runs + 1)) + " |",
        "|---|---|" + "---|" * runs]
    for engine in ENGINES:
        for speed in SPEEDS:
            cells = []
            for run in range(1, runs + 1):
                row = next(r for r in rows if (r["run"], r["engine"], r["speed"]) == (run, engine, speed))
                cells.append(f"{row['guesses_per_s']:.1f}, {row['moves_per_s']:.1f}, "
                             f"{row['guesses_per_move']:.2f}, {row['p50_ms']:.1f} / {row['p95_ms']:.1f}, "
                             f"{row['capacity_per_s']:.0f}")
            lines.append(f"| {engine} | {speed} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default=os.path.join(REPO, "runs", "demo"), help="trained model dir")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--drawings", type=int, default=6, help="drawings replayed per engine, speed and run")
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(args.model_dir, "model.onnx")):
        parser.error(f"no model.onnx in {args.model_dir} (make demo trains runs/demo and writes it)")
    from playwright.sync_api import sync_playwright

    from quickdraw_tf.training import run_dir

    drawings = pick_drawings(run_dir.read_classes(args.model_dir), args.drawings)
    points = sum(len(stroke[0]) for drawing in drawings for stroke in drawing.strokes)
    print(f"{len(drawings)} real raw drawings ({points} points), {args.model_dir}; "
          f"load average at start: {_load_average()}", flush=True)
    process, port = start_server(args.model_dir, max_batch=32)
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=browser_helpers.CHROMIUM,
                                                 args=browser_helpers.CHROMIUM_ARGS, headless=True)
            for run in range(1, args.runs + 1):
                for speed in SPEEDS:
                    for engine in ENGINES:
                        rows.append({"run": run, **measure(browser, url, engine, speed, drawings)})
                        rounded = {k: round(v, 2) if isinstance(v, float) else v for k, v in rows[-1].items()}
                        print(json.dumps(rounded), flush=True)
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(f"load average at the end: {_load_average()}")
    print(table(rows, args.runs))
    drawn = [r["guesses_per_s"] for r in rows if (r["engine"], r["speed"]) == ("browser", "mouse")]
    met = sum(value >= GOAL for value in drawn)
    print(f"guesses/s in the browser as a mouse draws: {', '.join(f'{v:.1f}' for v in drawn)} "
          f"(goal >= {GOAL:g}: {met}/{len(drawn)} runs)")


if __name__ == "__main__":
    main()
