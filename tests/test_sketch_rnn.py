"""Sketch-RNN: stroke-5 inside the model, the log-space loss (finite on extreme inputs), sampling, data
adaptation, and (integration) a tiny config whose loss falls when trained by the shared trainer."""

import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from quickdraw_tf import models
from quickdraw_tf.data import ink
from quickdraw_tf.inference.generator import load_generator
from quickdraw_tf.models import sketch_rnn_loss, sketch_sampling
from quickdraw_tf.training import input_pipeline, optimization, run_dir, trainer
from tests.conftest import sample_drawings

TINY = dict(enc_size=8, dec_size=16, z_size=4, num_mixture=3, class_size=4)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def real_batch(count: int = 6) -> tuple[dict, tf.Tensor]:
    """Delta inks of real sample drawings, zero-padded as the input pipeline batches them."""
    inks = [ink.to_ink(record["drawing"]) for record in sample_drawings(per_class=1)[:count]]
    length = max(len(x) for x in inks)
    padded = np.stack([np.pad(x, [[0, length - len(x)], [0, 0]]) for x in inks])
    inputs = {"ink": tf.constant(padded), "length": tf.constant([len(x) for x in inks], tf.int32)}
    return inputs, tf.constant(np.arange(count) % 3, tf.int64)


def tiny_model(**overrides):
    return models.get_model("sketch_rnn", 3, **{**TINY, **overrides})


def test_in_graph_stroke5_is_ink_to_stroke5_of_the_stroke3_rows():
    inputs, _ = real_batch()
    model = tiny_model()
    stroke5 = model.to_stroke5(inputs["ink"], inputs["length"]).numpy()
    total = stroke5.shape[1]
    for row, length in enumerate(inputs["length"].numpy()):
        expected = ink.to_stroke5(inputs["ink"][row, :length].numpy(), total)
        np.testing.assert_allclose(stroke5[row], expected, atol=1e-6)


def test_mixture_log_likelihood_equals_the_direct_density():
    rng = np.random.default_rng(0)
    output = rng.normal(size=(7, 6 * 3 + 3)).astype(np.float32)
    dx, dy = rng.normal(size=7).astype(np.float32), rng.normal(size=7).astype(np.float32)
    params = {k: v.numpy().astype(np.float64) for k, v in sketch_rnn_loss.split_params(output, 3).items()}
    got = sketch_rnn_loss.offset_log_likelihood(sketch_rnn_loss.split_params(output, 3), dx, dy).numpy()
    sx, sy, rho = np.exp(params["log_sx"]), np.exp(params["log_sy"]), params["rho"]
    nx, ny = (dx[:, None] - params["mu_x"]) / sx, (dy[:, None] - params["mu_y"]) / sy
    z = nx**2 + ny**2 - 2 * rho * nx * ny
    density = np.exp(-z / (2 * (1 - rho**2))) / (2 * math.pi * sx * sy * np.sqrt(1 - rho**2))
    expected = np.log((np.exp(params["log_pi"]) * density).sum(axis=-1))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def extreme_batches() -> dict[str, tuple[dict, tf.Tensor]]:
    rng = np.random.default_rng(1)
    long = rng.normal(size=(2, 300, 3)).astype(np.float32)
    long[..., 2] = 0.0  # one stroke of 300 moves (max_seq_len is at most 250 in the configs)
    huge = rng.normal(size=(2, 20, 3)).astype(np.float32) * 1e30
    huge[..., 2] = 1.0
    pen_up = np.ones((2, 20, 3), np.float32)  # every move lifts the pen
    zeros = np.zeros((2, 5, 3), np.float32)  # the same point repeated
    batches = {}
    for name, values in {"long": long, "huge": huge, "pen_up": pen_up, "zeros": zeros}.items():
        inputs = {"ink": tf.constant(values), "length": tf.constant([values.shape[1], 1], tf.int32)}
        batches[name] = (inputs, tf.constant([0, 2], tf.int64))
    return batches


@pytest.mark.parametrize(
    "hparams",
    [{}, {"layer_norm": True, "recurrent_dropout": 0.2}, {"decoder_only": True}],
    ids=["lstm", "layer_norm", "decoder_only"],
)
@pytest.mark.integration  # training-step gradients through 2,000-step decoder loops: ~45 s for the three
def test_extreme_inputs_give_finite_loss_and_gradients(hparams):
    model = tiny_model(max_seq_len=2000, **hparams)
    model.scale_factor.assign(1e-3)  # tiny scale: offsets reach the clip

    @tf.function(reduce_retracing=True)
    def loss_and_grads(inputs, labels, training):
        with tf.GradientTape() as tape:
            per_example, sums = model.loss_sums(inputs, labels, step=tf.constant(10**6), training=training)
            loss = tf.reduce_mean(per_example)
        grads = [g for g in tape.gradient(loss, model.trainable_variables) if g is not None]
        return loss, sums, tf.linalg.global_norm(grads)

    for name, (inputs, labels) in extreme_batches().items():
        for training in (True, False):
            loss, sums, norm = loss_and_grads(inputs, labels, training)
            assert np.isfinite(loss.numpy()), (name, training)
            assert all(np.isfinite(float(v)) for v in sums.values()), (name, training)
            assert np.isfinite(norm.numpy()) and norm.numpy() > 0, (name, training)


def test_drawings_longer_than_max_seq_len_are_dropped_and_counted():
    inputs, labels = real_batch()
    model = tiny_model()
    model.data_max_seq_len.assign(int(np.median(inputs["length"].numpy())))
    per_example, sums = model.loss_sums(inputs, labels, step=tf.constant(0), training=False)
    too_long = inputs["length"].numpy() > model.data_max_seq_len.numpy()
    assert too_long.any() and not too_long.all()
    assert float(sums["dropped"]) == too_long.sum()
    assert float(sums["count"]) == (~too_long).sum()
    assert np.all(per_example.numpy()[too_long] == 0) and np.all(per_example.numpy()[~too_long] > 0)


def test_adapt_to_data_sets_the_std_scale_and_max_seq_len(tfrecord_dir):
    config = input_pipeline.InputConfig(batch_size=32, bucket_boundaries=())
    dataset = input_pipeline.make_dataset(tfrecord_dir, "train", config, training=False)
    model = tiny_model(max_seq_len=60)
    stats = model.adapt_to_data(dataset)
    inks = [x["ink"][:n].numpy() for x, _ in dataset.unbatch() for n in [int(x["length"])] if n <= 60]
    offsets = np.concatenate([x[:, :2].reshape(-1) for x in inks])
    assert stats["kept"] == len(inks) and stats["dropped_too_long"] > 0
    assert stats["max_seq_len"] == max(len(x) for x in inks) == int(model.data_max_seq_len.numpy())
    assert float(model.scale_factor.numpy()) == pytest.approx(np.std(offsets), rel=1e-5)


def test_kl_weight_and_learning_rate_follow_magentas_schedules():
    assert float(sketch_rnn_loss.kl_weight(0, 0.01, 0.5, 0.99995)) == pytest.approx(0.01)
    assert float(sketch_rnn_loss.kl_weight(10**6, 0.01, 0.5, 0.99995)) == pytest.approx(0.5)
    rate = optimization.LearningRate(1e-3, 10, decay="exponential", decay_rate=0.9999, min_rate=1e-5)
    assert float(rate(0)) == pytest.approx(1e-3)
    assert float(rate(1000)) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.9999**1000, rel=1e-4)
    assert float(rate(10**6)) == pytest.approx(1e-5)


def test_sampling_ends_drawings_and_continues_a_prefix():
    model = tiny_model()
    model.scale_factor.assign(0.1)
    samples = sketch_sampling.sample(model, 1, 3, 0.5, seed=0, max_steps=30)
    assert len(samples) == 3 and all(len(s.ink) <= 30 for s in samples)
    again = sketch_sampling.sample(model, 1, 3, 0.5, seed=0, max_steps=30)
    assert all(np.array_equal(a.ink, b.ink) for a, b in zip(samples, again, strict=True))
    prefix = ink.to_ink(sample_drawings(per_class=1)[0]["drawing"])[:8]
    completed = sketch_sampling.sample(model, 1, 2, 0.5, seed=0, prefix_ink=prefix, max_steps=30)
    for sample in completed:
        assert sample.prefix_length == len(prefix)
        np.testing.assert_allclose(sample.ink[: len(prefix) - 1], prefix[:-1], atol=1e-6)
    with pytest.raises(ValueError, match="outside the model's 3 classes"):
        sketch_sampling.sample(model, 3, 1, 0.5)


def test_pen_loss_over_the_padding_adds_the_end_rows_up_to_max_seq_len():
    inputs, labels = real_batch()
    plain = tiny_model(decoder_only=True)
    padded = tiny_model(decoder_only=True, pen_loss_padding=True)
    padded.set_weights(plain.get_weights())
    for model in (plain, padded):
        model.data_max_seq_len.assign(int(inputs["length"].numpy().max()) + 20)
    without = {k: v.numpy() for k, v in plain.example_losses(inputs, labels).items()}
    with_padding = {k: v.numpy() for k, v in padded.example_losses(inputs, labels).items()}
    # The decoder is causal: the drawing's own steps are scored alike, the padding only adds pen losses.
    np.testing.assert_allclose(with_padding["offset_loss"], without["offset_loss"], rtol=1e-5)
    out = padded({**inputs, "class_index": labels})
    assert out["output"].shape[1] == int(padded.data_max_seq_len.numpy()) + 1
    pen_logits = sketch_rnn_loss.split_params(out["output"], TINY["num_mixture"])["pen_logits"]
    end_loss = tf.nn.softmax_cross_entropy_with_logits(labels=[0.0, 0.0, 1.0], logits=pen_logits).numpy()
    scale = float(padded.data_max_seq_len.numpy())
    for row, length in enumerate(inputs["length"].numpy()):
        extra = end_loss[row, length + 1 :].sum() / scale
        assert with_padding["pen_loss"][row] == pytest.approx(without["pen_loss"][row] + extra, rel=1e-4)


def test_kl_annealing_tied_to_the_run_reaches_99_percent_at_its_step():
    model = tiny_model(kl_anneal_steps=400, kl_weight_start=0.01, kl_weight=0.5, kl_tolerance=0.0)
    inputs, labels = real_batch()

    def weight_at(step: int) -> float:
        per_example, sums = model.loss_sums(inputs, labels, tf.constant(step), training=True)
        # sum(per-drawing loss) = recon + weight * KL, both summed over the drawings kept
        return float((tf.reduce_sum(per_example) - sums["recon"]) / sums["kl"])

    assert weight_at(0) == pytest.approx(0.01, rel=1e-3)
    assert weight_at(400) == pytest.approx(0.5 - 0.49 * 0.01, rel=1e-3)
    assert weight_at(4000) == pytest.approx(0.5, rel=1e-3)


def _outputs_for(pen_probs, num_mixture=1, log_sigma=0.0, rows=20000):
    """Decoder outputs [rows, 6M + 3]: one normal at (0, 0) with sigma exp(log_sigma), rho 0, and pen logits
    whose softmax is pen_probs."""
    out = np.zeros((rows, 6 * num_mixture + 3), np.float32)
    out[:, 3 * num_mixture : 5 * num_mixture] = log_sigma
    out[:, 6 * num_mixture :] = np.log(pen_probs)
    return out


def test_pen_state_keeps_the_models_probabilities_unless_sharpened_as_magenta():
    rng = np.random.default_rng(0)
    probs = np.array([0.6, 0.3, 0.1])
    ours = sketch_sampling._next_points(rng, _outputs_for(probs), 1, 0.5, 0.5, 1.0)
    np.testing.assert_allclose(ours[:, 2:].mean(axis=0), probs, atol=0.015)
    sharpened = probs**2 / (probs**2).sum()  # softmax(log p / 0.5)
    magenta = sketch_sampling._next_points(rng, _outputs_for(probs), 1, 0.5, 0.5, 0.5)
    np.testing.assert_allclose(magenta[:, 2:].mean(axis=0), sharpened, atol=0.015)


def test_sigmas_are_multiplied_by_the_temperature_as_magenta():
    rng = np.random.default_rng(0)
    outputs = _outputs_for([1, 1, 1], log_sigma=np.log(2.0))
    points = sketch_sampling._next_points(rng, outputs, 1, 0.5, 0.5, 1.0)
    assert points[:, 0].std() == pytest.approx(2.0 * 0.5, rel=0.03)
    assert points[:, 1].std() == pytest.approx(2.0 * 0.5, rel=0.03)


def test_samples_say_whether_the_model_ended_them():
    model = tiny_model(decoder_only=True)
    model.scale_factor.assign(0.1)
    long_enough = sketch_sampling.sample(model, 0, 8, 1.0, seed=0, max_steps=300)
    cut_short = sketch_sampling.sample(model, 0, 8, 1.0, seed=0, max_steps=2)
    assert [s.ended for s in cut_short] == [len(s.ink) < 2 for s in cut_short]
    assert all(s.ended == (len(s.ink) < 300) for s in long_enough)


def test_completion_draws_again_when_a_sample_adds_nothing(monkeypatch):
    prefix = ink.to_ink(sample_drawings(per_class=1)[0]["drawing"])[:8]
    calls = []

    def fake_sample(model, class_index, num, temperature, seed, prefix_ink, **options):
        calls.append((num, seed))
        nothing = sketch_sampling.Sample(ink=prefix_ink, strokes=[], prefix_length=len(prefix_ink))
        more = sketch_sampling.Sample(ink=np.concatenate([prefix_ink, prefix_ink[:2]]), strokes=[],
                                      prefix_length=len(prefix_ink))
        # the first drawing adds something at once, the second only at its third try
        if len(calls) == 1:
            return [more, nothing]
        return [nothing] if len(calls) == 2 else [more]

    monkeypatch.setattr(sketch_sampling, "sample", fake_sample)
    done = sketch_sampling.complete(None, 0, 2, 0.5, prefix, seed=7)
    assert calls == [(2, 7), (1, 8), (1, 9)]
    assert [s.tries for s in done] == [1, 3] and not any(s.added_nothing for s in done)
    calls.clear()
    monkeypatch.setattr(sketch_sampling, "sample", lambda *a, **k: (calls.append(1), [
        sketch_sampling.Sample(ink=prefix, strokes=[], prefix_length=len(prefix))])[1])
    given_up = sketch_sampling.complete(None, 0, 1, 0.5, prefix, seed=0, tries=3)
    assert len(calls) == 3 and given_up[0].added_nothing and given_up[0].tries == 3


@pytest.mark.integration
def test_tiny_config_loss_falls_with_the_shared_trainer(tfrecord_dir, tmp_path):
    from benchmarks import common

    flagfile = os.path.join(REPO, "configs", "sketch_rnn_tiny.flags")
    data_dir = str(tmp_path / "data")  # a copy, deleted after training: the run must not need it
    shutil.copytree(tfrecord_dir, data_dir)
    config = common.flagfile_config(flagfile, data_dir, str(tmp_path), num_summary_drawings=2)
    trainer.train(config)
    shutil.rmtree(data_dir)
    log = event_accumulator.EventAccumulator(str(tmp_path / "train"), {event_accumulator.TENSORS: 0})
    log.Reload()
    recon = [float(tf.make_ndarray(e.tensor_proto)) for e in log.Tensors("recon")]
    assert recon[-1] < 0.8 * recon[0], recon
    eval_log = event_accumulator.EventAccumulator(str(tmp_path / "eval"), {event_accumulator.TENSORS: 0})
    eval_log.Reload()
    tags = set(eval_log.Tags()["tensors"])
    assert {"loss", "recon", "kl", "dropped"} <= tags
    classes = input_pipeline.read_classes(tfrecord_dir)
    assert {f"samples/{word}" for word in classes[:2]} <= tags
    assert os.path.exists(tmp_path / run_dir.DATA_STATS_FILE) and os.path.exists(tmp_path / "model.keras")
    model, generator_classes, step = load_generator(str(tmp_path))  # as generate and serve load it
    assert generator_classes == classes and 0 < step <= config.train_steps
    assert len(sketch_sampling.sample(model, 1, 2, 0.5, seed=0)) == 2


def test_generate_writes_simplified_ndjson_grids_and_gifs(tmp_path):
    from PIL import Image

    from quickdraw_tf import generate
    from quickdraw_tf.data import formats

    model = tiny_model()
    model.scale_factor.assign(0.1)
    model.data_max_seq_len.assign(25)
    classes = ["cat", "dog", "house"]
    written = generate.generate(model, classes, "dog", 3, 0.5, str(tmp_path), seed=1)
    drawings = list(formats.iter_drawings(written["ndjson"][0]))
    assert len(drawings) == 3 and {d.word for d in drawings} == {"dog"}
    assert all(ink.is_simplified(d.strokes) for d in drawings)
    assert Image.open(written["grid"][0]).size == (3 * 128, 128)
    assert open(written["grid"][1], encoding="utf-8").read().startswith("<svg")
    assert len(written["gif"]) == 3 and Image.open(written["gif"][0]).format == "GIF"
    partial = tmp_path / "partial.ndjson"
    partial.write_text(json.dumps(sample_drawings(per_class=1)[0]) + "\n", encoding="utf-8")
    prefix = generate.prefix_ink(str(partial))
    completed = generate.generate(model, classes, "cat", 2, 0.5, str(tmp_path / "c"), prefix=prefix)
    assert all(sum(len(s[0]) for s in d.strokes) >= 2 for d in formats.iter_drawings(completed["ndjson"][0]))
    with pytest.raises(ValueError, match="unknown word 'cow'"):
        generate.generate(model, classes, "cow", 1, 0.5, str(tmp_path))


@pytest.mark.integration
def test_generate_cli_reports_a_bad_model_dir_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "quickdraw_tf.generate", f"--model_dir={tmp_path}", "--word=cat",
         f"--output_dir={tmp_path / 'out'}"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("generate.py: error: no config.json")
