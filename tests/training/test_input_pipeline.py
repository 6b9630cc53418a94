import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from quickdraw_tf.data import features, ink
from quickdraw_tf.models.augment import RandomInkAffine
from quickdraw_tf.training import input_pipeline
from quickdraw_tf.training.input_pipeline import InputConfig
from tests.harness import write_manifest
from tests.sample import eye_bitmaps, sample_drawings

EVAL = InputConfig(batch_size=8, bucket_boundaries=(), shuffle_buffer=50)


def _batches(data_dir, config, training=False, split="eval", count=None):
    dataset = input_pipeline.make_dataset(data_dir, split, config, training=training)
    return list(dataset.take(count) if count else dataset)


def _drawing_inks(data_dir, split="eval"):
    """Every ink of the split in file order, parsed in one batch (record by record is slow in eager mode)."""
    records = tf.data.TFRecordDataset(input_pipeline.split_files(data_dir, split))
    batches = records.batch(1 << 16).map(input_pipeline.parse_stroke_batch)
    return [ink_rows for inputs, _ in batches for ink_rows in inputs["ink"].numpy()]


def test_padded_batches_hold_lengths_and_zero_padding(tfrecord_dir):
    for inputs, labels in _batches(tfrecord_dir, EVAL):
        ink_batch, lengths = inputs["ink"].numpy(), inputs["length"].numpy()
        assert inputs["ink"].dtype == tf.float32 and inputs["length"].dtype == tf.int32
        assert labels.dtype in (tf.int32, tf.int64) and labels.shape == lengths.shape
        assert ink_batch.shape[1] == lengths.max() and ink_batch.shape[2] == 3
        for row, length in zip(ink_batch, lengths, strict=True):
            assert not row[length:].any()
            assert row[length - 1, 2] == 1.0  # every drawing ends a stroke


def test_eval_pass_reads_every_drawing_once(tfrecord_dir):
    lengths = sorted(n for inputs, _ in _batches(tfrecord_dir, EVAL) for n in inputs["length"].numpy())
    assert lengths == sorted(len(i) for i in _drawing_inks(tfrecord_dir))


def test_bucketing_pads_each_batch_to_its_longest_drawing_within_one_bucket(tfrecord_dir):
    boundaries = (20, 40, 60)
    config = dataclasses.replace(EVAL, bucket_boundaries=boundaries)
    for inputs, _ in _batches(tfrecord_dir, config):
        lengths = inputs["length"].numpy()
        buckets = set(np.searchsorted(boundaries, lengths, side="right"))
        assert len(buckets) == 1, lengths
        assert inputs["ink"].shape[1] == lengths.max()


def test_static_shapes_pad_to_the_boundary_and_truncate(tfrecord_dir):
    config = InputConfig(batch_size=4, bucket_boundaries=(32, 64), static_shapes=True, shuffle_buffer=50)
    dataset = input_pipeline.make_dataset(tfrecord_dir, "train", config, training=True)
    assert dataset.element_spec[0]["ink"].shape[0] == 4  # drop_remainder: a static batch size
    seen_lengths = set()
    for inputs, _ in dataset.take(40):
        lengths = inputs["length"].numpy()
        padded = inputs["ink"].shape[1]
        assert padded in (32, 64) and lengths.max() <= padded
        assert padded == 32 or lengths.min() > 32
        seen_lengths.update(lengths.tolist())
    assert max(seen_lengths) == 64  # the sample has longer drawings: they were truncated, not dropped
    assert max(len(i) for i in _drawing_inks(tfrecord_dir, "train")) > 64


def test_parse_is_the_same_eagerly_and_in_dataset_map(tfrecord_dir):
    files = input_pipeline.split_files(tfrecord_dir, "eval")
    records = list(tf.data.TFRecordDataset(files).take(5))
    mapped = list(tf.data.TFRecordDataset(files).take(5).map(input_pipeline.parse_stroke))
    for record, (inputs, label) in zip(records, mapped, strict=True):
        eager_inputs, eager_label = input_pipeline.parse_stroke(record)
        np.testing.assert_array_equal(eager_inputs["ink"], inputs["ink"])
        assert int(eager_inputs["length"]) == int(inputs["length"]) and int(eager_label) == int(label)


def _protobuf_parse(record: tf.Tensor) -> tuple[np.ndarray, int]:
    """The parsers' oracle, without TensorFlow's parse ops: (ink [n, 3], a zero row if empty; class_index)."""
    feature = tf.train.Example.FromString(record.numpy()).features.feature
    ink_rows = np.array(feature["ink"].float_list.value, np.float32).reshape(-1, 3)
    if not len(ink_rows):
        ink_rows = np.zeros((1, 3), np.float32)
    return ink_rows, feature["class_index"].int64_list.value[0]


def test_batched_parse_equals_the_per_record_parse(tfrecord_dir):
    files = input_pipeline.split_files(tfrecord_dir, "eval")
    records = list(tf.data.TFRecordDataset(files))
    empty = features.serialize_stroke_example(np.zeros((0, 3), np.float32), 1, 7, "x")
    records.append(tf.constant(empty))
    batched = tf.data.Dataset.from_tensor_slices(records).batch(16).map(input_pipeline.parse_stroke_batch)
    for record, (inputs, label) in zip(records, batched.unbatch(), strict=True):
        expected_ink, expected_label = _protobuf_parse(record)
        one_inputs, one_label = input_pipeline.parse_stroke(record)
        np.testing.assert_array_equal(inputs["ink"], expected_ink)
        np.testing.assert_array_equal(one_inputs["ink"], expected_ink)
        assert int(inputs["length"]) == int(one_inputs["length"]) == len(expected_ink)
        assert int(label) == int(one_label) == expected_label


def test_parsed_ink_is_the_written_ink():
    strokes = [[[0, 10, 20], [0, 5, 0]], [[5, 5], [10, 30]]]
    record = features.serialize_stroke_example(ink.to_ink(strokes), 3, 42, "cat")
    inputs, label = input_pipeline.parse_stroke(tf.constant(record))
    np.testing.assert_allclose(inputs["ink"], ink.to_ink(strokes))
    assert int(inputs["length"]) == 4 and int(label) == 3


def test_augmentation_is_off_for_eval(tfrecord_dir):
    augmented = dataclasses.replace(EVAL, augment_scale=0.5, augment_drop_prob=0.5, augment_rotation=90.0)
    plain = _batches(tfrecord_dir, EVAL)
    for (a, _), (b, _) in zip(plain, _batches(tfrecord_dir, augmented), strict=True):
        np.testing.assert_array_equal(a["ink"], b["ink"])


def test_training_drops_points_and_keeps_every_drawing(tfrecord_dir):
    config = InputConfig(batch_size=1, bucket_boundaries=(), augment_drop_prob=0.5, shuffle_buffer=10)
    dataset = input_pipeline.make_dataset(tfrecord_dir, "train", config, training=True, repeat=False)
    lengths = [int(inputs["length"][0]) for inputs, _ in dataset]
    original = [len(i) for i in _drawing_inks(tfrecord_dir, "train")]
    assert len(lengths) == len(original)
    assert sum(lengths) < 0.9 * sum(original)


def _strokes_displacement(ink_rows):
    ends = np.flatnonzero(ink_rows[:, 2]) + 1
    return [rows[:, :2].sum(axis=0) for rows in np.split(ink_rows, ends)[:-1]]


def _real_batch(count=12):
    """A ragged batch of real simplified drawings, one of each sample word first."""
    inks = [ink.to_ink(record["drawing"]) for record in sample_drawings(per_class=2)[:count]]
    return inks, tf.ragged.constant(inks, ragged_rank=1, dtype=tf.float32)


def test_drop_points_keeps_every_stroke_and_its_displacement_per_drawing():
    originals, batch = _real_batch()
    tf.random.set_seed(1)
    dropped = input_pipeline.drop_points(batch, 0.6)
    assert dropped.nrows() == len(originals)
    for original, kept in zip(originals, dropped.numpy(), strict=True):
        assert 0 < len(kept) < len(original)
        np.testing.assert_array_equal(kept[:, 2].sum(), original[:, 2].sum())
        np.testing.assert_allclose(_strokes_displacement(kept), _strokes_displacement(original), atol=1e-5)
        # Kept points stay exactly where they were, within their own drawing.
        original_points = {tuple(p) for p in np.round(np.cumsum(original[:, :2], axis=0), 4)}
        assert {tuple(p) for p in np.round(np.cumsum(kept[:, :2], axis=0), 4)} <= original_points


def test_drop_points_never_drops_stroke_ends_or_jumps_between_strokes():
    strokes = [[[0, 1, 2, 3], [0, 1, 2, 3]], [[9], [9]], [[5, 6, 7], [5, 5, 5]]]
    original = ink.to_ink(strokes)
    # After an empty ink's zero row (flag 0), the next drawing's first row must still count as a jump.
    batch = tf.ragged.constant([np.zeros((1, 3)), original], ragged_rank=1, dtype=tf.float32)
    empty, dropped = input_pipeline.drop_points(batch, 0.999).numpy()
    np.testing.assert_array_equal(empty, np.zeros((1, 3)))
    # 8 points, 7 moves. Droppable: the moves to interior points (2, 2) and (6, 5); (1, 1) is interior
    # too, but the first move is always kept (the first point's own flag is not in the ink). Kept: the
    # first move, stroke 1's end, the jump to the 1-point stroke, the jump to stroke 3 and its end.
    assert len(dropped) == len(original) - 2
    np.testing.assert_array_equal(dropped[:, 2], [0, 1, 1, 0, 1])
    np.testing.assert_allclose(dropped[:, :2].sum(axis=0), original[:, :2].sum(axis=0), atol=1e-6)


def test_scale_ink_scales_only_coordinates_by_one_factor_pair_per_drawing():
    originals, batch = _real_batch()
    scaled = input_pipeline.scale_ink(batch, 0.2).numpy()
    factors = []
    for original, result in zip(originals, scaled, strict=True):
        moving = np.abs(original[:, :2]) > 1e-3
        for axis in range(2):
            axis_ratios = result[moving[:, axis], axis] / original[moving[:, axis], axis]
            assert np.allclose(axis_ratios, axis_ratios[0], rtol=1e-4)
            assert 0.8 - 1e-6 <= axis_ratios[0] <= 1.2 + 1e-6
            factors.append(axis_ratios[0])
        np.testing.assert_array_equal(result[:, 2], original[:, 2])
    assert len(set(np.round(factors, 4))) > len(originals)  # drawings get their own factors


def test_rotate_ink_turns_every_move_of_a_drawing_by_the_same_angle():
    originals, batch = _real_batch()
    rotated = input_pipeline.rotate_ink(batch, 30.0).numpy()
    first_angles = []
    for original, result in zip(originals, rotated, strict=True):
        np.testing.assert_allclose(np.hypot(*result[:, :2].T), np.hypot(*original[:, :2].T), atol=1e-5)
        moving = np.hypot(*original[:, :2].T) > 1e-2
        angles = np.arctan2(result[moving, 1], result[moving, 0]) - np.arctan2(
            original[moving, 1], original[moving, 0]
        )
        angles = (angles + np.pi) % (2 * np.pi) - np.pi
        assert np.allclose(angles, angles[0], atol=1e-3) and abs(angles[0]) <= np.radians(30) + 1e-5
        np.testing.assert_array_equal(result[:, 2], original[:, 2])
        first_angles.append(angles[0])
    assert len(set(np.round(first_angles, 3))) > 1  # drawings get their own angles


def test_pipeline_and_model_rotate_alike():
    """One rotation (models/augment.py): from the same random state, the pipeline's rotate_ink on a
    ragged batch and the raster models' RandomInkAffine on its padded form give the same moves."""
    originals, batch = _real_batch()
    tf.random.set_seed(3)
    pipeline = input_pipeline.rotate_ink(batch, 30.0).to_tensor().numpy()
    tf.random.set_seed(3)
    model = RandomInkAffine(rotation=30.0)(batch.to_tensor(), training=True).numpy()
    assert not np.allclose(pipeline, batch.to_tensor().numpy())
    np.testing.assert_allclose(pipeline, model, rtol=0, atol=1e-6)


def test_image_records_yield_uint8_bitmaps(tmp_path):
    bitmaps = eye_bitmaps(10)
    for split in ("train", "eval", "test"):
        with tf.io.TFRecordWriter(str(tmp_path / f"quickdraw-{split}.tfrecord-00000-of-00001")) as writer:
            for i, bitmap in enumerate(bitmaps if split == "train" else []):
                writer.write(features.serialize_image_example(bitmap, 0, i, "eye"))
    (tmp_path / "classes.txt").write_text("eye\n")
    write_manifest(str(tmp_path), "images", num_shards=1, num_classes=1)
    config = InputConfig(batch_size=4)
    (inputs, labels), *_ = _batches(str(tmp_path), config, split="train")
    assert inputs["image"].dtype == tf.uint8 and inputs["image"].shape == (4, 28, 28)
    np.testing.assert_array_equal(inputs["image"], bitmaps[:4])
    assert labels.numpy().tolist() == [0, 0, 0, 0]


def test_dir_without_manifest_is_refused(tmp_path):
    with pytest.raises(ValueError, match="has no manifest.json.*re-run beam_jobs.make_tfrecords"):
        input_pipeline.split_files(str(tmp_path), "test")


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="bucket_boundaries"):
        InputConfig(bucket_boundaries=(64, 32))
    with pytest.raises(ValueError, match="static_shapes"):
        InputConfig(bucket_boundaries=(), static_shapes=True)
