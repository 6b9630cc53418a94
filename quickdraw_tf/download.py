r"""Downloads Quick, Draw! category files from Google's public bucket (or a mirror of it) for the Beam job.

  python -m quickdraw_tf.download --categories=cat,dog --kind=simplified --output_dir=data/downloads
  python -m quickdraw_tf.download --categories=all --kind=binary --output_dir=data/binary --max_bytes=1000000

The catalogue (words, kinds, URLs, local names) is quickdraw_tf/data/catalogue.py; how a file is fetched,
resumed and checked is quickdraw_tf/data/downloader.py.
"""

from __future__ import annotations

import functools

from absl import app, flags

from quickdraw_tf import cli
from quickdraw_tf.data.catalogue import BASE_URL_ENV, DEFAULT_BASE_URL, KINDS, expand_categories
from quickdraw_tf.data.downloader import download


def _define_flags() -> None:
    """Only when run as a program."""
    flags.DEFINE_list("categories", None, "Comma-separated words (quickdraw_tf/categories.txt), or 'all'.")
    flags.DEFINE_enum("kind", "simplified", list(KINDS), "Which files to fetch.")
    flags.DEFINE_string("output_dir", None, "Directory for the files (created if missing).")
    flags.DEFINE_integer(
        "max_bytes", None, "Keep the whole records within the first N bytes (simplified, raw, binary only)."
    )
    flags.DEFINE_string(
        "base_url", None, f"Bucket or mirror (default: ${BASE_URL_ENV}, else {DEFAULT_BASE_URL})."
    )
    flags.DEFINE_float("timeout", 60, "Seconds to wait for the server before a try fails.")
    flags.DEFINE_integer("retries", 3, "Tries again after connection errors, 5xx and 429.", lower_bound=0)
    flags.mark_flags_as_required(["categories", "output_dir"])


def main(argv: list[str]) -> None:
    del argv
    FLAGS = flags.FLAGS  # noqa: N806
    try:
        download(
            expand_categories(FLAGS.categories),
            FLAGS.kind,
            FLAGS.output_dir,
            base_url=FLAGS.base_url,
            max_bytes=FLAGS.max_bytes,
            timeout=FLAGS.timeout,
            retries=FLAGS.retries,
            progress=functools.partial(print, flush=True),
        )
    except (ValueError, OSError) as error:  # DownloadError is an OSError
        cli.fail(error)


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=cli.flags_parser(flags.FLAGS))
