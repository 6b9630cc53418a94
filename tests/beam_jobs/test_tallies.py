"""beam_jobs.tallies: per-shard tallies from the spill, and the cap plan against a brute-force sort of every
rank, on the embedded sample's drawings (their real key_ids and words)."""

from __future__ import annotations

import glob
import os
from collections import Counter

import pytest

from beam_jobs import packed, prepare, records, spill, tallies
from quickdraw_tf.data import formats, splits
from tests.sample import SAMPLE

NUM_SHARDS = 3


def sample_drawings() -> list:
    paths = sorted(glob.glob(os.path.join(SAMPLE, "simplified", "*", "*.ndjson")))
    return [drawing for path in paths for drawing in formats.iter_drawings(path)]


def spilled(tmp_path, drawings) -> list[spill.Run]:
    """The drawings as the first step spills them (small runs, so that shards merge several)."""
    writer = spill.RunWriter(str(tmp_path), run_bytes=20_000)
    runs = []
    for position, drawing in enumerate(drawings):
        key_hash, shard = splits.key_hash_and_shard(drawing.key_id, NUM_SHARDS)
        candidate = records.Candidate(
            drawing.key_id,
            drawing.word,
            records.Origin("ndjson", "sample", position, ""),
            b"{}",
            b"",
            drawing.countrycode,
            drawing.recognized,
            drawing.timestamp,
        )
        bucket = prepare.shard_bucket(splits.assign_split(key_hash, 0.1, 0.1), shard)
        runs.append(writer.add(bucket, packed.pack_candidate(candidate, key_hash)))
    runs.append(writer.flush())
    return [run for run in runs if run is not None]


def brute_force(drawings, caps: dict[str, int]) -> dict:
    """{(split, word): (distinct drawings, largest rank kept or None)} by sorting every rank."""
    ranks: dict = {}
    for drawing in {d.key_id: d for d in drawings}.values():  # a duplicated key_id counts once
        key_hash = splits.key_hash(drawing.key_id)
        split = splits.assign_split(key_hash, 0.1, 0.1)
        ranks.setdefault((split, drawing.word), []).append((key_hash, drawing.key_id))
    return {
        key: (len(found), sorted(found)[caps[key[0]] - 1] if len(found) > caps[key[0]] else None)
        for key, found in ranks.items()
    }


@pytest.mark.parametrize(
    "caps", [{"train": 20, "eval": 3, "test": 1}, {"train": 10**6, "eval": 2, "test": 10**6}]
)
def test_plan_matches_a_sort_of_every_rank(tmp_path, caps):
    drawings = sample_drawings()
    runs = spilled(tmp_path, drawings)
    assert len(runs) > 3
    shard_keys = [(split, index) for split in splits.SPLITS for index in range(NUM_SHARDS)]
    found = [tally for key in shard_keys for tally in tallies.shard_tallies(key, runs, str(tmp_path), caps)]
    assert len(found) == len(shard_keys)
    for tally in found:  # a shard keeps at most its split's cap of ranks per word
        assert all(n <= caps[tally.split] for _, _, n in tally.words.values())
    plan = tallies.plan_caps(found, caps, None)
    expected = brute_force(drawings, caps)
    assert plan.classes == sorted({d.word for d in drawings})
    assert plan.thresholds == expected
    assert any(threshold is not None for _, threshold in expected.values())  # some caps bind
    facts = Counter()
    for _, (split, _), value in tallies.over_cap_facts(plan, caps):
        facts[split] += value
    assert facts == Counter(
        {
            split: sum(max(0, n - caps[split]) for (s, _), (n, _) in expected.items() if s == split)
            for split in caps
        }
    )


def test_words_outside_a_given_class_list_get_no_threshold(tmp_path):
    drawings = sample_drawings()
    runs = spilled(tmp_path, drawings)
    caps = {"train": 5, "eval": 5, "test": 5}
    found = [
        tally
        for split in splits.SPLITS
        for tally in tallies.shard_tallies((split, 0), runs, str(tmp_path), caps)
    ]
    found += [
        t
        for s in splits.SPLITS
        for i in (1, 2)
        for t in tallies.shard_tallies((s, i), runs, str(tmp_path), caps)
    ]
    words = sorted({d.word for d in drawings})
    given = [words[0], "not a word in the sample"]
    plan = tallies.plan_caps(found, caps, given)
    assert plan.classes == given
    assert {word for _, word in plan.thresholds} == {words[0]}
    assert plan.thresholds == {
        key: value for key, value in brute_force(drawings, caps).items() if key[1] == words[0]
    }


def test_the_plan_is_the_same_when_tally_files_are_opened_per_read(tmp_path, monkeypatch):
    drawings = sample_drawings()
    runs = spilled(tmp_path, drawings)
    caps = {"train": 7, "eval": 2, "test": 2}
    found = [
        t
        for split in splits.SPLITS
        for i in range(NUM_SHARDS)
        for t in tallies.shard_tallies((split, i), runs, str(tmp_path), caps)
    ]
    kept_open = tallies.plan_caps(found, caps, None)
    monkeypatch.setattr(spill, "FAN_IN", 2)  # fewer than a split's tally files: each read opens its file
    assert (
        tallies.plan_caps(found, caps, None)
        == kept_open
        == tallies.CapPlan(kept_open.classes, brute_force(drawings, caps))
    )
