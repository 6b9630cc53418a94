"""Sketch-RNN's output distribution and losses, computed in log space so that no input makes them NaN.

The decoder's output row per step holds 6 * M mixture values and 3 pen logits:
  pi logits [M], mu_x [M], mu_y [M], log sigma_x [M], log sigma_y [M], raw rho [M], pen logits [3].
Magenta's implementation multiplies densities and takes log(p + 1e-6), which underflows to a constant
(zero gradient) or, with a tiny sigma, overflows; its long runs go NaN (magenta #1735). Here:
  * the mixture is log-sum-exp of log weights + log densities;
  * log sigma is clipped to [log SIGMA_FLOOR, LOG_SIGMA_MAX] (sigma never 0, exp never overflows);
  * rho = RHO_LIMIT * tanh(raw), so 1 - rho^2 >= 2e-5;
  * the inputs' offsets are clipped to +-OFFSET_LIMIT (in units of the data's std) by the model, as
    sketch-rnn's loader clamps them; real drawings never get near it.
"""

from __future__ import annotations

import math

import tensorflow as tf

SIGMA_FLOOR = 1e-3
LOG_SIGMA_MAX = 5.0
RHO_LIMIT = 0.99999
OFFSET_LIMIT = 100.0
LOG_2PI = math.log(2.0 * math.pi)


def split_params(output: tf.Tensor, num_mixture: int) -> dict[str, tf.Tensor]:
    """The decoder's [..., 6M + 3] output as the mixture's constrained parameters (log weights, etc.)."""
    pi, mu_x, mu_y, log_sx, log_sy, rho, pen = tf.split(output, [num_mixture] * 6 + [3], axis=-1)
    low = math.log(SIGMA_FLOOR)
    return {
        "log_pi": tf.nn.log_softmax(pi, axis=-1),
        "mu_x": mu_x,
        "mu_y": mu_y,
        "log_sx": tf.clip_by_value(log_sx, low, LOG_SIGMA_MAX),
        "log_sy": tf.clip_by_value(log_sy, low, LOG_SIGMA_MAX),
        "rho": RHO_LIMIT * tf.tanh(rho),
        "pen_logits": pen,
    }


def offset_log_likelihood(params: dict[str, tf.Tensor], dx: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
    """log p(dx, dy) under the mixture of bivariate normals: [...] from params [..., M], targets [...]."""
    sx, sy, rho = tf.exp(params["log_sx"]), tf.exp(params["log_sy"]), params["rho"]
    nx = (dx[..., None] - params["mu_x"]) / sx
    ny = (dy[..., None] - params["mu_y"]) / sy
    one_minus_rho2 = 1.0 - tf.square(rho)
    z = tf.square(nx) + tf.square(ny) - 2.0 * rho * nx * ny
    log_normal = (
        -z / (2.0 * one_minus_rho2)
        - LOG_2PI
        - params["log_sx"]
        - params["log_sy"]
        - 0.5 * tf.math.log(one_minus_rho2)
    )
    return tf.reduce_logsumexp(params["log_pi"] + log_normal, axis=-1)


def reconstruction_losses(
    params: dict[str, tf.Tensor],
    target: tf.Tensor,
    length: tf.Tensor,
    max_seq_len: tf.Tensor,
    pen_on_padding: bool = False,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-drawing (offset loss, pen loss), each summed over steps and divided by max_seq_len, as the paper.

    target: stroke-5 [B, T, 5]; steps t < length are the drawing's points (offset and pen losses), step
    t == length is its end-of-sketch step (pen loss only). With pen_on_padding (the paper's loss) the pen
    loss also covers the end-of-sketch rows after it, up to step max_seq_len (the caller pads target that
    far); without it those steps are left out.
    """
    steps = tf.range(tf.shape(target)[1])[None, :]
    length = tf.cast(length, tf.int32)[:, None]
    on_points = tf.cast(steps < length, tf.float32)
    last_pen_step = tf.cast(max_seq_len, tf.int32) if pen_on_padding else length
    on_pen = tf.cast(steps <= last_pen_step, tf.float32)
    log_p = offset_log_likelihood(params, target[..., 0], target[..., 1])
    pen = tf.nn.softmax_cross_entropy_with_logits(labels=target[..., 2:], logits=params["pen_logits"])
    scale = tf.cast(max_seq_len, tf.float32)
    return (
        -tf.reduce_sum(log_p * on_points, axis=1) / scale,
        tf.reduce_sum(pen * on_pen, axis=1) / scale,
    )


def kl_divergence(mu: tf.Tensor, presig: tf.Tensor) -> tf.Tensor:
    """Per-drawing KL(N(mu, exp(presig)) || N(0, I)), averaged over the latent dimensions (magenta)."""
    return -0.5 * tf.reduce_mean(1.0 + presig - tf.square(mu) - tf.exp(presig), axis=-1)


def kl_weight(step: tf.Tensor, start: float, final: float, decay_rate: float) -> tf.Tensor:
    """Magenta's annealing: final - (final - start) * decay_rate ** step (0.01 -> 0.5 at 0.99995)."""
    step = tf.cast(step, tf.float32)
    return final - (final - start) * tf.pow(decay_rate, step)
