"""quickdraw-tf: a TensorFlow 2 / Keras 3 toolkit for Google's Quick, Draw! data."""

__version__ = "0.1.0"
