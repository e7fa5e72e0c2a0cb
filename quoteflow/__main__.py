"""``python -m quoteflow`` — the same as the ``quoteflow`` console script."""

from quoteflow.cli import main

main()
