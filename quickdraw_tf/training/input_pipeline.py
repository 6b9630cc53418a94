"""tf.data input pipeline over the TFRecords written by beam_jobs/make_tfrecords.py.

Stroke records yield ({"ink": float32 [B, T, 3], "length": int32 [B]}, class_index int64 [B]);
image records yield ({"image": uint8 [B, 28, 28]}, class_index int64 [B]).

Order of operations: shuffled shard list → parallel interleave → shuffle serialized records → repeat
(training) → parse with the shared schema in quickdraw_tf/data/features.py → augment (training only) →
padded or length-bucketed batches → prefetch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator

import tensorflow as tf

from quickdraw_tf.data import layout
from quickdraw_tf.data.layout import DEFAULT_DATA_DIR, SPLITS
from quickdraw_tf.models import augment
from quickdraw_tf.training import example_parsing
from quickdraw_tf.training.config_flags import setting

KINDS = ("auto", *layout.KINDS)  # "auto": the kind the data directory's manifest records
PARSE_BATCH = 64  # records parsed per parse op


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """How to read one split. `batch_size` is GLOBAL: tf.distribute splits it over the replicas.
    The fields declared with setting() are also flags of `python -m quickdraw_tf.train` (config_flags.py).

    bucket_boundaries: sequence lengths that separate the length buckets; every batch holds drawings
      of one bucket, padded to its longest drawing. Empty: plain padded batches of mixed lengths.
    static_shapes: for TPU / XLA: each batch is padded to its bucket's upper boundary (not to its
      longest drawing) and training drops the last partial batch, so only len(bucket_boundaries)
      shapes ever occur. Drawings longer than the largest boundary are TRUNCATED to it.
    max_length: truncate longer drawings (0: never) when not in static mode.
    augment_scale: training only: x and y are scaled by independent factors in [1 - s, 1 + s].
    augment_drop_prob: training only: probability of dropping each interior point of a stroke
      (sketch-rnn's augmentation); the dropped move is merged into the next one.
    augment_rotation: training only: the drawing is rotated by a random angle in +-this many degrees.
    """

    batch_size: int = setting(64, "GLOBAL batch size.")
    shuffle_buffer: int = setting(10_000, "Shuffle buffer, in drawings.")
    bucket_boundaries: tuple[int, ...] = setting(
        (32, 48, 64, 96, 128, 192), "Length bucket boundaries; empty: no bucketing."
    )
    static_shapes: bool = setting(
        False, "Pad to bucket boundaries, drop partial batches, truncate to the largest (TPU/XLA)."
    )
    max_length: int = setting(0, "Truncate longer drawings (0: never).")
    augment_scale: float = setting(0.0, "Random x/y scale in [1-s, 1+s] (training only).")
    augment_drop_prob: float = setting(0.0, "sketch-rnn point dropping probability.")
    augment_rotation: float = setting(0.0, "Random rotation in +-degrees (training only).")
    interleave_cycle: int = 8
    kind: str = "auto"
    seed: int | None = None

    def __post_init__(self):
        for name in ("batch_size", "shuffle_buffer", "interleave_cycle"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_length < 0:
            raise ValueError(f"max_length must be >= 0 (0: never truncate), got {self.max_length}")
        if list(self.bucket_boundaries) != sorted(set(self.bucket_boundaries)) or any(
            b < 1 for b in self.bucket_boundaries
        ):
            raise ValueError(
                f"bucket_boundaries must be increasing positive ints, got {self.bucket_boundaries}"
            )
        if self.static_shapes and not self.bucket_boundaries:
            raise ValueError("static_shapes needs bucket_boundaries (the largest one is the padded length)")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not 0.0 <= self.augment_drop_prob < 1.0 or not 0.0 <= self.augment_scale < 1.0:
            raise ValueError("augment_drop_prob and augment_scale must be in [0, 1)")
        if not 0.0 <= self.augment_rotation <= 180.0:
            raise ValueError(f"augment_rotation must be in [0, 180] degrees, got {self.augment_rotation}")

    @property
    def truncation(self) -> int:
        """The most rows a drawing's ink keeps (0: all): the largest bucket boundary with static shapes,
        else max_length. A Predictor truncates the same way (run_dir's preprocessing.json)."""
        if self.static_shapes and self.bucket_boundaries:
            return int(self.bucket_boundaries[-1])
        return int(self.max_length or 0)


def split_files(data_dir: str, split: str) -> list[str]:
    """The shards of one split that the directory's manifest lists, in order, after the cheap checks of
    layout.check_data_dir (raises layout.DataDirError, a ValueError, with a one-line message)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    manifest, _, _ = layout.check_data_dir(data_dir, tf.io.gfile)
    return [layout.join(data_dir, shard["name"]) for shard in manifest["shards"][split]]


def check_data_dir(data_dir: str) -> None:
    """Raises FileNotFoundError, in one line that names the conversion to run, if data_dir is missing."""
    if tf.io.gfile.isdir(data_dir):
        return
    if os.path.normpath(data_dir) == os.path.normpath(DEFAULT_DATA_DIR):
        how = "`python -m beam_jobs.make_tfrecords --runner=DirectRunner` (converts the embedded sample)"
    else:
        how = f"`python -m beam_jobs.make_tfrecords --output_dir={data_dir}` (image configs: their header's)"
    raise FileNotFoundError(f"--data_dir {data_dir} is not a directory: make it first with {how}")


def read_classes(data_dir: str) -> list[str]:
    """The class words (line number = class_index) of a checked data directory."""
    return layout.check_data_dir(data_dir, tf.io.gfile)[1]


def data_kind(data_dir: str) -> str:
    """'strokes' or 'images' (layout.KINDS): the kind the conversion recorded in its manifest."""
    return layout.check_data_dir(data_dir, tf.io.gfile)[0]["kind"]


@contextlib.contextmanager
def naming_bad_shards(data_dir: str) -> Iterator[None]:
    """Turns a DataLossError raised while reading data_dir's shards (TensorFlow's names no file) into a
    layout.DataDirError naming the shard whose sha256 no longer matches the manifest."""
    try:
        yield
    except tf.errors.DataLossError as error:
        manifest = layout.check_data_dir(data_dir, tf.io.gfile)[0]
        layout.verify_shards(data_dir, manifest, tf.io.gfile)  # raises, naming the corrupt shard
        raise layout.DataDirError(f"corrupt record in {data_dir}: {error.message}") from None


# The augmentations work on a whole parsed batch of drawings, ragged [N, None, 3], as flat point
# arrays: a handful of ops per batch instead of per drawing (measured in benchmarks/input_bench.py).


def _per_point(per_drawing: tf.Tensor, ink: tf.RaggedTensor) -> tf.Tensor:
    """Repeats a per-drawing value [N, ...] for each of the drawing's points: [P, ...]."""
    return tf.gather(per_drawing, ink.value_rowids())


def scale_ink(ink: tf.RaggedTensor, max_change: float) -> tf.RaggedTensor:
    """Scales each drawing's dx and dy by independent random factors in [1 - max_change, 1 + max_change]."""
    factors = tf.random.uniform([ink.nrows(), 2], 1.0 - max_change, 1.0 + max_change)
    rows = ink.values
    return ink.with_values(tf.concat([rows[:, :2] * _per_point(factors, ink), rows[:, 2:]], axis=1))


def rotate_ink(ink: tf.RaggedTensor, max_degrees: float) -> tf.RaggedTensor:
    """Rotates each drawing by its own random angle in [-max_degrees, max_degrees]: every move
    (dx, dy) of a drawing turns by the same angle, so stroke shapes and lengths are kept. The same
    draw and rotation as the raster models' RandomInkAffine (models/augment.py)."""
    angles = augment.random_angles(ink.nrows(), max_degrees)
    moves = augment.affine_moves(ink.values[:, :2], _per_point(angles, ink))
    return ink.with_values(tf.concat([moves, ink.values[:, 2:]], axis=1))


def drop_points(ink: tf.RaggedTensor, drop_prob: float) -> tf.RaggedTensor:
    """Randomly removes interior points of strokes from each delta ink, as sketch-rnn augments.

    Row i of a drawing moves the pen to point i+1; its flag says whether that point ends a stroke.
    A point may go only if it is neither a stroke's last point (own flag 0) nor its first (previous
    flag 0: the row is a pen-down move, not the jump to a new stroke), so strokes and their count
    are kept. The kept rows are re-derived from absolute positions (cumsum within each drawing),
    i.e. each dropped move is merged into the next kept one: every kept point stays where it was
    and each stroke's total displacement is kept.
    """
    rows, drawing = ink.values, ink.value_rowids()
    flags = rows[:, 2]
    index = tf.range(tf.size(flags, out_type=ink.row_splits.dtype))
    first = tf.equal(index, tf.gather(ink.row_starts(), drawing))  # a drawing's row 0 may be a jump
    previous_flags = tf.where(first, 1.0, tf.concat([[1.0], flags[:-1]], axis=0))
    interior = tf.logical_and(tf.equal(flags, 0.0), tf.equal(previous_flags, 0.0))
    dropped = tf.logical_and(interior, tf.random.uniform(tf.shape(flags)) < drop_prob)
    kept = tf.squeeze(tf.where(tf.logical_not(dropped)), axis=1)
    # Absolute positions per drawing (a cumsum over the whole batch would mix float error across drawings).
    positions = tf.cumsum(ink[:, :, :2].to_tensor(), axis=1)
    row_in_drawing = index - tf.gather(ink.row_starts(), drawing)
    positions = tf.gather_nd(positions, tf.stack([drawing, row_in_drawing], axis=1))
    kept_positions, kept_first = tf.gather(positions, kept), tf.gather(first, kept)
    previous = tf.concat([tf.zeros([1, 2]), kept_positions[:-1]], axis=0)
    deltas = kept_positions - tf.where(kept_first[:, None], 0.0, previous)
    kept_rows = tf.concat([deltas, tf.gather(flags, kept)[:, None]], axis=1)
    return tf.RaggedTensor.from_value_rowids(kept_rows, tf.gather(drawing, kept), nrows=ink.nrows())


def parse_stroke_batch(serialized: tf.Tensor) -> tuple[dict[str, tf.RaggedTensor], tf.Tensor]:
    """N records at once (one parse op instead of one per record):
    ({"ink": ragged [N, None, 3], "length": [N]}, class_index [N]); empty inks get a zero row."""
    parsed = tf.io.parse_example(serialized, example_parsing.STROKE_FEATURES)
    flat = tf.RaggedTensor.from_sparse(parsed["ink"])
    lengths = tf.cast(flat.row_lengths() // 3, tf.int32)
    ink = tf.RaggedTensor.from_row_lengths(tf.reshape(flat.values, [-1, 3]), lengths)
    missing = 1 - tf.minimum(lengths, 1)  # one zero row for each empty ink
    padding = tf.RaggedTensor.from_row_lengths(tf.zeros([tf.reduce_sum(missing), 3]), missing)
    ink = tf.concat([ink, padding], axis=1)
    return {"ink": ink, "length": tf.maximum(lengths, 1)}, parsed["class_index"][:, 0]


def parse_stroke(serialized: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """One record → ({"ink": [n, 3], "length": n}, class_index): parse_stroke_batch on a batch of one,
    for readers that want drawings one by one (the benchmarks)."""
    inputs, label = parse_stroke_batch(serialized[None])
    return {"ink": inputs["ink"][0], "length": inputs["length"][0]}, label[0]


def parse_image(serialized: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    parsed = example_parsing.parse_image_example(serialized)
    return {"image": parsed["image"]}, parsed["class_index"][0]


def _augment_and_truncate(config: InputConfig, training: bool):
    """Per parsed batch: augmentation (training only), then truncation."""
    max_length = config.bucket_boundaries[-1] if config.static_shapes else config.max_length

    def prepare(inputs, label):
        ink = inputs["ink"]
        if training and config.augment_drop_prob > 0:
            ink = drop_points(ink, config.augment_drop_prob)
        if training and config.augment_scale > 0:
            ink = scale_ink(ink, config.augment_scale)
        if training and config.augment_rotation > 0:
            ink = rotate_ink(ink, config.augment_rotation)
        if max_length:
            ink = ink[:, :max_length]
        return {"ink": ink, "length": tf.cast(ink.row_lengths(), tf.int32)}, label

    return prepare


def _dense_ink(inputs, label):
    """Unbatching ragged inks yields ragged-rank-0 elements; padded_batch and bucketing take tensors."""
    return {"ink": tf.ensure_shape(inputs["ink"], [None, 3]), "length": inputs["length"]}, label


def _static_batch_size(batch_size: int):
    """Bucketing (group_by_window) forgets that dropped remainders make every batch full: restate it."""

    def set_shape(inputs, label):
        inputs = {
            "ink": tf.ensure_shape(inputs["ink"], [batch_size, None, 3]),
            "length": tf.ensure_shape(inputs["length"], [batch_size]),
        }
        return inputs, tf.ensure_shape(label, [batch_size])

    return set_shape


def _batch_strokes(dataset: tf.data.Dataset, config: InputConfig, drop_remainder: bool) -> tf.data.Dataset:
    if not config.bucket_boundaries:
        return dataset.padded_batch(config.batch_size, drop_remainder=drop_remainder)
    boundaries = list(config.bucket_boundaries)
    if config.static_shapes:
        # bucket_by_sequence_length pads bucket [b_i, b_{i+1}) to b_{i+1} - 1; shifting every boundary
        # by one pads lengths (b_i, b_{i+1}] to exactly b_{i+1}. The open last bucket stays empty
        # because the drawings were truncated to the largest boundary.
        boundaries = [b + 1 for b in boundaries]
    return dataset.bucket_by_sequence_length(
        element_length_func=lambda inputs, label: inputs["length"],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[config.batch_size] * (len(boundaries) + 1),
        pad_to_bucket_boundary=config.static_shapes,
        drop_remainder=drop_remainder,
    )


def _records(
    files: list[str], config: InputConfig, training: bool, shard: tuple[int, int]
) -> tf.data.Dataset:
    """Serialized records of this pipeline's shard, shards read in parallel, shuffled for training."""
    num_shards, shard_index = shard
    by_files = num_shards > 1 and len(files) >= num_shards
    paths = tf.data.Dataset.from_tensor_slices(files)
    if by_files:
        paths = paths.shard(num_shards, shard_index)
    if training:
        paths = paths.shuffle(len(files), seed=config.seed)
    files_here = len(files) // num_shards if by_files else len(files)
    records = paths.interleave(
        tf.data.TFRecordDataset,
        cycle_length=max(1, min(files_here, config.interleave_cycle)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not training,
    )
    if num_shards > 1 and not by_files:
        records = records.shard(num_shards, shard_index)
    if training:
        records = records.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
    return records


def make_dataset(
    data_dir: str,
    split: str,
    config: InputConfig,
    training: bool,
    repeat: bool | None = None,
    shard: tuple[int, int] = (1, 0),
) -> tf.data.Dataset:
    """Batches of one split. training: shuffle, augment, repeat forever, drop partial batches.

    Eval batches are never dropped (every drawing counts), so in static mode an eval split can end
    with one smaller batch. `repeat` overrides the training default (benchmarks read a finite pass).
    shard=(count, index): this input pipeline's disjoint share, by files when every pipeline gets
    at least one, else by records.
    """
    files = split_files(data_dir, split)
    kind = data_kind(data_dir) if config.kind == "auto" else config.kind
    dataset = _records(files, config, training, shard)
    if training if repeat is None else repeat:
        dataset = dataset.repeat()
    if kind == "images":
        dataset = dataset.map(parse_image, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.batch(config.batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
    dataset = dataset.batch(PARSE_BATCH).map(parse_stroke_batch, num_parallel_calls=tf.data.AUTOTUNE)
    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    dataset = dataset.map(_augment_and_truncate(config, training), **parallel)
    dataset = dataset.unbatch().map(_dense_ink, **parallel)
    dataset = _batch_strokes(dataset, config, drop_remainder=training)
    if training:
        dataset = dataset.map(_static_batch_size(config.batch_size))
    return dataset.prefetch(tf.data.AUTOTUNE)
