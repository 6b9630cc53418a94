"""--jit_compile: the training step as one XLA program gives the same training as without it (on CPU)."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from quickdraw_tf.training import input_pipeline, run_dir, trainer
from quickdraw_tf.training.input_pipeline import InputConfig
from tests.harness import TINY_HPARAMS, tiny_config

# No dropout and no augmentation: the two runs must see the same numbers, not the same random draws.
HPARAMS = {**TINY_HPARAMS["rnn"], "dropout": 0.0}


def _config(data_dir: str, model_dir: str, **overrides) -> trainer.TrainConfig:
    input_config = InputConfig(batch_size=16, shuffle_buffer=100, bucket_boundaries=(64,), static_shapes=True)
    return tiny_config(data_dir, model_dir, steps=4, hparams=HPARAMS, input=input_config, **overrides)


def _two_steps(config: trainer.TrainConfig, batch) -> list[tuple[float, float]]:
    """(loss sum, gradient norm) of two training steps on the same batch, from the same initial weights."""
    keras.utils.set_random_seed(0)
    state = trainer.TrainState.create(config, num_classes=10)
    step = tf.function(trainer.train_step_fn(state, config))
    results = []
    for _ in range(2):
        sums, norm = step(*batch)
        results.append((float(sums["loss"]), float(norm)))
    return results


@pytest.mark.integration  # two XLA-compiled training steps against two plain ones
def test_jit_compiled_step_computes_what_the_plain_one_does(tfrecord_dir, tmp_path):
    config = _config(tfrecord_dir, str(tmp_path))
    batch = next(iter(input_pipeline.make_dataset(tfrecord_dir, "train", config.input, training=False)))
    plain = _two_steps(config, batch)
    compiled = _two_steps(dataclasses.replace(config, jit_compile=True), batch)
    # The second step's loss comes after one Adam update: the two steps update alike.
    np.testing.assert_allclose(compiled, plain, rtol=1e-4)
    assert plain[1][0] < plain[0][0]


@pytest.mark.integration
def test_training_with_jit_compile_runs_to_the_end(tfrecord_dir, tmp_path):
    eval_metrics = trainer.train(_config(tfrecord_dir, str(tmp_path), jit_compile=True))
    assert np.isfinite(eval_metrics["loss"])
    assert json.loads((tmp_path / "config.json").read_text())["jit_compile"] is True


def test_jit_compile_step_is_an_xla_function(tfrecord_dir, tmp_path):
    config = _config(tfrecord_dir, str(tmp_path), jit_compile=True)
    state = trainer.TrainState.create(config, num_classes=10)
    assert trainer.train_step_fn(state, config)._jit_compile is True
    plain = trainer.train_step_fn(state, dataclasses.replace(config, jit_compile=False))
    assert not hasattr(plain, "_jit_compile")


def test_jit_compile_needs_static_shapes(tfrecord_dir, tmp_path):
    config = _config(tfrecord_dir, str(tmp_path), jit_compile=True)
    config = dataclasses.replace(config, input=dataclasses.replace(config.input, static_shapes=False))
    with pytest.raises(ValueError, match="--jit_compile needs --static_shapes"):
        trainer.validate(config)


def test_layers_xla_cannot_compile_are_named():
    model = run_dir.build_model(trainer.TrainConfig("", "", hparams=HPARAMS), num_classes=3)
    trainer.check_jit_support(model)  # on CPU the LSTMs run the generic loop, which XLA compiles
    # What Keras does to an LSTM that will run on cuDNN (a GPU is visible).
    model.get_layer("bilstm_0").forward_layer.supports_jit = False
    with pytest.raises(trainer.JitUnsupportedError, match="XLA cannot compile layers forward_lstm_0 "):
        trainer.check_jit_support(model)
