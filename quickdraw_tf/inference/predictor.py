"""quickdraw_tf.Predictor: trained model_dir(s) -> words and probabilities for any drawing.

    p = Predictor.load("runs/rnn")                                 # one model
    p = Predictor.load(["runs/rnn", "runs/mobilenet"], weights=[2, 1])   # an ensemble
    p.predict([drawing], top_k=3)  ->  [[("cat", 0.91), ("dog", 0.05), ("lion", 0.01)]]

Each member loads model_dir/model.keras and model_dir/preprocessing.json (how its training inputs
were made, quickdraw_tf.data.preprocess; training/run_dir.py reads the run's files), so a drawing -
raw or simplified, from a file or a canvas, or a 28x28 image for image models - is prepared exactly as
the member's training data was. With engine="onnxruntime" the members run model_dir/model.onnx in
ONNX Runtime (inference/onnx_engine.py) instead of model.keras in TensorFlow. An ensemble
averages the members' probabilities (weighted when asked); their classes.txt must be identical.
Stroke members are fed batches of drawings of similar length (sorted by length, padded to the
longest of each batch), as evaluation's length buckets do.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from quickdraw_tf.data import preprocess
from quickdraw_tf.data.drawing import Drawing, InvalidRecord
from quickdraw_tf.inference import onnx_engine
from quickdraw_tf.models import contract
from quickdraw_tf.training import run_dir
from quickdraw_tf.training.train_config import TrainConfig

DEFAULT_BATCH_SIZE = 64


@dataclasses.dataclass
class _Member:
    model_dir: str
    name: str
    prep: preprocess.Preprocessing
    call: Callable[..., np.ndarray]  # (ink, length) or (image) -> float32 probabilities [N, C]

    @property
    def takes_images(self) -> bool:
        return self.prep.kind == "images"


def _probabilities_fn(model: keras.Model, takes_images: bool):
    """One traced function for every batch size and length (None dimensions), logits -> softmax."""
    if takes_images:
        spec = [tf.TensorSpec([None, 28, 28], tf.uint8)]

        def call(image):
            return tf.nn.softmax(tf.cast(model({"image": image}, training=False), tf.float32))

    else:
        spec = [tf.TensorSpec([None, None, 3], tf.float32), tf.TensorSpec([None], tf.int32)]

        def call(ink, length):
            logits = model({"ink": ink, "length": length}, training=False)
            return tf.nn.softmax(tf.cast(logits, tf.float32))

    traced = tf.function(call, input_signature=spec, reduce_retracing=True)
    return lambda *inputs: traced(*inputs).numpy()


def _load_member(
    model_dir: str,
    engine: str,
    config: TrainConfig | None,
    prep: preprocess.Preprocessing,
    classes: Sequence[str],
) -> _Member:
    if engine == "onnxruntime":
        session = onnx_engine.load(model_dir)
        takes_images, call, outputs, default_name = session.takes_images, session, session.outputs, "onnx"
    else:
        model = run_dir.load_keras_model(model_dir)
        takes_images = contract.input_kind(model) == contract.IMAGE
        call, default_name = _probabilities_fn(model, takes_images), type(model).__name__
        outputs = run_dir.output_count(model)
    run_dir.check_outputs(outputs, list(classes), model_dir)
    if takes_images != (prep.kind == "images"):
        prep = dataclasses.replace(prep, kind="images" if takes_images else "strokes")
    return _Member(model_dir, config.model if config else default_name, prep, call)


def _normalized_weights(weights: Sequence[float] | None, count: int) -> np.ndarray:
    if weights is None:
        return np.full(count, 1.0 / count)
    weights = np.asarray(list(weights), np.float64)
    if len(weights) != count:
        raise ValueError(f"{len(weights)} weights for {count} model dirs")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {weights.tolist()}")
    return weights / weights.sum()


class Predictor:
    """One model or an ensemble of models that share their classes. See the module docstring."""

    def __init__(
        self,
        members: Sequence[_Member],
        class_names: Sequence[str],
        weights: Sequence[float] | None = None,
        engine: str = "tensorflow",
    ):
        self._members = list(members)
        self.engine = engine
        self.class_names = tuple(class_names)
        self.weights = _normalized_weights(weights, len(self._members))
        self.name = "+".join(member.name for member in self._members)
        self.accepts_strokes = True  # image members render strokes
        self.accepts_images = all(member.takes_images for member in self._members)
        # Members that prepare drawings the same way share the prepared input.
        self._preps = list(dict.fromkeys(member.prep for member in self._members))
        self._prep_of_member = [self._preps.index(member.prep) for member in self._members]

    @classmethod
    def load(
        cls,
        model_dirs: str | Sequence[str],
        weights: Sequence[float] | None = None,
        engine: str = "tensorflow",
    ) -> Predictor:
        """Loads one model_dir or several (an ensemble), run by `engine`: "tensorflow" (model.keras) or
        "onnxruntime" (model.onnx). FileNotFoundError for a missing or untrained model_dir or a missing
        model.onnx; ValueError (one line) when the classes differ or the weights or engine do not fit, or
        for a run file that does not check out (run_dir: a field's type or range, a class list that is
        not one or does not match the model's outputs); ImportError (one line) when onnxruntime is asked
        for and not installed. The small files are checked before any model is loaded."""
        onnx_engine.check_engine(engine)
        dirs = [model_dirs] if isinstance(model_dirs, (str, os.PathLike)) else list(model_dirs)
        if not dirs:
            raise ValueError("no model_dir given")
        dirs = [os.fspath(path) for path in dirs]
        _normalized_weights(weights, len(dirs))  # fail before loading anything
        for path in dirs:
            run_dir.trained_model_file(path)
        classes = [tuple(run_dir.read_classes(path)) for path in dirs]
        for path, names in zip(dirs[1:], classes[1:], strict=True):
            if names != classes[0]:
                difference = _class_difference(classes[0], names)
                raise ValueError(f"cannot ensemble: {path} has other classes than {dirs[0]} ({difference})")
        # Every run file of every member is checked before the first model is loaded.
        runs = [(d, run_dir.read_config(d, required=False), run_dir.read_preprocessing(d)) for d in dirs]
        members = [_load_member(d, engine, config, prep, classes[0]) for d, config, prep in runs]
        return cls(members, classes[0], weights, engine)

    @property
    def model_dirs(self) -> tuple[str, ...]:
        return tuple(member.model_dir for member in self._members)

    @property
    def preprocessing(self) -> tuple[preprocess.Preprocessing, ...]:
        return tuple(member.prep for member in self._members)

    def prepare(self, drawing: Drawing) -> tuple[dict[str, np.ndarray], ...]:
        """ONE drawing -> the inputs of every member. InvalidRecord (a ValueError) if unusable."""
        if drawing.image is not None and not drawing.strokes and not self.accepts_images:
            raise InvalidRecord("bad_image", "an image, but a model of this predictor needs strokes")
        prepared = [preprocess.model_input(drawing, prep) for prep in self._preps]
        return tuple(prepared[index] for index in self._prep_of_member)

    def probabilities(
        self, prepared: Sequence[tuple[dict[str, np.ndarray], ...]], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> np.ndarray:
        """float32 [N, C]: the (weighted) mean of the members' softmax outputs."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        total = np.zeros((len(prepared), len(self.class_names)), np.float64)
        if not prepared:
            return total.astype(np.float32)
        for index, (member, weight) in enumerate(zip(self._members, self.weights, strict=True)):
            inputs = [entry[index] for entry in prepared]
            if member.takes_images:
                total += weight * self._image_probabilities(member, inputs, batch_size)
            else:
                total += weight * self._ink_probabilities(member, inputs, batch_size)
        return total.astype(np.float32)

    @staticmethod
    def _image_probabilities(member: _Member, inputs: list[dict], batch_size: int) -> np.ndarray:
        images = np.stack([entry["image"] for entry in inputs])
        parts = [
            member.call(images[start : start + batch_size])
            for start in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts)

    @staticmethod
    def _ink_probabilities(member: _Member, inputs: list[dict], batch_size: int) -> np.ndarray:
        """Batches of similar lengths (bucketing by sorting), each padded to its longest drawing."""
        lengths = np.array([len(entry["ink"]) for entry in inputs])
        order = np.argsort(lengths, kind="stable")
        out = None
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            longest = int(lengths[batch].max())
            ink = np.zeros((len(batch), longest, 3), np.float32)
            for row, index in enumerate(batch):
                ink[row, : lengths[index]] = inputs[index]["ink"]
            probs = member.call(ink, lengths[batch].astype(np.int32))
            if out is None:
                out = np.zeros((len(inputs), probs.shape[1]), np.float32)
            out[batch] = probs
        return out

    def top_k(self, probabilities_row: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
        """The k most probable words, best first (ties: the lower class index first, as tf.math.top_k)."""
        k = max(1, min(k, len(self.class_names)))
        order = np.argsort(-np.asarray(probabilities_row), kind="stable")[:k]
        return [(self.class_names[i], float(probabilities_row[i])) for i in order]

    def predict(
        self, drawings: Sequence[Drawing], top_k: int = 3, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> list[list[tuple[str, float]]]:
        """prepare + batched probabilities + top_k; raises on the first unusable drawing."""
        prepared = [self.prepare(drawing) for drawing in drawings]
        return [self.top_k(row, top_k) for row in self.probabilities(prepared, batch_size)]


def _class_difference(first: Sequence[str], other: Sequence[str]) -> str:
    if len(first) != len(other):
        return f"{len(other)} classes against {len(first)}"
    index = next(i for i, (a, b) in enumerate(zip(first, other, strict=True)) if a != b)
    return f"class {index} is {other[index]!r}, not {first[index]!r}"
