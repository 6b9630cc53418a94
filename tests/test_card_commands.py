"""The design card's three commands work as written: data/tfrecords and runs/<flagfile name>
are the defaults, every config under configs/ runs with no other flag once its data is in place, and a
missing data dir is one line that names the conversion to run."""

import glob
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing import event_multiplexer

from quickdraw_tf import models
from quickdraw_tf.data import layout
from quickdraw_tf.training import config_flags, trainer
from tests.sample import REPO
from tests.train_cli import config_as_the_cli_builds_it

CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "*.flags")))
IMAGE_FORMATS = ("npy", "bitmap_raw")


@pytest.mark.parametrize(
    "argv, names",
    [
        (["train.py", "--flagfile=configs/rnn.flags"], ["configs/rnn.flags"]),
        (
            ["train.py", "-flagfile=a.flags", "--flagfile", "b.flags", "--train_steps=2"],
            ["a.flags", "b.flags"],
        ),
        (["train.py", "--model=rnn", "--", "--flagfile=c.flags"], []),
        (["train.py", "--flagfile_x=d"], []),
    ],
)
def test_flagfile_names_are_read_from_argv(argv, names):
    assert config_flags.flagfile_names(argv) == names


def test_model_dir_defaults_to_runs_and_the_flagfile_name():
    default_model_dir = config_flags.default_model_dir
    assert default_model_dir(["t", "--flagfile=configs/rnn.flags"], "rnn") == os.path.join("runs", "rnn")
    assert default_model_dir(["t", "--flagfile=a/base.flags", "--flagfile=b/mine.flags"], "rnn") == (
        os.path.join("runs", "mine")
    )
    assert default_model_dir(["t", "--model=mobilenet"], "mobilenet") == os.path.join("runs", "mobilenet")


def _header_commands(path: str) -> list[str]:
    """The make_tfrecords commands in a flagfile's header (comment lines, backslash continuations joined)."""
    with open(path, encoding="utf-8") as f:
        header = "\n".join(line[1:].rstrip("\n") for line in f if line.startswith("#"))
    header = header.replace("\\\n", " ")
    return [line for line in header.splitlines() if "beam_jobs.make_tfrecords" in line]


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(p) for p in CONFIGS])
def test_every_config_runs_with_no_other_flag(path, tfrecord_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("data")
    os.symlink(tfrecord_dir, layout.DEFAULT_DATA_DIR)  # the stroke data, where make_tfrecords writes it
    config = config_as_the_cli_builds_it(["train.py", f"--flagfile={os.path.relpath(path)}"])
    name = os.path.splitext(os.path.basename(path))[0]
    assert config.model_dir == os.path.join("runs", name)
    if config.data_dir == layout.DEFAULT_DATA_DIR:
        trainer.validate(config)  # hparams, batch size, data dir, classes and train shards
    else:
        # An image config: its header states the one conversion that writes its --data_dir.
        models.check_hparams(config.model, config.hparams)
        (command,) = _header_commands(path)
        args = shlex.split(command)
        assert f"--output_dir={config.data_dir}" in args
        assert any(arg in (f"--format={f}" for f in IMAGE_FORMATS) for arg in args)


def _run(cwd, *args, timeout=900):
    env = {**os.environ, "PYTHONPATH": str(cwd), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.integration
def test_a_missing_data_dir_names_the_conversion_in_one_line(tmp_path):
    shutil.copytree(os.path.join(REPO, "configs"), tmp_path / "configs")
    os.symlink(os.path.join(REPO, "quickdraw_tf"), tmp_path / "quickdraw_tf")
    result = _run(tmp_path, "quickdraw_tf.train", "--flagfile=configs/rnn.flags")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("train.py:")]
    assert errors == [
        "train.py: error: --data_dir data/tfrecords is not a directory: make it first with "
        "`python -m beam_jobs.make_tfrecords --runner=DirectRunner` (converts the embedded sample)"
    ]
    assert "Traceback" not in result.stderr


def _copy_repo(dest: str) -> None:
    """What a fresh clone holds: code, configs and the embedded sample; no converted data, no runs."""
    ignore = shutil.ignore_patterns(
        ".*", "__pycache__", "*.egg-info", "runs", "build", "tfrecords", "bitmap10"
    )
    shutil.copytree(REPO, dest, ignore=ignore, dirs_exist_ok=True)


@pytest.mark.integration
def test_the_card_commands_as_written(tmp_path):
    repo = tmp_path / "quickdraw-tf"
    _copy_repo(str(repo))
    converted = _run(repo, "beam_jobs.make_tfrecords", "--runner=DirectRunner")
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert (repo / "data" / "tfrecords" / layout.CLASSES_FILE).exists()

    # The card's train command, with --train_steps=2 appended (rnn.flags is a 100k-step GPU config).
    trained = _run(repo, "quickdraw_tf.train", "--flagfile=configs/rnn.flags", "--train_steps=2")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert re.search(r"^data_dir: +data/tfrecords$", trained.stdout, re.M)
    assert re.search(r"^model_dir: +runs/rnn$", trained.stdout, re.M)
    assert re.search(r"^TensorBoard: tensorboard --logdir runs/rnn$", trained.stdout, re.M)
    assert (repo / "runs" / "rnn" / "model.keras").exists()

    # What `tensorboard --logdir runs` shows: its multiplexer over the runs under runs/.
    multiplexer = event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(repo / "runs"))
    multiplexer.Reload()
    runs = multiplexer.Runs()
    assert {os.path.join("rnn", "train"), os.path.join("rnn", "eval")} <= set(runs)
    assert "loss" in runs[os.path.join("rnn", "train")]["tensors"]
    assert {"loss", "map3"} <= set(runs[os.path.join("rnn", "eval")]["tensors"])

    # evaluate needs only the model_dir: the data_dir comes from the run's config.json.
    evaluated = _run(repo, "quickdraw_tf.evaluate", "--model_dir=runs/rnn")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert re.search(r"^test: top1 [0-9.]+ .* \(step 2\)$", evaluated.stdout, re.M)
