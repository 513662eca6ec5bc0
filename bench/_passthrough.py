"""The baseline every stream benchmark divides by: a raw aiokafka transactional passthrough.

Consume a batch (read_committed), produce each record to `out` and commit the
offsets in the same transaction: the least a exactly-once consume→produce loop
can do on this broker. The clock starts at the first batch, so the group join
is not counted (the same holds for the loops measured against it). It is the
durable floor of `_floors.py` with nothing written to a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from _floors import transactional_floor


async def _nothing(records: Sequence[Any]) -> None:
    """The passthrough writes nowhere but to the broker."""


async def raw_transactional_passthrough(
    bootstrap: str, source: str, out: str, events: int, batch: int = 500
) -> float:
    """Events per second moved from `source` to `out`, exactly once."""
    return await transactional_floor(bootstrap, source, out, events, write=_nothing, batch=batch)
