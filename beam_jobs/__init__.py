"""The Beam jobs. Importing the package (any of its modules) first keeps local runs quiet:

* TF_CPP_MIN_LOG_LEVEL=2 (unless set), inherited by the SDK worker processes of multi_processing runs;
* the warning "apitools not found" that `import apache_beam` logs when the optional GCP BigQuery
  client is not installed (irrelevant here) is dropped.
"""

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _DropApitoolsWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


logging.getLogger().addFilter(_DropApitoolsWarning())
