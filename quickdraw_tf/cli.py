"""What the absl __main__ modules share: one-line errors and exit status 2 for bad flags or paths."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from absl import flags


def fail(message: str) -> None:
    """Prints `<program>: error: <message>` on one line and exits with status 2 (no traceback)."""
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "quickdraw_tf"
    first_line = str(message).strip().splitlines()[0] if str(message).strip() else "failed"
    print(f"{program}: error: {first_line.removeprefix('ERROR:: ')}", file=sys.stderr)
    sys.exit(2)


def flags_parser(flag_values: flags.FlagValues) -> Callable[[list[str]], list[str]]:
    """A parser for absl.app.run that reports a bad flag (or flagfile) in one line, not absl's usage."""

    def parse(argv: list[str]) -> list[str]:
        try:
            remaining = flag_values(argv)
        except flags.Error as error:
            fail(error)
        if len(remaining) > 1:
            fail(f"unexpected arguments: {' '.join(remaining[1:])}")
        return remaining

    return parse
