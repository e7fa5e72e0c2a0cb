"""Closing faust's exactly-once gap: every send joins the transaction of the input that caused it.

faust 0.15 keeps one transactional producer per assigned source partition and
commits each one's transaction with that partition's input offsets. But its
``TransactionManager.send`` picks the producer by the *target* partition of
the send, and only when its consumer happens to have metadata for the target
topic: a send to an output topic the worker does not consume (the triggers
topic) went out in no transaction at all, and a send that did join one joined
the transaction of some unrelated partition. Either way a kill -9 between the
send and the commit left the output committed and the input unconsumed, so the
restarted worker sent it again.

:class:`SourceTransactionManager` routes a send made while an event is being
processed through the transactional producer of *that event's* partition, the
one whose commit carries its offset: the output, the table changelog writes
and the input offset commit or abort together. A send with no current event
(there should be none in this app: clock ticks travel as events) keeps faust's
behaviour.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.streams import current_event
from faust.transport.consumer import TransactionManager


class SourceTransactionManager(TransactionManager):
    """faust's TransactionManager, with sends joining the current event's transaction."""

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        event = current_event()
        if event is None:
            return await super().send(topic, key, value, partition, timestamp, headers)
        source = event.message.tp
        group = self.app.assignor.group_for_topic(source.topic)
        transactional_id = f"{self.app.conf.id}-{group}-{source.partition}"
        return await self.producer.send(
            topic, key, value, partition, timestamp, headers,
            transactional_id=transactional_id,
        )  # fmt: skip


def install(app: faust.App) -> None:
    """Make ``app`` use :class:`SourceTransactionManager` (before the worker starts)."""
    app.transport.TransactionManager = SourceTransactionManager  # type: ignore[misc]


__all__ = ["SourceTransactionManager", "install"]
