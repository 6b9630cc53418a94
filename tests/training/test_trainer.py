"""The training loop in-process on the default strategy, with a tiny model, and what it leaves behind."""

import json
import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import logging as absl_logging
from tensorboard.backend.event_processing import event_accumulator

from quickdraw_tf.training import distribute, evaluation, export, input_pipeline, optimization, trainer
from quickdraw_tf.training.input_pipeline import InputConfig
from tests.harness import TINY_HPARAMS, tiny_config


def _config(data_dir, model_dir, **overrides) -> trainer.TrainConfig:
    """The tiny run the tests below read back: 12 steps, evaluated twice, checkpointed three times (two
    kept), with 4 summary drawings."""
    values = dict(eval_every=6, checkpoint_every=4, log_every=4, keep_checkpoints=2, num_summary_drawings=4)
    return tiny_config(data_dir, model_dir, **{**values, **overrides})


@pytest.fixture(scope="module")
def trained(tfrecord_dir, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("run"))
    eval_metrics = trainer.train(_config(tfrecord_dir, model_dir))
    return model_dir, eval_metrics


def _tags(log_dir):
    accumulator = event_accumulator.EventAccumulator(log_dir, size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    return accumulator


@pytest.mark.integration
def test_tensorboard_holds_train_and_eval_scalars_and_drawings(trained):
    model_dir, _ = trained
    train_log = _tags(os.path.join(model_dir, "train"))
    expected = {"loss", "top1", "top3", "map3", "learning_rate", "grad_norm", "examples_per_second"}
    assert expected <= set(train_log.Tags()["tensors"])
    assert [event.step for event in train_log.Tensors("loss")] == [4, 8, 12]
    losses = [float(tf.make_ndarray(event.tensor_proto)) for event in train_log.Tensors("loss")]
    assert all(np.isfinite(losses))
    eval_log = _tags(os.path.join(model_dir, "eval"))
    assert {"loss", "top1", "top3", "map3", "drawings"} <= set(eval_log.Tags()["tensors"])
    assert [event.step for event in eval_log.Tensors("map3")] == [6, 12]


@pytest.mark.integration
def test_checkpoints_keep_the_last_n_and_the_best(trained):
    model_dir, eval_metrics = trained
    state = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["ckpt-8", "ckpt-12"]
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "best")) is not None
    assert 0.0 <= eval_metrics["top1"] <= eval_metrics["map3"] <= eval_metrics["top3"] <= 1.0


@pytest.mark.integration
def test_model_keras_and_export_serve_a_real_drawing(trained, tfrecord_dir):
    model_dir, _ = trained
    classes = input_pipeline.read_classes(tfrecord_dir)
    files = input_pipeline.split_files(tfrecord_dir, "test")
    inputs, label = input_pipeline.parse_stroke(next(iter(tf.data.TFRecordDataset(files))))
    ink, length = inputs["ink"][None], inputs["length"][None]
    model = keras.models.load_model(os.path.join(model_dir, "model.keras"))
    probabilities = tf.nn.softmax(model({"ink": ink, "length": length}))
    served = tf.saved_model.load(os.path.join(model_dir, "export")).signatures[export.SIGNATURE](
        ink=ink, length=length
    )
    np.testing.assert_allclose(served["probabilities"], probabilities, atol=1e-5)
    assert served["top_k_classes"].shape == (1, 3)
    best = classes[int(np.argmax(probabilities))]
    assert served["top_k_classes"][0, 0].numpy().decode() == best
    assert float(served["top_k_probabilities"][0, 0]) == pytest.approx(float(np.max(probabilities)), abs=1e-5)
    assert 0 <= int(label) < len(classes)


@pytest.mark.integration
def test_evaluate_writes_sane_results(trained, tfrecord_dir):
    model_dir, _ = trained
    results = evaluation.evaluate(model_dir, tfrecord_dir, split="test", batch_size=32)
    with open(os.path.join(model_dir, "eval_results.json")) as f:
        written = json.load(f)
    assert written == results
    assert 0 <= results["top1"] <= results["map3"] <= results["top3"] <= results["top5"] <= 1
    test_count = sum(1 for _ in tf.data.TFRecordDataset(input_pipeline.split_files(tfrecord_dir, "test")))
    assert results["num_examples"] == test_count
    per_class = results["per_class"]
    assert set(per_class) == set(input_pipeline.read_classes(tfrecord_dir))
    assert sum(c["count"] for c in per_class.values()) == test_count
    correct = sum(c["accuracy"] * c["count"] for c in per_class.values() if c["count"])
    assert correct == pytest.approx(results["top1"] * test_count)
    assert os.path.getsize(results["confusion_matrix_png"]) > 1000
    assert {"top1", "map3", "confusion_matrix"} <= set(
        _tags(os.path.join(model_dir, "eval_test")).Tags()["tensors"]
    )


@pytest.mark.integration
def test_evaluate_reads_the_split_as_the_runs_own_eval_did(tfrecord_dir, tmp_path):
    # Truncation to 10 points changes what the model sees: evaluate must apply it as training's eval did.
    truncating = InputConfig(batch_size=16, shuffle_buffer=100, bucket_boundaries=(), max_length=10)
    config = _config(tfrecord_dir, str(tmp_path), input=truncating, train_steps=6, num_summary_drawings=0)
    during_training = trainer.train(config)
    results = evaluation.evaluate(str(tmp_path), tfrecord_dir, split="eval", checkpoint="latest")
    assert results["step"] == 6
    for key in ("top1", "top3", "map3"):
        assert results[key] == pytest.approx(during_training[key], abs=1e-6), key


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.mark.integration
def test_restart_restores_and_continues_to_train_steps(tfrecord_dir, tmp_path):
    handler, logger = _Messages(), logging.getLogger("absl")
    logger.addHandler(handler)
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)  # absl drops INFO when its flags were never parsed
    try:
        config = _config(tfrecord_dir, str(tmp_path), train_steps=8, eval_every=8, num_summary_drawings=0)
        trainer.train(config)
        trainer.train(
            _config(tfrecord_dir, str(tmp_path), train_steps=12, eval_every=8, num_summary_drawings=0)
        )
    finally:
        logger.removeHandler(handler)
        absl_logging.set_verbosity(verbosity)
    restored = [m for m in handler.messages if m.startswith("restored checkpoint at step")]
    assert len(restored) == 1 and restored[0].startswith("restored checkpoint at step 8 ")
    assert handler.messages[-1] == "finished at step 12"
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-12")


@pytest.mark.integration
def test_float16_mixed_precision_trains_with_loss_scaling(tfrecord_dir, tmp_path):
    config = _config(
        tfrecord_dir,
        str(tmp_path),
        train_steps=4,
        eval_every=4,
        mixed_precision="float16",
        num_summary_drawings=0,
    )
    eval_metrics = trainer.train(config)
    assert np.isfinite(eval_metrics["loss"])
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    checkpoint = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    assert any("dynamic_scale" in name for name, _ in tf.train.list_variables(checkpoint))  # loss scaling
    # model.keras holds float32 weights and rebuilds under the loading process's policy.
    model = keras.models.load_model(str(tmp_path / "model.keras"))
    logits = model({"ink": np.zeros((1, 5, 3), np.float32), "length": np.array([5], np.int32)})
    assert logits.dtype == tf.float32 and np.isfinite(logits).all()


@pytest.mark.integration
def test_model_dir_of_another_model_is_refused(tfrecord_dir, tmp_path):
    trainer.train(
        _config(tfrecord_dir, str(tmp_path), train_steps=2, eval_every=2, num_summary_drawings=0)
    )
    other = _config(tfrecord_dir, str(tmp_path), hparams={**TINY_HPARAMS["rnn"], "num_nodes": 4})
    with pytest.raises(ValueError, match="holds model rnn"):
        trainer.train(other)


def test_validate_names_the_bad_hparam_and_the_known_ones(tfrecord_dir, tmp_path):
    config = _config(tfrecord_dir, str(tmp_path), hparams={"num_units": 3})
    with pytest.raises(ValueError, match=r"unknown hparam\(s\) num_units for model 'rnn'; known: num_conv"):
        trainer.validate(config)


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.make_strategy("multi_worker")
    with pytest.raises(ValueError, match="unknown strategy 'gpu'; known: default, mirrored"):
        distribute.make_strategy("gpu")


def test_learning_rate_warmup_then_cosine():
    schedule = optimization.LearningRate(1.0, total_steps=110, warmup_steps=10, decay="cosine")
    rates = [float(schedule(step)) for step in (0, 4, 9, 10, 60, 110)]
    np.testing.assert_allclose(rates, [0.1, 0.5, 1.0, 1.0, 0.5, 0.0], atol=1e-6)
    assert float(optimization.LearningRate(0.3, 100)(50)) == pytest.approx(0.3)


def test_gradients_are_clipped_by_their_global_norm():
    grads = [tf.constant([3.0, 4.0]), tf.constant([[12.0]])]  # global norm 13
    clipped, norm = optimization.clipped_gradients(grads, tf.constant(1.0), clip_norm=6.5)
    assert float(norm) == pytest.approx(13.0)
    assert float(tf.linalg.global_norm(clipped)) == pytest.approx(6.5)
    unclipped, norm = optimization.clipped_gradients(grads, tf.constant(2.0), clip_norm=0.0)
    assert unclipped is grads
    assert float(norm) == pytest.approx(6.5)  # the norm is reported without the loss scale
