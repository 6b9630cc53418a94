"""Sketch-RNN (Ha & Eck 2017) in Keras 3, class-conditioned: one model draws every class it was trained on.

Inputs are the pipeline's delta ink {"ink": [B, T, 3], "length": [B]} (one row per move: dx, dy, pen
lifted after it; exactly sketch-rnn's stroke-3 without the first point's absolute position) and the
class index. Inside the model the ink becomes stroke-5 (ink.to_stroke5's layout, offsets divided by
the training set's std and clipped), then:

  encoder  bidirectional LSTM (enc_size) over the drawing → mu, presig (z_size) → z = mu + sigma * eps
  context  [z, class embedding (class_size)]; decoder_only=True drops the encoder and z
  decoder  LSTM (dec_size, optional layer norm and recurrent dropout) over [S_{t-1}, context] from an
           initial state tanh(Dense(context)); → 20 bivariate normals for (dx, dy) + 3 pen logits

The trainer calls `loss_sums` (the loss comes from the model, train.py does not fork), `adapt_to_data`
once before the first step (the std scale factor and max_seq_len from the training data, stored as
non-trainable weights, so in every checkpoint); at each eval it draws the model's samples
(models/sketch_sampling.py summary_images).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from quickdraw_tf.models import sketch_rnn_loss as L
from quickdraw_tf.models.lstm_cells import LayerNormLSTMCell

PRESIG_LIMIT = 20.0  # |log sigma^2| of z: keeps exp() finite for any input
START_TOKEN = (0.0, 0.0, 1.0, 0.0, 0.0)


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class SketchRnn(keras.Model):
    """Class-conditioned Sketch-RNN VAE (or decoder-only model).

    Args:
      num_classes: classes the model can draw.
      enc_size, dec_size, z_size: encoder LSTM units (per direction), decoder LSTM units, latent size.
      num_mixture: bivariate normals in the offset distribution.
      class_size: class embedding width (concatenated to every decoder input and the initial state's input).
      decoder_only: no encoder and no z (the paper's unconditional / "predict" model).
      layer_norm: layer-normalized decoder LSTM (sketch-rnn's LayerNormLSTMCell).
      recurrent_dropout: dropout rate on the decoder cell's candidate update (0: none).
      kl_weight, kl_weight_start, kl_decay_rate: magenta's KL annealing (start → final weight).
      kl_tolerance: the KL term is max(KL, kl_tolerance).
      kl_anneal_steps: when > 0, the KL weight's annealing is tied to the run's length instead of
        kl_decay_rate: the gap to the final weight shrinks to 1% after this many steps.
      pen_loss_padding: charge the pen loss on the padding up to max_seq_len too, as the paper does
        (every batch is decoded to max_seq_len; costlier, since batches are otherwise padded to their
        longest drawing only).
      max_seq_len: upper limit; the model's max_seq_len is the longest training drawing up to this
        many moves, and longer drawings are dropped from the loss and counted ("dropped").
    """

    metric_keys = ("loss", "recon", "offset_loss", "pen_loss", "kl", "dropped", "count")

    def __init__(
        self,
        num_classes: int,
        enc_size: int = 256,
        dec_size: int = 512,
        z_size: int = 128,
        num_mixture: int = 20,
        class_size: int = 32,
        decoder_only: bool = False,
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        kl_weight: float = 0.5,
        kl_weight_start: float = 0.01,
        kl_decay_rate: float = 0.99995,
        kl_tolerance: float = 0.2,
        kl_anneal_steps: int = 0,
        pen_loss_padding: bool = False,
        max_seq_len: int = 250,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hparams = dict(
            enc_size=enc_size,
            dec_size=dec_size,
            z_size=z_size,
            num_mixture=num_mixture,
            class_size=class_size,
            decoder_only=decoder_only,
            layer_norm=layer_norm,
            recurrent_dropout=recurrent_dropout,
            kl_weight=kl_weight,
            kl_weight_start=kl_weight_start,
            kl_decay_rate=kl_decay_rate,
            kl_tolerance=kl_tolerance,
            kl_anneal_steps=kl_anneal_steps,
            pen_loss_padding=pen_loss_padding,
            max_seq_len=max_seq_len,
        )
        self.num_classes = num_classes
        self.num_mixture = num_mixture
        self.decoder_only = decoder_only
        self.class_embedding = keras.layers.Embedding(num_classes, class_size, name="class_embedding")
        if not decoder_only:
            self.encoder = keras.layers.Bidirectional(keras.layers.LSTM(enc_size), name="encoder")
            self.z_mu = keras.layers.Dense(z_size, name="z_mu")
            self.z_presig = keras.layers.Dense(z_size, name="z_presig")
        self.initial_state = keras.layers.Dense(2 * dec_size, activation="tanh", name="initial_state")
        if layer_norm or recurrent_dropout:
            cell = LayerNormLSTMCell(dec_size, layer_norm, recurrent_dropout, name="decoder_cell")
            self.decoder = keras.layers.RNN(cell, return_sequences=True, return_state=True, name="decoder")
        else:  # Keras' LSTM: cuDNN on a GPU
            self.decoder = keras.layers.LSTM(
                dec_size, return_sequences=True, return_state=True, name="decoder"
            )
        self.mixture = keras.layers.Dense(6 * num_mixture + 3, name="mixture")
        # Set from the training data by adapt_to_data; in the checkpoint with the other weights.
        self.scale_factor = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(1.0), trainable=False, name="scale_factor"
        )
        self.data_max_seq_len = self.add_weight(
            shape=(),
            dtype="int32",
            initializer=keras.initializers.Constant(max_seq_len),
            trainable=False,
            name="data_max_seq_len",
        )
        # Create every weight now: the trainer builds the optimizer's slots right after construction.
        self({"ink": tf.zeros([1, 2, 3]), "length": tf.constant([2]), "class_index": tf.constant([0])})

    # ----------------------------------------------------------------------------------------- model
    def to_stroke5(self, ink: tf.Tensor, length: tf.Tensor) -> tf.Tensor:
        """Delta ink [B, T, 3] → scaled stroke-5 [B, T + 1, 5]: ink.to_stroke5(ink, T + 1) per drawing,
        offsets divided by scale_factor and clipped to +-OFFSET_LIMIT."""
        ink = tf.pad(tf.cast(ink, tf.float32), [[0, 0], [0, 1], [0, 0]])
        offsets = tf.clip_by_value(ink[..., :2] / self.scale_factor, -L.OFFSET_LIMIT, L.OFFSET_LIMIT)
        lifted = ink[..., 2:3]
        rows = tf.concat([offsets, 1.0 - lifted, lifted, tf.zeros_like(lifted)], axis=-1)
        valid = tf.sequence_mask(length, tf.shape(ink)[1])[..., None]
        return tf.where(valid, rows, tf.constant([[[0.0, 0.0, 0.0, 0.0, 1.0]]]))

    def _pad_to_max_seq_len(self, stroke5: tf.Tensor) -> tf.Tensor:
        """Stroke-5 rows [B, T + 1, 5] padded with end rows to [B, max(T, max_seq_len) + 1, 5]."""
        missing = tf.maximum(self.data_max_seq_len + 1 - tf.shape(stroke5)[1], 0)
        end_rows = tf.tile(tf.constant([[[0.0, 0.0, 0.0, 0.0, 1.0]]]), [tf.shape(stroke5)[0], missing, 1])
        return tf.concat([stroke5, end_rows], axis=1)

    def encode(self, stroke5: tf.Tensor, length: tf.Tensor, training: bool = False):
        """(mu, presig) of q(z | drawing) from its scaled stroke-5 rows (the end row left out)."""
        drawing = stroke5[:, :-1]
        mask = tf.sequence_mask(tf.maximum(length, 1), tf.shape(drawing)[1])
        hidden = self.encoder(drawing, mask=mask, training=training)
        presig = tf.clip_by_value(self.z_presig(hidden), -PRESIG_LIMIT, PRESIG_LIMIT)
        return self.z_mu(hidden), presig

    def context(self, class_index: tf.Tensor, z: tf.Tensor | None = None) -> tf.Tensor:
        """What every decoder step sees besides the previous point: [z, class embedding]."""
        embedded = self.class_embedding(tf.cast(class_index, tf.int32))
        return embedded if self.decoder_only else tf.concat([z, embedded], axis=-1)

    def start_state(self, context: tf.Tensor) -> list[tf.Tensor]:
        return list(tf.split(self.initial_state(context), 2, axis=-1))

    def decode(self, previous: tf.Tensor, context: tf.Tensor, state: list[tf.Tensor], training: bool = False):
        """Decoder over [B, T, 5] previous points → (mixture outputs [B, T, 6M + 3], final [h, c])."""
        steps = tf.shape(previous)[1]
        tiled = tf.tile(context[:, None, :], [1, steps, 1])
        sequence, h, c = self.decoder(
            tf.concat([previous, tiled], axis=-1), initial_state=state, training=training
        )
        return self.mixture(sequence), [h, c]

    def decode_step(self, point: tf.Tensor, context: tf.Tensor, state: list[tf.Tensor]):
        """One decoder step for sampling: point [B, 5] → (mixture outputs [B, 6M + 3], new [h, c])."""
        h, state = self.decoder.cell(tf.concat([point, context], axis=-1), state, training=False)
        return self.mixture(h), list(state)

    def call(self, inputs: dict, training: bool = False) -> dict[str, tf.Tensor]:
        length = tf.cast(inputs["length"], tf.int32)
        stroke5 = self.to_stroke5(inputs["ink"], length)
        batch = tf.shape(stroke5)[0]
        start = tf.tile(tf.constant([[START_TOKEN]]), [batch, 1, 1])
        previous = tf.concat([start, stroke5[:, :-1]], axis=1)
        z = mu = presig = None
        if not self.decoder_only:
            mu, presig = self.encode(stroke5, length, training)
            eps = tf.random.normal(tf.shape(mu)) if training else tf.zeros_like(mu)
            z = mu + tf.exp(presig / 2.0) * eps
        context = self.context(inputs["class_index"], z)
        if self.hparams["pen_loss_padding"]:
            # Decode up to max_seq_len: the rows after a drawing's end are end-of-sketch rows.
            stroke5 = self._pad_to_max_seq_len(stroke5)
            previous = tf.concat([start, stroke5[:, :-1]], axis=1)
        output, _ = self.decode(previous, context, self.start_state(context), training)
        result = {"output": output, "target": stroke5}
        if not self.decoder_only:
            result.update(mu=mu, presig=presig)
        return result

    # ------------------------------------------------------------------------- trainer hooks
    def example_losses(self, inputs: dict, labels: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        """Per-drawing offset and pen losses, KL, and keep (1: at most max_seq_len moves, else 0)."""
        length = tf.cast(inputs["length"], tf.int32)
        out = self({**inputs, "class_index": labels}, training=training)
        params = L.split_params(out["output"], self.num_mixture)
        offset, pen = L.reconstruction_losses(
            params, out["target"], length, self.data_max_seq_len, self.hparams["pen_loss_padding"]
        )
        kl = tf.zeros_like(offset) if self.decoder_only else L.kl_divergence(out["mu"], out["presig"])
        keep = tf.cast(length <= self.data_max_seq_len, tf.float32)
        return {"offset_loss": offset, "pen_loss": pen, "kl": kl, "keep": keep}

    def loss_sums(self, inputs: dict, labels: tf.Tensor, step: tf.Tensor, training: bool):
        """(per-drawing loss [B], summed metrics) for the trainer. Training uses the annealed KL weight,
        evaluation the final one, so eval losses of different steps compare."""
        losses = self.example_losses(inputs, labels, training)
        keep, kl = losses["keep"], losses["kl"]
        kept = tf.reduce_sum(keep)
        recon = losses["offset_loss"] + losses["pen_loss"]
        hp = self.hparams
        kl_cost = 0.0
        if not self.decoder_only:
            # As magenta: the tolerance applies to the batch's mean KL.
            batch_kl = tf.reduce_sum(kl * keep) / tf.maximum(kept, 1.0)
            decay_rate = (
                0.01 ** (1.0 / hp["kl_anneal_steps"]) if hp["kl_anneal_steps"] > 0 else hp["kl_decay_rate"]
            )
            weight = (
                L.kl_weight(step, hp["kl_weight_start"], hp["kl_weight"], decay_rate)
                if training
                else hp["kl_weight"]
            )
            kl_cost = weight * tf.maximum(batch_kl, hp["kl_tolerance"])
        per_example = keep * (recon + kl_cost)
        sums = {
            "recon": tf.reduce_sum(keep * recon),
            "offset_loss": tf.reduce_sum(keep * losses["offset_loss"]),
            "pen_loss": tf.reduce_sum(keep * losses["pen_loss"]),
            "kl": tf.reduce_sum(keep * kl),
            "dropped": tf.reduce_sum(1.0 - keep),
            "count": kept,
        }
        return per_example, sums

    def adapt_to_data(self, dataset: tf.data.Dataset) -> dict:
        """Sets scale_factor (std of all dx and dy, as sketch-rnn's calculate_normalizing_scale_factor)
        and max_seq_len (the longest kept drawing) from the training split; returns the figures."""
        limit = self.hparams["max_seq_len"]
        offsets, longest, kept, dropped = [], 0, 0, 0
        for inputs, _ in dataset:
            for ink, length in zip(inputs["ink"].numpy(), inputs["length"].numpy(), strict=True):
                if length > limit:
                    dropped += 1
                    continue
                kept += 1
                longest = max(longest, int(length))
                offsets.append(ink[:length, :2].reshape(-1))
        if not kept:
            raise ValueError(f"no training drawing has at most max_seq_len={limit} moves")
        scale = float(np.std(np.concatenate(offsets)))
        self.scale_factor.assign(scale if scale > 0 else 1.0)
        self.data_max_seq_len.assign(longest)
        return {"scale_factor": scale, "max_seq_len": longest, "kept": kept, "dropped_too_long": dropped}

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("dtype", None)  # rebuilt under the global dtype policy, as when first built
        config.update({"num_classes": self.num_classes, **self.hparams})
        return config
