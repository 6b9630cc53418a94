"""What the job writes besides the spill: TFRecord shards, rejected-*.ndjson, classes.txt, stats.json.

Everything goes through Beam's FileSystems (a local directory, gs://, ...). The TFRecord framing is
written here rather than by TensorFlow so that no worker imports it: length, masked crc32c of the
length, data, masked crc32c of the data — crc32c from google-crc32c, the C implementation Beam's own
tfrecordio uses; tests compare the bytes with tf.io.TFRecordWriter's.
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from collections.abc import Iterable, Sequence

import google_crc32c
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_jobs import packed, spill
from quickdraw_tf.data import layout, splits

_WRITE_BYTES = 1 << 20  # framed records buffered before a write
WRITTEN = "written"  # the key of the names of the files a step wrote: (WRITTEN, name)


# ---------------------------------------------------------------------------------------------------
# Files


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def tfrecord_bytes(records_: Iterable[bytes]) -> bytes:
    """The records framed as a TFRecord file (what tf.io.TFRecordWriter writes, no compression)."""
    parts = []
    for record in records_:
        length = struct.pack("<Q", len(record))
        parts += (length, _masked_crc(length), record, _masked_crc(record))
    return b"".join(parts)


def write_records(path: str, records_: Iterable[bytes]) -> int:
    """Writes a TFRecord file as the records come (any filesystem); returns its size in bytes."""
    size, pending, pending_bytes = 0, [], 0
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as dst:
        for record in records_:
            pending.append(record)
            pending_bytes += len(record)
            if pending_bytes >= _WRITE_BYTES:
                size += _write(dst, pending)
                pending, pending_bytes = [], 0
        size += _write(dst, pending)
    return size


def _write(dst, records_: list[bytes]) -> int:
    data = tfrecord_bytes(records_)
    dst.write(data)
    return len(data)


def write_text(path: str, text: str) -> None:
    with FileSystems.create(
        path, mime_type="text/plain", compression_type=CompressionTypes.UNCOMPRESSED
    ) as f:
        f.write(text.encode("utf-8"))


def read_text(path: str) -> str:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read().decode("utf-8")


def write_rejected(element: tuple, output_dir: str, num_files: int) -> str:
    """WriteRejected: (("rejected", index), {"runs": [spill.Run]}) -> the name of rejected-{index} written:
    its entries from every run, merged in (source, position) order."""
    bucket, inputs = element
    name = layout.rejected_name(bucket[1], num_files)
    path = FileSystems.join(output_dir, name)
    text = "text/plain"
    with FileSystems.create(path, mime_type=text, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        for entry in spill.merged(inputs["runs"], bucket):
            f.write((packed.rejection_line(entry) + "\n").encode("utf-8"))
    return name


def write_classes(classes: Sequence[str], output_dir: str) -> str:
    write_text(FileSystems.join(output_dir, layout.CLASSES_FILE), layout.classes_text(classes))
    return layout.CLASSES_FILE


def check_written(names: Sequence[str], num_shards: int) -> None:
    """RuntimeError unless `names` are every file the pipeline writes before stats.json, each once.

    WriteStats checks the names the writing steps return before it writes: it depends on every one of
    them, so a runner that runs only what the last step needs (Beam's DaskRunner) runs them all, and one
    that skipped or repeated a step is caught."""
    shards = [layout.shard_name(split, i, num_shards) for split in splits.SPLITS for i in range(num_shards)]
    rejected = [layout.rejected_name(i, num_shards) for i in range(num_shards)]
    expected = sorted([*shards, *rejected, layout.CLASSES_FILE])
    if sorted(names) != expected:
        missing = sorted(set(expected) - set(names))
        repeated = sorted({name for name in names if list(names).count(name) > 1})
        raise RuntimeError(f"the pipeline's output is not whole: missing {missing}, written twice {repeated}")


# ---------------------------------------------------------------------------------------------------
# stats.json


def build_stats(facts: Iterable[tuple], classes: Sequence[str], kind: str, num_shards: int) -> dict:
    """stats.json from (what, key, value) facts gathered from the PCollections (so correct on any runner)."""
    read = unrecognized = 0
    rejected: Counter = Counter()
    over_cap = {split: Counter() for split in splits.SPLITS}
    written = {split: Counter() for split in splits.SPLITS}
    shards = {split: [0] * num_shards for split in splits.SPLITS}
    shard_bytes = dict.fromkeys(splits.SPLITS, 0)
    for what, key, value in facts:
        if what == "read":
            read += value
        elif what == "unrecognized":
            unrecognized += value
        elif what == "rejected":
            rejected[key] += value
        elif what == "over_cap":
            over_cap[key[0]][key[1]] += value
        elif what == "shard":
            split, index = key
            count, num_bytes, per_word = value
            shards[split][index] = count
            shard_bytes[split] += num_bytes
            written[split].update(per_word)
    stats = {
        "kind": kind,
        "read": read,
        "written": sum(sum(shards[split]) for split in splits.SPLITS),
        "rejected": sum(rejected.values()),
        "over_cap": sum(sum(counts.values()) for counts in over_cap.values()),
        "unrecognized": unrecognized,
        "written_per_split": {split: sum(shards[split]) for split in splits.SPLITS},
        "rejected_per_reason": dict(sorted(rejected.items())),
        "over_cap_per_split": {split: sum(over_cap[split].values()) for split in splits.SPLITS},
        "num_classes": len(classes),
        "written_per_class": {split: _per_class(written[split], classes) for split in splits.SPLITS},
        "over_cap_per_class": {split: dict(sorted(over_cap[split].items())) for split in splits.SPLITS},
        "shard_lengths": shards,
        "num_bytes_per_split": shard_bytes,
    }
    stats["reconciled"] = reconciliation_error(stats) is None
    return stats


def _per_class(counts: Counter, classes: Sequence[str]) -> dict[str, int]:
    return {word: counts.get(word, 0) for word in classes}


def reconciliation_error(stats: dict) -> str | None:
    """None when every record read is accounted for exactly once, else what does not add up."""
    accounted = stats["written"] + stats["rejected"] + stats["over_cap"] + stats["unrecognized"]
    if stats["read"] == accounted:
        return None
    return (
        f"read {stats['read']} != written {stats['written']} + rejected {stats['rejected']} "
        f"+ over_cap {stats['over_cap']} + unrecognized {stats['unrecognized']} = {accounted}"
    )


def reconciled_stats(output_dir: str) -> dict:
    """The stats.json the job wrote; RuntimeError if its counts do not reconcile."""
    stats = json.loads(read_text(FileSystems.join(output_dir, layout.STATS_FILE)))
    error = reconciliation_error(stats)
    if error is not None:
        raise RuntimeError(f"counts do not reconcile: {error}")
    return stats


def write_stats_file(gathered: dict, output_dir: str, kind: str, num_shards: int, preprocessing: dict):
    """WriteStats, the last step: {"facts": [every fact], "classes": [the class list], "names": [every
    other file written]} -> stats.json, once check_written agrees."""
    check_written(gathered["names"], num_shards)
    (classes,) = gathered["classes"]
    write_stats(gathered["facts"], classes, output_dir, kind, num_shards, preprocessing)


def write_stats(facts, classes, output_dir: str, kind: str, num_shards: int, preprocessing: dict) -> dict:
    stats = build_stats(facts, classes, kind, num_shards)
    stats["preprocessing"] = preprocessing  # how the inks were made: training copies it into model_dir
    write_text(FileSystems.join(output_dir, layout.STATS_FILE), json.dumps(stats, indent=2) + "\n")
    return stats


def summary(stats: dict, output_dir: str) -> str:
    """A few lines for the console: what was read, written, rejected and dropped, and where it went."""
    per_split = ", ".join(f"{split} {n}" for split, n in stats["written_per_split"].items())
    reasons = ", ".join(f"{reason} {n}" for reason, n in stats["rejected_per_reason"].items()) or "none"
    return "\n".join(
        [
            f"read {stats['read']} records ({stats['kind']}), {stats['num_classes']} classes",
            f"written {stats['written']}: {per_split}",
            f"rejected {stats['rejected']}: {reasons}",
            f"over_cap {stats['over_cap']}, unrecognized {stats['unrecognized']}",
            f"reconciled: read {stats['read']} = written {stats['written']} + rejected {stats['rejected']}"
            f" + over_cap {stats['over_cap']} + unrecognized {stats['unrecognized']}",
            f"output: {output_dir}",
        ]
    )
