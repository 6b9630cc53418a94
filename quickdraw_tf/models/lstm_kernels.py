"""Two CPU kernels for one LSTM direction over a right-padded batch, in Keras' equations and weights.

Both take x [B, T, D], lengths [B], the initial state (h0, c0) [B, U] and Keras' LSTM weights (kernel
[D, 4U], recurrent_kernel [U, 4U], bias [4U]; gate order i, f, c, o; no peepholes, no cell clipping) and
return (h [B, T, U], zero past each length; last h [B, U]; last c [B, U]), a sequence of length 0
keeping (h0, c0). Each runs every sequence over the whole padded length; past its length a sequence's
outputs are zeroed (so they get no gradient) and its state is read at its last valid step.

- `projected_lstm_sequence`: the input projection x·kernel + bias of every step as ONE matmul, then a
  while loop over the recurrent part only (h·recurrent_kernel and the gates), with a hand-written
  gradient: the backward loop carries only the recurrence, and the weight gradients are one matmul each
  after it. Keras' own loop does the input matmul and both weight-gradient matmuls at every step.
  Plain TensorFlow ops (MatMul, While, TensorList): XLA-compilable and readable by graph converters.
- `block_lstm_sequence`: TensorFlow's fused op BlockLSTMV2 (one op per sequence, one for its
  gradient); no XLA kernel.
"""

from __future__ import annotations

import tensorflow as tf


def _gates_ifoc(weights: tf.Tensor) -> tf.Tensor:
    """Keras' gate order (i, f, c, o) → (i, f, o, c): the three sigmoid gates side by side, so that one
    sigmoid and one tanh op cover a step's gates."""
    i, f, c, o = tf.split(weights, 4, axis=-1)
    return tf.concat([i, f, o, c], axis=-1)


def _unstacked(values: tf.Tensor) -> tf.TensorArray:
    return tf.TensorArray(values.dtype, size=tf.shape(values)[0]).unstack(values)


@tf.custom_gradient
def _recurrence(projected, h0, c0, recurrent_kernel):
    """The LSTM recurrence over time-major projected inputs [T, B, 4U] (gates i, f, o, c; the bias
    included) → (h, c), each [T, B, U]. recurrent_kernel [U, 4U] in the same gate order."""
    steps, units = tf.shape(projected)[0], tf.shape(h0)[1]
    dtype = projected.dtype
    inputs = _unstacked(projected)

    def step(t, h, c, hs, cs, gates):
        z = inputs.read(t) + tf.matmul(h, recurrent_kernel)
        sigmoid_part, tanh_part = tf.split(z, [3 * units, units], axis=1)
        ifo, candidate = tf.sigmoid(sigmoid_part), tf.tanh(tanh_part)
        i, f, o = tf.split(ifo, 3, axis=1)
        c = f * c + i * candidate
        h = o * tf.tanh(c)
        return t + 1, h, c, hs.write(t, h), cs.write(t, c), gates.write(t, tf.concat([ifo, candidate], 1))

    def arrays():
        return tf.TensorArray(dtype, size=steps)

    loop = (tf.constant(0), h0, c0, arrays(), arrays(), arrays())
    _, _, _, hs, cs, gates = tf.while_loop(lambda t, *_: t < steps, step, loop)
    h, c, gates = hs.stack(), cs.stack(), gates.stack()

    def grad(h_grad, c_grad):
        # Everything that does not depend on the carried gradients is computed for all steps at once, so
        # the backward loop holds a handful of ops per step.
        i, f, o, candidate = tf.split(gates, 4, axis=2)
        c_prev = tf.concat([c0[None], c[:-1]], axis=0)
        h_prev = tf.concat([h0[None], h[:-1]], axis=0)
        tanh_c = tf.tanh(c)
        h_to_c = o * (1.0 - tf.square(tanh_c))  # dh_t → dc_t
        # dz (gates i, f, o, c) = [dc, dc, dh, dc] * these, with dh and dc the step's total gradients
        to_gates = tf.concat(
            [
                candidate * i * (1.0 - i),
                c_prev * f * (1.0 - f),
                tanh_c * o * (1.0 - o),
                i * (1.0 - tf.square(candidate)),
            ],
            axis=2,
        )
        h_grads = _unstacked(tf.zeros_like(h) if h_grad is None else h_grad)
        c_grads = tf.zeros_like(c) if c_grad is None else c_grad
        c_grads = _unstacked(c_grads + h_grads.stack() * h_to_c)  # the outputs' own share of dc_t
        h_to_c, to_gates, forget = _unstacked(h_to_c), _unstacked(to_gates), _unstacked(f)

        def back(t, dh_next, dc_next, dzs):
            dh = h_grads.read(t) + dh_next
            dc = dc_next + c_grads.read(t) + dh_next * h_to_c.read(t)
            dz = tf.concat([dc, dc, dh, dc], axis=1) * to_gates.read(t)
            dh_prev = tf.matmul(dz, recurrent_kernel, transpose_b=True)
            return t - 1, dh_prev, dc * forget.read(t), dzs.write(t, dz)

        loop = (steps - 1, tf.zeros_like(h0), tf.zeros_like(c0), arrays())
        _, h0_grad, c0_grad, dzs = tf.while_loop(lambda t, *_: t >= 0, back, loop)
        projected_grad = dzs.stack()
        recurrent_grad = tf.einsum("tbu,tbg->ug", h_prev, projected_grad)
        return projected_grad, h0_grad, c0_grad, recurrent_grad

    return (h, c), grad


def projected_lstm_sequence(
    x: tf.Tensor,
    lengths: tf.Tensor,
    h0: tf.Tensor,
    c0: tf.Tensor,
    kernel: tf.Tensor,
    recurrent_kernel: tf.Tensor,
    bias: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One LSTM direction as one input matmul plus a recurrent-only loop (see the module doc)."""
    # Time-major for the loop; the gradients of the projection (inputs, kernel, bias) are one matmul each.
    projected = tf.einsum("btd,dg->tbg", x, _gates_ifoc(kernel)) + _gates_ifoc(bias)
    h, c = _recurrence(projected, h0, c0, _gates_ifoc(recurrent_kernel))
    return _right_padded_outputs(h, c, lengths, h0, c0)


@tf.custom_gradient
def _block_lstm(x, cs_prev, h_prev, w, b):
    """BlockLSTMV2 over time-major x [T, B, D] → (cs, h), each [T, B, U].

    The gradient is BlockLSTMGradV2, given here explicitly: TensorFlow registers the V1 gradient
    (BlockLSTMGrad, gate order i, c, f, o) for BlockLSTMV2 too (tensorflow/python/ops/rnn_grad.py),
    which gives wrong gradients for V2's i, f, c, o gates.
    """
    zeros = tf.zeros(tf.shape(b)[:1] // 4, x.dtype)
    args = dict(
        seq_len_max=tf.cast(tf.shape(x)[0], tf.int64),
        x=x,
        cs_prev=cs_prev,
        h_prev=h_prev,
        w=w,
        wci=zeros,
        wcf=zeros,
        wco=zeros,
        b=b,
    )
    # cell_clip <= 0: no clipping, as in Keras.
    i, cs, f, o, ci, co, h = tf.raw_ops.BlockLSTMV2(**args, cell_clip=0.0, use_peephole=False)

    def grad(cs_grad, h_grad):
        cs_grad = tf.zeros_like(cs) if cs_grad is None else cs_grad
        h_grad = tf.zeros_like(h) if h_grad is None else h_grad
        x_grad, cs_prev_grad, h_prev_grad, w_grad, _, _, _, b_grad = tf.raw_ops.BlockLSTMGradV2(
            **args,
            i=i,
            cs=cs,
            f=f,
            o=o,
            ci=ci,
            co=co,
            h=h,
            cs_grad=cs_grad,
            h_grad=h_grad,
            use_peephole=False,
        )
        return x_grad, cs_prev_grad, h_prev_grad, w_grad, b_grad

    return (cs, h), grad


def block_lstm_sequence(
    x: tf.Tensor,
    lengths: tf.Tensor,
    h0: tf.Tensor,
    c0: tf.Tensor,
    kernel: tf.Tensor,
    recurrent_kernel: tf.Tensor,
    bias: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One LSTM direction as TensorFlow's fused BlockLSTMV2 op (see the module doc)."""
    w = tf.concat([kernel, recurrent_kernel], axis=0)
    # Read the bias here, as a tensor: a (distributed) variable read inside the custom-gradient function
    # would need a grad_fn taking `variables` (seen under MirroredStrategy in eager mode).
    bias = tf.convert_to_tensor(bias)
    c, h = _block_lstm(tf.transpose(x, [1, 0, 2]), c0, h0, w, bias)  # the kernel is time-major
    return _right_padded_outputs(h, c, lengths, h0, c0)


def _right_padded_outputs(
    h: tf.Tensor, c: tf.Tensor, lengths: tf.Tensor, h0: tf.Tensor, c0: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Time-major h, c [T, B, U] of sequences run over their padding → (h [B, T, U] zero past each length,
    the last valid h, the last valid c)."""
    h = tf.transpose(h, [1, 0, 2])
    c = tf.transpose(c, [1, 0, 2])
    valid = tf.sequence_mask(lengths, tf.shape(h)[1], dtype=h.dtype)[:, :, None]
    last = tf.maximum(lengths - 1, 0)
    empty = tf.equal(lengths, 0)[:, None]
    last_h = tf.where(empty, h0, tf.gather(h, last, batch_dims=1))
    last_c = tf.where(empty, c0, tf.gather(c, last, batch_dims=1))
    return h * valid, last_h, last_c
