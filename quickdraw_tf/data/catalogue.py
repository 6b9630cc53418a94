r"""The dataset's catalogue: its 345 words, the kinds of file Google publishes for each, their URLs and
local names.

KINDS and where they live under the base URL (https://storage.googleapis.com/quickdraw_dataset, or
--base_url, or $QUICKDRAW_BASE_URL):
  simplified    full/simplified/<word>.ndjson
  raw           full/raw/<word>.ndjson
  binary        full/binary/<word>.bin
  numpy_bitmap  full/numpy_bitmap/<word>.npy
  sketchrnn     sketchrnn/<word>.npz
Words are the 345 categories of categories.txt, URL-quoted ("The Eiffel Tower" -> The%20Eiffel%20Tower).
Files are saved as output_dir/<word><extension>, the names formats.word_from_path reads the word from; give
simplified and raw their own directories, since both end in .ndjson.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import os
import urllib.parse
from collections.abc import Iterable
from typing import NamedTuple

DEFAULT_BASE_URL = "https://storage.googleapis.com/quickdraw_dataset"
BASE_URL_ENV = "QUICKDRAW_BASE_URL"


class Kind(NamedTuple):
    remote_path: str  # in the bucket, with {word} URL-quoted
    extension: str
    format: str  # formats' name for it


KINDS = {
    "simplified": Kind("full/simplified/{word}.ndjson", ".ndjson", "ndjson"),
    "raw": Kind("full/raw/{word}.ndjson", ".ndjson", "ndjson"),
    "binary": Kind("full/binary/{word}.bin", ".bin", "bin"),
    "numpy_bitmap": Kind("full/numpy_bitmap/{word}.npy", ".npy", "npy"),
    "sketchrnn": Kind("sketchrnn/{word}.npz", ".npz", "npz"),
}


@functools.cache
def _category_tuple() -> tuple[str, ...]:
    text = importlib.resources.files("quickdraw_tf").joinpath("categories.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


def categories() -> list[str]:
    """The dataset's 345 words, sorted: capitals first ("The Eiffel Tower" before "aircraft carrier")."""
    return list(_category_tuple())


def check_words(words: Iterable[str]) -> list[str]:
    """The words without repeats, in order; ValueError naming an unknown word and the closest known ones."""
    known = set(_category_tuple())
    checked = list(dict.fromkeys([words] if isinstance(words, str) else words))
    if not checked:
        raise ValueError("no category given")
    for word in checked:
        if word not in known:
            raise ValueError(f"unknown category {word!r}{_suggestion(word)}")
    return checked


def _suggestion(word: str) -> str:
    # Compared in lower case so that "the eiffel tower" still finds "The Eiffel Tower".
    by_lower = {known.lower(): known for known in _category_tuple()}
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=3, cutoff=0.6)
    if not matches:
        return " (the 345 categories are in quickdraw_tf/categories.txt)"
    return "; did you mean " + " or ".join(repr(by_lower[match]) for match in matches) + "?"


def expand_categories(names: Iterable[str]) -> list[str]:
    """["all"] means every category; any other list is checked with check_words."""
    names = list(names)
    return categories() if names == ["all"] else check_words(names)


def resolve_base_url(base_url: str | None) -> str:
    """`base_url`, else $QUICKDRAW_BASE_URL, else Google's bucket; ValueError unless it is http(s)."""
    resolved = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    if urllib.parse.urlsplit(resolved).scheme not in ("http", "https"):
        raise ValueError(f"base_url {resolved!r} is not an http:// or https:// URL")
    return resolved.rstrip("/")


def kind_spec(kind: str) -> Kind:
    """The Kind named `kind`; ValueError (one line) for an unknown name."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    return KINDS[kind]


def file_url(word: str, kind: str, base_url: str = DEFAULT_BASE_URL) -> str:
    """The URL of one category's file, e.g. .../full/simplified/The%20Eiffel%20Tower.ndjson."""
    return base_url.rstrip("/") + "/" + kind_spec(kind).remote_path.format(word=urllib.parse.quote(word))


def local_path(word: str, kind: str, output_dir: str) -> str:
    """Where download() saves a word's file: output_dir/<word><extension>."""
    return os.path.join(output_dir, word + kind_spec(kind).extension)
