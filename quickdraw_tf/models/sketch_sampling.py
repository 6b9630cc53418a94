"""Drawing with a trained Sketch-RNN: batched sampling at a temperature, optionally continuing a prefix.

As magenta's sample(): z from the prior N(0, I) (a VAE; a decoder-only model has none); at each step the
mixture weights are divided by the temperature and the normals' sigmas multiplied by it (magenta passes
sqrt(temperature) to sample_gaussian_2d, which multiplies sigma by its square). Unlike magenta, the pen
state is drawn from the model's own probabilities (PEN_TEMPERATURE). A drawing ends at its first
end-of-sketch (p3) or after the model's max_seq_len moves. Offsets come back multiplied by the model's
scale_factor, i.e. in the units of the training ink (the drawing's larger side = 1).

complete() continues a given drawing and draws again, a bounded number of times, when a sample adds
nothing (ends at once): what generate --complete and the server's "finish my drawing" call.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from quickdraw_tf.data import ink
from quickdraw_tf.data.drawing import Drawing
from quickdraw_tf.models import sketch_rnn_loss
from quickdraw_tf.models.sketch_rnn import START_TOKEN, SketchRnn
from quickdraw_tf.pictures import sample_grids

SUMMARY_SAMPLES_PER_CLASS = 4
SUMMARY_TEMPERATURE = 0.5
# The pen state (down, lifted, end of drawing) is drawn from the model's own probabilities, whatever the
# temperature: sharpening them as magenta does gives a pen that rarely lifts or stops, and a model trained on
# ~100 drawings a class then draws tangles of tiny moves until max_seq_len (measured in docs/generate.md).
PEN_TEMPERATURE = 1.0
# Samples drawn at most for a completion whose sample adds nothing; later tries use seed + 1, + 2.
COMPLETION_TRIES = 3


class SamplingStopped(Exception):
    """sample() was asked to stop (its should_stop returned True) before the drawings were done."""


@dataclasses.dataclass(frozen=True)
class Sample:
    """One drawing: delta ink [n, 3] (dx, dy, pen lifted after the move) and its absolute strokes."""

    ink: np.ndarray
    strokes: list[np.ndarray]  # [k, 2] points per stroke, the first at the origin
    prefix_length: int = 0  # rows of `ink` given (completion), not sampled
    ended: bool = True  # the model ended it (end-of-sketch); False: cut off after max_seq_len moves
    tries: int = 1  # samples drawn for it (complete(): more than 1 when earlier ones added nothing)

    @property
    def added_nothing(self) -> bool:
        return len(self.ink) == self.prefix_length

    def to_drawing(self, word: str, key_id: int) -> Drawing:
        """As a simplified drawing (Google's simplification: 0..255 integers, 1-px RDP), as the Beam job
        stores drawings."""
        strokes = [[stroke[:, 0].tolist(), stroke[:, 1].tolist()] for stroke in self.strokes]
        return Drawing(key_id=key_id, word=word, strokes=tuple(ink.simplify(strokes)))


def _choose(rng: np.random.Generator, logits: np.ndarray, temperature: float) -> np.ndarray:
    """One categorical draw per row of logits / temperature."""
    scaled = logits / temperature
    probs = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    cumulative = np.cumsum(probs / probs.sum(axis=-1, keepdims=True), axis=-1)
    draws = rng.random((len(logits), 1))
    return np.minimum((cumulative < draws).sum(axis=-1), logits.shape[-1] - 1)


def _next_points(
    rng: np.random.Generator,
    output: np.ndarray,
    num_mixture: int,
    temperature: float,
    sigma_scale: float,
    pen_temperature: float,
) -> np.ndarray:
    """Stroke-5 rows [B, 5] drawn from the decoder outputs [B, 6M + 3]."""
    params = {k: v.numpy() for k, v in sketch_rnn_loss.split_params(tf.constant(output), num_mixture).items()}
    rows = np.arange(len(output))
    k = _choose(rng, params["log_pi"], temperature)
    mx, my = params["mu_x"][rows, k], params["mu_y"][rows, k]
    sx = np.exp(params["log_sx"][rows, k]) * sigma_scale
    sy = np.exp(params["log_sy"][rows, k]) * sigma_scale
    rho = params["rho"][rows, k]
    n1, n2 = rng.standard_normal(len(output)), rng.standard_normal(len(output))
    points = np.zeros((len(output), 5), np.float32)
    points[:, 0] = mx + sx * n1
    points[:, 1] = my + sy * (rho * n1 + np.sqrt(1.0 - rho**2) * n2)
    points[rows, 2 + _choose(rng, params["pen_logits"], pen_temperature)] = 1.0
    return points


def _prefix_stroke5(model: SketchRnn, prefix_ink: np.ndarray) -> np.ndarray:
    """The given delta ink as the model's scaled stroke-5 rows [n, 5] (no end row)."""
    batch = tf.constant(prefix_ink[None], tf.float32)
    return model.to_stroke5(batch, tf.constant([len(prefix_ink)]))[0, :-1].numpy()


def sample(
    model: SketchRnn,
    class_index: int | np.ndarray,
    num: int,
    temperature: float,
    seed: int | None = None,
    prefix_ink: np.ndarray | None = None,
    max_steps: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    sigma_scale: float | None = None,
    pen_temperature: float | None = PEN_TEMPERATURE,
) -> list[Sample]:
    """`num` drawings of class `class_index` (or of class_index[i] each, one batch for many classes); with
    prefix_ink (delta ink [n, 3]), each continues it. `should_stop` is asked between steps (a server's
    deadline, or its client gone): True raises SamplingStopped. sigma_scale: what the normals' sigmas are
    multiplied by (None: the temperature, as magenta); pen_temperature: the pen logits' own temperature
    (None: the temperature, as magenta)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    sigma_scale = temperature if sigma_scale is None else sigma_scale
    pen_temperature = temperature if pen_temperature is None else pen_temperature
    if pen_temperature <= 0:
        raise ValueError(f"pen_temperature must be > 0, got {pen_temperature}")
    class_index = np.broadcast_to(np.asarray(class_index, np.int32), (num,))
    bad = class_index[(class_index < 0) | (class_index >= model.num_classes)]
    if len(bad):
        raise ValueError(f"class index {bad[0]} is outside the model's {model.num_classes} classes")
    rng = np.random.default_rng(seed)
    z = None if model.decoder_only else tf.constant(rng.standard_normal((num, model.z_mu.units)), tf.float32)
    context = model.context(tf.constant(class_index), z)
    state = model.start_state(context)
    previous = np.tile(np.array(START_TOKEN, np.float32), (num, 1))
    prefix = np.zeros((0, 5), np.float32)
    if prefix_ink is not None and len(prefix_ink):
        prefix = _prefix_stroke5(model, np.asarray(prefix_ink, np.float32))
        primer = np.concatenate([previous[:1], prefix[:-1]])  # the decoder reads S_0 .. S_{k-1}
        _, state = model.decode(tf.constant(np.tile(primer[None], (num, 1, 1))), context, state)
        previous = np.tile(prefix[-1], (num, 1))
    steps = max_steps or int(model.data_max_seq_len.numpy())
    rows, done = [], np.zeros(num, bool)
    step_fn = _step_function(model)
    for _ in range(max(steps - len(prefix), 0)):
        if should_stop is not None and should_stop():
            raise SamplingStopped("sampling was stopped before the drawings ended")
        output, state = step_fn(tf.constant(previous), context, state)
        previous = _next_points(
            rng, output.numpy(), model.num_mixture, temperature, sigma_scale, pen_temperature
        )
        previous[done] = (0, 0, 0, 0, 1)
        rows.append(previous)
        done |= previous[:, 4] > 0
        if done.all():
            break
    sampled = np.stack(rows, axis=1) if rows else np.zeros((num, 0, 5), np.float32)
    scale = float(model.scale_factor.numpy())
    return [
        _to_sample(np.concatenate([prefix, drawing]), scale, len(prefix), bool(ended))
        for drawing, ended in zip(sampled, done, strict=True)
    ]


def complete(
    model: SketchRnn,
    class_index: int | np.ndarray,
    num: int,
    temperature: float,
    prefix_ink: np.ndarray,
    seed: int | None = None,
    tries: int = COMPLETION_TRIES,
    **options,
) -> list[Sample]:
    """`num` continuations of prefix_ink; each that adds nothing is drawn again (seed + 1, + 2, ...), at most
    `tries` samples in all (Sample.tries). options: sample()'s max_steps, should_stop, temperatures."""
    class_index = np.broadcast_to(np.asarray(class_index, np.int32), (num,))
    drawn = sample(model, class_index, num, temperature, seed, prefix_ink, **options)
    for attempt in range(1, tries):
        empty = [i for i, s in enumerate(drawn) if s.added_nothing]
        if not empty:
            break
        again_seed = None if seed is None else (seed + attempt) % 2**32
        again = sample(model, class_index[empty], len(empty), temperature, again_seed, prefix_ink, **options)
        for i, fresh in zip(empty, again, strict=True):
            drawn[i] = dataclasses.replace(fresh, tries=attempt + 1)
    return drawn


# One traced step per model, kept across calls: tracing costs ~1 s, which a server answering clicks
# (serve's /v1/complete) would otherwise pay on every request.
_STEP_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _step_function(model: SketchRnn):
    if model not in _STEP_FUNCTIONS:
        @tf.function(reduce_retracing=True)
        def step(point, context, state):
            return model.decode_step(point, context, state)

        _STEP_FUNCTIONS[model] = step
    return _STEP_FUNCTIONS[model]


def _to_sample(stroke5: np.ndarray, scale: float, prefix_length: int, ended: bool) -> Sample:
    """Scaled stroke-5 rows up to the first end-of-sketch → a Sample in training-ink units."""
    ends = np.flatnonzero(stroke5[:, 4] > 0)
    stroke5 = stroke5[: ends[0]] if len(ends) else stroke5
    moves = np.zeros((len(stroke5), 3), np.float32)
    moves[:, :2] = stroke5[:, :2] * scale
    moves[:, 2] = stroke5[:, 3]
    if len(moves):
        moves[-1, 2] = 1.0  # the last point ends its stroke
    strokes = ink.ink_strokes(moves, len(moves)) if len(moves) else [np.zeros((1, 2), np.float32)]
    return Sample(ink=moves, strokes=strokes, prefix_length=prefix_length, ended=ended)


def summary_images(model: SketchRnn, classes: list[str], count: int) -> dict[str, bytes]:
    """A PNG grid of samples (temperature 0.5) per class, for the first `count` classes: the trainer's
    TensorBoard pictures for this model (models.summary_images_fn)."""
    images = {}
    for index, word in enumerate(classes[:count]):
        samples = sample(model, index, SUMMARY_SAMPLES_PER_CLASS, SUMMARY_TEMPERATURE, seed=index)
        images[f"samples/{word}"] = sample_grids.grid_png([s.strokes for s in samples], columns=4)
    return images
