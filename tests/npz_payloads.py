"""Crafted sketch-rnn .npz files for the safety tests (and benchmarks/hostile_files.py): real drawings plus a
pickle that runs code, and an archive bomb.

np.load(allow_pickle=True) on `malicious_npz(marker)` creates the file `marker`: the tests assert that no
reader of this project ever does.
"""

from __future__ import annotations

import io
import json
import pathlib
import zipfile

import numpy as np

from quickdraw_tf.data import ink
from tests.sample import SAMPLE

BELT = SAMPLE / "simplified" / "lamnguyen5464-Sketch-dataset" / "belt.ndjson"


class CreatesFile:
    """Unpickled, this calls open(path, "w"): what any code a crafted file could run stands for."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def real_stroke3(count: int) -> list[np.ndarray]:
    """The first `count` real belt drawings as int16 stroke-3, as in sketch-rnn's files."""
    lines = BELT.read_bytes().splitlines()[:count]
    return [ink.to_stroke3(json.loads(line)["drawing"]) for line in lines]


def object_array(elements: list) -> np.ndarray:
    array = np.empty(len(elements), dtype=object)
    for index, element in enumerate(elements):
        array[index] = element
    return array


def malicious_npz(marker: str | pathlib.Path, good: int = 3) -> bytes:
    """A sketch-rnn .npz of `good` real drawings whose valid split hides a pickle that creates `marker`."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        train=object_array(real_stroke3(good)),
        valid=object_array([CreatesFile(str(marker))]),
        test=object_array([]),
    )
    return buffer.getvalue()


def zero_bomb(members: int = 4, member_bytes: int = 256 << 20, compresslevel: int = 1) -> bytes:
    """`members` zero-filled uint8 .npy members of `member_bytes` each, deflated (1 GiB in ~4.7 MB at level 1,
    ~1 MB at level 6)."""
    header = io.BytesIO()
    described = {"descr": "|u1", "fortran_order": False, "shape": (member_bytes,)}
    np.lib.format.write_array_header_1_0(header, described)
    zeros, out = bytes(1 << 20), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as archive:
        for name in ("train", "valid", "test", "extra")[:members]:
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                member.write(header.getvalue())
                for _ in range(member_bytes // len(zeros)):
                    member.write(zeros)
    return out.getvalue()
