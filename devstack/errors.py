"""Errors of the development tooling (benchmarks and their child workers), one line each.

They live with the tooling, not the product: ``devstack/children.py`` raises
them and ``bench/`` may import ``devstack``, while the product never imports
either. Still subclasses of the project's root error, so the CLI prints them as
one line, without a traceback.
"""

from __future__ import annotations

from quoteflow.errors import QuoteflowError


class BenchError(QuoteflowError):
    """A benchmark could not run to the end (a worker died, or never caught up)."""
