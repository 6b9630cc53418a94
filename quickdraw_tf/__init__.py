"""quickdraw-tf: a TensorFlow 2 / Keras 3 toolkit for Google's Quick, Draw! data.

`import quickdraw_tf` is enough for keras.models.load_model(".../model.keras") to find the project's
Keras classes (see keras_registration), and gives quickdraw_tf.Predictor (imported on first use).
"""

from quickdraw_tf import keras_registration as _keras_registration

__version__ = "0.1.0"
__all__ = ["Predictor"]

_keras_registration.install()


def __getattr__(name: str):
    if name == "Predictor":  # lazily: the predictor imports TensorFlow
        from quickdraw_tf.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'quickdraw_tf' has no attribute {name!r}")
