"""Reads sketch-rnn .npz archives without ever running code from them.

sketch-rnn's files hold "train", "valid" and "test" object arrays of int16 stroke-3 arrays. numpy saves
object arrays as pickles, and np.load(allow_pickle=True) unpickles whatever a file says: a crafted file
can call any Python function. This loader opens the zip itself, reads plain number arrays with
allow_pickle=False, and unpickles object arrays with an unpickler that can build nothing but numpy
arrays and dtypes:

  - find_class resolves only numpy's array reconstructor, ndarray, dtype, _frombuffer (protocol 5)
    and codecs' latin-1 encode (what Python 2 and protocol 2 pickles use for raw bytes), each replaced
    by a checking wrapper (ndarray by an inert marker that only the reconstructor accepts): any other
    global (os.system, builtins.eval, ...) raises UnsafeNpz before anything is imported or called;
  - the wrappers accept only numeric dtypes (bool, int, uint, float) or object, plain ndarrays, and the
    latin-1 encoding; the only __setstate__ a pickle can then reach are ndarray's and dtype's;
  - the result must be a 1-D object array whose every element is an array of numbers (anything else a
    pickle can build from its own opcodes: str, list, dict, ... is refused), with no structured dtype;
  - what find_class hands out cannot be changed by the pickle: a BUILD opcode on a wrapper (which would
    set attributes of a shared object, e.g. a function's __defaults__, for every later file) raises
    UnsafeNpz, dtypes are fresh copies, and every array a pickle can reach checks its own state.

The archive is capped as a whole (MAX_NPZ_BYTES, the sum of its members' uncompressed sizes): the sizes
the zip directory declares are checked before anything is inflated, and the bytes actually inflated are
counted against the same cap (a directory may lie), so a zip bomb of many members costs no more memory
than one. Any failure raises UnsafeNpz (a ValueError) with a one-line reason.
"""

from __future__ import annotations

import codecs
import io
import pickle
import zipfile

import numpy as np

# The sum of the members' uncompressed sizes. A sketch-rnn file of a class holds its splits' stroke-3
# arrays: tens of MB; Google's largest class (about 340,000 drawings of ~50 points) would be ~150 MB.
MAX_NPZ_BYTES = 1 << 29
NUMBER_KINDS = "biuf"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip


class UnsafeNpz(ValueError):
    """An .npz archive (or member) that is unreadable or holds more than arrays of numbers."""


def _checked_dtype(dtype: np.dtype, allow_object: bool) -> np.dtype:
    kinds = NUMBER_KINDS + ("O" if allow_object else "")
    if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
        raise UnsafeNpz(f"dtype {dtype} is not a plain number type")
    return dtype


class _CheckedArray(np.ndarray):
    """What _reconstruct builds: its __setstate__ (the pickle's BUILD) checks that the state's shape
    matches the data it carries before numpy allocates anything, so a pickle cannot declare a shape of
    10**12 elements and make numpy allocate (and for objects, fill) that much memory."""

    def __setstate__(self, state: tuple) -> None:
        if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[1], tuple)):
            raise UnsafeNpz("array state is not (version, shape, dtype, fortran_order, data)")
        _, shape, dtype, _, data = state
        if not isinstance(dtype, np.dtype) or not all(type(n) is int and n >= 0 for n in shape):
            raise UnsafeNpz(f"array state has shape {shape!r} and dtype {dtype!r}")
        count = 1
        for n in shape:
            count *= n
        if isinstance(data, list) and len(data) != count or not isinstance(data, (list, bytes, str)):
            raise UnsafeNpz(f"array state of shape {shape} does not carry {count:,} elements")
        if isinstance(data, (bytes, str)) and len(data) != count * _checked_dtype(dtype, False).itemsize:
            raise UnsafeNpz(f"array state of shape {shape} and dtype {dtype} carries {len(data):,} bytes")
        super().__setstate__(state)


def _plain(array: np.ndarray) -> np.ndarray:
    return array.view(np.ndarray) if isinstance(array, _CheckedArray) else array


class _Sealed:
    """What find_class hands a pickle: a name that can be called (when it wraps a function) but not
    changed. A pickle's BUILD opcode on an object calls its __setstate__, or else sets attributes in
    its __dict__: on a plain function or class that would outlive the file (a function's __defaults__,
    a class attribute) and change how every later archive is read."""

    __slots__ = ("_name", "_function")

    def __init__(self, name: str, function=None):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_function", function)

    def __call__(self, *args):
        if self._function is None:
            raise UnsafeNpz(f"the pickle calls {self._name}, which only names a type")
        return self._function(*args)

    def __setstate__(self, state: object) -> None:
        raise UnsafeNpz(f"the pickle tries to change {self._name}")

    def __setattr__(self, name: str, value: object) -> None:
        raise UnsafeNpz(f"the pickle tries to change {self._name}")

    def __repr__(self) -> str:
        return self._name


# Stands for numpy.ndarray in a pickle: it can be passed to _reconstruct, never called or built.
_NDARRAY = _Sealed("numpy.ndarray")


def _reconstruct(subtype: object, shape: object, dtype_code: object) -> np.ndarray:
    # numpy's pickles call _reconstruct(ndarray, (0,), b'b') and fill the array with ndarray.__setstate__.
    if subtype is not _NDARRAY:
        raise UnsafeNpz(f"array subtype {subtype!r} is not numpy.ndarray")
    return np.ndarray.__new__(_CheckedArray, (0,), np.uint8)


def _dtype(spec: object, align: object = False, copy: object = False) -> np.dtype:
    if not isinstance(spec, str) or not isinstance(align, bool) or not isinstance(copy, bool):
        raise UnsafeNpz(f"dtype arguments {spec!r}, {align!r}, {copy!r} are not a type code")
    try:
        # Always a copy: np.dtype("i2") is numpy's shared instance, and the pickle may BUILD on it.
        dtype = np.dtype(spec, copy=True)
    except TypeError as error:
        raise UnsafeNpz(f"unknown dtype {spec!r}") from error
    return _checked_dtype(dtype, allow_object=True)


def _frombuffer(buffer: object, dtype: object, shape: object, order: object) -> np.ndarray:
    # Protocol 5 pickles of number arrays: _frombuffer(bytes, dtype, shape, order).
    if not isinstance(buffer, (bytes, bytearray)) or not isinstance(dtype, np.dtype) or order not in "CF":
        raise UnsafeNpz("_frombuffer arguments are not bytes, a dtype and an order")
    if not (isinstance(shape, tuple) and all(type(n) is int for n in shape)):
        raise UnsafeNpz(f"_frombuffer shape {shape!r} is not a tuple of integers")
    try:
        array = np.frombuffer(buffer, _checked_dtype(dtype, allow_object=False)).reshape(shape, order=order)
    except ValueError as error:
        raise UnsafeNpz(f"_frombuffer: {error}") from None
    return array.view(_CheckedArray)  # a later BUILD on it goes through the checked __setstate__


def _latin1_encode(text: object, encoding: object = "latin1") -> bytes:
    if not isinstance(text, str) or codecs.lookup(str(encoding)).name != "iso8859-1":
        raise UnsafeNpz(f"codecs.encode with {encoding!r} is not allowed")
    return text.encode("latin1")


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _Sealed("numpy.core.multiarray._reconstruct", _reconstruct),
    ("numpy._core.multiarray", "_reconstruct"): _Sealed("numpy._core.multiarray._reconstruct", _reconstruct),
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Sealed("numpy.dtype", _dtype),
    ("numpy.core.numeric", "_frombuffer"): _Sealed("numpy.core.numeric._frombuffer", _frombuffer),
    ("numpy._core.numeric", "_frombuffer"): _Sealed("numpy._core.numeric._frombuffer", _frombuffer),
    ("_codecs", "encode"): _Sealed("_codecs.encode", _latin1_encode),
}


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler whose only reachable callables are the checking wrappers above."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafeNpz(f"the pickle asks for {module}.{name}: only numpy arrays are allowed") from None


def _check_element(element: object) -> None:
    if type(element) not in (np.ndarray, _CheckedArray):
        raise UnsafeNpz(f"an element is a {type(element).__name__}, not an array of numbers")
    _checked_dtype(element.dtype, allow_object=False)


def _unpickle_object_array(stream: io.BytesIO, shape: tuple) -> np.ndarray:
    try:
        array = _ArrayUnpickler(stream, encoding="latin1").load()
    except UnsafeNpz:
        raise
    except Exception as error:  # truncated or garbled pickles raise many kinds of errors
        raise UnsafeNpz(f"unreadable object array ({type(error).__name__}: {error})") from error
    if type(array) is not _CheckedArray or array.dtype != object or array.shape != shape or array.ndim != 1:
        raise UnsafeNpz(f"object member is not a 1-D object array of shape {shape}")
    array = _plain(array)
    for index, element in enumerate(array):
        _check_element(element)
        array[index] = _plain(element)
    return array


def load_member(data: bytes) -> np.ndarray:
    """One .npy member: number arrays read as numpy does (no pickle), object arrays checked as above."""
    stream = io.BytesIO(data)
    try:
        if np.lib.format.read_magic(stream) == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    except Exception as error:  # numpy raises ValueError, SyntaxError, ... on foreign headers
        raise UnsafeNpz(f"unreadable .npy header ({error})") from error
    _checked_dtype(dtype, allow_object=True)
    if dtype.kind == "O":
        return _unpickle_object_array(stream, shape)
    try:
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except Exception as error:
        raise UnsafeNpz(f"unreadable array ({type(error).__name__}: {error})") from error


def load_npz(data: bytes, max_bytes: int = MAX_NPZ_BYTES) -> dict[str, np.ndarray]:
    """The arrays of an .npz archive by name (".npy" dropped), in archive order; UnsafeNpz if refused.

    `max_bytes` caps the sum of the members' uncompressed sizes (see the module docstring)."""
    if not data.startswith(_ZIP_MAGICS):
        raise UnsafeNpz(f"not a zip archive (starts with {data[:4]!r})")
    arrays = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            declared = sum(info.file_size for info in members)
            if declared > max_bytes:
                raise UnsafeNpz(
                    f"its {len(members)} member(s) inflate to {declared:,} bytes, over the {max_bytes:,} "
                    "bytes an .npz may hold"
                )
            left = max_bytes
            for info in members:
                with archive.open(info) as member:
                    # Read one byte past what is left: the sizes in the zip directory may lie.
                    content = member.read(left + 1)
                if len(content) > left:
                    raise UnsafeNpz(f"member {info.filename} inflates past the {max_bytes:,} bytes an .npz may hold")
                left -= len(content)
                arrays[info.filename.removesuffix(".npy")] = load_member(content)
                del content  # before the next member is inflated
    except UnsafeNpz:
        raise
    except Exception as error:  # zipfile and zlib raise their own errors on bad bytes
        raise UnsafeNpz(f"unreadable .npz archive ({type(error).__name__}: {error})") from error
    return arrays
