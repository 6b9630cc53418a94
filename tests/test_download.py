"""The downloader (and the download command) against a local HTTP server on 127.0.0.1 serving the real
sample in the bucket's layout.

The server speaks enough HTTP/1.0 to matter here: HEAD, GET, single byte ranges (206, 416), and switches to
ignore Range, fail the next requests with 500, or cut a body short. Binary and .npz files are the sample's
simplified drawings written with formats' writers; the ndjson and .npy files are the sample's own bytes.
"""

from __future__ import annotations

import http.server
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import threading
import urllib.parse

import pytest

from quickdraw_tf.data import catalogue, downloader, formats
from tests.npz_payloads import malicious_npz
from tests.sample import EYE_NPY, REPO, SAMPLE

SIMPLIFIED = SAMPLE / "simplified" / "lamnguyen5464-Sketch-dataset"
RAW = SAMPLE / "raw" / "borismus-exupery"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.root; the switches on the server object change how it answers."""

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(send_body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(send_body=True)

    def log_message(self, *args) -> None:
        pass  # keep pytest's output clean

    def _answer(self, send_body: bool) -> None:
        server = self.server
        server.requests.append((self.command, urllib.parse.unquote(self.path), self.headers.get("Range")))
        if server.failures_left > 0:
            server.failures_left -= 1
            self.send_error(500)
            return
        file = server.root / urllib.parse.unquote(self.path).lstrip("/")
        if not file.is_file():
            self.send_error(404)
            return
        data = file.read_bytes()
        status, start, end = self._range(data)
        if server.always_416:  # a broken server: "Range Not Satisfiable" to every request
            status = 416
        if status == 416:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if send_body:
            body = data[start:end]
            if server.cut_after is not None:  # announce the whole body, send part of it, hang up
                body, server.cut_after = body[: server.cut_after], None
            self.wfile.write(body)

    def _range(self, data: bytes) -> tuple[int, int, int]:
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if not (match and self.server.honour_range):
            return 200, 0, len(data)
        start = int(match[1])
        end = min(int(match[2]) + 1, len(data)) if match[2] else len(data)
        return (416, 0, 0) if start >= len(data) else (206, start, end)


def _bucket(root: pathlib.Path) -> dict[str, dict[str, pathlib.Path]]:
    """The sample laid out like gs://quickdraw_dataset; {kind: {word: served file}}."""
    served: dict[str, dict[str, pathlib.Path]] = {kind: {} for kind in catalogue.KINDS}
    for kind, source_dir in (("simplified", SIMPLIFIED), ("raw", RAW)):
        for source in sorted(source_dir.glob("*.ndjson")):
            served[kind][source.stem] = _copy(source, root / "full" / kind / source.name)
    for word, source in served["simplified"].items():
        drawings = list(formats.iter_drawings(str(source)))
        binary = root / "full" / "binary" / f"{word}.bin"
        binary.parent.mkdir(parents=True, exist_ok=True)
        with open(binary, "wb") as out:
            formats.write_bin(drawings, out)
        served["binary"][word] = binary
        npz = root / "sketchrnn" / f"{word}.npz"
        npz.parent.mkdir(parents=True, exist_ok=True)
        formats.write_npz(str(npz), {"train": drawings[:20], "valid": drawings[20:], "test": []})
        served["sketchrnn"][word] = npz
    served["numpy_bitmap"]["eye"] = _copy(EYE_NPY, root / "full" / "numpy_bitmap" / "eye.npy")
    return served


def _copy(source: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


@pytest.fixture(scope="session")
def bucket_template(tmp_path_factory) -> tuple[pathlib.Path, dict[str, dict[str, pathlib.Path]]]:
    root = tmp_path_factory.mktemp("bucket")
    return root, _bucket(root)


@pytest.fixture
def server(tmp_path, monkeypatch, bucket_template):
    """A bucket on 127.0.0.1; $QUICKDRAW_BASE_URL points at it, so a forgotten base_url stays local too."""
    template, template_files = bucket_template
    root = tmp_path / "bucket"
    shutil.copytree(template, root)  # a copy per test: some tests change what is served
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.root = root
    httpd.served = {
        kind: {word: root / path.relative_to(template) for word, path in files.items()}
        for kind, files in template_files.items()
    }
    httpd.requests, httpd.failures_left, httpd.honour_range, httpd.cut_after = [], 0, True, None
    httpd.always_416 = False
    httpd.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    assert urllib.parse.urlsplit(httpd.base_url).hostname == "127.0.0.1"
    monkeypatch.setenv(catalogue.BASE_URL_ENV, httpd.base_url)
    # A short poll interval: shutdown() waits for it, after every test.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _fetch(server, words, kind="simplified", out=None, **kwargs) -> list[str]:
    out = out or server.root.parent / "out"
    kwargs.setdefault("backoff", 0)
    return downloader.download(words, kind, str(out), base_url=server.base_url, **kwargs)


def _gets(server) -> list[tuple[str, str, str | None]]:
    return [request for request in server.requests if request[0] == "GET"]


# ---------------------------------------------------------------------------------------------------
# Categories and URLs (no network)


def test_categories_are_the_345_sorted_words():
    words = catalogue.categories()
    assert len(words) == len(set(words)) == 345
    assert words == sorted(words)
    assert {"The Eiffel Tower", "t-shirt", "teddy-bear", "cat", "zigzag"} <= set(words)
    assert all(word == word.strip() and word for word in words)


def test_unknown_word_is_named_with_close_matches():
    suggestion = r"unknown category 'the eifel tower'; did you mean 'The Eiffel Tower'"
    with pytest.raises(ValueError, match=suggestion):
        catalogue.check_words(["cat", "the eifel tower"])
    with pytest.raises(ValueError, match=r"unknown category 'xyzzyq' \(the 345 categories"):
        catalogue.check_words(["xyzzyq"])


def test_words_are_deduplicated_and_all_expands():
    assert catalogue.check_words(["dog", "cat", "dog"]) == ["dog", "cat"]
    assert catalogue.check_words("cat") == ["cat"]
    assert catalogue.expand_categories(["all"]) == catalogue.categories()
    with pytest.raises(ValueError, match="no category"):
        catalogue.check_words([])


def test_urls_follow_the_bucket_layout_and_quote_words():
    base = catalogue.DEFAULT_BASE_URL
    eiffel = catalogue.file_url("The Eiffel Tower", "simplified")
    assert eiffel == f"{base}/full/simplified/The%20Eiffel%20Tower.ndjson"
    assert catalogue.file_url("cat", "raw", "http://127.0.0.1:1/") == "http://127.0.0.1:1/full/raw/cat.ndjson"
    assert catalogue.file_url("cat", "binary") == f"{base}/full/binary/cat.bin"
    assert catalogue.file_url("cat", "numpy_bitmap") == f"{base}/full/numpy_bitmap/cat.npy"
    assert catalogue.file_url("cat", "sketchrnn") == f"{base}/sketchrnn/cat.npz"
    with pytest.raises(ValueError, match="unknown kind 'png'"):
        catalogue.file_url("cat", "png")


def test_base_url_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(catalogue.BASE_URL_ENV, raising=False)
    assert catalogue.resolve_base_url(None) == catalogue.DEFAULT_BASE_URL
    monkeypatch.setenv(catalogue.BASE_URL_ENV, "http://127.0.0.1:9/mirror/")
    assert catalogue.resolve_base_url(None) == "http://127.0.0.1:9/mirror"
    assert catalogue.resolve_base_url("https://example.org/qd") == "https://example.org/qd"
    with pytest.raises(ValueError, match="not an http"):
        catalogue.resolve_base_url("file:///tmp")


def test_bad_arguments_fail_before_any_request(server, tmp_path):
    with pytest.raises(ValueError, match="unknown category 'catt'"):
        _fetch(server, ["belt", "catt"])
    with pytest.raises(ValueError, match="max_bytes cannot cut numpy_bitmap"):
        _fetch(server, ["eye"], kind="numpy_bitmap", max_bytes=10_000)
    with pytest.raises(ValueError, match="max_bytes must be a positive integer"):
        _fetch(server, ["belt"], max_bytes=0)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match="is not a directory"):
        _fetch(server, ["belt"], out=tmp_path / "a_file")
    assert server.requests == []


# ---------------------------------------------------------------------------------------------------
# Whole files


@pytest.mark.parametrize(
    "kind, words",
    [
        ("simplified", ["The Eiffel Tower", "belt"]),
        ("raw", ["pig"]),
        ("binary", ["door"]),
        ("numpy_bitmap", ["eye"]),
        ("sketchrnn", ["snorkel"]),
    ],
)
def test_download_saves_the_served_bytes_and_a_second_call_skips(server, kind, words):
    messages = []
    paths = _fetch(server, words, kind, progress=messages.append)
    for word, path in zip(words, paths, strict=True):
        assert pathlib.Path(path).read_bytes() == server.served[kind][word].read_bytes()
        assert pathlib.Path(path).name == word + catalogue.KINDS[kind].extension
        assert formats.word_from_path(path) == word
        assert not os.path.exists(downloader.partial_path(path))
    assert len(messages) == len(words) and all("bytes ->" in message for message in messages)

    server.requests.clear()
    messages.clear()
    mtimes = [os.stat(path).st_mtime_ns for path in paths]
    assert _fetch(server, words, kind, progress=messages.append) == paths
    assert [request[0] for request in server.requests] == ["HEAD"] * len(words)
    assert [os.stat(path).st_mtime_ns for path in paths] == mtimes
    assert all("already complete" in message for message in messages)


def test_a_saved_file_of_the_wrong_size_is_fetched_again(server):
    (path,) = _fetch(server, ["belt"])
    pathlib.Path(path).write_bytes(b"stale\n")
    _fetch(server, ["belt"])
    assert pathlib.Path(path).read_bytes() == server.served["simplified"]["belt"].read_bytes()


def test_a_partial_file_is_resumed_with_a_range_request(server):
    source = server.served["simplified"]["elbow"].read_bytes()
    out = server.root.parent / "out"
    out.mkdir()
    part = pathlib.Path(downloader.partial_path(str(out / "elbow.ndjson")))
    part.write_bytes(source[:3000])
    messages = []
    (path,) = _fetch(server, ["elbow"], progress=messages.append)
    assert pathlib.Path(path).read_bytes() == source
    assert _gets(server) == [("GET", "/full/simplified/elbow.ndjson", "bytes=3000-")]
    assert "resumed at byte 3,000" in messages[0]
    assert not part.exists()


def test_a_server_that_ignores_range_restarts_the_file(server):
    server.honour_range = False
    source = server.served["raw"]["nose"].read_bytes()
    out = server.root.parent / "out"
    out.mkdir()
    part = pathlib.Path(downloader.partial_path(str(out / "nose.ndjson")))
    part.write_bytes(source[:5000])
    (path,) = _fetch(server, ["nose"], kind="raw")
    assert pathlib.Path(path).read_bytes() == source  # not source[:5000] + source
    assert _gets(server) == [("GET", "/full/raw/nose.ndjson", "bytes=5000-")]


def test_a_complete_partial_file_is_renamed_without_fetching_it_again(server):
    source = server.served["binary"]["door"].read_bytes()
    out = server.root.parent / "out"
    out.mkdir()
    pathlib.Path(downloader.partial_path(str(out / "door.bin"))).write_bytes(source)
    (path,) = _fetch(server, ["door"], kind="binary")
    assert pathlib.Path(path).read_bytes() == source
    assert _gets(server) == [("GET", "/full/binary/door.bin", f"bytes={len(source)}-")]  # answered 416


def test_a_body_cut_short_is_resumed_on_the_next_try(server):
    server.cut_after = 4000
    source = server.served["simplified"]["monkey"].read_bytes()
    (path,) = _fetch(server, ["monkey"])
    assert pathlib.Path(path).read_bytes() == source
    assert [request[2] for request in _gets(server)] == [None, "bytes=4000-"]


def test_server_errors_are_retried(server):
    server.failures_left = 2
    (path,) = _fetch(server, ["pig"], retries=3)
    assert pathlib.Path(path).read_bytes() == server.served["simplified"]["pig"].read_bytes()
    assert len(_gets(server)) == 3


def test_retries_give_up_with_the_url_and_last_error(server):
    server.failures_left = 10
    gave_up = r"full/simplified/pig\.ndjson: gave up after 3 attempts; last: HTTP 500"
    with pytest.raises(downloader.DownloadError, match=gave_up):
        _fetch(server, ["pig"], retries=2)
    assert len(_gets(server)) == 3


def test_connection_errors_are_retried_then_reported(tmp_path, caplog):
    with socket.socket() as probe:  # a port that nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(downloader.DownloadError, match="gave up after 2 attempts; last: ConnectionRefused"):
        downloader.download(["cat"], "simplified", str(tmp_path), base_url=base_url, retries=1, backoff=0)
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "ConnectionRefusedError" in caplog.records[0].getMessage()


def test_not_found_fails_at_once_naming_the_url(server):
    with pytest.raises(downloader.DownloadError) as error:
        _fetch(server, ["cat"], retries=3)
    assert str(error.value) == f"{server.base_url}/full/simplified/cat.ndjson: HTTP 404 Not Found"
    assert len(server.requests) == 1


def test_a_file_that_does_not_parse_is_rejected_and_not_kept(server):
    (server.root / "full" / "simplified" / "sandwich.ndjson").write_bytes(b"<html>not here</html>\n")
    unreadable = r"sandwich\.ndjson: not a readable ndjson file of 'sandwich' \(invalid_json: "
    with pytest.raises(downloader.DownloadError, match=unreadable):
        _fetch(server, ["sandwich"])
    assert os.listdir(server.root.parent / "out") == []


def test_a_file_of_another_word_is_rejected(server):
    _copy(server.served["simplified"]["pig"], server.root / "full" / "simplified" / "sandwich.ndjson")
    with pytest.raises(downloader.DownloadError, match="the first drawing is a 'pig', not a 'sandwich'"):
        _fetch(server, ["sandwich"])


# ---------------------------------------------------------------------------------------------------
# Hostile files and servers


def test_a_sketchrnn_file_whose_pickle_runs_code_is_refused_without_running_it(server, tmp_path):
    marker = tmp_path / "pwned"
    (server.root / "sketchrnn" / "belt.npz").write_bytes(malicious_npz(marker))
    refused = r"belt\.npz: not a readable npz file of 'belt' \(truncated_record: the pickle asks for io\.open"
    with pytest.raises(downloader.DownloadError, match=refused):
        _fetch(server, ["belt"], kind="sketchrnn")
    assert not marker.exists()
    assert os.listdir(server.root.parent / "out") == []


def test_a_planted_symlink_at_the_partial_file_is_never_followed(server, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = server.root.parent / "out"
    out.mkdir()
    part = pathlib.Path(downloader.partial_path(str(out / "belt.ndjson")))
    part.symlink_to(victim)
    with pytest.raises(downloader.DownloadError, match=r"belt\.ndjson\.part is a symbolic link; refusing"):
        _fetch(server, ["belt"])
    assert victim.read_text() == "precious\n" and part.is_symlink()
    # Planted between the check and the write: O_NOFOLLOW still refuses it.
    with pytest.raises(downloader.DownloadError, match="is it a symbolic link"):
        downloader._open_partial(str(part), append=False)
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("resume", [False, True])
def test_a_server_that_always_answers_416_stops_with_one_clear_error(server, resume):
    server.always_416 = True
    out = server.root.parent / "out"
    out.mkdir()
    if resume:  # a .part the server claims to be past the end of
        pathlib.Path(downloader.partial_path(str(out / "belt.ndjson"))).write_bytes(b"x" * 100)
    with pytest.raises(downloader.DownloadError, match="answers 416 Range Not Satisfiable even from byte 0"):
        _fetch(server, ["belt"])
    assert len(_gets(server)) == (2 if resume else 1)


# ---------------------------------------------------------------------------------------------------
# max_bytes


def _whole_lines(data: bytes, max_bytes: int) -> bytes:
    return data[: data.rfind(b"\n", 0, max_bytes) + 1]


@pytest.mark.parametrize("honour_range", [True, False])
def test_max_bytes_keeps_complete_lines_only(server, honour_range):
    server.honour_range = honour_range
    source = server.served["simplified"]["skyscraper"].read_bytes()
    (path,) = _fetch(server, ["skyscraper"], max_bytes=2500)
    kept = pathlib.Path(path).read_bytes()
    assert kept == _whole_lines(source, 2500) and kept.endswith(b"\n")
    next_line_end = source.index(b"\n", len(kept)) + 1
    assert 0 < len(kept) <= 2500 < next_line_end
    assert len(list(formats.iter_drawings(path))) == kept.count(b"\n")
    assert _gets(server)[0][2] == "bytes=0-2499"


def test_max_bytes_reruns_skip_extend_or_shrink_the_file(server):
    source = server.served["simplified"]["snorkel"].read_bytes()
    (path,) = _fetch(server, ["snorkel"], max_bytes=3000)
    saved = len(_whole_lines(source, 3000))

    server.requests.clear()
    messages = []
    _fetch(server, ["snorkel"], max_bytes=3000, progress=messages.append)
    assert "already complete" in messages[0]
    assert _gets(server) == [("GET", "/full/simplified/snorkel.ndjson", f"bytes={saved}-2999")]

    _fetch(server, ["snorkel"], max_bytes=8000)
    assert pathlib.Path(path).read_bytes() == _whole_lines(source, 8000)
    _fetch(server, ["snorkel"], max_bytes=1500)
    assert pathlib.Path(path).read_bytes() == _whole_lines(source, 1500)
    _fetch(server, ["snorkel"], max_bytes=10 * len(source))
    assert pathlib.Path(path).read_bytes() == source


def test_max_bytes_keeps_whole_binary_drawings(server):
    source = server.served["binary"]["door"].read_bytes()
    (path,) = _fetch(server, ["door"], kind="binary", max_bytes=len(source) // 2)
    kept = pathlib.Path(path).read_bytes()
    drawings = list(formats.iter_drawings(path))
    everything = list(formats.iter_drawings(str(server.served["binary"]["door"])))
    assert source.startswith(kept) and len(kept) <= len(source) // 2
    assert 0 < len(drawings) < len(everything) and drawings == everything[: len(drawings)]
    with open(path, "ab") as out:  # the next drawing would not have fitted
        formats.write_bin([everything[len(drawings)]], out)
    assert os.path.getsize(path) > len(source) // 2


def test_max_bytes_below_the_first_record_is_an_error(server):
    with pytest.raises(downloader.DownloadError, match="first record is longer than max_bytes=10"):
        _fetch(server, ["belt"], max_bytes=10)
    assert os.listdir(server.root.parent / "out") == []


# ---------------------------------------------------------------------------------------------------
# Command line


def _run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "quickdraw_tf.download", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.integration
def test_cli_downloads_from_the_environment_base_url(server, tmp_path):
    out = tmp_path / "downloads"
    env = dict(os.environ, **{catalogue.BASE_URL_ENV: server.base_url})
    result = _run_cli("--categories=The Eiffel Tower,belt", "--kind=raw", f"--output_dir={out}", env=env)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ["The Eiffel Tower.ndjson", "belt.ndjson"]
    assert (out / "belt.ndjson").read_bytes() == server.served["raw"]["belt"].read_bytes()
    assert result.stdout.splitlines()[0].startswith("[1/2] The Eiffel Tower: ")


_CAT_TO_X = ["--categories=cat", "--output_dir=x"]  # fine flags; each case adds or breaks one


@pytest.mark.integration
@pytest.mark.parametrize(
    "args, message",
    [
        ([*_CAT_TO_X, "--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
        (["--categories=catt", "--output_dir=x"], "unknown category 'catt'; did you mean 'cat'"),
        ([*_CAT_TO_X, "--kind=sketchrnn", "--max_bytes=9"], "max_bytes cannot cut sketchrnn files"),
        ([*_CAT_TO_X, "--base_url=ftp://mirror"], "base_url 'ftp://mirror' is not an http:// or https://"),
        ([*_CAT_TO_X, "--retries=-1"], "--retries=-1: -1 is not"),
        (["--categories=cat"], "--output_dir must have a value other than None"),
    ],
)
def test_cli_reports_a_bad_flag_in_one_line(args, message):
    result = _run_cli(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert "Traceback" not in result.stderr
