"""Every `curl` line of README.md and docs/serving.md, read out of the docs and run as written (only the
port changed) against the real server process: it must answer 200, or the status its comment names
(`curl ... # 422: ...`), with a JSON body. The test follows the docs: a new example is tested as soon as
it is written."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest

from tests.sample import REPO

pytestmark = pytest.mark.integration

DOCS = ("README.md", os.path.join("docs", "serving.md"))
_DOC_ADDRESS = re.compile(r"\b(localhost|127\.0\.0\.1):8000\b")


def documented_requests() -> list[tuple[str, int, str]]:
    """(doc, line number, command) of each curl command in the docs' code blocks (continued lines joined)."""
    found = []
    for doc in DOCS:
        with open(os.path.join(REPO, doc), encoding="utf-8") as f:
            lines = f.read().splitlines()
        in_code, number = False, 0
        while number < len(lines):
            line = lines[number]
            number += 1
            if line.lstrip().startswith("```"):
                in_code = not in_code
            elif in_code and line.lstrip().startswith("curl "):
                start, command = number, line.strip()
                while command.endswith("\\") and number < len(lines):
                    command = command[:-1] + " " + lines[number].strip()
                    number += 1
                found.append((doc, start, command))
    return found


REQUESTS = documented_requests()


def test_the_docs_show_requests_of_every_endpoint():
    assert {doc for doc, _, _ in REQUESTS} == set(DOCS)
    paths = {urlsplit("http://" + arg.split("://")[-1]).path
             for _, _, command in REQUESTS for arg in shlex.split(command) if _DOC_ADDRESS.search(arg)}
    assert {"/v1/predict", "/v1/complete", "/v1/classes", "/healthz", "/metrics"} <= paths


@pytest.mark.parametrize("doc, line, command", REQUESTS, ids=[f"{d}:{n}" for d, n, _ in REQUESTS])
def test_documented_request_answers_as_documented(server, tmp_path, doc, line, command):
    assert shutil.which("curl"), "curl is missing (make sysdeps installs it)"
    argv = shlex.split(command)
    expected = 200
    if "#" in argv:  # the doc's comment: `# 422: ...` names the status the request gets
        comment = argv[argv.index("#") + 1:]
        argv = argv[:argv.index("#")]
        if comment and re.fullmatch(r"\d{3}:?", comment[0]):
            expected = int(comment[0].rstrip(":"))
    port = urlsplit(server).port
    argv = [_DOC_ADDRESS.sub(rf"\g<1>:{port}", arg) for arg in argv]
    body = tmp_path / "body"
    result = subprocess.run([*argv, "-o", str(body), "-w", "%{http_code}"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    answer = body.read_text(encoding="utf-8")
    assert int(result.stdout) == expected, f"{doc}:{line} answered {result.stdout}: {answer[:300]}"
    if "/metrics" not in command:
        value = json.loads(answer)
        if expected >= 400:
            assert list(value) == ["error"] and "\n" not in value["error"]
