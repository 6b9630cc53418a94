"""`make demo` trains and tests on a balanced subset of the sample: its headline figures mean what they say.

The sample itself is 74% monkey; the Makefile's DEMO_SPLIT conversion flags (split fractions and per-class
caps) must keep every class in every split and no class dominating the test split. Computed here with the
job's own split rule (quickdraw_tf.data.splits) on the sample's distinct key_ids, without running Beam.
"""

import collections
import glob
import os
import re
import shlex

from quickdraw_tf.data import formats, splits
from tests.sample import REPO, SAMPLE


def _demo_flags() -> dict[str, float]:
    with open(os.path.join(REPO, "Makefile")) as f:
        (line,) = [line for line in f if line.startswith("DEMO_SPLIT ?=")]
    flags = dict(arg.lstrip("-").split("=", 1) for arg in shlex.split(line.split("?=", 1)[1]))
    return {name: float(value) for name, value in flags.items()}


def _split_counts(flags: dict[str, float]) -> dict[str, collections.Counter]:
    words = {}  # key_id -> word: the raw and simplified files share key_ids; the job keeps one copy
    for pattern in ("raw", "simplified"):
        for path in glob.glob(os.path.join(SAMPLE, pattern, "*", "*.ndjson")):
            words.update((d.key_id, d.word) for d in formats.iter_drawings(path))
    counts = {split: collections.Counter() for split in splits.SPLITS}
    for key_id, word in words.items():
        split = splits.assign_split(splits.key_hash(key_id), flags["eval_fraction"], flags["test_fraction"])
        counts[split][word] += 1
    return {
        split: collections.Counter({w: min(n, int(flags[f"{split}_per_class"])) for w, n in c.items()})
        for split, c in counts.items()
    }


def test_the_demo_flags_are_the_ones_the_demo_runs_with():
    with open(os.path.join(REPO, "Makefile")) as f:
        makefile = f.read()
    assert re.search(r"make_tfrecords .*\$\(DEMO_SPLIT\)", makefile)
    assert set(_demo_flags()) == {
        "test_fraction",
        "eval_fraction",
        "train_per_class",
        "eval_per_class",
        "test_per_class",
    }


def test_every_class_is_in_every_split_and_none_dominates_the_test_split():
    counts = _split_counts(_demo_flags())
    classes = set(counts["train"])
    assert len(classes) == 10
    for split in splits.SPLITS:
        assert set(counts[split]) == classes, split
    assert min(counts["train"].values()) >= 10
    assert min(counts["test"].values()) >= 3
    test_total = sum(counts["test"].values())
    # "Always the largest class" must score far below what a model shows (the full sample: 103 of 134, 0.77).
    assert max(counts["test"].values()) / test_total <= 0.15
    assert max(counts["train"].values()) <= 2.5 * min(counts["train"].values())


def test_without_the_caps_the_sample_is_mostly_monkey():
    flags = {**_demo_flags(), "train_per_class": 10**6, "eval_per_class": 10**6, "test_per_class": 10**6}
    counts = _split_counts(flags)
    assert counts["test"].most_common(1)[0][0] == "monkey"
    assert counts["test"]["monkey"] / sum(counts["test"].values()) > 0.5
