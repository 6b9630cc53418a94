"""A model directory is checked when it is loaded (training/run_dir.py): hostile copies of a tiny trained
run are refused in one line by the Predictor, predict (exit 2) and serve (it does not start); and the
outputs of predict and evaluate refuse planted links. Tiny models trained here (tests/predict_fixtures)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tracemalloc

import pytest

from quickdraw_tf import predict
from quickdraw_tf.data import layout, output_files
from quickdraw_tf.inference import prediction_io
from quickdraw_tf.inference.predictor import Predictor
from quickdraw_tf.training import evaluation, run_dir
from tests import predict_fixtures, sample

stroke_run = predict_fixtures.stroke_run  # session fixture
pytestmark = pytest.mark.integration
REPO = sample.REPO
BELT = os.path.join(sample.SAMPLE, "simplified", "lamnguyen5464-Sketch-dataset", "belt.ndjson")


@pytest.fixture
def hostile(stroke_run, tmp_path):
    """A copy of the trained 10-class run, to be made hostile."""
    copy = tmp_path / "run"
    shutil.copytree(stroke_run[1], copy)
    return copy


def _edit_json(path, **changes) -> None:
    values = json.loads(path.read_text())
    values.update(changes)
    path.write_text(json.dumps(values))


def _classes(model_dir) -> list[str]:
    return (model_dir / run_dir.CLASSES_FILE).read_text().splitlines()


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


HOSTILE_PREPROCESSING = [
    ({"max_points": -1000}, r"max_points must be an integer >= 0 \(0: all\), got -1000"),
    ({"max_points": "50"}, r"max_points must be an integer, got '50' \(a JSON string\)"),
    ({"max_points": 1e400}, r"is not JSON \(Infinity is not a number JSON allows\)"),  # dumps: Infinity
    ({"simplify": "yes"}, r"simplify must be true or false, got 'yes'"),
    ({"kind": "audio"}, r"kind must be one of \('strokes', 'images'\), got 'audio'"),
    ({"normalize": 3}, r"normalize must be a string, got 3"),
]


@pytest.mark.parametrize("changes, message", HOSTILE_PREPROCESSING)
def test_each_preprocessing_field_is_type_and_range_checked(hostile, changes, message):
    _edit_json(hostile / run_dir.PREPROCESSING_FILE, **changes)
    with pytest.raises(ValueError, match=message) as error:
        Predictor.load(str(hostile))
    assert _one_line(error).startswith(str(hostile / run_dir.PREPROCESSING_FILE))
    assert "Traceback" not in str(error.value)


HOSTILE_CONFIGS = [
    ({"train_steps": "1000"}, r"train_steps must be an integer, got '1000'"),
    ({"model": "nope"}, r"unknown model 'nope'; known: rnn, "),
    ({"learning_rate": None}, r"learning_rate must be a finite number, got None \(a JSON null\)"),
    ({"hparams": {"num_layers": {"deep": 1}}}, r"hparams.num_layers must be a number, boolean, string"),
    ({"input": {"batch_size": 0}}, r"input: batch_size must be >= 1, got 0"),
    ({"input": {"bucket_boundaries": "32,64"}}, r"input: bucket_boundaries must be an array"),
    ({"surprise": 1}, r"unknown field 'surprise'"),
]


@pytest.mark.parametrize("changes, message", HOSTILE_CONFIGS)
def test_each_config_field_is_type_and_range_checked(hostile, changes, message):
    _edit_json(hostile / run_dir.CONFIG_FILE, **changes)
    with pytest.raises(ValueError, match=message) as error:
        Predictor.load(str(hostile))
    assert _one_line(error).startswith(str(hostile / run_dir.CONFIG_FILE))


def test_a_config_nested_thousands_deep_is_one_line(hostile):
    (hostile / run_dir.CONFIG_FILE).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="config.json is not JSON") as error:
        Predictor.load(str(hostile))
    _one_line(error)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda words: words[:9], r"has 9 words, but the model in .* has 10 outputs"),
        (lambda words: words + ["extra"], r"has 11 words, but the model in .* has 10 outputs"),
        (lambda words: words[:4] + [""] + words[5:], r"class word '' is empty"),
        (lambda words: words[:4] + [words[3]] + words[5:], r"1 class word\(s\) repeat: 'elbow'"),
        (lambda words: words[:4] + [words[4] + " "] + words[5:], r"has leading or trailing whitespace"),
    ],
    ids=["9 lines for 10 classes", "11 lines", "a blank line", "a duplicate", "a trailing space"],
)
def test_a_class_list_that_does_not_fit_the_model_is_one_line(hostile, edit, message):
    words = _classes(hostile)
    assert len(words) == 10 and words[3] == "elbow"
    (hostile / run_dir.CLASSES_FILE).write_text("".join(f"{word}\n" for word in edit(words)))
    with pytest.raises(ValueError, match=message) as error:
        Predictor.load(str(hostile))
    _one_line(error)


def test_a_10_million_line_class_list_is_refused_without_reading_it_whole(hostile):
    with open(hostile / run_dir.CLASSES_FILE, "w", encoding="utf-8") as f:
        for start in range(0, 10_000_000, 100_000):
            f.write("".join(f"w{n}\n" for n in range(start, start + 100_000)))
    assert os.path.getsize(hostile / run_dir.CLASSES_FILE) > 80_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"classes.txt is over 1,048,576 bytes: not a class") as error:
            Predictor.load(str(hostile))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _one_line(error)
    assert peak < 3 * layout.MAX_CLASSES_BYTES + (4 << 20)  # the bounded read, never the 80 MB


def _cli(module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", module, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)


def test_predict_and_serve_refuse_a_hostile_model_dir_in_one_line(hostile, tmp_path):
    _edit_json(hostile / run_dir.PREPROCESSING_FILE, max_points=-1000)
    output = f"--output={tmp_path}/p.csv"
    done = _cli("quickdraw_tf.predict", f"--model_dir={hostile}", f"--input={BELT}", output)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.endswith("max_points must be an integer >= 0 (0: all), got -1000")
    assert not (tmp_path / "p.csv").exists()
    _edit_json(hostile / run_dir.PREPROCESSING_FILE, max_points=0)
    (hostile / run_dir.CLASSES_FILE).write_text("".join(f"{w}\n" for w in _classes(hostile)[:9]))
    served = _cli("quickdraw_tf.serve", f"--model_dir={hostile}", "--port=1", timeout=120)  # never listens
    assert served.returncode == 2 and "Traceback" not in served.stderr
    expected = f"but the model in {hostile} has 10 outputs: the class list is not the one it was trained on"
    assert served.stderr.strip().splitlines()[-1].endswith(expected)


# ---------------------------------------------------------------------------------------------------
# predict's and evaluate's outputs with planted links


def _plant(path, victim) -> None:
    victim.write_text("precious\n")
    os.symlink(victim, path)


@pytest.mark.parametrize("name", ["preds.csv", prediction_io.REJECTED_FILE])
def test_predict_refuses_a_planted_link_before_predicting(stroke_run, tmp_path, name):
    victim = tmp_path / "victim.txt"
    _plant(tmp_path / name, victim)
    inputs = prediction_io.expand_inputs([BELT])
    with pytest.raises(output_files.OutputPathError, match=f"{name} is a symbolic link") as error:
        predict.run_predict(Predictor.load(stroke_run[1]), inputs, str(tmp_path / "preds.csv"))
    _one_line(error)
    assert victim.read_text() == "precious\n" and os.path.islink(tmp_path / name)


def test_predict_no_longer_writes_through_a_stale_part_link(stroke_run, tmp_path):
    victim = tmp_path / "victim.txt"
    _plant(tmp_path / "preds.csv.part", victim)
    done = _cli("quickdraw_tf.predict", f"--model_dir={stroke_run[1]}", f"--input={BELT}",
                f"--output={tmp_path}/preds.csv")
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "precious\n" and os.path.islink(tmp_path / "preds.csv.part")
    assert (tmp_path / "preds.csv").read_text().startswith("key_id,word,word_1,word_2,word_3,")


@pytest.mark.parametrize("name", ["eval_results.json", "confusion_matrix_test.png", "eval_test"])
def test_evaluate_refuses_a_planted_link_before_evaluating(stroke_run, hostile, tmp_path, name):
    victim = tmp_path / "victim.txt"
    target = hostile / name
    if target.is_dir():
        shutil.rmtree(target)
    target.unlink(missing_ok=True)
    _plant(target, victim)
    with pytest.raises(output_files.OutputPathError, match=f"{name} is a symbolic link") as error:
        evaluation.evaluate(str(hostile), stroke_run[0], "test")
    _one_line(error)
    assert victim.read_text() == "precious\n"
    done = _cli("quickdraw_tf.evaluate", f"--model_dir={hostile}", f"--data_dir={stroke_run[0]}")
    assert done.returncode == 2 and done.stderr.strip().endswith("refusing to write through it (remove it)")
    assert victim.read_text() == "precious\n"
