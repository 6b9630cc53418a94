"""Malformed /v1/predict bodies made by breaking real drawings, each with the status it must get."""

from __future__ import annotations

import copy
import json
import random

from quickdraw_tf.serve import schemas

Mutation = tuple[str, bytes, int]  # (what was broken, body, expected HTTP status)


def _dump(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def _random_point(rng: random.Random, strokes: list) -> tuple[int, int, int]:
    s = rng.randrange(len(strokes))
    axis = rng.randrange(len(strokes[s]))
    return s, axis, rng.randrange(len(strokes[s][axis]))


def _set_value(rng, body, value):
    s, axis, i = _random_point(rng, body["drawing"])
    body["drawing"][s][axis][i] = value
    return body


def _set_xy(rng, body, value):
    """An x or y (never a time: times need only be finite) set to `value`."""
    s, _, i = _random_point(rng, body["drawing"])
    body["drawing"][s][rng.randrange(2)][i] = value
    return body


def _drop_value(rng, body):
    s, axis, i = _random_point(rng, body["drawing"])
    body["drawing"][s][axis].pop(i)
    if not body["drawing"][s][axis]:  # it was a 1-point stroke: make the lengths disagree anyway
        body["drawing"][s][axis].extend([1, 2])
    return body


def _structural(rng: random.Random, body: dict) -> tuple[str, dict]:
    strokes = body["drawing"]
    s = rng.randrange(len(strokes))
    choices = {
        "nan": lambda: _set_value(rng, body, float("nan")),
        "infinity": lambda: _set_value(rng, body, rng.choice([float("inf"), float("-inf")])),
        "huge integer": lambda: _set_value(rng, body, 10**400),
        "coordinate beyond 1e6": lambda: _set_xy(rng, body, rng.choice([1e7, -3.5e12, 10**20, -1.7e308])),
        "string coordinate": lambda: _set_value(rng, body, "12"),
        "null coordinate": lambda: _set_value(rng, body, None),
        "bool coordinate": lambda: _set_value(rng, body, True),
        "list coordinate": lambda: _set_value(rng, body, [1, 2]),
        "mismatched lengths": lambda: _drop_value(rng, body),
        "stroke with 1 array": lambda: strokes.__setitem__(s, strokes[s][:1]) or body,
        "stroke with 4 arrays": lambda: strokes.__setitem__(s, (strokes[s] * 2)[:4]) or body,
        "stroke not a list": lambda: strokes.__setitem__(s, {"x": strokes[s][0]}) or body,
        "empty stroke": lambda: strokes.__setitem__(s, [[] for _ in strokes[s]]) or body,
        "axis not a list": lambda: strokes[s].__setitem__(0, 5) or body,
        "empty drawing": lambda: body.__setitem__("drawing", []) or body,
        "drawing not a list": lambda: _set(body, "drawing", rng.choice(["abc", 3, None, {"a": 1}])),
        "missing drawing": lambda: body.pop("drawing") and body,
        "drawing and image": lambda: body.__setitem__("image", [0] * 784) or body,
        "unknown field": lambda: body.__setitem__(rng.choice(["colour", "Drawing", "topk"]), 1) or body,
        "bad top_k": lambda: _set(body, "top_k", rng.choice([0, -1, 11, 10**6, "3", 2.5, None, [3]])),
        "too many strokes": lambda: _too_many_strokes(rng, body),
        "too many points": lambda: _too_many_points(body),
        "mixed t": lambda: _mixed_t(strokes) or body,
        "not an object": lambda: rng.choice([strokes, "drawing", 7, None, True]),
    }
    name = rng.choice(sorted(choices))
    return name, choices[name]()


def _set(body: dict, key: str, value: object) -> dict:
    body[key] = value
    return body


def _too_many_strokes(rng: random.Random, body: dict) -> dict:
    strokes = body["drawing"] * (schemas.MAX_STROKES // len(body["drawing"]) + 2)
    body["drawing"] = strokes[: schemas.MAX_STROKES + 1 + rng.randrange(50)]
    return body


def _too_many_points(body: dict) -> dict:
    stroke = body["drawing"][0]
    repeat = schemas.MAX_POINTS // len(stroke[0]) + 1
    body["drawing"] = [[axis * repeat for axis in stroke]]
    return body


def _mixed_t(strokes: list) -> None:
    if len(strokes) == 1:
        strokes.append(copy.deepcopy(strokes[0]))
    last = strokes[-1]
    strokes[-1] = last[:2] if len(last) == 3 else last + [list(range(len(last[0])))]


def _textual(rng: random.Random, text: bytes) -> tuple[str, bytes, int]:
    kind = rng.choice(["truncated", "garbage byte", "not utf-8", "oversize", "trailing junk"])
    if kind == "truncated":
        return kind, text[: rng.randrange(0, len(text) - 1)], 400
    if kind == "garbage byte":
        i = rng.randrange(len(text))
        return kind, text[:i] + rng.choice([b"{", b"]", b",,", b"\x00", b"'"]) + text[i:], 400
    if kind == "not utf-8":
        i = rng.randrange(len(text))
        return kind, text[:i] + b"\xff\xfe" + text[i:], 400
    if kind == "oversize":
        return kind, text + b" " * (schemas.MAX_BODY_BYTES + 1 - len(text) + rng.randrange(1000)), 413
    return kind, text + b" xyz", 400


def mutations(drawings: list[dict], count: int, seed: int = 0) -> list[Mutation]:
    """`count` malformed bodies, each from one real drawing ({"drawing": ..., "top_k": 3}) broken once."""
    rng = random.Random(seed)
    out: list[Mutation] = []
    while len(out) < count:
        body = copy.deepcopy(rng.choice(drawings))
        if rng.random() < 0.3:
            kind, text, status = _textual(rng, _dump(body))
            if kind == "garbage byte":  # a stray character can still leave valid JSON; keep only real breaks
                try:
                    json.loads(text)
                    continue
                except ValueError:
                    pass
            out.append((kind, text, status))
        else:
            name, broken = _structural(rng, body)
            text = _dump(broken)
            # a drawing made too big can also pass the byte limit, which is checked first
            out.append((name, text, 413 if len(text) > schemas.MAX_BODY_BYTES else 422))
    return out
