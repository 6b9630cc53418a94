"""The job's packed records: candidates and rejections as bytes that sort in the order the job needs.

The spill (spill.py) sorts and merges these as plain bytes, so their byte order is the job's order: a
packed candidate sorts by rank (key_hash, key_id) first, which puts a shard's drawings in the order caps
keep them and every copy of a key_id side by side; a packed rejection sorts like (source, split,
position, reason, line), the order of rejected-*.ndjson. Big-endian non-negative numbers and
NUL-terminated UTF-8 texts (no word, path or reason holds a NUL) compare bytewise as their values do.
"""

from __future__ import annotations

import json
import struct

from beam_jobs.records import Candidate, Origin

_RANK = struct.Struct(">dq")  # key_hash in [0, 1), key_id in 0..2**63-1: the rank, as sortable bytes
_FIXED = struct.Struct(
    "<qqbIII"
)  # position, timestamp, recognized, then the lengths of texts, data, original


def pack_candidate(candidate: Candidate, key_hash: float) -> bytes:
    """The candidate as bytes that sort by rank (key_hash, key_id) first."""
    origin = candidate.origin
    texts = "\0".join((candidate.word, candidate.countrycode, origin.format, origin.source, origin.split))
    texts = texts.encode("utf-8")
    fixed = _FIXED.pack(
        origin.position,
        candidate.timestamp,
        candidate.recognized,
        len(texts),
        len(candidate.data),
        len(candidate.original),
    )
    return b"".join(
        (_RANK.pack(key_hash, candidate.key_id), fixed, texts, candidate.data, candidate.original)
    )


def packed_rank(packed: bytes) -> bytes:
    """The rank part of a packed candidate: equal for every record of a key_id."""
    return packed[: _RANK.size]


def packed_key(packed: bytes) -> tuple[float, int]:
    """The rank (key_hash, key_id) of a packed candidate."""
    return _RANK.unpack_from(packed)


def packed_word(packed: bytes) -> str:
    """The word of a packed candidate, without unpacking the rest."""
    start = _RANK.size + _FIXED.size
    return packed[start : packed.index(b"\0", start)].decode("utf-8")


def unpack_candidate(packed: bytes) -> tuple[tuple[float, int], Candidate]:
    """(rank, candidate) of pack_candidate's bytes."""
    key_hash, key_id = _RANK.unpack_from(packed)
    position, timestamp, recognized, n_texts, n_data, n_original = _FIXED.unpack_from(packed, _RANK.size)
    start = _RANK.size + _FIXED.size
    word, countrycode, fmt, source, split = packed[start : start + n_texts].decode("utf-8").split("\0")
    start += n_texts
    data = packed[start : start + n_data]
    original = packed[start + n_data : start + n_data + n_original]
    origin = Origin(fmt, source, position, split)
    candidate = Candidate(key_id, word, origin, original, data, countrycode, bool(recognized), timestamp)
    return (key_hash, key_id), candidate


def pack_rejection(entry: dict) -> bytes:
    """A rejected-*.ndjson line as bytes that sort like (source, split, position, reason, line)."""
    head = f"{entry['source']}\0{entry.get('split', '')}\0".encode()
    tail = f"{entry['reason']}\0{json.dumps(entry, ensure_ascii=False)}".encode()
    return head + entry["position"].to_bytes(8, "big") + tail


def rejection_line(packed: bytes) -> str:
    """The JSON line of pack_rejection's bytes (json.dumps escapes NUL, so the last NUL ends the reason)."""
    source_end = packed.index(b"\0")
    split_end = packed.index(b"\0", source_end + 1)
    reason_end = packed.index(b"\0", split_end + 9)
    return packed[reason_end + 1 :].decode("utf-8")
