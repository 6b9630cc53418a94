"""train.py and evaluate.py report a bad flag or path in one line, without a traceback, and exit 2.

(TensorFlow's own start-up lines on stderr, e.g. about CUDA on a CPU machine, are not ours.)
"""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration  # every test runs a CLI in a subprocess


def _run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--model=transformer", "--data_dir={data}", "--model_dir={tmp}/m"],
            "unknown model 'transformer'; known: rnn",
        ),
        (["--data_dir={tmp}/nowhere", "--model_dir={tmp}/m"], "--data_dir {tmp}/nowhere is not a directory"),
        (["--data_dir={data}", "--model_dir={tmp}/m", "--strategy=gpu"], "value should be one of"),
        (
            ["--data_dir={tmp}/none", "--model_dir={tmp}/m"],
            "make it first with `python -m beam_jobs.make_tfrecords",
        ),
    ],
)
def test_train_reports_bad_flags_in_one_line(tfrecord_dir, tmp_path, args, message):
    args = [a.format(data=tfrecord_dir, tmp=tmp_path) for a in args]
    result = _run("quickdraw_tf.train", *args)
    errors = [line for line in result.stderr.splitlines() if line.startswith("train.py: error:")]
    assert result.returncode == 2, result.stderr
    assert len(errors) == 1
    assert message.format(tmp=tmp_path) in errors[0]
    assert "Traceback" not in result.stderr


def test_evaluate_reports_a_missing_model_dir_in_one_line(tfrecord_dir, tmp_path):
    result = _run("quickdraw_tf.evaluate", f"--model_dir={tmp_path}", f"--data_dir={tfrecord_dir}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"evaluate.py: error: no config.json in {tmp_path}: not a training model_dir"
    )
    assert "Traceback" not in result.stderr
