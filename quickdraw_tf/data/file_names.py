"""File names made from words (render's <word>-<key_id>.png and <word>.npy, generate's <word>.ndjson):
readable, stable from run to run, and unable to collide or leave their directory.

word_stem(word) keeps letters, marks and digits of any script, "-", "_" and inner spaces; every other
character (".", "/", "\\", "%", "'", "~", ...), and a leading "-" or space, becomes %XX per UTF-8 byte:
URL escapes, which the readers undo (formats.word_from_path), so a rendered <word>.npy reads back as
its word. Being undoable, the mapping never gives two words one stem ("cat's" is cat%27s, "cat_s"
stays cat_s, 猫 stays 猫), and a stem holds no path separator, no "." (so never "..", nor a hidden
name) and does not start like a command-line option. The empty word is "(unlabelled)", which no word
gives (parentheses are escaped); a stem longer than MAX_STEM_BYTES is cut and ends in "~" and 16 hex
digits of the word's sha256 ("~" is escaped in words).

UniqueNames hands out each name once per run, comparing names case-folded (as a case-insensitive
file system would): a repeat gets "~2", "~3", ... before its extension, so every file a run counts is
a file it wrote.
"""

from __future__ import annotations

import hashlib
import unicodedata

MAX_STEM_BYTES = 120  # room for "-<key_id>" and an extension within NAME_MAX (255 bytes)
UNLABELLED = "(unlabelled)"
_KEPT_CATEGORIES = ("L", "M", "N")  # letters, combining marks, digits of every script


def _escaped(char: str, edge: bool) -> str:
    """`char` as it stands in a stem; `edge`: it is the first or last character of the word."""
    if char in "-_ " and not (edge and char in "- "):
        return char
    if unicodedata.category(char)[0] in _KEPT_CATEGORIES:
        return char
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def word_stem(word: str) -> str:
    """The file-name stem of a word (see the module docstring)."""
    if not word:
        return UNLABELLED
    last = len(word) - 1
    stem = "".join(_escaped(char, i == 0 or (i == last and char == " ")) for i, char in enumerate(word))
    if len(stem.encode("utf-8")) <= MAX_STEM_BYTES:
        return stem
    digest = hashlib.sha256(word.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    cut = stem.encode("utf-8")[: MAX_STEM_BYTES - 17].decode("utf-8", "ignore")
    return f"{cut}~{digest}"


class UniqueNames:
    """Names handed out once per run (case-folded); a repeat of `stem` + `extension` gets ~2, ~3, ..."""

    def __init__(self):
        self._taken: set[str] = set()

    def take(self, stem: str, extension: str) -> str:
        name, number = f"{stem}{extension}", 1
        while name.casefold() in self._taken:
            number += 1
            name = f"{stem}~{number}{extension}"
        self._taken.add(name.casefold())
        return name
