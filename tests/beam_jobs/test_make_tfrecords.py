"""beam_jobs.make_tfrecords: end to end on DirectRunner over the embedded real sample, plus its functions.

The pipeline runs a few times per module (fixtures): the default sample (raw + simplified ndjson) with
small caps so that some classes go over them, the same files listed in reverse order, a directory of
real and deliberately broken records, and the sample's eye.npy bitmaps.
"""

from __future__ import annotations

import base64
import collections
import functools
import glob
import hashlib
import io
import itertools
import json
import os
import struct
import subprocess
import sys

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from beam_jobs import job_config, make_tfrecords, outputs, packed, records, runtime
from beam_jobs.records import Candidate, Origin
from quickdraw_tf.data import formats, ink, splits
from quickdraw_tf.data.drawing import InvalidRecord
from quickdraw_tf.training import example_parsing
from tests.sample import EYE_NPY, REPO, SAMPLE

CAPS = {"train": 120, "eval": 15, "test": 15}
NUM_SHARDS = 3
SAMPLE_GLOBS = [
    os.path.join(SAMPLE, "raw", "*", "*.ndjson"),
    os.path.join(SAMPLE, "simplified", "*", "*.ndjson"),
]


def run_job(inputs: list[str], output_dir, *extra: str, caps: dict[str, int] = CAPS) -> dict:
    argv = [
        "--runner=DirectRunner",
        f"--input={','.join(inputs)}",
        f"--output_dir={output_dir}",
        f"--num_shards={NUM_SHARDS}",
        *(f"--{split}_per_class={cap}" for split, cap in caps.items()),
        *extra,
    ]
    return make_tfrecords.run(argv)


def shard_paths(output_dir, split: str) -> list[str]:
    return sorted(glob.glob(os.path.join(str(output_dir), f"quickdraw-{split}.tfrecord-*")))


def read_examples(path: str, spec: dict) -> list[dict]:
    examples = []
    for serialized in tf.data.TFRecordDataset(path):
        parsed = tf.io.parse_single_example(serialized, spec)
        examples.append(
            {
                name: (tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v).numpy()
                for name, v in parsed.items()
            }
        )
    return examples


def read_rejected(output_dir) -> list[dict]:
    entries = []
    for path in sorted(glob.glob(os.path.join(str(output_dir), "rejected-*.ndjson"))):
        with open(path, encoding="utf-8") as f:
            entries.extend(json.loads(line) for line in f)
    return entries


@functools.cache
def sample_drawings() -> list[tuple[formats.SourceRecord, object]]:
    """Every (record, drawing) of the default inputs, read directly with quickdraw_tf.data.formats."""
    out = []
    for path, fmt in job_config.expand_inputs(SAMPLE_GLOBS):
        with open(path, "rb") as f:
            for record in formats.read_source_records(f, path, fmt):
                out.append((record, formats.parse_record(record)))
    return out


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    stats = run_job(SAMPLE_GLOBS, out)
    written = {
        split: {
            path: read_examples(path, example_parsing.STROKE_FEATURES) for path in shard_paths(out, split)
        }
        for split in splits.SPLITS
    }
    return out, stats, written


@pytest.fixture(scope="module")
def reordered_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reordered")
    files = sorted(glob.glob(SAMPLE_GLOBS[0]) + glob.glob(SAMPLE_GLOBS[1]), reverse=True)
    return out, run_job(files, out)


def all_examples(written: dict) -> list[dict]:
    return [ex for shards in written.values() for examples in shards.values() for ex in examples]


# ---------------------------------------------------------------------------------------------------
# The sample run


@pytest.mark.integration
def test_every_shard_file_exists_with_tfds_names(sample_run):
    out, _, _ = sample_run
    for split in splits.SPLITS:
        names = [os.path.basename(path) for path in shard_paths(out, split)]
        assert names == [f"quickdraw-{split}.tfrecord-{i:05d}-of-{NUM_SHARDS:05d}" for i in range(NUM_SHARDS)]


@pytest.mark.integration
def test_records_follow_the_shared_schema(sample_run):
    out, _, written = sample_run
    with open(os.path.join(out, "classes.txt"), encoding="utf-8") as f:
        classes = f.read().splitlines()
    examples = all_examples(written)
    assert examples
    for ex in examples:
        assert ex["shape"][1] == 3 and ex["ink"].size == ex["shape"][0] * 3 and ex["shape"][0] >= 1
        assert classes[ex["class_index"][0]] == ex["word"].decode()
        ink_rows = ex["ink"].reshape(-1, 3)
        assert set(np.unique(ink_rows[:, 2])) <= {0.0, 1.0} and ink_rows[-1, 2] == 1.0
        assert ex["recognized"][0] in (0, 1) and ex["timestamp"][0] > 1_400_000_000


@pytest.mark.integration
def test_classes_txt_is_the_sorted_words(sample_run):
    out, _, _ = sample_run
    words = sorted({drawing.word for _, drawing in sample_drawings()})
    with open(os.path.join(out, "classes.txt"), encoding="utf-8") as f:
        assert f.read() == "".join(f"{word}\n" for word in words)
    assert len(words) == 10


@pytest.mark.integration
def test_stats_reconcile_and_match_the_shards(sample_run):
    out, stats, written = sample_run
    with open(os.path.join(out, "stats.json"), encoding="utf-8") as f:
        assert json.load(f) == stats
    assert stats["read"] == len(sample_drawings())
    assert stats["read"] == stats["written"] + stats["rejected"] + stats["over_cap"] + stats["unrecognized"]
    assert stats["reconciled"] and stats["over_cap"] > 0 and stats["rejected"] > 0
    for split, shards in written.items():
        assert stats["shard_lengths"][split] == [len(examples) for examples in shards.values()]
        assert stats["written_per_split"][split] == sum(stats["shard_lengths"][split])
        words = [ex["word"].decode() for examples in shards.values() for ex in examples]
        assert {w: n for w, n in stats["written_per_class"][split].items() if n} == {
            w: words.count(w) for w in set(words)
        }
    assert stats["rejected_per_reason"] == {"duplicate_key": stats["rejected"]}
    assert len(read_rejected(out)) == stats["rejected"]


@pytest.mark.integration
def test_splits_are_disjoint_and_follow_the_key_hash(sample_run):
    _, _, written = sample_run
    seen = {}
    for split, shards in written.items():
        for path, examples in shards.items():
            index = int(path.rsplit("-of-", 1)[0][-5:])
            for ex in examples:
                key_id = int(ex["key_id"][0])
                assert key_id not in seen, f"{key_id} in {seen.get(key_id)} and {split}"
                seen[key_id] = split
                assert split == splits.assign_split(splits.key_hash(key_id), 0.1, 0.1)
                assert (splits.key_hash(key_id), index) == splits.key_hash_and_shard(key_id, NUM_SHARDS)


@pytest.mark.integration
def test_shards_are_sorted_by_rank(sample_run):
    _, _, written = sample_run
    for shards in written.values():
        for examples in shards.values():
            ranks = [records.rank(int(ex["key_id"][0])) for ex in examples]
            assert ranks == sorted(ranks)


@pytest.mark.integration
def test_caps_keep_the_lowest_ranks_of_each_class(sample_run):
    _, stats, written = sample_run
    winners = {}
    for _, drawing in sample_drawings():
        winners.setdefault(
            drawing.key_id, drawing.word
        )  # duplicates share the key_id; the word is the same here
    over_cap = 0
    for split, shards in written.items():
        written_ids = {int(ex["key_id"][0]) for examples in shards.values() for ex in examples}
        for word in set(winners.values()):
            in_split = sorted(
                records.rank(key_id)
                for key_id, w in winners.items()
                if w == word and splits.assign_split(splits.key_hash(key_id), 0.1, 0.1) == split
            )
            expected = {key_id for _, key_id in in_split[: CAPS[split]]}
            assert {key_id for key_id in written_ids if winners[key_id] == word} == expected
            assert stats["over_cap_per_class"][split].get(word, 0) == max(0, len(in_split) - CAPS[split])
            over_cap += max(0, len(in_split) - CAPS[split])
    assert stats["over_cap"] == over_cap > 0


@pytest.mark.integration
def test_duplicates_keep_the_smallest_origin(sample_run):
    out, _, written = sample_run
    by_key = {}
    for record, drawing in sample_drawings():
        by_key.setdefault(drawing.key_id, []).append(records.origin_of(record))
    expected = {
        (origin.source, origin.position) for origins in by_key.values() for origin in sorted(origins)[1:]
    }
    rejected = read_rejected(out)
    assert {(entry["source"], entry["position"]) for entry in rejected} == expected
    for entry in rejected:
        assert entry["reason"] == "duplicate_key" and str(entry["key_id"]) in entry["text"]
        kept = min(by_key[entry["key_id"]])
        assert f"{kept.source} at {kept.position}" in entry["message"]


@pytest.mark.integration
def test_raw_drawings_give_the_ink_of_their_simplified_twin(sample_run):
    _, _, written = sample_run
    simplified = {d.key_id: d for r, d in sample_drawings() if not d.is_raw}
    raw_keys = {d.key_id for r, d in sample_drawings() if d.is_raw}
    twins = 0
    for ex in all_examples(written):
        key_id = int(ex["key_id"][0])
        if key_id in raw_keys and key_id in simplified:  # the raw record won (raw/ sorts before simplified/)
            expected = ink.to_ink(simplified[key_id].strokes)
            np.testing.assert_array_equal(ex["ink"].reshape(-1, 3), expected)
            twins += 1
    assert twins > 50


@pytest.mark.integration
def test_two_runs_give_identical_bytes_whatever_the_input_order(sample_run, reordered_run):
    out, stats, _ = sample_run
    other, other_stats = reordered_run
    names = ["classes.txt", *(os.path.basename(p) for p in glob.glob(os.path.join(out, "rejected-*")))]
    names += [os.path.basename(p) for split in splits.SPLITS for p in shard_paths(out, split)]
    for name in names:
        with open(os.path.join(out, name), "rb") as a, open(os.path.join(other, name), "rb") as b:
            assert a.read() == b.read(), name
    assert other_stats == stats


@pytest.mark.integration
def test_tfds_loads_every_split(sample_run):
    import tensorflow_datasets as tfds

    out, stats, written = sample_run
    builder = tfds.builder_from_directory(str(out))
    for split in splits.SPLITS:
        assert builder.info.splits[split].num_examples == stats["written_per_split"][split]
        loaded = list(builder.as_dataset(split=split))
        assert len(loaded) == stats["written_per_split"][split]
        by_key = {int(ex["key_id"][0]): ex for examples in written[split].values() for ex in examples}
        for ex in loaded[:20]:
            mine = by_key[int(ex["key_id"][0])]
            np.testing.assert_array_equal(ex["ink"].numpy(), mine["ink"].reshape(-1, 3))
            assert ex["word"].numpy() == mine["word"] and ex["class_index"].numpy() == mine["class_index"]


# ---------------------------------------------------------------------------------------------------
# Bad input


def _bin_record(key_id: int, strokes: list, countrycode: bytes = b"GB", recognized: int = 1) -> bytes:
    out = struct.pack("<Q2sbIH", key_id, countrycode, recognized, 1490000000, len(strokes))
    for xs, ys in strokes:
        out += struct.pack("<H", len(xs)) + bytes(xs) + bytes(ys)
    return out


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    """Real pig lines mixed with broken ones, and a pig.bin whose last record is cut short."""
    src = tmp_path_factory.mktemp("bad_input")
    with open(os.path.join(SAMPLE, "simplified", "lamnguyen5464-Sketch-dataset", "pig.ndjson"), "rb") as f:
        real = f.read().splitlines()[:6]
    bad = [
        (b"{not json", "invalid_json"),
        (b"[1, 2, 3]", "not_an_object"),
        (b'{"word": "pig", "key_id": "11"}', "missing_field"),
        (b'{"word": "pig", "key_id": "12", "drawing": []}', "empty_drawing"),
        (b'{"word": "pig", "key_id": "13", "drawing": [[[10], [10]]]}', "too_short"),
        (b'{"word": "pig", "key_id": "14", "drawing": [[[1, 2, 3], [1, 2]]]}', "mismatched_lengths"),
        (b'{"word": "pig", "key_id": "15", "drawing": [[[1, 2], [1, 300]]]}', "bad_coordinate"),
        (real[0], "duplicate_key"),  # the same drawing again, later in the file: this copy is rejected
    ]
    entries = [(line, None) for line in real[:3]] + bad[:4] + [(line, None) for line in real[3:]] + bad[4:]
    with open(src / "pig.ndjson", "wb") as f:
        f.write(b"".join(line + b"\n" for line, _ in entries))
    # Positions are 1-based line numbers; the duplicate is the last line (its first copy, line 1, is kept).
    expected = {
        (str(src / "pig.ndjson"), number): reason
        for number, (_, reason) in enumerate(entries, start=1)
        if reason is not None
    }
    records = [
        _bin_record(7000000000000001, [([0, 40, 80], [0, 90, 255])]),
        _bin_record(7000000000000002, [([5, 250], [250, 5]), ([10, 20, 30], [30, 20, 10])]),
    ]
    truncated = _bin_record(7000000000000003, [([1, 2, 3, 4], [4, 3, 2, 1])])[:-3]
    with open(src / "pig.bin", "wb") as f:
        f.write(b"".join(records) + truncated)
    expected[(str(src / "pig.bin"), len(records[0]) + len(records[1]))] = "truncated_record"
    out = tmp_path_factory.mktemp("bad_output")
    # Built by hand rather than with run() to read the pipeline's Beam counters afterwards.
    args = job_config.build_arg_parser().parse_args(
        [f"--input={src / 'pig.ndjson'},{src / '*.bin'}", f"--output_dir={out}", f"--num_shards={NUM_SHARDS}"]
    )
    config = job_config.config_from_args(args)
    inputs = job_config.expand_inputs(config.inputs)
    options = PipelineOptions([])
    pipeline = beam.Pipeline(runner=runtime.direct_runner(options), options=options)
    make_tfrecords.build_pipeline(pipeline, config, inputs, job_config.input_kind(inputs))
    result = pipeline.run()
    result.wait_until_finish()
    counters = collections.Counter()
    for counter in result.metrics().query(MetricsFilter().with_namespace("quickdraw"))["counters"]:
        counters[counter.key.metric.name] += counter.committed  # one entry per step that counts
    with open(out / "stats.json", encoding="utf-8") as f:
        stats = json.load(f)
    return out, stats, expected, {"ndjson": len(entries), "bin": 3}, truncated, counters


@pytest.mark.integration
def test_every_bad_record_is_rejected_with_its_reason_and_place(bad_run):
    out, stats, expected, _, truncated, _ = bad_run
    rejected = read_rejected(out)
    assert {(e["source"], e["position"]): e["reason"] for e in rejected} == expected
    for entry in rejected:
        assert entry["message"] and entry["format"] in ("ndjson", "bin")
        if entry["format"] == "bin":
            assert base64.b64decode(entry["base64"]) == truncated and "text" not in entry
    assert stats["rejected_per_reason"] == {reason: 1 for reason in expected.values()}


@pytest.mark.integration
def test_beam_counters_count_rejections_by_reason(bad_run):
    _, stats, _, _, _, counters = bad_run
    assert {reason: counters[reason] for reason in stats["rejected_per_reason"]} == stats[
        "rejected_per_reason"
    ]
    assert counters["written"] == stats["written"]


@pytest.mark.integration
def test_rejected_files_are_all_written_and_sorted(bad_run):
    out, _, _, _, _, _ = bad_run
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(out, "rejected-*")))
    assert names == [f"rejected-{i:05d}-of-{NUM_SHARDS:05d}.ndjson" for i in range(NUM_SHARDS)]
    for name in names:
        with open(os.path.join(out, name), encoding="utf-8") as f:
            places = [(e["source"], e["position"]) for e in map(json.loads, f)]
        assert places == sorted(places)


@pytest.mark.integration
def test_bad_input_reconciles(bad_run):
    _, stats, expected, counts, _, _ = bad_run
    assert stats["read"] == sum(counts.values())
    assert stats["rejected"] == len(expected)
    assert stats["written"] == stats["read"] - stats["rejected"] == 6 + 2  # 6 real lines, 2 whole bin records
    assert stats["read"] == stats["written"] + stats["rejected"] + stats["over_cap"] + stats["unrecognized"]


@pytest.mark.integration
def test_rejected_text_is_the_original_line(bad_run):
    out, _, _, _, _, _ = bad_run
    by_reason = {entry["reason"]: entry for entry in read_rejected(out)}
    assert by_reason["invalid_json"]["text"] == "{not json"
    assert by_reason["bad_coordinate"]["text"].endswith("[[[1, 2], [1, 300]]]}")


# ---------------------------------------------------------------------------------------------------
# Bitmaps


@pytest.fixture(scope="module")
def bitmap_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bitmap")
    path = str(EYE_NPY)
    stats = run_job([path], out, caps={"train": 500, "eval": 100, "test": 1000})
    return out, stats, np.load(path).reshape(-1, 784)


@pytest.mark.integration
def test_bitmaps_become_image_examples(bitmap_run):
    out, stats, pixels = bitmap_run
    rows = {formats.derived_key_id("eye.npy", row): row for row in range(len(pixels))}
    total = 0
    for split in splits.SPLITS:
        for path in shard_paths(out, split):
            for ex in read_examples(path, example_parsing.IMAGE_FEATURES):
                row = rows[int(ex["key_id"][0])]
                assert ex["image"] == pixels[row].tobytes()
                assert ex["word"] == b"eye" and ex["class_index"][0] == 0
                total += 1
    assert stats["kind"] == "images" and total == stats["written"]
    assert stats["written_per_split"]["train"] == 500 and stats["written_per_split"]["eval"] == 100
    assert stats["read"] == len(pixels) == stats["written"] + stats["over_cap"]


@pytest.mark.integration
def test_bitmap_tfds_metadata_loads(bitmap_run):
    import tensorflow_datasets as tfds

    out, stats, _ = bitmap_run
    builder = tfds.builder_from_directory(str(out))
    example = next(iter(builder.as_dataset(split="eval")))
    assert len(example["image"].numpy()) == 784
    assert builder.info.splits["test"].num_examples == stats["written_per_split"]["test"]


# ---------------------------------------------------------------------------------------------------
# The command line


@pytest.mark.integration
def test_cli_missing_input_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "beam_jobs.make_tfrecords",
            f"--input={tmp_path}/missing.ndjson",
            f"--output_dir={tmp_path}/out",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"make_tfrecords: error: input {tmp_path}/missing.ndjson does not exist"
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--input=/nowhere/*.ndjson"], "input glob /nowhere/*.ndjson matches no file"),
        (["--eval_fraction=1.5"], "--eval_fraction must be in [0, 1], got 1.5"),
        (["--test_fraction=-0.1"], "--test_fraction must be in [0, 1], got -0.1"),
        (["--eval_fraction=0.6", "--test_fraction=0.5"], "--eval_fraction + --test_fraction must be <= 1"),
        (["--num_shards=0"], "--num_shards must be >= 1, got 0"),
        (["--format=png"], "--format must be one of ndjson, bin, csv, npy, bitmap_raw, npz, got 'png'"),
        (["--normalize=none"], "--normalize must be one of uniform, per_axis"),
        (["--train_per_class=0"], "--train_per_class must be >= 1, got 0"),
        (["--dask_workers=0"], "--dask_workers must be >= 1, got 0"),
        (["--dask_workers=2"], "--dask_workers sizes the local cluster of --runner=DaskRunner only"),
        (
            ["--runner=DaskRunner", "--dask_workers=2", "--dask_client_address=tcp://127.0.0.1:8786"],
            "--dask_workers sizes the local cluster the job starts",
        ),
        ([f"--input={SAMPLE}/NOTICE.md"], "cannot tell the format of"),
        ([f"--input={SAMPLE}/bitmap/*/*.npy,{SAMPLE}/raw/*/pig.ndjson"], "inputs mix bitmaps"),
    ],
)
def test_bad_flags_are_one_line_errors(flags, message, tmp_path, capsys):
    assert make_tfrecords.main([*flags, f"--output_dir={tmp_path}/out"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("make_tfrecords: error: ") and message in err
    assert not os.path.exists(tmp_path / "out")


def test_unparseable_flag_value_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        make_tfrecords.main(["--num_shards=many"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--num_shards" in err


def test_unknown_flags_go_to_beam():
    args, beam_args = job_config.build_arg_parser().parse_known_args(
        ["--num_shards=2", "--direct_num_workers=2", "--direct_running_mode=multi_processing", "--project=p"]
    )
    assert args.num_shards == 2
    assert beam_args == ["--direct_num_workers=2", "--direct_running_mode=multi_processing", "--project=p"]


@pytest.mark.integration
def test_classes_file_sets_the_order_and_rejects_other_words(tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("pig\nbelt\n\nThe Eiffel Tower\n", encoding="utf-8")
    inputs = [
        os.path.join(SAMPLE, "simplified", "lamnguyen5464-Sketch-dataset", f"{word}.ndjson")
        for word in ("pig", "belt", "door")
    ]
    stats = run_job(inputs, tmp_path / "out", f"--classes_file={classes}", "--recognized_only")
    assert (tmp_path / "out" / "classes.txt").read_text(encoding="utf-8") == "pig\nbelt\nThe Eiffel Tower\n"
    drawings = [d for path in inputs for d in formats.iter_drawings(path)]
    assert stats["rejected_per_reason"] == {
        "unknown_class": sum(d.word == "door" and d.recognized for d in drawings)
    }
    assert stats["unrecognized"] == sum(not d.recognized for d in drawings) > 0
    for split in splits.SPLITS:
        for path in shard_paths(tmp_path / "out", split):
            for ex in read_examples(path, example_parsing.STROKE_FEATURES):
                assert (
                    ex["class_index"][0] == ["pig", "belt"].index(ex["word"].decode()) and ex["recognized"][0]
                )
    assert stats["read"] == stats["written"] + stats["rejected"] + stats["unrecognized"] + stats["over_cap"]


# ---------------------------------------------------------------------------------------------------
# Plain functions


def test_key_hash_is_pinned():
    # Changing the hash would move drawings between splits in every existing dataset: keep it fixed.
    digest = hashlib.sha256(b"5566648650039296").digest()
    assert splits.key_hash(5566648650039296) == int.from_bytes(digest[:8], "big") / 2**64
    assert splits.key_hash(5566648650039296) == 0.5289726974206631


def test_split_fractions_hold_in_expectation():
    key_ids = range(6_000_000_000_000_000, 6_000_000_000_020_000)
    counts = {split: 0 for split in splits.SPLITS}
    for key_id in key_ids:
        counts[splits.assign_split(splits.key_hash(key_id), 0.2, 0.1)] += 1
    assert counts["test"] / len(key_ids) == pytest.approx(0.1, abs=0.01)
    assert counts["eval"] / len(key_ids) == pytest.approx(0.2, abs=0.01)
    shards = [splits.key_hash_and_shard(key_id, 4)[1] for key_id in key_ids]
    assert all(n / len(key_ids) == pytest.approx(0.25, abs=0.02) for n in np.bincount(shards))


def test_assign_split_boundaries():
    assert splits.assign_split(0.0, 0.1, 0.1) == "test"
    assert splits.assign_split(0.1, 0.1, 0.1) == "eval"
    assert splits.assign_split(0.2, 0.1, 0.1) == "train"
    assert splits.assign_split(0.5, 0.0, 0.0) == "train"
    assert splits.assign_split(0.999, 0.0, 1.0) == "test"
    # Growing test_fraction moves drawings out of eval and train only.
    assert splits.assign_split(0.15, 0.1, 0.2) == "test" and splits.assign_split(0.15, 0.1, 0.1) == "eval"


def _candidate(key_id: int, origin: Origin, word: str = "pig") -> Candidate:
    return Candidate(key_id, word, origin, b"line", b"", "US", True, 0)


def test_choose_kept_ignores_input_order():
    origins = [
        Origin("ndjson", "b.ndjson", 3, ""),
        Origin("ndjson", "a.ndjson", 9, ""),
        Origin("bin", "z.bin", 0, ""),
        Origin("ndjson", "a.ndjson", 2, ""),
    ]
    candidates = [
        _candidate(7, origin, word)
        for origin, word in zip(origins, ["pig", "cat", "pig", "dog"], strict=True)
    ]
    for order in itertools.permutations(candidates):
        kept, others = records.choose_kept(order)
        assert kept.origin == Origin("bin", "z.bin", 0, "") and len(others) == 3
        assert [c.origin for c in others] == sorted(origins)[1:]


def test_candidate_round_trips_through_packed_bytes():
    candidate = _candidate(9, Origin("npz", "s.npz", 4, "valid"))
    ranking, back = packed.unpack_candidate(packed.pack_candidate(candidate, 0.25))
    assert ranking == (0.25, 9) and back == candidate and type(back.origin) is Origin


def test_packed_candidates_sort_by_rank_then_bytes():
    origin = Origin("ndjson", "a.ndjson", 1, "")
    keys = [(0.5, 3), (0.25, 2**63 - 1), (0.25, 7), (0.0, 0), (0.999, 1)]
    records_ = [packed.pack_candidate(_candidate(key_id, origin), key_hash) for key_hash, key_id in keys]
    assert [packed.unpack_candidate(p)[0] for p in sorted(records_)] == sorted(keys)


def test_packed_rejections_sort_like_source_split_position_reason_line():
    entries = [
        {"source": src, "position": pos, "format": "npz", "reason": reason, "message": "m", **extra}
        for src in ("b.npz", "a.npz", "a.npz.gz", "é.npz")
        for pos in (10, 2, 256)
        for reason, extra in (("bad_field", {}), ("bad_field", {"split": "test"}), ("duplicate_key", {}))
    ]
    ordered = sorted(
        entries,
        key=lambda e: (
            (e["source"], e.get("split", ""), e["position"], e["reason"]),
            json.dumps(e, ensure_ascii=False),
        ),
    )
    lines = sorted(packed.pack_rejection(entry) for entry in entries)
    assert [packed.rejection_line(p) for p in lines] == [json.dumps(e, ensure_ascii=False) for e in ordered]


def test_rejection_stores_text_or_base64():
    error = InvalidRecord("bad_field", "something")
    entry = records.rejection(Origin("ndjson", "f.ndjson", 4, ""), '{"a": "é"}'.encode(), error)
    assert entry == {
        "source": "f.ndjson",
        "position": 4,
        "format": "ndjson",
        "reason": "bad_field",
        "message": "something",
        "text": '{"a": "é"}',
    }
    entry = records.rejection(Origin("ndjson", "f.ndjson", 5, ""), b"\xff\xfe", error, key_id=3)
    assert entry["base64"] == base64.b64encode(b"\xff\xfe").decode() and entry["key_id"] == 3
    entry = records.rejection(Origin("npz", "s.npz", 1, "test"), b"\x00" * 10, error)
    assert entry["split"] == "test" and "text" not in entry


def test_direct_runner_stays_offline_unless_prism_is_asked_for():
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    for flags in ([], ["--runner=DirectRunner"], ["--runner=direct"]):
        assert isinstance(runtime.direct_runner(PipelineOptions(flags)), fn_runner.FnApiRunner)
    for flags in (["--runner=PrismRunner"], ["--runner=DataflowRunner"]):
        assert runtime.direct_runner(PipelineOptions(flags)) is None


def test_original_bytes_of_bitmap_rows_and_npz_sketches():
    row = np.arange(784, dtype=np.uint8)
    assert records.original_bytes(formats.SourceRecord("e.npy", 0, row, "npy")) == row.tobytes()
    sketch = np.array([[1, 2, 0], [3, 4, 1]], np.int16)
    saved = records.original_bytes(formats.SourceRecord("s.npz", 0, sketch, "npz", "train"))
    np.testing.assert_array_equal(np.load(io.BytesIO(saved)), sketch)


def test_copy_of_shard_written_through_filesystems_reads_back(tmp_path):
    path = str(tmp_path / "sub" / "x.tfrecord")
    size = outputs.write_records(path, [b"one", b"two"])
    assert size == os.path.getsize(path)
    assert [r.numpy() for r in tf.data.TFRecordDataset(path)] == [b"one", b"two"]


@pytest.mark.integration
def test_empty_shards_and_splits_are_still_written(tmp_path):
    with open(os.path.join(SAMPLE, "simplified", "lamnguyen5464-Sketch-dataset", "pig.ndjson"), "rb") as f:
        (tmp_path / "one.ndjson").write_bytes(f.readline())
    stats = run_job([str(tmp_path / "one.ndjson")], tmp_path / "out")
    assert stats["written"] == 1 and sum(stats["written_per_split"].values()) == 1
    for split in splits.SPLITS:
        assert len(shard_paths(tmp_path / "out", split)) == NUM_SHARDS
    assert len(glob.glob(str(tmp_path / "out" / "rejected-*.ndjson"))) == NUM_SHARDS
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(str(tmp_path / "out"))
    for split in splits.SPLITS:
        assert builder.info.splits[split].num_examples == stats["written_per_split"][split]
    full = next(split for split in splits.SPLITS if stats["written_per_split"][split])
    assert len(list(builder.as_dataset(split=full))) == 1  # TFDS itself refuses to read a 0-example split


@pytest.mark.integration
@pytest.mark.slow
def test_two_worker_processes_write_the_same_bytes(sample_run, tmp_path):
    out, stats, _ = sample_run
    other = tmp_path / "two_workers"
    two = run_job(SAMPLE_GLOBS, other, "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    assert two == stats
    for path in glob.glob(os.path.join(out, "quickdraw-*")) + [os.path.join(out, "classes.txt")]:
        with open(path, "rb") as a, open(other / os.path.basename(path), "rb") as b:
            assert a.read() == b.read(), path
