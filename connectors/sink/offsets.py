"""Which offset of each partition may be committed: the first one without an outcome.

Triggers finish out of order (many in flight), but a committed offset says
"everything before it is done": the kernel's rule (:mod:`quoteflow.offsets`),
kept per partition by the dispatcher's thread.
"""

from __future__ import annotations

from quoteflow.offsets import InFlightOffsets


class PartitionOffsets(InFlightOffsets):
    """Offsets read from one partition and which of them are done."""
