"""The Beam job imports no TensorFlow; the CLIs print none of its start-up noise (quickdraw_tf/quiet.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.sample import REPO

# Lines TensorFlow prints on a machine without a GPU, before absl logging starts (TF_CPP_MIN_LOG_LEVEL
# does not hide them).
NOISE = ("absl::InitializeLog", "cuInit", "Could not find cuda drivers")
JOB_MODULES = (
    "beam_jobs.make_tfrecords",
    "beam_jobs.tfds_metadata",
    "beam_jobs.runtime",
    "beam_jobs.atomic_output",
    "quickdraw_tf.data.formats",
    "quickdraw_tf.data.features",
    "quickdraw_tf.data.ink",
    "quickdraw_tf.data.layout",
    "quickdraw_tf.data.preprocess",
    "quickdraw_tf.data.limits",
    "quickdraw_tf.data.splits",
    "quickdraw_tf.data.safe_npz",
    "quickdraw_tf.data.bin_split",
    "quickdraw_tf.data.drawing",
    "quickdraw_tf.data.bitmap",
    "quickdraw_tf.data.ndjson_batch",
)


def _python(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=REPO, **(env or {}))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=REPO, env=environment, timeout=300
    )


def _noise(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(marker in line for marker in NOISE)]


@pytest.mark.integration
def test_the_job_imports_no_tensorflow():
    code = (
        f"import sys\nimport {', '.join(JOB_MODULES)}\n"
        "loaded = [m for m in ('tensorflow', 'tensorflow_datasets', 'keras') if m in sys.modules]\n"
        "assert not loaded, loaded"
    )
    result = _python("-c", code)
    assert result.returncode == 0, result.stderr


@pytest.mark.integration
@pytest.mark.parametrize(
    "flag, message",
    [
        ("--num_shards=0", "--num_shards must be >= 1, got 0"),
        ("--input=/nonexistent", "/nonexistent does not exist"),
    ],
)
def test_bad_flag_is_one_line_without_tensorflow(flag, message, tmp_path):
    """The CLI as `python -m` runs it; then neither TensorFlow nor TFDS may have been imported."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['make_tfrecords', {flag!r}, '--output_dir={tmp_path}/out']\n"
        "try:\n    runpy.run_module('beam_jobs.make_tfrecords', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as done:\n    code = done.code\n"
        "assert 'tensorflow' not in sys.modules and 'tensorflow_datasets' not in sys.modules\n"
        "sys.exit(code)"
    )
    result = _python("-c", code)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr


@pytest.mark.integration
def test_cli_help_prints_no_tensorflow_noise():
    result = _python("-m", "quickdraw_tf.evaluate", "--help", env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    assert "--model_dir" in result.stdout  # absl exits 1 after --help
    assert _noise(result.stderr) == []


@pytest.mark.integration
def test_device_setup_is_quiet_and_verbosity_reveals_it():
    # The first op initialises the devices: on a CPU machine that is where "failed call to cuInit" prints.
    use_tf = "import tensorflow as tf; print(int(tf.constant(1) + 1))"
    env = {"TF_CPP_MIN_LOG_LEVEL": "2"}
    plain = _python("-c", use_tf, env=env)
    quieted = "from quickdraw_tf import quiet; quiet.import_tensorflow_quietly(); "
    quiet = _python("-c", quieted + use_tf, env=env)
    verbose = _python("-c", quieted + use_tf, "--verbosity=1", env=env)
    assert plain.stdout == quiet.stdout == verbose.stdout == "2\n", (plain.stderr, quiet.stderr)
    assert _noise(quiet.stderr) == []
    # Where TensorFlow is noisy at all (no GPU here), --verbosity=1 shows the same lines again.
    assert len(_noise(verbose.stderr)) == len(_noise(plain.stderr))


def test_verbosity_is_read_like_absl():
    from quickdraw_tf import quiet

    assert quiet.verbosity(["prog"]) == 0
    assert quiet.verbosity(["prog", "--verbosity=1"]) == 1
    assert quiet.verbosity(["prog", "--verbosity", "2", "--model_dir=x"]) == 2
    assert quiet.verbosity(["prog", "-v", "1"]) == 1
    assert quiet.verbosity(["prog", "--v=-1"]) == -1
    assert quiet.verbosity(["prog", "-v=1", "--verbosity=0"]) == 0  # the last one wins, as in absl
    assert quiet.verbosity(["prog", "--verbosity=many"]) == 0  # absl reports it; we stay quiet
    assert quiet.verbosity(["prog", "-v"]) == 0
    assert quiet.verbosity(["prog", "--verbose_name=3"]) == 0


def test_library_info_lines_are_dropped_but_not_ours_or_warnings():
    import logging

    from quickdraw_tf import quiet

    def record(path: str, level: int) -> logging.LogRecord:
        return logging.LogRecord("absl", level, path, 1, "message", None, None)

    library = os.path.join("site-packages", "tensorflow", "python", "checkpoint", "functional_saver.py")
    keep = quiet._DropLibraryInfo().filter
    assert not keep(record(os.sep + library, logging.INFO))
    assert not keep(record(os.path.join(os.sep, "x", "keras", "src", "saving.py"), logging.INFO))
    assert keep(record(os.sep + library, logging.WARNING))
    assert keep(record(os.path.join(os.sep, "repo", "quickdraw_tf", "trainer.py"), logging.INFO))
