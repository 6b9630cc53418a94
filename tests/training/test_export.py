"""The serving signature checks its inputs before the model sees them: a SavedModel of a tiny RNN, called
with real sample drawings, clean and spoiled (non-finite ink, bad lengths, too many points)."""

import numpy as np
import pytest
import tensorflow as tf

from quickdraw_tf import models
from quickdraw_tf.data import ink
from quickdraw_tf.training import export
from tests.harness import TINY_HPARAMS
from tests.sample import sample_drawings

pytestmark = pytest.mark.integration  # exports a SavedModel and serves through it

MAX_POINTS = 64


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    model = models.get_model("rnn", 4, **TINY_HPARAMS["rnn"])
    path = str(tmp_path_factory.mktemp("export"))
    export.export_saved_model(model, ["a", "b", "c", "d"], path, max_points=MAX_POINTS)
    return tf.saved_model.load(path).signatures[export.SIGNATURE]


@pytest.fixture(scope="module")
def batch():
    """Two real drawings, zero-padded to the longer one's length (at most MAX_POINTS points each)."""
    inks = [ink.to_ink(record["drawing"])[:MAX_POINTS] for record in sample_drawings(per_class=1)]
    inks = [inks[0], next(one for one in inks if len(one) != len(inks[0]))]
    lengths = np.array([len(one) for one in inks], np.int32)
    padded = np.zeros([2, max(lengths), 3], np.float32)
    for i, one in enumerate(inks):
        padded[i, : len(one)] = one
    assert lengths.min() < lengths.max()  # drawing 0 or 1 has padding
    return padded, lengths


def _call(serve, ink_array, lengths):
    return serve(ink=tf.constant(ink_array, tf.float32), length=tf.constant(lengths, tf.int32))


def test_default_maximum_points():
    assert export.MAX_POINTS == 10_000


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_padding_is_ignored(serve, batch, bad):
    clean_ink, lengths = batch
    spoiled = clean_ink.copy()
    short = int(np.argmin(lengths))
    spoiled[short, lengths[short] :] = bad
    clean = _call(serve, clean_ink, lengths)["probabilities"].numpy()
    served = _call(serve, spoiled, lengths)["probabilities"].numpy()
    assert np.all(np.isfinite(clean))
    np.testing.assert_array_equal(served, clean)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_ink_within_the_length_is_refused(serve, batch, bad):
    spoiled, lengths = batch[0].copy(), batch[1]
    spoiled[0, lengths[0] - 1, 1] = bad
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"ink must be finite \(no NaN or Inf\)"):
        _call(serve, spoiled, lengths)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda n, t: [0, n[1]], "every length must be >= 1"),
        (lambda n, t: [-3, n[1]], "every length must be >= 1"),
        (lambda n, t: [t + 1, n[1]], r"every length must be <= T"),
        (lambda n, t: [n[0]], "length must have one entry per drawing of ink"),
    ],
)
def test_bad_lengths_are_refused(serve, batch, change, message):
    ink_array, lengths = batch
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _call(serve, ink_array, change(lengths, ink_array.shape[1]))


def test_too_many_points_are_refused(serve):
    long = np.zeros([1, MAX_POINTS + 1, 3], np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"ink has more than {MAX_POINTS} points"):
        _call(serve, long, [MAX_POINTS + 1])
    at_limit = _call(serve, long[:, :MAX_POINTS], [MAX_POINTS])  # T = the maximum is served
    assert at_limit["probabilities"].shape == (1, 4)
