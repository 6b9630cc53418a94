"""The SDK worker process of local multi_processing runs: Beam's own worker, then an immediate exit.

    python -m beam_jobs.sdk_worker     (started by DirectRunner, see runtime.direct_runner)

Beam's worker (apache_beam.runners.worker.sdk_worker_main) takes about half a second to shut its
interpreter down once its work is done (gRPC's threads, thousands of modules), and DirectRunner stops
its workers one after the other: a second of every 2-worker run, whatever its size. When main()
returns, everything the worker did is finished and reported: the steps closed their files, the runner
has every bundle's result, Beam's log handler has sent its last lines. So this worker exits there.
A worker that fails raises out of main() and exits as Beam's does.

Also quiet: importing beam_jobs drops Beam's "apitools not found" warning, and the worker's
"Logging handler created." (logged before the worker reads its log level) is dropped here.
"""

from __future__ import annotations

import logging
import os
import sys

# The logger of sdk_worker_main when it is imported rather than run as __main__.
WORKER_LOGGER = "apache_beam.runners.worker.sdk_worker_main"


def main() -> None:
    logging.getLogger(WORKER_LOGGER).setLevel(logging.WARNING)
    from apache_beam.runners.worker import sdk_worker_main

    sdk_worker_main.main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
