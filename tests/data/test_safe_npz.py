"""The .npz reader never runs code from a file, yet reads sketch-rnn's object arrays of real drawings."""

from __future__ import annotations

import io
import pickle
import tracemalloc
import zipfile

import numpy as np
import pytest

from quickdraw_tf.data import formats, safe_npz
from quickdraw_tf.data.drawing import InvalidRecord
from tests.npz_payloads import CreatesFile, malicious_npz, object_array, real_stroke3, zero_bomb


def npy_member(array: np.ndarray, protocol: int) -> bytes:
    """An object-array .npy member pickled with `protocol` (2: how Python 2 and old numpy wrote them)."""
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, np.lib.format.header_data_from_array_1_0(array))
    pickle.dump(array, stream, protocol=protocol)
    return stream.getvalue()


def npz_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return buffer.getvalue()


def parse_npz(data: bytes, source: str = "sketchrnn_belt.npz") -> tuple[list, list[str]]:
    drawings, reasons = [], []
    for record in formats.read_source_records(io.BytesIO(data), source, "npz"):
        try:
            drawings.append(formats.parse_record(record))
        except InvalidRecord as error:
            reasons.append(error.reason)
    return drawings, reasons


@pytest.mark.parametrize("protocol", [2, 3, pickle.HIGHEST_PROTOCOL])
def test_object_arrays_of_real_drawings_load_with_every_pickle_protocol(protocol):
    sketches = real_stroke3(4)
    data = npz_of({"train": npy_member(object_array(sketches), protocol)})
    loaded = safe_npz.load_npz(data)["train"]
    assert loaded.dtype == object and len(loaded) == 4
    assert type(loaded) is np.ndarray
    for got, want in zip(loaded, sketches, strict=True):
        assert type(got) is np.ndarray and got.dtype == np.int16
        np.testing.assert_array_equal(got, want)


def test_plain_number_members_load_without_pickle():
    stream = io.BytesIO()
    np.save(stream, np.arange(6, dtype=np.int16).reshape(2, 3))
    data = npz_of({"x": stream.getvalue()})
    np.testing.assert_array_equal(safe_npz.load_npz(data)["x"], np.arange(6).reshape(2, 3))


def test_a_payload_that_creates_a_file_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    data = malicious_npz(marker)
    with pytest.raises(safe_npz.UnsafeNpz, match="io.open: only numpy arrays"):
        safe_npz.load_npz(data)
    # Through the readers: one truncated_record for the archive, nothing run.
    drawings, reasons = parse_npz(data)
    assert drawings == [] and reasons == ["truncated_record"]
    path = tmp_path / "sketchrnn_belt.npz"
    path.write_bytes(data)
    with pytest.raises(InvalidRecord, match="truncated_record: the pickle asks for io.open"):
        list(formats.iter_drawings(str(path)))
    assert not marker.exists()


@pytest.mark.parametrize(
    "element, message",
    [
        ("a string", "is a str"),
        ([[1, 2, 0], [3, 4, 1]], "is a list"),
        (object_array([np.zeros((2, 3), np.int16)]), "dtype object is not a plain number type"),
        (np.zeros(2, dtype=[("x", "i2"), ("y", "i2")]), "is not a plain number type"),
    ],
)
def test_anything_but_arrays_of_numbers_is_refused(element, message):
    data = npz_of({"train": npy_member(object_array([real_stroke3(1)[0], element]), 3)})
    with pytest.raises(safe_npz.UnsafeNpz, match=message):
        safe_npz.load_npz(data)


def test_other_globals_and_codecs_are_refused(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    # _codecs.encode with a codec other than latin-1 (zlib_codec would inflate a bomb) is refused.
    sneaky = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\n\x00\x00\x00zlib_codec\x86R."
    with pytest.raises(safe_npz.UnsafeNpz, match="codecs.encode with 'zlib_codec'"):
        safe_npz.load_npz(npz_of({"train": header.getvalue() + sneaky}))
    evil = pickle.dumps(CreatesFile(str(tmp_path / "x")), protocol=2)
    with pytest.raises(safe_npz.UnsafeNpz, match="asks for"):
        safe_npz.load_npz(npz_of({"train": header.getvalue() + evil}))
    assert not (tmp_path / "x").exists()


class _DeclaresHugeShape:
    """Pickles as numpy does, but with a state claiming 10**10 elements and carrying one."""

    def __reduce__(self):
        state = (1, (10**10,), np.dtype("O"), False, [real_stroke3(1)[0]])
        return np.ndarray.__reduce__(np.empty(0))[0], (np.ndarray, (0,), b"b"), state


def test_a_declared_shape_is_checked_against_the_data_before_numpy_allocates():
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    member = header.getvalue() + pickle.dumps(object_array([_DeclaresHugeShape()]), protocol=3)
    with pytest.raises(safe_npz.UnsafeNpz, match="does not carry 10,000,000,000 elements"):
        safe_npz.load_npz(npz_of({"train": member}))


def test_a_member_that_inflates_past_the_cap_is_refused_before_reading():
    data = npz_of({"train": npy_member(object_array(real_stroke3(50)), 3)})
    with pytest.raises(safe_npz.UnsafeNpz, match="inflate to .* over the 1,000 bytes"):
        safe_npz.load_npz(data, max_bytes=1000)


@pytest.mark.parametrize("value", [40000, -40000, 1e300, 2**62])
def test_values_outside_int16_are_rejected_not_wrapped(value):
    dtype = np.float64 if isinstance(value, float) else np.int64
    sketch = np.array([[1, 2, 0], [value, 4, 1]], dtype)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, train=object_array([sketch, real_stroke3(1)[0]]))
    drawings, reasons = parse_npz(buffer.getvalue())
    assert reasons == ["bad_coordinate"] and len(drawings) == 1


# ---------------------------------------------------------------------------------------------------
# Archives bounded as a whole; members that are not sketches are one rejection


def test_four_256_mib_members_are_refused_from_their_declared_sizes_before_inflating():
    bomb = zero_bomb()
    assert len(bomb) < 8 << 20
    tracemalloc.start()
    try:
        with pytest.raises(safe_npz.UnsafeNpz, match=r"4 member\(s\) inflate to 1,073,742,\d+ bytes, over"):
            safe_npz.load_npz(bomb)
        (record,) = formats.read_source_records(io.BytesIO(bomb), "sketchrnn_cat.npz", "npz")
        with pytest.raises(InvalidRecord, match="truncated_record: .* inflate to"):
            formats.parse_record(record)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(bomb) + (16 << 20)  # the archive's bytes and their copies, never a member


def test_the_cap_is_on_the_sum_of_the_members():
    member = npy_member(object_array(real_stroke3(20)), 3)
    both = npz_of({"train": member, "valid": member})
    assert len(safe_npz.load_npz(both, max_bytes=2 * len(member))["valid"]) == 20
    with pytest.raises(safe_npz.UnsafeNpz, match=r"2 member\(s\) inflate to"):
        safe_npz.load_npz(both, max_bytes=2 * len(member) - 1)  # each member alone is under it


def test_a_426_byte_npz_of_200000_int8_is_one_rejection_not_200000():
    buffer = io.BytesIO()
    np.savez_compressed(buffer, train=np.zeros(200_000, np.int8))
    assert len(buffer.getvalue()) < 1000
    records = list(formats.read_source_records(io.BytesIO(buffer.getvalue()), "sketchrnn_cat.npz", "npz"))
    assert len(records) == 1 and len(records[0].payload) < 300_000
    expected = r"bad_field: member 'train' is a int8 array of shape \(200000,\)"
    with pytest.raises(InvalidRecord, match=expected):
        formats.parse_record(records[0])


@pytest.mark.parametrize(
    "member, expected",
    [
        (np.zeros((40, 3), np.int16), r"shape \(40, 3\), not sketches"),  # one sketch, not a split of them
        (np.zeros((2, 5, 4), np.int16), r"shape \(2, 5, 4\)"),
        (np.float64(3.0), r"shape \(\)"),
    ],
)
def test_members_that_are_not_sketches_are_one_rejection_each(member, expected):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, train=object_array(real_stroke3(3)), valid=member)
    drawings, reasons = parse_npz(buffer.getvalue())
    assert len(drawings) == 3 and reasons == ["bad_field"]
    records = list(formats.read_source_records(io.BytesIO(buffer.getvalue()), "belt.npz", "npz"))
    with pytest.raises(InvalidRecord, match=expected):
        formats.parse_record(records[-1])


def test_equal_length_sketches_stacked_in_a_number_array_still_read():
    sketches = [sketch[:6] for sketch in real_stroke3(4)]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, train=np.stack(sketches), extra=np.zeros(0, np.int16))
    drawings, reasons = parse_npz(buffer.getvalue())
    assert len(drawings) == 4 and reasons == []


def test_a_member_of_an_unknown_split_is_one_rejection():
    buffer = io.BytesIO()
    np.savez_compressed(buffer, train=object_array(real_stroke3(2)), training=object_array(real_stroke3(50)))
    drawings, reasons = parse_npz(buffer.getvalue())
    assert len(drawings) == 2 and reasons == ["bad_field"]


def test_an_archive_over_the_cap_is_read_no_further_than_the_cap(monkeypatch):
    stored = io.BytesIO()
    np.savez(stored, train=object_array(real_stroke3(25)))  # stored, not deflated: the file is as large
    monkeypatch.setattr(safe_npz, "MAX_NPZ_BYTES", 100)
    monkeypatch.setattr(formats.arrays, "_ZIP_OVERHEAD_BYTES", 100)

    class Counting(io.BytesIO):
        asked = []

        def read(self, size=-1):
            self.asked.append(size)
            return super().read(size)

    stream = Counting(stored.getvalue())
    (record,) = formats.read_source_records(stream, "belt.npz", "npz")
    assert stream.asked == [201] and len(record.payload) == 201
    with pytest.raises(InvalidRecord, match="too_large: the archive is over the 100 bytes"):
        formats.parse_record(record)


# ---------------------------------------------------------------------------------------------------
# A refused file cannot change the reader for the next one

SEALED = [
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
]


def build_on(module: str, name: str, state: object) -> bytes:
    """An object member whose pickle takes a global and applies BUILD (setstate or setattr) to it."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    body = pickle.dumps(state, protocol=2)[2:-1]  # the state's opcodes, without PROTO and STOP
    return header.getvalue() + b"\x80\x02c" + f"{module}\n{name}\n".encode() + body + b"b."


@pytest.mark.parametrize("module, name", SEALED)
def test_a_pickle_cannot_set_attributes_on_what_find_class_hands_out(module, name):
    good = npz_of({"train": npy_member(object_array(real_stroke3(3)), 2)})
    before = [dict(getattr(safe_npz, f).__dict__) for f in ("_reconstruct", "_dtype", "_frombuffer")]
    defaults = safe_npz._dtype.__defaults__
    for state in [(None, {"__defaults__": (True, True), "hacked": 1}), {"hacked": 1}]:
        with pytest.raises(safe_npz.UnsafeNpz, match=f"the pickle tries to change {module}.{name}"):
            safe_npz.load_npz(npz_of({"train": build_on(module, name, state)}))
    after = [dict(getattr(safe_npz, f).__dict__) for f in ("_reconstruct", "_dtype", "_frombuffer")]
    assert after == before and safe_npz._dtype.__defaults__ == defaults
    assert all(not hasattr(wrapper, "hacked") for wrapper in safe_npz._ALLOWED.values())
    assert len(safe_npz.load_npz(good)["train"]) == 3

