r"""Fetches one kind of file for a list of words into a directory, resumably (quickdraw_tf.download is its
command line; the catalogue of words and kinds is catalogue.py).

How a file is fetched:
  - It is streamed into "<file>.part" and renamed into place only once it is complete and its first record
    parses with formats (and is a drawing of that word), so a final file is never half written.
  - A final file whose size equals the server's Content-Length is skipped (one HEAD request); if the server
    gives no Content-Length it is kept as it is. A size that differs downloads the file again.
  - A ".part" left by an interrupted run is resumed with an HTTP Range request. A server that ignores Range
    (answers 200, not 206) sends the whole file, which then restarts it.
  - Connection errors, timeouts, bodies cut short, HTTP 5xx and 429 are retried `retries` times with
    exponential backoff, each try resuming where the last one stopped. Any other HTTP error (404: no such
    category or kind at this base URL) fails at once, naming the URL.

max_bytes keeps the first N bytes of each file rounded down to whole records: complete lines of ndjson,
complete drawings of binary (found with formats' reader), e.g. for a quick subset of every category. .npy and
.npz files cannot be cut (a .npy header states the row count; a zip is read from its end), so max_bytes is
refused for numpy_bitmap and sketchrnn. A re-run with max_bytes starts from the existing file (all saved
files are prefixes of the remote one), asks only for the bytes between its end and max_bytes, and reports
the file complete when they hold no further whole record.
"""

from __future__ import annotations

import collections
import http.client
import logging
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import NamedTuple

from quickdraw_tf.data import formats, output_files
from quickdraw_tf.data.catalogue import Kind, check_words, file_url, kind_spec, local_path, resolve_base_url
from quickdraw_tf.data.drawing import InvalidRecord

PARTIAL_SUFFIX = ".part"
_CUTTABLE_FORMATS = ("ndjson", "bin")
_RETRIED_HTTP_CODES = (429,)  # and every 5xx
_CHUNK_BYTES = 1 << 20

logger = logging.getLogger(__name__)


class DownloadError(OSError):
    """A file could not be fetched, or what was fetched is not a readable Quick, Draw! file."""


def partial_path(path: str) -> str:
    """The file a download of `path` streams into, and resumes from after an interruption."""
    return path + PARTIAL_SUFFIX


# ---------------------------------------------------------------------------------------------------
# Downloading


class _Settings(NamedTuple):
    timeout: float
    retries: int
    backoff: float


def download(
    words: Iterable[str],
    kind: str,
    output_dir: str,
    base_url: str | None = None,
    max_bytes: int | None = None,
    timeout: float = 60,
    retries: int = 3,
    *,
    backoff: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Fetches each word's file of `kind` into output_dir; returns their paths in the order of `words`.

    base_url None means $QUICKDRAW_BASE_URL, else Google's bucket. max_bytes keeps only the whole records
    within the first N bytes (ndjson and binary kinds only). Failed try k (from 0) waits backoff * 2**k s.
    `progress` gets one line per file (default: logged at INFO). The module docstring has the details.
    Raises ValueError for bad arguments (before any request), DownloadError for a file that cannot be had.
    """
    words = check_words(words)
    spec = kind_spec(kind)
    base_url = resolve_base_url(base_url)
    _check_max_bytes(max_bytes, kind, spec)
    if retries < 0 or timeout <= 0:
        raise ValueError(f"retries ({retries}) must be >= 0 and timeout ({timeout}) > 0")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"output_dir {output_dir} is not a directory")
    os.makedirs(output_dir, exist_ok=True)
    report = progress or logger.info
    settings = _Settings(timeout, retries, backoff)
    paths = []
    for number, word in enumerate(words, 1):
        path = local_path(word, kind, output_dir)
        outcome = _download_file(file_url(word, kind, base_url), path, spec.format, word, max_bytes, settings)
        report(f"[{number}/{len(words)}] {word}: {outcome}")
        paths.append(path)
    return paths


def _check_max_bytes(max_bytes: int | None, kind: str, spec: Kind) -> None:
    if max_bytes is None:
        return
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive integer, not {max_bytes!r}")
    if spec.format not in _CUTTABLE_FORMATS:
        raise ValueError(
            f"max_bytes cannot cut {kind} files ({spec.extension} is unreadable when cut short); "
            "it works for simplified, raw and binary"
        )


def _download_file(
    url: str, path: str, fmt: str, word: str, max_bytes: int | None, settings: _Settings
) -> str:
    """Brings `path` up to date with `url`; returns what was done, for the progress line."""
    if max_bytes is None and _is_complete(url, path, settings):
        return f"already complete, {path} ({os.path.getsize(path):,} bytes)"
    part = partial_path(path)
    # A link planted at either name would redirect the write to its target: refused, as every output is.
    try:
        output_files.check_target(path)
        output_files.refuse_link(part)
    except output_files.OutputPathError as error:
        raise DownloadError(str(error)) from None
    _seed_partial(part, path, max_bytes)
    resumed_at = os.path.getsize(part) if os.path.exists(part) else 0
    total = _with_retries(url, settings, lambda: _fetch_once(url, part, max_bytes, settings.timeout))
    if max_bytes is not None and not _cut_subset(url, part, path, fmt, max_bytes, total):
        return f"already complete, {path} ({os.path.getsize(path):,} bytes within max_bytes)"
    _check_first_record(url, part, path, fmt, word)
    os.replace(part, path)
    resumed = f", resumed at byte {resumed_at:,}" if resumed_at else ""
    return f"{os.path.getsize(path):,} bytes -> {path}{resumed}"


def _is_complete(url: str, path: str, settings: _Settings) -> bool:
    """Whether the saved file has the server's Content-Length (or exists, if the server gives none)."""
    if not os.path.exists(path):
        return False
    size = os.path.getsize(path)
    remote_size = _with_retries(url, settings, lambda: _remote_size(url, settings.timeout))
    if remote_size is None or remote_size == size:
        return True
    logger.info("%s: %s bytes here but %s on the server; downloading it again", path, size, remote_size)
    return False


def _cut_subset(url: str, part: str, path: str, fmt: str, max_bytes: int, total: int | None) -> bool:
    """Cuts `part` to whole records; False (and `part` removed) when that is what `path` holds already."""
    _cut_to_whole_records(part, path, fmt, at_end=total == os.path.getsize(part))
    size = os.path.getsize(part)
    if os.path.exists(path) and os.path.getsize(path) == size:
        os.remove(part)  # the same prefix of the same file: nothing new within max_bytes
        return False
    if size == 0:
        os.remove(part)
        raise DownloadError(f"{url}: its first record is longer than max_bytes={max_bytes}")
    return True


def _seed_partial(part: str, path: str, max_bytes: int | None) -> None:
    """With max_bytes, resume from the .part, else the saved file: both are remote prefixes."""
    if max_bytes is None:
        return
    if not os.path.exists(part) and os.path.exists(path):
        shutil.copyfile(path, part)
    if os.path.exists(part) and os.path.getsize(part) > max_bytes:
        os.truncate(part, max_bytes)


def _check_first_record(url: str, part: str, path: str, fmt: str, word: str) -> None:
    """DownloadError (and the .part removed) unless the first record parses and is a drawing of `word`."""
    with open(part, "rb") as fileobj:
        # Named after the final path: binary, .npy and .npz records take their word from the file name.
        first = next(iter(formats.read_source_records(fileobj, path, fmt)), None)
    try:
        if first is None:
            raise InvalidRecord("truncated_record", "the file holds no record")
        drawing = formats.parse_record(first)
        if drawing.word != word:
            raise InvalidRecord("bad_field", f"the first drawing is a {drawing.word!r}, not a {word!r}")
    except InvalidRecord as error:
        os.remove(part)  # not the file asked for (an error page, another file): never resume from it
        raise DownloadError(f"{url}: not a readable {fmt} file of {word!r} ({error})") from None


# ---------------------------------------------------------------------------------------------------
# HTTP


class _ShortBody(Exception):
    """The connection closed before the body announced by the headers was complete."""


# What a try can fail with that another try may not: the network, not the request.
_RETRIED_ERRORS = (
    urllib.error.URLError,
    ConnectionError,
    TimeoutError,
    http.client.HTTPException,
    _ShortBody,
)


def _with_retries(url: str, settings: _Settings, attempt: Callable[[], int | None]) -> int | None:
    """attempt(), tried again after connection errors, short bodies, 5xx and 429; DownloadError in the end."""
    for tried in range(settings.retries + 1):
        try:
            return attempt()
        except urllib.error.HTTPError as error:
            error.close()  # it holds the response's connection
            if not (error.code >= 500 or error.code in _RETRIED_HTTP_CODES):
                raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from None
            problem = f"HTTP {error.code} {error.reason}"
        except _RETRIED_ERRORS as error:
            problem = _describe(error)
        if tried < settings.retries:
            delay = settings.backoff * 2**tried
            logger.warning("%s: %s; trying again in %.1f s", url, problem, delay)
            time.sleep(delay)
    raise DownloadError(f"{url}: gave up after {settings.retries + 1} attempts; last: {problem}")


def _describe(error: Exception) -> str:
    """One line for the log: "ConnectionResetError: [Errno 104] ...", "body cut short: ..."."""
    if isinstance(error, _ShortBody):
        return f"body cut short: {error}"
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if not isinstance(reason, Exception):
        return str(reason)
    return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__


def _remote_size(url: str, timeout: float) -> int | None:
    with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as response:
        return _int_header(response.headers.get("Content-Length"))


def _fetch_once(
    url: str, part: str, max_bytes: int | None, timeout: float, restarted: bool = False
) -> int | None:
    """Appends the rest of `url` (to max_bytes in all) to `part`; returns the remote file's size if told."""
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    if max_bytes is not None and offset >= max_bytes:
        return None  # already holds max_bytes; whether the file ends there is unknown
    headers = {"Range": f"bytes={offset}-{'' if max_bytes is None else max_bytes - 1}"}
    if offset == 0 and max_bytes is None:
        headers = {}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code != 416:
            raise
        # Range Not Satisfiable: the .part starts at or past the end of the remote file.
        _, total = _content_range(error.headers.get("Content-Range"))
        error.close()
        if total == offset:
            return total  # the .part already holds the whole file (an earlier run stopped before renaming)
        if restarted or offset == 0:  # 416 to a request from byte 0: the server cannot serve this file
            raise DownloadError(
                f"{url}: the server answers 416 Range Not Satisfiable even from byte 0 "
                f"(Content-Range: {error.headers.get('Content-Range')!r}); giving up"
            ) from None
        os.truncate(part, 0)  # longer than the remote file: not a prefix of it, start again, once
        return _fetch_once(url, part, max_bytes, timeout, restarted=True)
    with response:
        return _save_body(response, url, part, offset, max_bytes)


def _save_body(
    response: http.client.HTTPResponse, url: str, part: str, offset: int, max_bytes: int | None
) -> int | None:
    """Writes a 206 body after `offset`, a 200 body over the whole .part; returns the remote size if told."""
    if response.status == 206:
        start, total = _content_range(response.headers.get("Content-Range"))
        if start != offset:
            raise DownloadError(f"{url}: asked for bytes from {offset}, the server sent them from {start}")
    else:  # 200: no Range asked, or the server ignored it and sends the whole file
        start, total = 0, _int_header(response.headers.get("Content-Length"))
    limits = [limit for limit in (total, max_bytes) if limit is not None]
    end = min(limits) if limits else None  # where this body should stop; None: wherever it ends
    with _open_partial(part, append=bool(start)) as out:
        size = start + _copy(response, out, None if end is None else end - start)
    if total is not None and size < end:
        raise _ShortBody(f"{size - start:,} of {end - start:,} bytes arrived")
    return total


def _open_partial(part: str, append: bool):
    """The .part file opened for writing without following a symbolic link (O_NOFOLLOW): a link put
    there after _download_file's check still fails rather than redirect the write."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(part, flags, 0o644)
    except OSError as error:
        raise DownloadError(f"cannot write {part} ({error.strerror}); is it a symbolic link?") from None
    return os.fdopen(fd, "ab" if append else "wb")


def _copy(response: http.client.HTTPResponse, out, limit: int | None) -> int:
    """Copies the body (at most `limit` bytes of it) to `out`; returns how many bytes were written."""
    written = 0
    while limit is None or written < limit:
        chunk = response.read(_CHUNK_BYTES if limit is None else min(_CHUNK_BYTES, limit - written))
        if not chunk:
            break
        out.write(chunk)
        written += len(chunk)
    return written


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from "bytes 100-199/1000" or "bytes */1000"; None for what is not given."""
    match = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)", (header or "").strip())
    if not match:
        return None, None
    return _int_header(match[1]), _int_header(match[2])


def _int_header(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


# ---------------------------------------------------------------------------------------------------
# Cutting to whole records


def _cut_to_whole_records(part: str, path: str, fmt: str, at_end: bool) -> None:
    """Truncates `part` after its last whole record; `at_end`: it holds the whole remote file."""
    if fmt == "ndjson":
        length = os.path.getsize(part) if at_end else _whole_lines_length(part)
    else:
        length = _whole_bin_records_length(part, path)
    os.truncate(part, length)


def _whole_lines_length(path: str) -> int:
    """The length up to and including the last line break (read backwards: the file may be large)."""
    with open(path, "rb") as fileobj:
        end = fileobj.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - _CHUNK_BYTES)
            fileobj.seek(start)
            newline = fileobj.read(end - start).rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            end = start
    return 0


def _whole_bin_records_length(part: str, path: str) -> int:
    """The length of the whole binary drawings: formats' reader yields a cut-off tail as one last record."""
    with open(part, "rb") as fileobj:
        records = collections.deque(formats.read_source_records(fileobj, path, "bin"), maxlen=1)
    if not records:
        return 0
    last = records[0]
    try:
        formats.parse_record(last)
    except InvalidRecord as error:
        if error.reason == "truncated_record":
            return last.position
    return os.path.getsize(part)
