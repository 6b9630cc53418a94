"""Stable train/eval/test assignment and sharding by a hash of a drawing's key_id.

The hash depends on nothing but the key_id, so a drawing lands in the same split and shard whatever
machine, runner, file order or Python process computes it (Python's own hash() is salted per process).
"""

from __future__ import annotations

import hashlib

from quickdraw_tf.data.layout import SPLITS  # noqa: F401 (re-exported; the output layout lives in layout.py)

_TWO_TO_64 = float(2**64)


def key_digest(key_id: int) -> bytes:
    """sha256 of the decimal key_id: the one source of every per-drawing random choice."""
    return hashlib.sha256(str(int(key_id)).encode("ascii")).digest()


def key_hash(key_id: int) -> float:
    """A float in [0, 1), uniform over key_ids: the first 8 digest bytes as a fraction of 2**64."""
    return _hash_of(key_digest(key_id))


def key_hash_and_shard(key_id: int, num_shards: int) -> tuple[float, int]:
    """(key_hash, shard_index) from one digest: what the Beam job needs per drawing."""
    digest = key_digest(key_id)
    return _hash_of(digest), _shard_of(digest, num_shards)


def _hash_of(digest: bytes) -> float:
    return int.from_bytes(digest[:8], "big") / _TWO_TO_64


def _shard_of(digest: bytes, num_shards: int) -> int:
    """Uses digest bytes the split does not, so shards are balanced within each split."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    return int.from_bytes(digest[8:16], "big") % num_shards


def assign_split(hash_value: float, eval_fraction: float, test_fraction: float) -> str:
    """[0, test) -> test, [test, test + eval) -> eval, the rest -> train.

    Applied to a uniform hash this puts the given fractions of each class in test and eval in
    expectation, and growing a fraction only moves drawings out of train, never between eval and test.
    """
    if hash_value < test_fraction:
        return "test"
    if hash_value < test_fraction + eval_fraction:
        return "eval"
    return "train"
