"""The model registry (quickdraw_tf/models/__init__.py): models and hyper-parameters by name, unknown ones
listed, --hparams values read as Python literals."""

import pytest

from quickdraw_tf import models


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'cnn'; known: rnn"):
        models.get_model("cnn", 3)


def test_unknown_hparam_lists_the_known_ones():
    with pytest.raises(
        ValueError, match=r"unknown hparam\(s\) num_units for model 'rnn'; known: num_conv, conv_len"
    ):
        models.get_model("rnn", 3, num_units=4)


def test_parse_hparams_reads_python_literals():
    parsed = models.parse_hparams(
        [
            "num_conv=48,64,96",
            "num_layers=3",
            "dropout=0.3",
            "batch_norm=true",
            "conv_activation=relu",
            "conv_len=5",
        ]
    )
    assert parsed == {
        "num_conv": (48, 64, 96),
        "num_layers": 3,
        "dropout": 0.3,
        "batch_norm": True,
        "conv_activation": "relu",
        "conv_len": 5,
    }
    model = models.get_model("rnn", 2, **{**parsed, "num_conv": 8, "num_layers": 1, "num_nodes": 4})
    assert model.hparams["num_conv"] == (8,) and model.hparams["conv_len"] == (5,)  # scalars as sequences
    with pytest.raises(ValueError, match="key=value"):
        models.parse_hparams(["num_layers"])
