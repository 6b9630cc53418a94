r"""The README's picture of the page: a real server on a trained model, a raw sample drawing
drawn by mouse at its recorded timing in Debian's Chromium, screenshot halfway through the strokes.

  python -m tests.serve.screenshot --model_dir=runs/demo --output=docs/images/serve.png [--key_id=K]
"""

from __future__ import annotations

import argparse
import os

from quickdraw_tf.inference.predictor import Predictor
from tests.serve import browser_helpers
from tests.serve.conftest import raw_sample_drawings, start_server, stop_server


def _wait_and_shoot(page, path: str) -> None:
    """Waits for the answer to the strokes so far (as a person pausing would see it), then shoots."""
    page.wait_for_function("() => window.quickdraw.shownSeq > 0", timeout=10_000)
    page.screenshot(path=path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--key_id", type=int, help="the sample drawing to draw (default: the first raw one "
                        "the model gets right with top-1 probability over 0.5, in 0.8-3.5 s)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    predictor = Predictor.load(args.model_dir)
    drawings = [d for d in raw_sample_drawings() if d.word in predictor.class_names]
    if args.key_id is not None:
        drawing = next(d for d in drawings if d.key_id == args.key_id)
    else:
        short = [d for d in drawings if 800 <= d.strokes[-1][2][-1] - d.strokes[0][2][0] <= 3500]
        answers = predictor.predict(short, top_k=1)
        drawing = next(d for d, a in zip(short, answers, strict=True) if a[0][0] == d.word and a[0][1] > 0.5)
    print(f"drawing {drawing.word} {drawing.key_id}")
    process, url = start_server([args.model_dir])
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=browser_helpers.CHROMIUM, args=browser_helpers.CHROMIUM_ARGS, headless=True
            )
            page = browser.new_page(viewport={"width": 960, "height": 780})
            page.goto(url)
            page.wait_for_selector("body[data-ready=true]")
            strokes = browser_helpers.to_canvas(drawing, page.locator("#canvas").bounding_box())
            shot = os.path.abspath(args.output)

            def screenshot():
                _wait_and_shoot(page, shot)

            browser_helpers.draw(page, strokes, *browser_helpers.mouse_actions(page), halfway=screenshot)
            browser.close()
    finally:
        stop_server(process)
    print(f"wrote {args.output} ({os.path.getsize(args.output)} bytes)")


if __name__ == "__main__":
    main()
