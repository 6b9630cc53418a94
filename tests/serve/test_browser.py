"""The drawing page in a real Chromium (Debian's, driven by Playwright) against a real server process:
a held-out sample drawing drawn at its recorded timing, by mouse and by touch, must show the Predictor's
top-3 for the drawing the page recorded, which must be the drawing that was drawn, whether the page
guesses in the browser (its default: the run has a model.onnx) or asks the server (?engine=server)."""

from __future__ import annotations

import numpy as np
import pytest

from quickdraw_tf.data import formats
from quickdraw_tf.data.drawing import Drawing
from tests.serve import browser_helpers
from tests.serve.conftest import held_out_raw_drawings

pytestmark = pytest.mark.integration


def _duration_ms(drawing: Drawing) -> float:
    return float(drawing.strokes[-1][2][-1] - drawing.strokes[0][2][0])


@pytest.fixture(scope="module")
def drawing(predictor) -> Drawing:
    """A held-out raw drawing short enough to draw in real time (0.8-3.5 s) whose Predictor top-4 has clear
    gaps, so that the pixel rounding of replaying it cannot reorder its top-3."""
    candidates = [d for d in held_out_raw_drawings(list(predictor.class_names))
                  if 800 <= _duration_ms(d) <= 3500 and len(d.strokes) <= 8]
    assert candidates, "no held-out raw drawing of 0.8-3.5 s in the sample"
    probabilities = predictor.probabilities([predictor.prepare(d) for d in candidates])
    top4 = -np.sort(-probabilities, axis=1)[:, :4]
    gaps = np.min(top4[:, :3] - top4[:, 1:], axis=1)
    return candidates[int(np.argmax(gaps))]


def _downloaded(page) -> Drawing:
    """The page's 'download my drawing' file, read back by the toolkit's own ndjson reader."""
    with page.expect_download() as info:
        page.click("#download")
    path = info.value.path()
    with open(path, "rb") as f:
        records = list(formats.read_source_records(f, str(path), "ndjson"))
    assert len(records) == 1
    return formats.parse_record(records[0])


def _assert_recorded_as_drawn(recorded: Drawing, drawn, sent: list[list[float]]) -> None:
    """The page's strokes are the points that were drawn (within a pixel) at the times they were sent."""
    assert recorded.is_raw and len(recorded.strokes) == len(drawn)
    origin = (drawn[0][0][0] - recorded.strokes[0][0][0], drawn[0][1][0] - recorded.strokes[0][1][0])
    for (rx, ry, rt), (xs, ys, _), times in zip(recorded.strokes, drawn, sent, strict=True):
        assert 0.9 * len(xs) <= len(rx) <= len(xs)  # a move to the same pixel fires no event
        for i in (0, -1):  # each stroke starts and ends where it was drawn, when it was drawn
            assert abs(rx[i] + origin[0] - xs[i]) <= 1.0 and abs(ry[i] + origin[1] - ys[i]) <= 1.0
            assert abs(rt[i] - (times[i] - sent[0][0])) <= 250, (rt[i], times[i] - sent[0][0])
    assert recorded.strokes[0][2][0] == 0  # t: ms since the first point


def _check_page(page, predictor, drawing, recorded: Drawing) -> list[tuple[str, float]]:
    shown = browser_helpers.shown_top3(page)
    expected = predictor.predict([recorded], top_k=3)[0]
    assert [w for w, _ in shown] == [w for w, _ in expected]
    np.testing.assert_allclose([p for _, p in shown], [p for _, p in expected], rtol=1e-4, atol=1e-6)
    # and the Predictor's top-3 for the original sample drawing is the same
    assert [w for w, _ in shown] == [w for w, _ in predictor.predict([drawing], top_k=3)[0]]
    return shown


@pytest.mark.parametrize("engine", ["browser", "server"])
def test_mouse_drawing_shows_the_predictors_top3_while_drawing(
    browser, server, predictor, drawing, tmp_path, engine
):
    target = predictor.predict([drawing], top_k=1)[0][0][0]
    page = browser.new_page(viewport={"width": 1000, "height": 760})
    page.goto(f"{server}/?target={target}" + ("&engine=server" if engine == "server" else ""))
    page.wait_for_selector("body[data-ready=true]")
    assert page.get_attribute("body", "data-engine") == engine
    page.click("#play")
    assert page.text_content("#target") == target and page.is_visible("#timer")
    screenshot = tmp_path / "serve.png"
    box = page.locator("#canvas").bounding_box()
    strokes = browser_helpers.to_canvas(drawing, box)
    actions = browser_helpers.mouse_actions(page)
    shoot = lambda: page.screenshot(path=str(screenshot))  # noqa: E731 - the page mid-stroke
    sent = browser_helpers.draw(page, strokes, *actions, halfway=shoot)
    browser_helpers.wait_for_newest_answer(page)
    live_updates = int(page.get_attribute("#guesses", "data-live-updates"))
    assert live_updates >= 2, "the guesses did not change while the strokes were being drawn"
    if engine == "browser":  # every guess shown was made in the page
        assert page.evaluate("window.quickdraw.guessTimes.length") == int(
            page.get_attribute("#guesses", "data-updates"))
    recorded = _downloaded(page)
    _assert_recorded_as_drawn(recorded, strokes, sent)
    _check_page(page, predictor, drawing, recorded)
    assert page.text_content("#message") == f"Oh I know, it's a {target}!"
    assert screenshot.stat().st_size < 300_000
    # keyboard: Enter on Undo undoes a stroke; Tab goes on to Clear, which the space bar presses
    page.focus("#undo")
    page.keyboard.press("Enter")
    assert page.evaluate("window.quickdraw.strokes.length") == len(drawing.strokes) - 1
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "clear"
    page.keyboard.press(" ")
    assert page.evaluate("window.quickdraw.strokes.length") == 0
    assert page.locator("#guesses li").count() == 0
    page.close()


def test_touch_drawing_at_phone_width(browser, server, predictor, drawing):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(server)
    page.wait_for_selector("body[data-ready=true]")
    assert page.get_attribute("body", "data-engine") == "browser"
    box = page.locator("#canvas").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390  # the canvas fits the phone's width
    assert page.evaluate("getComputedStyle(document.getElementById('canvas')).touchAction") == "none"
    strokes = browser_helpers.to_canvas(drawing, box)
    sent = browser_helpers.draw(page, strokes, *browser_helpers.touch_actions(page))
    browser_helpers.wait_for_newest_answer(page)
    assert page.get_attribute("#canvas", "data-pointer-types") == "touch"
    recorded = Drawing(key_id=0, word="", strokes=tuple(page.evaluate("window.quickdraw.strokes")))
    _assert_recorded_as_drawn(recorded, strokes, sent)
    _check_page(page, predictor, drawing, recorded)
    for button in ("#undo", "#clear", "#download", "#play"):  # every button reachable on the phone
        button_box = page.locator(button).bounding_box()
        assert button_box["x"] + button_box["width"] <= 390
    context.close()


def test_finish_my_drawing_streams_new_strokes_onto_the_canvas(browser, server, drawing):
    page = browser.new_page(viewport={"width": 1000, "height": 760})
    page.goto(server)
    page.wait_for_selector("body[data-ready=true]")
    assert page.is_visible("#finish")
    box = page.locator("#canvas").bounding_box()
    strokes = [(xs, ys, [0.0] * len(xs)) for xs, ys, _ in browser_helpers.to_canvas(drawing, box)]
    given = strokes[: max(1, len(strokes) // 2)]
    browser_helpers.draw(page, given, *browser_helpers.mouse_actions(page))  # as fast as it goes
    browser_helpers.wait_for_newest_answer(page)
    updates = int(page.get_attribute("#guesses", "data-updates"))
    for _ in range(3):  # a sample can end at once (the generator's end token): press again, as a user would
        page.click("#finish")  # the word: the top guess (no pictionary target)
        page.wait_for_function("() => !window.quickdraw.finishing", timeout=15_000)
        browser_helpers.wait_for_newest_answer(page)
        added = page.evaluate("window.quickdraw.strokes")[len(given):]
        if added:
            break
    assert added, page.text_content("#timing")
    assert all(len(s[0]) == len(s[1]) == len(s[2]) >= 1 for s in added)
    assert int(page.get_attribute("#guesses", "data-updates")) > updates  # guessed again after it
    # the new points that fall on the canvas were drawn there: their pixels are ink
    inside = [[x, y] for s in added for x, y in zip(s[0], s[1], strict=True)
              if 2 <= x < box["width"] - 6 and 2 <= y < box["height"] - 6]
    inked = page.evaluate("""points => {
        const canvas = document.getElementById("canvas"), ratio = window.devicePixelRatio || 1;
        const ctx = canvas.getContext("2d");
        return points.filter(([x, y]) =>
            ctx.getImageData(Math.round(x * ratio), Math.round(y * ratio), 1, 1).data[3] > 0).length;
    }""", inside)
    assert inked == len(inside)
    page.close()
