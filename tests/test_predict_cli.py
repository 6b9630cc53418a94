"""python -m quickdraw_tf.predict: every input format, the top-k CSV and Kaggle's submission layout byte
for byte, bad records, scores equal to evaluation.py, one-line errors (exit 2). Tiny models trained here."""

import csv
import gzip
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from quickdraw_tf import predict
from quickdraw_tf.data import formats
from quickdraw_tf.inference import prediction_io
from quickdraw_tf.inference.predictor import Predictor
from quickdraw_tf.training import evaluation
from tests import predict_fixtures
from tests.predict_fixtures import as_drawing, split_of
from tests.sample import REPO, SAMPLE, eye_bitmaps, sample_drawings

stroke_run, image_run = predict_fixtures.stroke_run, predict_fixtures.image_run  # session fixtures
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def predictor(stroke_run):
    return Predictor.load(stroke_run[1])


@pytest.fixture(scope="module")
def drawings():
    """Real simplified drawings of every word, The Eiffel Tower (a word with spaces) first."""
    chosen = [as_drawing(record) for record in sample_drawings()[::25]]
    assert len(chosen) >= 10 and chosen[0].word == "The Eiffel Tower"
    return chosen


def run(predictor, tmp_path, paths, fmt=None, **options):
    output = str(tmp_path / "out.csv")
    summary = predict.run_predict(predictor, prediction_io.expand_inputs(paths, fmt), output, **options)
    with open(output, encoding="utf-8", newline="") as f:
        text = f.read()
    with open(summary["rejected_file"], encoding="utf-8") as f:
        rejected = [json.loads(line) for line in f]
    return summary, text, rejected


def write_every_format(drawings, directory) -> dict[str, str]:
    paths = {name: str(directory / name) for name in ("d.ndjson", "d.ndjson.gz", "d.csv", "kaggle.csv")}
    with open(paths["d.ndjson"], "w", encoding="utf-8") as f:
        formats.write_ndjson(drawings, f)
    with gzip.open(paths["d.ndjson.gz"], "wt", encoding="utf-8") as f:
        formats.write_ndjson(drawings, f)
    with open(paths["d.csv"], "w", encoding="utf-8", newline="") as f:
        formats.write_csv(drawings, f)
    with open(paths["kaggle.csv"], "w", encoding="utf-8", newline="") as f:  # the test layout: no word
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["key_id", "countrycode", "drawing"])
        for d in drawings:
            writer.writerow([d.key_id, d.countrycode, json.dumps(list(d.strokes), separators=(",", ":"))])
    paths["d.bin"] = str(directory / "belt.bin")
    with open(paths["d.bin"], "wb") as f:
        formats.write_bin(drawings, f)
    paths["d.npz"] = str(directory / "sketchrnn_belt.npz")
    formats.write_npz(paths["d.npz"], {"test": list(drawings)})
    return paths


def test_every_stroke_format_gives_the_same_guesses(predictor, drawings, tmp_path):
    expected = [[w for w, _ in row] for row in predictor.predict(drawings, top_k=3)]
    for name, path in write_every_format(drawings, tmp_path).items():
        summary, text, rejected = run(predictor, tmp_path, [path])
        n = len(drawings)
        assert (summary["read"], summary["predicted"], rejected) == (n, n, []), name
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [[row[f"word_{i}"] for i in (1, 2, 3)] for row in rows] == expected, name
        if name in ("d.ndjson", "d.ndjson.gz", "d.csv"):  # formats that store the word and key_id
            assert [row["word"] for row in rows] == [d.word for d in drawings]
            assert [int(row["key_id"]) for row in rows] == [d.key_id for d in drawings]


def test_top_k_csv_layout(predictor, drawings, tmp_path):
    path = write_every_format(drawings, tmp_path)["d.ndjson"]
    _, text, _ = run(predictor, tmp_path, [path], top_k=2)
    lines = text.split("\n")
    assert lines[0] == "key_id,word,word_1,word_2,probability_1,probability_2"
    first = next(csv.reader([lines[1]]))
    top = predictor.predict(drawings[:1], top_k=2)[0]
    assert first == [str(drawings[0].key_id), drawings[0].word, top[0][0], top[1][0]] + [
        f"{p:.6f}" for _, p in top
    ]
    kaggle_path = write_every_format(drawings, tmp_path)["kaggle.csv"]
    _, text, _ = run(predictor, tmp_path, [kaggle_path])
    assert text.startswith("key_id,word_1,word_2,word_3,probability_1,")  # no words in the input: no column


def test_kaggle_submission_is_byte_exact(predictor, drawings, tmp_path):
    path = write_every_format(drawings, tmp_path)["kaggle.csv"]
    summary, text, _ = run(predictor, tmp_path, [path], kaggle_submission=True)
    top = predictor.predict(drawings, top_k=3)
    expected = "key_id,word\n" + "".join(
        f"{d.key_id},{' '.join(w.replace(' ', '_') for w, _ in row)}\n"
        for d, row in zip(drawings, top, strict=True)
    )
    assert text == expected
    assert '"' not in text and "\r" not in text
    assert summary["scores"] is None  # the test layout has no words


def test_images_for_an_image_model_and_rejected_for_a_stroke_model(image_run, predictor, tmp_path):
    eyes = eye_bitmaps(40)
    np.save(tmp_path / "eye.npy", eyes)
    eyes.tofile(tmp_path / "my.eye.rows.bin")
    cnn = Predictor.load(image_run[1])
    summary, text, _ = run(cnn, tmp_path, [str(tmp_path / "eye.npy")])
    assert summary["predicted"] == 40 and summary["unknown_words"] == 40  # eye is not one of its classes
    summary, raw_text, _ = run(cnn, tmp_path, [str(tmp_path / "my.eye.rows.bin")], fmt="bitmap_raw")
    guesses = [line.split(",")[2:5] for line in text.splitlines()[1:]]
    assert [line.split(",")[2:5] for line in raw_text.splitlines()[1:]] == guesses
    summary, _, rejected = run(predictor, tmp_path, [str(tmp_path / "eye.npy")])
    assert (summary["read"], summary["predicted"], summary["rejected"]) == (40, 0, 40)
    assert {r["reason"] for r in rejected} == {"bad_image"} and [r["position"] for r in rejected] == list(
        range(40)
    )
    assert all(r["key_id"] == formats.derived_key_id("eye.npy", r["position"]) for r in rejected)


def test_bad_records_are_rejected_with_reason_and_position(predictor, drawings, tmp_path):
    good = json.dumps(
        {
            "word": "belt",
            "countrycode": "US",
            "timestamp": "2017-03-01 00:00:00.0 UTC",
            "recognized": True,
            "key_id": "17",
            "drawing": [[[0, 40, 90], [5, 9, 30]]],
        }
    )
    lines = [
        good,
        "{not json",
        good.replace("[[0, 40, 90], [5, 9, 30]]", "[[0], [5]]"),
        good.replace("[5, 9, 30]", "[5, 9]"),
        "[1, 2]",
        good,
    ]
    path = tmp_path / "mixed.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary, text, rejected = run(predictor, tmp_path, [str(path)])
    assert (summary["read"], summary["predicted"], summary["rejected"]) == (6, 2, 4)
    assert [(r["position"], r["reason"]) for r in rejected] == [
        (2, "invalid_json"),
        (3, "too_short"),
        (4, "mismatched_lengths"),
        (5, "not_an_object"),
    ]
    assert rejected[0]["text"] == "{not json" and rejected[1]["text"] == lines[2]
    assert len(text.splitlines()) == 3


def _cli(*args, env_extra=None):
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "quickdraw_tf.predict", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )


def test_cli_scores_equal_evaluate_on_the_same_drawings(stroke_run, predictor, tmp_path):
    data_dir, model_dir = stroke_run
    results = evaluation.evaluate(model_dir, data_dir, split="test", batch_size=32)
    test = [as_drawing(r) for r in sample_drawings() if split_of(int(r["key_id"])) == "test"]
    with open(tmp_path / "test.ndjson", "w", encoding="utf-8") as f:
        formats.write_ndjson(test, f)
    output = tmp_path / "preds.csv"
    done = _cli(
        f"--model_dir={model_dir}",
        f"--input={tmp_path / 'test.ndjson'}",
        f"--output={output}",
        "--batch_size=5",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"read {len(test)} = predicted {len(test)} + rejected 0" in done.stdout
    expected = (
        f"top-1 {results['top1']:.4f}  top-3 {results['top3']:.4f}  MAP@3 {results['map3']:.4f} "
        f"on {results['num_examples']} drawings with words"
    )
    assert expected in done.stdout
    assert "records/s" in done.stderr and "ETA" in done.stderr
    with open(output, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    top = predictor.predict(test, top_k=3)
    assert [[r[f"word_{i}"] for i in (1, 2, 3)] for r in rows] == [[w for w, _ in row] for row in top]


def test_cli_errors_are_one_line_exit_2(stroke_run, tmp_path):
    missing = _cli(f"--model_dir={stroke_run[1]}", "--input=/no/such/*.ndjson", f"--output={tmp_path}/p.csv")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].endswith("input /no/such/*.ndjson matches no file")
    path = os.path.join(SAMPLE, "simplified", "*", "*.ndjson")
    untrained = _cli(f"--model_dir={tmp_path}", f"--input={path}", f"--output={tmp_path}/p.csv")
    assert untrained.returncode == 2
    last = untrained.stderr.strip().splitlines()[-1]
    assert "error: no trained model in" in last and "Traceback" not in untrained.stderr
