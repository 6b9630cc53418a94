"""The /v1/predict and /v1/complete bodies: read within a size limit, parsed, and checked.

Every problem becomes a RequestError with the HTTP status the API promises (400 unreadable JSON,
408 a body that does not arrive in time, 413 too large, 422 well-formed JSON that is not a usable
drawing) and one line naming the problem. Points and coordinates follow the readers' rule
(quickdraw_tf.data.limits: at most 10,000 points a stroke and 20,000 a drawing, |x|, |y| <= 1e6).
The checks are written out by hand rather than left to pydantic so that each message names the
stroke and axis at fault, and so that NaN/Infinity (which Python's json accepts) are refused.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator

import numpy as np

from quickdraw_tf.data import limits
from quickdraw_tf.data.drawing import Drawing, InvalidRecord

MAX_BODY_BYTES = 1 << 20  # 1 MiB
DEFAULT_BODY_TIMEOUT_S = 20.0  # 1 MiB at 0.5 Mbit/s
MAX_STROKES = 200
MAX_POINTS = limits.MAX_POINTS_PER_DRAWING
MAX_STROKE_POINTS = limits.MAX_POINTS_PER_STROKE
IMAGE_PIXELS = 28 * 28
DEFAULT_TOP_K = 3
_KNOWN_FIELDS = {"drawing", "image", "top_k"}
_COMPLETE_FIELDS = {"drawing", "word", "temperature", "seed"}
DEFAULT_TEMPERATURE = 0.5


class RequestError(Exception):
    """A request the server refuses: `status` is the HTTP status, str(self) the one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


async def read_body(chunks: AsyncIterator[bytes], content_length: str | None, limit: int,
                    timeout_s: float = DEFAULT_BODY_TIMEOUT_S) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` (before any parsing), and
    with 408 when it has not all arrived `timeout_s` after the headers.

    A declared Content-Length over the limit is refused without reading; a chunked or lying body is
    refused as soon as the bytes received pass the limit.
    """
    if content_length is not None:
        if not content_length.strip().isdigit():
            raise RequestError(400, f"Content-Length {content_length[:40]!r} is not a number")
        if int(content_length) > limit:
            raise RequestError(413, f"the body is {int(content_length)} bytes; the limit is {limit}")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in chunks:
                body += chunk
                if len(body) > limit:
                    raise RequestError(413, f"the body is over {limit} bytes; the limit is {limit}")
    except TimeoutError:
        raise RequestError(408, f"the body did not arrive within {timeout_s:g} s "
                                f"({len(body)} bytes received)") from None
    return bytes(body)


def parse_json(body: bytes) -> object:
    """JSON text → Python value; 400 when it is not UTF-8 JSON."""
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise RequestError(400, f"the body is not UTF-8 (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise RequestError(400, f"the body is not valid JSON: {error.msg} at line {error.lineno} "
                                f"column {error.colno}") from None
    except (ValueError, RecursionError) as error:  # a 5000-digit integer; very deep nesting
        raise RequestError(400, f"the body is not usable JSON ({type(error).__name__})") from None


def parse_request(value: object, num_classes: int) -> tuple[Drawing, int]:
    """A parsed JSON body → (Drawing, top_k); RequestError(422) naming the first problem."""
    if not isinstance(value, dict):
        raise _unprocessable(f"the body is a JSON {_json_type(value)}, not an object")
    unknown = sorted(set(value) - _KNOWN_FIELDS)
    if unknown:
        raise _unprocessable(f"unknown field {unknown[0]!r}; expected drawing or image, and top_k")
    top_k = _top_k(value.get("top_k", min(DEFAULT_TOP_K, num_classes)), num_classes)
    if ("drawing" in value) == ("image" in value):
        raise _unprocessable("give exactly one of 'drawing' (strokes) or 'image' (784 ints)")
    if "image" in value:
        return Drawing(key_id=0, word="", image=_image(value["image"])), top_k
    return Drawing(key_id=0, word="", strokes=_strokes(value["drawing"])), top_k


def parse_complete_request(value: object) -> tuple[tuple, str, float, int | None]:
    """A parsed /v1/complete body → (strokes, word, temperature, seed); RequestError(422) if unusable."""
    if not isinstance(value, dict):
        raise _unprocessable(f"the body is a JSON {_json_type(value)}, not an object")
    unknown = sorted(set(value) - _COMPLETE_FIELDS)
    if unknown:
        raise _unprocessable(f"unknown field {unknown[0]!r}; expected drawing, word, temperature and seed")
    if "drawing" not in value or "word" not in value:
        raise _unprocessable("give 'drawing' (strokes) and 'word' (what to draw)")
    word = value["word"]
    if not isinstance(word, str) or not word:
        raise _unprocessable(f"word is a JSON {_json_type(word)}, not a non-empty string")
    temperature = value.get("temperature", DEFAULT_TEMPERATURE)
    if type(temperature) not in (int, float) or not _finite(temperature) or not 0 < temperature <= 2:
        raise _unprocessable(f"temperature {_short(temperature)} is not a number in (0, 2]")
    seed = value.get("seed")
    if seed is not None and (type(seed) is not int or not 0 <= seed < 2**32):
        raise _unprocessable(f"seed {_short(seed)} is not an integer in 0..2**32-1")
    return _strokes(value["drawing"]), word, float(temperature), seed


def _top_k(value: object, num_classes: int) -> int:
    if type(value) is not int:
        raise _unprocessable(f"top_k is a JSON {_json_type(value)}, not an integer")
    if not 1 <= value <= num_classes:
        raise _unprocessable(f"top_k {value} is not in 1..{num_classes}")
    return value


def _image(value: object) -> np.ndarray:
    if not isinstance(value, list):
        raise _unprocessable(f"image is a JSON {_json_type(value)}, not an array of {IMAGE_PIXELS} ints")
    if len(value) != IMAGE_PIXELS:
        raise _unprocessable(f"image has {len(value)} values, not {IMAGE_PIXELS} (28x28)")
    for index, pixel in enumerate(value):
        if type(pixel) is not int or not 0 <= pixel <= 255:
            raise _unprocessable(f"image value {index} is {_short(pixel)}, not an integer in 0..255")
    return np.array(value, np.uint8).reshape(28, 28)


def _strokes(value: object) -> tuple:
    if not isinstance(value, list):
        raise _unprocessable(f"drawing is a JSON {_json_type(value)}, not an array of strokes")
    if not value:
        raise _unprocessable("the drawing is empty (no strokes)")
    if len(value) > MAX_STROKES:
        raise _unprocessable(f"the drawing has {len(value)} strokes; the limit is {MAX_STROKES}")
    total = 0
    for index, stroke in enumerate(value):
        total += _check_stroke(index, stroke, len(value[0]) if isinstance(value[0], list) else 0)
        if total > MAX_POINTS:
            raise _unprocessable(f"the drawing has over {MAX_POINTS} points; the limit is {MAX_POINTS}")
    try:
        limits.check_drawing(value)  # the readers' rule for coordinates
    except InvalidRecord as error:
        raise _unprocessable(str(error)) from None
    return tuple(value)


def _check_stroke(index: int, stroke: object, arity: int) -> int:
    """Checks one [xs, ys] or [xs, ys, ts] stroke; returns its number of points."""
    if not isinstance(stroke, list) or len(stroke) not in (2, 3):
        raise _unprocessable(f"stroke {index} is not an array of 2 or 3 arrays [xs, ys, ts?]")
    if len(stroke) != arity:
        raise _unprocessable(f"stroke {index} has {len(stroke)} arrays but stroke 0 has {arity} "
                             "(all strokes need t, or none)")
    for axis, values in zip("xyt", stroke, strict=False):
        if not isinstance(values, list):
            raise _unprocessable(f"stroke {index} {axis} is a JSON {_json_type(values)}, not an array")
    lengths = [len(values) for values in stroke]
    if len(set(lengths)) > 1:
        counts = ", ".join(f"{n} {axis}" for n, axis in zip(lengths, "xyt", strict=False))
        raise _unprocessable(f"stroke {index} has mismatched lengths ({counts})")
    if not lengths[0]:
        raise _unprocessable(f"stroke {index} has no points")
    if lengths[0] > MAX_STROKE_POINTS:
        raise _unprocessable(f"stroke {index} has {lengths[0]} points; the limit is {MAX_STROKE_POINTS}")
    for axis, values in zip("xyt", stroke, strict=False):
        for position, number in enumerate(values):
            if type(number) not in (int, float):
                raise _unprocessable(f"stroke {index} {axis}[{position}] is a JSON {_json_type(number)}, "
                                     "not a number")
            if not _finite(number):
                raise _unprocessable(f"stroke {index} {axis}[{position}] is {_short(number)}, not finite")
    return lengths[0]


def _finite(number: int | float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an integer too large to be a float
        return False


def _unprocessable(message: str) -> RequestError:
    return RequestError(422, message)


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number" if isinstance(value, (int, float)) else type(value).__name__)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
