"""Shared fixtures: a tiny make_tfrecords-style output dir built from the embedded real sample
(tests/harness.py builds it)."""

from __future__ import annotations

import pytest

from tests.harness import write_tfrecord_dir
from tests.sample import sample_drawings


@pytest.fixture(scope="session")
def tfrecord_dir(tmp_path_factory) -> str:
    """Stroke TFRecords of 10 real classes (~400 drawings), 2 shards per split."""
    out_dir = str(tmp_path_factory.mktemp("tfrecords"))
    write_tfrecord_dir(out_dir, sample_drawings())
    return out_dir
