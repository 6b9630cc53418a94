"""quickdraw-tf: a TensorFlow 2 / Keras 3 toolkit for Google's Quick, Draw! data.

Importing the package changes nothing in the process (no import hook, no logging setup, no TensorFlow):
the Beam job's workers import quickdraw_tf.data without paying for TensorFlow. quickdraw_tf.Predictor
(imported on first use) loads trained runs; quickdraw_tf.models.register_all() registers the project's
Keras classes for a plain keras.models.load_model(".../model.keras").

Layers, each importing only those below it: data (TensorFlow-free) < pictures < models < training <
inference < serve < the commands (python -m quickdraw_tf.<command>).
"""

__version__ = "0.1.0"
__all__ = ["Predictor"]


def __getattr__(name: str):
    if name == "Predictor":  # lazily: the predictor imports TensorFlow
        from quickdraw_tf.inference.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'quickdraw_tf' has no attribute {name!r}")
