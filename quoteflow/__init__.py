"""quoteflow: unaccepted quotes to personalised offer e-mails, in minutes.

This package holds the operational shell around the pipeline: settings, the
``quoteflow`` command line, the topic catalogue and the local stack. The
pipeline itself lives in the sibling packages ``connectors`` (CDC sources and
the ESP sink), ``streams`` (the faust processor) and ``schemas`` (Avro
contracts and serde).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("quoteflow")  # one source of truth: pyproject.toml
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
