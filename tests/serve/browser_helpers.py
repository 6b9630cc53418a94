"""Driving the drawing page in Chromium: shared by test_browser.py and screenshot.py."""

from __future__ import annotations

import time

import numpy as np

from quickdraw_tf.data.drawing import Drawing

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MARGIN = 12.0  # CSS px between the drawing and the canvas edge


def to_canvas(drawing: Drawing, box: dict) -> list[tuple[list[float], list[float], list[float]]]:
    """The drawing scaled into the canvas (page coordinates), keeping its aspect ratio and its times."""
    xs = np.concatenate([s[0] for s in drawing.strokes])
    ys = np.concatenate([s[1] for s in drawing.strokes])
    scale = (min(box["width"], box["height"]) - 2 * MARGIN - 4) / max(np.ptp(xs), np.ptp(ys), 1.0)
    left, top = box["x"] + 2 + MARGIN, box["y"] + 2 + MARGIN  # 2: the canvas border
    t0 = drawing.strokes[0][2][0]
    return [([left + (x - xs.min()) * scale for x in s[0]], [top + (y - ys.min()) * scale for y in s[1]],
             [t - t0 for t in s[2]]) for s in drawing.strokes]


def sleep_until(start: float, t_ms: float) -> None:
    delay = start + t_ms / 1000.0 - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def draw(page, strokes, down, move, up, halfway=None) -> list[list[float]]:
    """Replays strokes at their recorded times with the given pointer actions; returns when each point
    was actually sent (ms since the first), which a slow or busy machine can make later than recorded.
    `halfway()` is called once half of the points are drawn, with the pointer still down."""
    start = time.perf_counter()
    half = sum(len(xs) for xs, _, _ in strokes) // 2
    count = 0
    sent = []
    for xs, ys, ts in strokes:
        times = []
        for i, (x, y, t) in enumerate(zip(xs, ys, ts, strict=True)):
            sleep_until(start, t)
            before = time.perf_counter()
            (down if i == 0 else move)(x, y)
            times.append(1000.0 * ((before + time.perf_counter()) / 2 - start))
            count += 1
            if halfway is not None and count == half:
                halfway()
        sent.append(times)
        up()
    return sent


def mouse_actions(page):
    def down(x, y):
        page.mouse.move(x, y)
        page.mouse.down()

    return down, page.mouse.move, page.mouse.up


def touch_actions(page):
    cdp = page.context.new_cdp_session(page)

    def touch(kind, points):
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    return (lambda x, y: touch("touchStart", [{"x": x, "y": y}]),
            lambda x, y: touch("touchMove", [{"x": x, "y": y}]),
            lambda: touch("touchEnd", []))


def wait_for_newest_answer(page) -> None:
    page.wait_for_function(
        "() => window.quickdraw.seq > 0 && window.quickdraw.shownSeq === window.quickdraw.seq"
        " && window.quickdraw.pending === null && !window.quickdraw.guessing",
        timeout=15_000,
    )


def shown_top3(page) -> list[tuple[str, float]]:
    return [tuple(row) for row in page.eval_on_selector_all(
        "#guesses li", "items => items.map(li => [li.dataset.word, Number(li.dataset.probability)])")]
