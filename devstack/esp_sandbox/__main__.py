"""``python -m devstack.esp_sandbox [options]``: the same as ``quoteflow esp-sandbox``.

For callers that hold a Python interpreter but not the console script (the
benchmark starts the sandbox as a child of ``sys.executable``).
"""

import sys

from quoteflow.cli import main

main(["esp-sandbox", *sys.argv[1:]])
