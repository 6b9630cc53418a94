"""The model server and live drawing page: `python -m quickdraw_tf.serve --model_dir=M`."""
