"""quickdraw_tf.Predictor on tiny models trained here on real sample drawings: preprocessing recorded in
model_dir, the same top-3 as evaluation.py, ensembles (weights, mixed stroke + image, mismatched classes),
canvas strokes, and `import quickdraw_tf` being enough for keras.models.load_model in a fresh Python."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from quickdraw_tf.data import preprocess
from quickdraw_tf.data.drawing import Drawing, InvalidRecord
from quickdraw_tf.inference.predictor import Predictor
from quickdraw_tf.training import evaluation
from tests import predict_fixtures
from tests.predict_fixtures import as_drawing, split_of
from tests.sample import REPO, sample_drawings

stroke_run, image_run = predict_fixtures.stroke_run, predict_fixtures.image_run  # session fixtures

pytestmark = pytest.mark.integration


def test_preprocessing_and_classes_travel_into_model_dir(stroke_run):
    data_dir, model_dir = stroke_run
    with open(os.path.join(model_dir, "preprocessing.json")) as f:
        recorded = json.load(f)
    assert recorded == {"kind": "strokes", "normalize": "uniform", "simplify": True, "max_points": 100}
    with open(os.path.join(model_dir, "classes.txt")) as f, open(os.path.join(data_dir, "classes.txt")) as g:
        assert f.read() == g.read()


def test_predictor_gives_evaluate_scores_on_the_same_drawings(stroke_run):
    data_dir, model_dir = stroke_run
    results = evaluation.evaluate(model_dir, data_dir, split="test", batch_size=32)
    test = [as_drawing(r) for r in sample_drawings() if split_of(int(r["key_id"])) == "test"]
    predictor = Predictor.load(model_dir)
    probabilities = predictor.probabilities([predictor.prepare(d) for d in test], batch_size=7)
    labels = np.array([predictor.class_names.index(d.word) for d in test])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :3]
    hits = order == labels[:, None]
    assert len(test) == results["num_examples"]
    assert hits[:, 0].mean() == pytest.approx(results["top1"], abs=1e-6)
    assert hits.any(axis=1).mean() == pytest.approx(results["top3"], abs=1e-6)
    assert (hits / np.arange(1, 4)).sum(axis=1).mean() == pytest.approx(results["map3"], abs=1e-6)
    # predict() is prepare + probabilities + top_k, whatever the batch size.
    top = predictor.predict(test[:20], top_k=3, batch_size=64)
    assert [[w for w, _ in row] for row in top] == [
        [predictor.class_names[i] for i in row] for row in order[:20]
    ]


def test_raw_twin_and_canvas_strokes_prepare_like_the_job(stroke_run):
    _, model_dir = stroke_run
    predictor = Predictor.load(model_dir)
    raw = sample_drawings()[0]["drawing"]
    # A canvas: floats, another scale and origin, no times.
    canvas = [[[x * 2.5 - 300.25 for x in s[0]], [y * 2.5 + 17.5 for y in s[1]]] for s in raw]
    prepared = predictor.prepare(Drawing(key_id=0, word="", strokes=tuple(canvas)))[0]["ink"]
    expected = preprocess.stroke_ink(raw)  # the job's ink for the simplified drawing
    assert prepared.shape[1] == 3 and len(prepared) <= 100
    assert np.abs(prepared[:, :2].sum(axis=0)).max() <= 1.0 + 1e-6  # normalized deltas
    assert preprocess.is_raw(canvas) and not preprocess.is_raw(raw)
    np.testing.assert_allclose(np.abs(prepared).max(), np.abs(expected).max(), atol=0.25)


@pytest.mark.parametrize(
    "strokes, reason",
    [
        ((), "empty_drawing"),
        (([[1.0], [2.0]],), "too_short"),
        (([[1.0, float("nan")], [2.0, 3.0]],), "bad_coordinate"),
        (([[1.0, 2.0], [2.0]],), "mismatched_lengths"),
        (([[1, "a"], [2, 3]],), "bad_coordinate"),
    ],
)
def test_unusable_drawings_raise_one_line_reasons(stroke_run, strokes, reason):
    predictor = Predictor.load(stroke_run[1])
    with pytest.raises(InvalidRecord) as caught:
        predictor.prepare(Drawing(key_id=1, word="", strokes=strokes))
    assert caught.value.reason == reason and "\n" not in str(caught.value)


def test_image_member_renders_strokes_and_takes_images(image_run):
    _, model_dir = image_run
    predictor = Predictor.load(model_dir)
    assert predictor.accepts_images and predictor.accepts_strokes and predictor.name == "bitmap_cnn"
    drawing = as_drawing(sample_drawings()[0])
    image = predictor.prepare(drawing)[0]["image"]
    as_image = Drawing(key_id=2, word="", image=image)
    np.testing.assert_array_equal(
        predictor.probabilities([predictor.prepare(as_image)]),
        predictor.probabilities([predictor.prepare(drawing)]),
    )


def test_ensemble_averages_weighted_probabilities_of_mixed_members(stroke_run, image_run):
    drawings = [as_drawing(r) for r in sample_drawings()[::37]]
    rnn, cnn = Predictor.load(stroke_run[1]), Predictor.load(image_run[1])
    both = Predictor.load([stroke_run[1], image_run[1]], weights=[3, 1])
    assert both.name == "rnn+bitmap_cnn" and not both.accepts_images
    expected = 0.75 * rnn.probabilities([rnn.prepare(d) for d in drawings]) + 0.25 * cnn.probabilities(
        [cnn.prepare(d) for d in drawings]
    )
    np.testing.assert_allclose(both.probabilities([both.prepare(d) for d in drawings]), expected, atol=1e-6)
    with pytest.raises(InvalidRecord, match="needs strokes"):
        both.prepare(Drawing(key_id=3, word="", image=np.zeros((28, 28), np.uint8)))


def test_ensemble_of_other_classes_is_refused_in_one_line(stroke_run, tmp_path):
    other = str(tmp_path / "other")
    shutil.copytree(stroke_run[1], other)
    with open(os.path.join(other, "classes.txt"), "a") as f:
        f.write("cat\n")
    with pytest.raises(
        ValueError, match=r"^cannot ensemble: .* has other classes than .*\(11 classes against 10\)$"
    ):
        Predictor.load([stroke_run[1], other])
    with pytest.raises(ValueError, match="weights"):
        Predictor.load([stroke_run[1], stroke_run[1]], weights=[1])


def test_untrained_model_dir_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trained model"):
        Predictor.load(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Predictor.load(str(tmp_path / "missing"))


def test_register_all_is_enough_for_keras_load_model(image_run, stroke_run):
    code = (
        "import sys, keras, quickdraw_tf.models\n"
        "quickdraw_tf.models.register_all()\n"
        "for path in sys.argv[1:]:\n"
        "    print(type(keras.models.load_model(path)).__name__)\n"
    )
    paths = [os.path.join(run[1], "model.keras") for run in (image_run, stroke_run)]
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", code, *paths], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["BitmapCNN", "RnnClassifier"]
    # Importing the package registers nothing (it changes no process-wide state): Keras cannot find the
    # classes, so the registration above is what made it work.
    load = "import keras, sys, quickdraw_tf; keras.models.load_model(sys.argv[1])"
    bare = subprocess.run(
        [sys.executable, "-c", load, paths[0]],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert bare.returncode != 0 and "BitmapCNN" in bare.stderr


def test_import_quickdraw_tf_does_not_import_tensorflow():
    # The Beam job's workers import quickdraw_tf.data.formats and must not pay for TensorFlow.
    code = (
        "import sys, quickdraw_tf.data.formats, quickdraw_tf.data.preprocess;"
        " print('tensorflow' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO},
    )
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr[-2000:]
