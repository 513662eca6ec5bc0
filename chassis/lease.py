"""A named lease in MongoDB: one holder at a time, renewed while held, taken over once it lapses.

What runs on one replica at a time holds one: commissions' outbox relay,
registration's outbox relay, deal expiry and tier evaluation, notifications'
dispatcher, advisory fan-out and reminder scheduler. One document per lease,
`{_id: name, owner, expires_at, epoch}`, in the collection its service has
always used. `epoch` counts the changes of holder: a fencing token a holder may
write next to what it does, so that a write by a holder that lost the lease
(paused past its expiry while another took over) can be told apart. Renewing
keeps the epoch; taking over a lapsed lease increments it.

Loops depend on the port, `chassis.leadership.Lease`, and lead with
`chassis.leadership.run_as_leader`. The owner is the process's instance id; a
restarted process with the same id takes its own lease back at once, another
waits until it lapses.

Upgrading: commissions' relay lease was `{holder, until}`. A document without
`expires_at` counts as lapsed, so the first relay after the upgrade takes it at
once (the relay's correctness rests on the Kafka transactional id and its
checkpoint, not on the lease; the lease only keeps two relays from taking
turns fencing each other). The other leases already had `owner` and
`expires_at`; a lease held at upgrade time is renewed by its holder or just
expires.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Final

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

LEASES: Final = "leases"

Clock = Callable[[], dt.datetime]


class MongoLease:
    """The lease `name` for `owner`: `acquire` takes or renews it, `renew` only renews it."""

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        name: str,
        *,
        owner: str,
        ttl: dt.timedelta,
        clock: Clock,
        collection: str = LEASES,
    ) -> None:
        if ttl <= dt.timedelta(0):
            raise ValueError("a lease needs a positive ttl")
        self._coll = db[collection]
        self.name = name
        self.owner = owner
        self.ttl = ttl
        self._clock = clock
        self.epoch: int | None = None
        """The fencing token of the grant last won; None while not held."""
        self.held_until: dt.datetime | None = None
        """When the grant last won or renewed lapses (by the injected clock)."""

    async def acquire(self) -> bool:
        """Hold the lease from now for `ttl`: renew it if ours, take it if free or lapsed."""
        if await self.renew():
            return True
        now = self._clock()
        until = now + self.ttl
        lapsed = {"$or": [{"expires_at": {"$lt": now}}, {"expires_at": {"$exists": False}}]}
        doc = await self._coll.find_one_and_update(
            {"_id": self.name, **lapsed},
            {"$set": {"owner": self.owner, "expires_at": until}, "$inc": {"epoch": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            try:
                await self._coll.insert_one(
                    {"_id": self.name, "owner": self.owner, "expires_at": until, "epoch": 1}
                )
            except DuplicateKeyError:
                self._lost()
                return False  # another holder's lease has not lapsed
            doc = {"epoch": 1}
        self._won(int(doc["epoch"]), until)
        return True

    async def renew(self) -> bool:
        """Extend the lease while it is still ours; False (and not held) once another took it."""
        until = self._clock() + self.ttl
        doc = await self._coll.find_one_and_update(
            {"_id": self.name, "owner": self.owner},
            {"$set": {"expires_at": until}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            self._lost()
            return False
        self._won(int(doc.get("epoch", 0)), until)
        return True

    async def release(self) -> None:
        """Give the lease up now (if ours), so another replica need not wait for it to lapse."""
        self._lost()
        await self._coll.delete_one({"_id": self.name, "owner": self.owner})

    def _won(self, epoch: int, until: dt.datetime) -> None:
        self.epoch, self.held_until = epoch, until

    def _lost(self) -> None:
        self.epoch, self.held_until = None, None
