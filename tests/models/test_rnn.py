"""The tutorial's RNN classifier (quickdraw_tf/models/rnn.py) beyond the contract every model keeps
(test_contract.py): an empty drawing, and LSTMs that cuDNN can run."""

import keras
import numpy as np

from quickdraw_tf import models
from tests.harness import TINY_HPARAMS


def _tiny() -> keras.Model:
    keras.utils.set_random_seed(0)
    return models.get_model("rnn", 4, **{**TINY_HPARAMS["rnn"], "num_layers": 2, "batch_norm": True})


def test_zero_length_drawing_gives_finite_logits():
    logits = _tiny()({"ink": np.zeros((2, 3, 3), np.float32), "length": np.array([0, 3], np.int32)})
    assert logits.shape == (2, 4) and np.isfinite(logits).all()


def test_lstms_stay_eligible_for_cudnn():
    for layer in _tiny().layers:
        if isinstance(layer, keras.layers.Bidirectional):
            for lstm in (layer.forward_layer, layer.backward_layer):
                config = lstm.get_config()
                assert config["activation"] == "tanh" and config["recurrent_activation"] == "sigmoid"
                assert config["recurrent_dropout"] == 0 and not config["unroll"] and config["use_bias"]
