"""The benchmark scripts' tests share the suite's fixtures (a tiny TFRecord dir of the real sample)."""

from tests.conftest import tfrecord_dir  # noqa: F401  (a fixture: pytest finds it by its name here)
