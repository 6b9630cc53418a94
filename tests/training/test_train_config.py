"""One config path for training: each hyper-parameter is a dataclass field (default + help) and its flag is
derived from it; a flagfile reads straight into the dataclass without absl's global FLAGS."""

import dataclasses
import glob
import os

import pytest
from absl import flags

from quickdraw_tf import train
from quickdraw_tf.training import config_flags, train_config
from quickdraw_tf.training.config_flags import setting
from quickdraw_tf.training.input_pipeline import InputConfig
from quickdraw_tf.training.train_config import TrainConfig
from tests.sample import REPO
from tests.train_cli import config_as_the_cli_builds_it

CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "*.flags")))


@dataclasses.dataclass(frozen=True)
class _WithNewHyperParameter(TrainConfig):
    label_smoothing: float = setting(0.25, "A new hyper-parameter, declared once.")


def test_a_new_field_is_a_flag_with_its_default_help_and_type():
    flag_values = flags.FlagValues()
    config_flags.define_flags(_WithNewHyperParameter, flag_values)
    flag = flag_values["label_smoothing"]
    assert (flag.default, flag.flag_type()) == (0.25, "float")
    assert flag.help == "A new hyper-parameter, declared once."
    flag_values(["prog", "--label_smoothing=0.5", "--batch_size=8", "--bucket_boundaries=", "--model_dir=m"])
    config = config_flags.config_from_flags(_WithNewHyperParameter, flag_values)
    assert config.label_smoothing == 0.5
    assert (config.input.batch_size, config.input.bucket_boundaries) == (8, ())
    assert '"label_smoothing": 0.5' in config.to_json()


def test_the_cli_flags_are_the_config_fields_with_their_defaults():
    fields = {field.name: field for field, _ in config_flags.flag_fields(TrainConfig)}
    cli_only = {"strategy", "tpu"}  # how to run, not what to train: not in config.json
    defined = {flag.name for flag in flags.FLAGS.flags_by_module_dict()[train.__name__]}
    assert defined == set(fields) | cli_only
    defaults = TrainConfig(data_dir="", model_dir="")
    assert flags.FLAGS["train_steps"].default == defaults.train_steps
    assert flags.FLAGS["bucket_boundaries"].default == [str(b) for b in InputConfig().bucket_boundaries]
    assert flags.FLAGS["lr_schedule"].help.startswith("<constant|cosine|exponential>")
    assert flags.FLAGS["data_dir"].default == "data/tfrecords" and flags.FLAGS["model_dir"].default is None
    assert "num_summary_drawings" not in fields and "interleave_cycle" not in fields  # no help: no flag


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(p) for p in CONFIGS])
def test_a_flagfile_reads_as_the_cli_reads_it(path, monkeypatch):
    monkeypatch.chdir(REPO)
    from_cli = config_as_the_cli_builds_it(["train.py", f"--flagfile={os.path.relpath(path)}"])
    assert train_config.config_from_flagfile(os.path.relpath(path)).to_json() == from_cli.to_json()


def test_a_benchmark_style_config_build_leaves_absl_flags_alone():
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["prog", "--train_steps=7", "--hparams=num_layers=1"])
    try:
        before = {name: flags.FLAGS[name].value for name in flags.FLAGS}
        config = train_config.config_from_flagfile(
            os.path.join(REPO, "configs", "rnn_cpu.flags"), data_dir="d", model_dir="", train_steps=3
        )
        assert {name: flags.FLAGS[name].value for name in flags.FLAGS} == before
        assert {name for name in flags.FLAGS if flags.FLAGS[name].present} == {"train_steps", "hparams"}
    finally:
        flags.FLAGS.unparse_flags()
    assert (config.train_steps, config.data_dir) == (3, "d")
    assert config.model_dir == os.path.join("runs", "rnn_cpu")  # as on the command line
    assert config.hparams["num_layers"] == 2 and config.input.augment_rotation == 15.0


def test_flagfile_errors_and_unknown_overrides(tmp_path):
    bad = tmp_path / "bad.flags"
    bad.write_text("--model=rnn\n--no_such_flag=1\n")
    with pytest.raises(flags.Error, match="no_such_flag"):
        train_config.config_from_flagfile(str(bad))
    bad.write_text("--train_steps=0\n")
    with pytest.raises(ValueError, match="train_steps must be >= 1"):
        train_config.config_from_flagfile(str(bad))
    with pytest.raises(TypeError, match="no field.* batch_sizes"):
        train_config.config_from_flagfile(os.path.join(REPO, "configs", "rnn.flags"), batch_sizes=3)
