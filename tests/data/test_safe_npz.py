"""The .npz reader never runs code from a file, yet reads sketch-rnn's object arrays of real drawings."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest

from quickdraw_tf.data import formats, safe_npz
from quickdraw_tf.data.drawing import InvalidRecord
from tests.npz_payloads import CreatesFile, malicious_npz, object_array, real_stroke3


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
    with pytest.raises(safe_npz.UnsafeNpz, match="inflates to"):
        safe_npz.load_npz(data, max_member_bytes=1000)


@pytest.mark.parametrize("value", [40000, -40000, 1e300, 2**62])
def test_values_outside_int16_are_rejected_not_wrapped(value):
    dtype = np.float64 if isinstance(value, float) else np.int64
    sketch = np.array([[1, 2, 0], [value, 4, 1]], dtype)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, train=object_array([sketch, real_stroke3(1)[0]]))
    drawings, reasons = parse_npz(buffer.getvalue())
    assert reasons == ["bad_coordinate"] and len(drawings) == 1
