"""make_tfrecords' output directory: written whole or not at all, never mixed with another run.

Local directories (the usual case):
  * a lock, fcntl.flock on `.<name>.lock` beside the output directory, is held for the whole run:
    a second run into the same directory fails at once with a one-line error. The kernel drops the
    lock when its process dies, even by kill -9, so a killed run never blocks the next one;
  * a non-empty --output_dir is refused unless --overwrite, which replaces it whole, and only if every
    file in it has a name a conversion writes (so a typo cannot delete someone's other files);
  * the job writes into a fresh `.<name>.tmp-XXXXXXXX` directory beside the output (same parent, so same
    filesystem), then manifest.json last, then renames it into place. A killed run leaves only the
    temporary directory, which no reader is pointed at; the next run into that directory deletes it.

Other Beam filesystems (gs://, ...) have neither locks nor an atomic directory rename: there the job
writes in place (after deleting the old output's files, with --overwrite) and manifest.json last, so
an interrupted run leaves a directory without a manifest, which the readers refuse. Concurrent runs
into one remote directory are not detected.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_jobs.job_config import UsageError
from quickdraw_tf.data import layout


class OutputDirError(UsageError):
    """The output directory cannot be used as asked: reported as one line, exit status 2."""


def is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


@contextlib.contextmanager
def claim(output_dir: str, overwrite: bool) -> Iterator[str]:
    """Yields the directory the job must write into; on a clean exit from the block, publishes it.

    The block must leave a complete output (with stats.json) there; `publish` then adds manifest.json.
    On an exception nothing is published and the temporary directory is removed.
    """
    if not is_local(output_dir):
        _check_replaceable(output_dir, _remote_names(output_dir), overwrite)
        for name in _remote_names(output_dir):
            FileSystems.delete([layout.join(output_dir, name)])
        yield output_dir
        publish(output_dir)
        return
    output_dir = os.path.abspath(output_dir.removeprefix("file://"))
    parent, name = os.path.split(output_dir)
    _make_parent(parent, output_dir)
    with _locked(os.path.join(parent, f".{name}.lock"), output_dir):
        if os.path.exists(output_dir) and not os.path.isdir(output_dir):
            raise OutputDirError(f"--output_dir {output_dir} exists and is not a directory")
        _check_replaceable(output_dir, os.listdir(output_dir) if os.path.isdir(output_dir) else [], overwrite)
        _remove_leftovers(parent, name)  # of killed runs: the lock says none of them is running
        staging = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent)
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private; the output is an ordinary dir
        try:
            yield staging
            publish(staging)
            _move_into_place(staging, output_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def publish(directory: str) -> dict:
    """Writes manifest.json (last) describing every file in the directory; returns it."""
    names = [n for n in _names(directory) if n != layout.MANIFEST_FILE]
    with FileSystems.open(layout.join(directory, layout.STATS_FILE)) as f:
        stats = json.loads(f.read().decode("utf-8"))
    manifest = layout.build_manifest(directory, names, stats, FileSystems.open)
    path = layout.join(directory, layout.MANIFEST_FILE)
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(layout.manifest_text(manifest).encode("utf-8"))
    return manifest


def _make_parent(parent: str, output_dir: str) -> None:
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as error:  # a file where a directory should be, no permission, ...
        blocking = [p for p in _ancestors(parent) if os.path.lexists(p) and not os.path.isdir(p)]
        reason = f"{blocking[0]} is not a directory" if blocking else f"{error.strerror}: {error.filename}"
        raise OutputDirError(f"cannot make the parent of --output_dir {output_dir} ({reason})") from None


def _ancestors(path: str) -> list[str]:
    """path and the directories above it, from the root down."""
    found = []
    while path and path not in found:
        found.append(path)
        path = os.path.dirname(path)
    return found[::-1]


@contextlib.contextmanager
def _locked(lock_path: str, output_dir: str) -> Iterator[None]:
    try:
        # O_NOFOLLOW: a symbolic link planted as the lock would make the open create or lock its target.
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        what = "is a symbolic link" if os.path.islink(lock_path) else f"cannot be opened ({error.strerror})"
        raise OutputDirError(
            f"the lock {lock_path} of --output_dir {output_dir} {what}: "
            "remove it or choose another --output_dir"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputDirError(
                f"another make_tfrecords run is writing {output_dir} (it holds {lock_path}); "
                "wait for it or choose another --output_dir"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _check_replaceable(output_dir: str, names: list[str], overwrite: bool) -> None:
    if not names:
        return
    if not overwrite:
        raise OutputDirError(
            f"--output_dir {output_dir} is not empty (an earlier conversion?): "
            "pass --overwrite to replace it whole, or choose another directory"
        )
    foreign = sorted(n for n in names if not layout.OUTPUT_NAME.fullmatch(n))
    if foreign:
        raise OutputDirError(
            f"--overwrite would delete {os.path.join(output_dir, foreign[0])}, which make_tfrecords "
            "does not write: not replacing that directory"
        )
    subdirs = [n for n in names if is_local(output_dir) and os.path.isdir(os.path.join(output_dir, n))]
    if subdirs:
        raise OutputDirError(f"--overwrite would delete the directory {os.path.join(output_dir, subdirs[0])}")


def leftover_pattern(name: str) -> re.Pattern:
    """The names of the staging (tmp) and moved-aside (old) directories of runs into `name`, exactly:
    tempfile.mkdtemp's suffix is 8 characters of [a-z0-9_]. A prefix match would also take
    `.data.old-backup.tmp-XXXXXXXX`, the staging directory of a run into data.old-backup, when the run
    is into data."""
    return re.compile(rf"\.{re.escape(name)}\.(tmp|old)-[a-z0-9_]{{8}}")


def _remove_leftovers(parent: str, name: str) -> None:
    pattern = leftover_pattern(name)
    for entry in os.listdir(parent):
        if pattern.fullmatch(entry):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _move_into_place(staging: str, output_dir: str) -> None:
    """Renames staging to output_dir; an existing output_dir (checked replaceable) is moved aside first."""
    if not os.path.exists(output_dir):
        os.rename(staging, output_dir)
        return
    old = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.old-", dir=os.path.dirname(output_dir))
    os.rename(output_dir, os.path.join(old, "output"))
    os.rename(staging, output_dir)
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _names(directory: str) -> list[str]:
    if is_local(directory):
        return sorted(os.listdir(directory.removeprefix("file://")))
    return _remote_names(directory)


def _remote_names(directory: str) -> list[str]:
    prefix = directory.rstrip("/") + "/"
    try:
        results = FileSystems.match([prefix + "*"])
    except OSError:
        return []
    return sorted(m.path[len(prefix) :] for r in results for m in r.metadata_list)
