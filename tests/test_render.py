"""python -m quickdraw_tf.render on real sample drawings: PNG, SVG, GIF, contact sheets, 28x28 .npy."""

import glob
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from PIL import Image

from quickdraw_tf import pictures, render
from quickdraw_tf.data import bitmap, file_names, formats, preprocess
from quickdraw_tf.inference import prediction_io
from tests.sample import EYE_NPY, REPO, SAMPLE

RAW = sorted(glob.glob(os.path.join(SAMPLE, "raw", "*", "*.ndjson")))[0]
SIMPLIFIED = os.path.join(SAMPLE, "simplified", "*", "*.ndjson")


def inputs(*patterns, fmt=None):
    return prediction_io.expand_inputs(list(patterns), fmt)


@pytest.mark.parametrize("fmt", ["png", "svg", "gif"])
def test_one_file_per_drawing(fmt, tmp_path):
    limit = 2 if fmt == "gif" else 5  # a GIF has a frame per few points: two drawings show it, five are slow
    result = render.render(inputs(RAW), str(tmp_path), fmt, size=64, colour="time", limit=limit)
    assert (result["read"], result["rendered"], result["rejected"]) == (limit, limit, 0)
    drawings = list(formats.iter_drawings(RAW))[:limit]
    for drawing in drawings:
        path = tmp_path / f"{render.file_stem(drawing)}.{fmt}"
        if fmt == "svg":
            root = ElementTree.parse(path).getroot()
            assert root.get("width") == "64" and len(root.findall(".//{*}line")) > 10
        else:
            picture = Image.open(path)
            assert picture.size == (64, 64)
            if fmt == "gif":
                assert picture.n_frames > 2
                picture.seek(picture.n_frames - 1)  # the finished drawing
            pixels = np.asarray(picture.convert("L"))
            assert pixels.min() < 128 and np.median(pixels) == 255  # dark strokes on white


def test_gif_replays_raw_drawings_at_their_recorded_time():
    drawing = next(formats.iter_drawings(RAW))
    frames = pictures.gif_frames(drawing.strokes)
    duration = max(max(s[2]) for s in drawing.strokes) - min(min(s[2]) for s in drawing.strokes)
    assert len(frames) == pytest.approx(duration / pictures.GIF_STEP_MS + 1, abs=2)
    points = [sum(len(s[0]) for s in shown) for shown, _ in frames]
    assert points == sorted(points) and points[-1] == sum(len(s[0]) for s in drawing.strokes)
    simplified = pictures.gif_frames([s[:2] for s in drawing.strokes])
    assert len(simplified) == len(drawing.strokes)  # no times: one stroke more per frame
    assert simplified[-1][1] == pictures.GIF_HOLD_MS


def test_npy_rows_are_the_bitmap_recipe(tmp_path):
    result = render.render(inputs(RAW), str(tmp_path), "npy", limit=7)
    drawings = list(formats.iter_drawings(RAW))[:7]
    rows = np.load(tmp_path / f"{file_names.word_stem(drawings[0].word)}.npy")
    assert rows.shape == (7, 784) and rows.dtype == np.uint8 and result["files"]
    expected = [bitmap.google_bitmap(preprocess.simplified_strokes(d.strokes)).reshape(-1) for d in drawings]
    np.testing.assert_array_equal(rows, np.stack(expected))
    # and the job reads them back as numpy_bitmap images
    again = list(formats.iter_drawings(str(tmp_path / f"{file_names.word_stem(drawings[0].word)}.npy")))
    np.testing.assert_array_equal(again[3].image.reshape(-1), rows[3])


def test_contact_sheets_titled_by_word(tmp_path):
    result = render.render(inputs(SIMPLIFIED), str(tmp_path), "png", size=48, grid=9, per_word=2)
    assert result["rendered"] == 20 and result["read"] == result["rendered"] + result["skipped"]
    sheets = sorted(tmp_path.glob("sheet-*.png"))
    assert [p.name for p in sheets] == ["sheet-0001.png", "sheet-0002.png", "sheet-0003.png"]
    assert Image.open(sheets[0]).size == (3 * 48, 3 * (48 + 14))


def test_bad_records_and_images(tmp_path):
    bad = tmp_path / "bad.ndjson"
    good = open(RAW, encoding="utf-8").readline().strip()
    bad.write_text("\n".join([good, "{oops", '{"word": "x"}']) + "\n", encoding="utf-8")
    result = render.render(inputs(str(bad)), str(tmp_path / "out"), "svg")
    assert (result["read"], result["rendered"], result["rejected"]) == (3, 1, 2)
    lines = (tmp_path / "out" / render.REJECTED_FILE).read_text().splitlines()
    assert ['"position": 2', '"position": 3'] == [line.split(", ")[1] for line in lines]
    np.save(tmp_path / "eye.npy", np.load(EYE_NPY)[:3])
    as_png = render.render(inputs(str(tmp_path / "eye.npy")), str(tmp_path / "png"), "png")
    as_gif = render.render(inputs(str(tmp_path / "eye.npy")), str(tmp_path / "gif"), "gif")
    assert as_png["rendered"] == 3 and (as_gif["rendered"], as_gif["rejected"]) == (0, 3)


@pytest.mark.integration
def test_cli_one_line_errors(tmp_path):
    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "quickdraw_tf.render", *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": REPO},
        )

    done = cli(f"--input={RAW}", f"--output_dir={tmp_path}", "--format=svg", "--grid=4")
    assert done.returncode == 2 and done.stderr.strip().endswith(
        "--grid makes PNG contact sheets: use it with --format=png"
    )
    done = cli("--input=/nowhere.ndjson", f"--output_dir={tmp_path}")
    assert done.returncode == 2 and done.stderr.strip().endswith("input /nowhere.ndjson does not exist")
    done = cli(f"--input={RAW}", f"--output_dir={tmp_path}", "--format=gif", "--limit=2")
    assert done.returncode == 0 and "read 2 = rendered 2 + rejected 0" in done.stdout
