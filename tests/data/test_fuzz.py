"""Seeded fuzzing, bounded to ~30 s: mutations of real sample records in every format through every
reader and the job's per-record step. No uncaught exception, no code run from a file, and every record
read is written or rejected."""

from __future__ import annotations

import pytest

from tests import fuzz_corpus

pytestmark = pytest.mark.integration  # the per-record step over a corpus of mutated files (~25 s budget)

BUDGET_S = 25  # new files are started until then (at least MIN_FILES); the job's import is not counted
MIN_FILES = 40
FILES = 400


def test_mutated_real_files_never_crash_and_every_record_is_accounted_for(tmp_path):
    marker = tmp_path / "pwned"
    files = fuzz_corpus.mutants(FILES, seed=12, marker=str(marker))
    tally = fuzz_corpus.run_per_record_step(files, budget_s=BUDGET_S, min_files=MIN_FILES)
    assert tally.crashes == []
    assert tally.read == tally.written + sum(tally.rejected.values())
    assert not marker.exists()
    # The first MIN_FILES mutants (always run) reach every check this suite is about.
    assert tally.files >= MIN_FILES and tally.written > 0
    expected = {"too_large", "bad_coordinate", "bad_field", "truncated_record", "unreadable_tail"}
    assert expected <= set(tally.rejected)
