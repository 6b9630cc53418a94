"""ONE way to write a file whose name or directory a user gave: predict's CSVs, render's and generate's
pictures, evaluation's results, a training run's own files.

The content goes to a fresh name in the target's directory, `.<name>.tmp-<random>`, created with
O_CREAT | O_EXCL | O_NOFOLLOW (so nothing that lies there, a planted symbolic link included, is opened),
and is renamed over the target once complete. So:

  * a symbolic link at the target is refused with one line (OutputPathError) before anything is
    written, and again just before the rename; writing never goes through a link to its target;
  * a reader never sees half a file, and a failed write leaves the old file (or none) in place;
  * the new file gets the usual permissions (0o666 less the umask), not mkstemp's private 0o600.

A killed writer can leave its `.<name>.tmp-<random>` behind; nothing reads such names.
No TensorFlow here: the Beam job, the commands, training and the server all import it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from typing import IO

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_TEMP_PREFIX_BYTES = 200  # a temporary name must stay within NAME_MAX (255 bytes)


class OutputPathError(ValueError):
    """A target that must not be written: a one-line message (exit 2 in a CLI)."""


def refuse_link(path: str) -> None:
    """OutputPathError if `path` is a symbolic link, whatever it points to (or if it dangles): for a
    file, and for a directory that a library (TensorFlow's writers) would write into."""
    if os.path.islink(path):
        raise OutputPathError(f"{path} is a symbolic link; refusing to write through it (remove it)")


def check_target(path: str) -> None:
    """OutputPathError if `path` is a symbolic link or a directory; nothing otherwise. Callers may check
    early, before long work, as well."""
    refuse_link(path)
    if os.path.isdir(path):
        raise OutputPathError(f"{path} is a directory, not a file to write")


def temporary_name(path: str) -> str:
    """A fresh `.<name>.tmp-<random>` beside `path` (in the same directory, so the rename is atomic)."""
    directory, name = os.path.split(path)
    prefix = name.encode("utf-8", "surrogateescape")[:_MAX_TEMP_PREFIX_BYTES]
    prefix_text = prefix.decode("utf-8", "ignore")
    return os.path.join(directory, f".{prefix_text}.tmp-{secrets.token_hex(6)}")


@contextlib.contextmanager
def replacing(path: str, text: bool = False, newline: str | None = None) -> Iterator[IO]:
    """A file object (binary, or UTF-8 text with `text`) whose content replaces `path` when the block
    ends without an exception; on an exception the temporary file is removed and `path` is untouched."""
    path = os.fspath(path)
    check_target(path)
    temporary = temporary_name(path)
    fd = os.open(temporary, _FLAGS, 0o666)
    try:
        if text:
            fileobj = os.fdopen(fd, "w", encoding="utf-8", newline=newline)
        else:
            fileobj = os.fdopen(fd, "wb")
        with fileobj:
            yield fileobj
        check_target(path)  # a link planted while this was being written is refused as well
        os.replace(temporary, path)  # replaces a name: a link there would be replaced, never followed
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def replacing_by_name(path: str) -> Iterator[str]:
    """For a library that writes a file only by its name (Keras' model.save): a path of the same name in
    a fresh private directory beside `path` (mkdtemp: 0o700, so nothing can be planted in it); the file
    written there replaces `path` when the block ends without an exception."""
    path = os.fspath(path)
    check_target(path)
    directory, name = os.path.split(path)
    private = tempfile.mkdtemp(prefix=os.path.basename(temporary_name(path)) + "-", dir=directory or ".")
    try:
        yield os.path.join(private, name)
        check_target(path)
        os.replace(os.path.join(private, name), path)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def write_bytes(path: str, data: bytes) -> None:
    with replacing(path) as f:
        f.write(data)


def write_text(path: str, text: str) -> None:
    with replacing(path, text=True) as f:
        f.write(text)
