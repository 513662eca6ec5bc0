"""A rebalance hands partitions over only once the batch in hand is committed."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from aiokafka import ConsumerRebalanceListener


class Handover(Protocol):
    """What the listener needs of the loop: whether it is idle, and a revoking flag."""

    _revoking: bool
    _idle: asyncio.Event


class FinishBeforeRevoking(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands partitions over only once the batch in hand is committed or given up.

    Every member revokes before any member is assigned, so the next owner of a
    partition reads the offset our last transaction committed, never one from before
    it: without this, a batch handled during a rebalance is handled twice, once here
    and once by the new owner, and its output is produced twice. (aiokafka's
    `send_offsets_to_transaction` takes no group generation, so the broker cannot
    fence the old owner's commit for us.)
    """

    def __init__(self, processor: Handover) -> None:
        self._processor = processor

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self._processor._revoking = True
        await self._processor._idle.wait()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._processor._revoking = False
