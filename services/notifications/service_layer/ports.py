"""The ports the use cases talk to; adapters implement them, unit tests fake them."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from services.notifications.domain.messages import Message
from services.notifications.domain.model import Entitlement, Partner, PlannedDelivery

DeliveryStatus = Literal["pending", "sent", "failed", "suppressed"]
FINAL_STATUSES: frozenset[str] = frozenset({"sent", "failed", "suppressed"})


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """A delivery record: what was planned, and how far sending it got."""

    planned: PlannedDelivery
    status: DeliveryStatus
    attempts: int
    next_attempt_at: dt.datetime
    error: str | None = None
    created_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    # Why, beside a contract error code (`isolation_violation`: the codes found).
    error_detail: str | None = None
    # The trace context of the event that planned it; its outcome record carries it.
    traceparent: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    partner_id: str
    url: str
    secret_ciphertext: str


class DeliveryError(Exception):
    """A send that did not succeed; `permanent` ones are not retried."""

    def __init__(self, code: str, *, permanent: bool = False) -> None:
        super().__init__(code)
        self.code = code
        self.permanent = permanent


class Deliveries(Protocol):
    async def plan(
        self,
        planned: Sequence[PlannedDelivery],
        now: dt.datetime,
        *,
        traces: Mapping[str, str] | None = None,
    ) -> int:
        """Insert records not there yet (by notification id); returns how many were new.

        `traces`: the traceparent of the event that planned a notification, by its id."""

    async def due(self, now: dt.datetime, limit: int) -> list[DeliveryState]: ...

    async def settle(self, states: Sequence[DeliveryState], *, published: bool) -> None:
        """Store attempts in one write: final ones and pending ones with their attempt
        count and next attempt time; unless `published`, the final ones are listed in
        the outbox first (a second write, only while publishing fails)."""

    async def unpublished(self, limit: int) -> list[DeliveryState]: ...

    async def mark_published(self, notification_ids: Sequence[str]) -> None: ...

    async def get(self, notification_id: str) -> DeliveryState | None: ...


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A line of the delivery log: a delivery record as the API shows it."""

    notification_id: str
    notification_type: str
    channel: str
    audience: str
    status: str
    attempts: int
    error: str | None
    error_detail: str | None
    partner_scope: str | None
    license_keys: list[str]
    created_at: dt.datetime | None
    finished_at: dt.datetime | None
    recipient: str | None


@dataclass(frozen=True, slots=True)
class DeliveryCriteria:
    """The operators' search (CONTRACT 2.3): every criterion given must match."""

    license_key: str | None = None
    recipient: str | None = None
    """An e-mail address (any case) or a partner id."""
    status: DeliveryStatus | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    records: list[DeliveryRecord]
    total: int
    """Every match, not only this page's."""


class DeliveryLog(Protocol):
    """Pages of delivery records, oldest first (the API's reads)."""

    async def for_partner(self, partner_id: str, limit: int, offset: int) -> DeliveryPage:
        """A partner's own deliveries: partner-facing records addressed to it."""

    async def matching(
        self, criteria: DeliveryCriteria, limit: int, offset: int
    ) -> DeliveryPage: ...


class Projections(Protocol):
    async def partners(self, partner_ids: Iterable[str]) -> dict[str, Partner]: ...


class Preferences(Protocol):
    async def unsubscribe(self, contact_id: str, now: dt.datetime) -> None: ...

    async def unsubscribed(self, contact_ids: Iterable[str]) -> set[str]: ...


class Webhooks(Protocol):
    async def set(self, config: WebhookConfig, now: dt.datetime) -> None: ...

    async def of(self, partner_ids: Iterable[str]) -> dict[str, WebhookConfig]: ...

    def all(self) -> AsyncIterator[WebhookConfig]: ...

    async def replace_secret(self, partner_id: str, old: str, new: str) -> bool:
        """Store `new` in place of `old`; False when the row no longer holds `old`."""


class Advisories(Protocol):
    async def advisories(self, advisory_ids: Iterable[str]) -> dict[str, Mapping[str, Any]]: ...


class EmailSender(Protocol):
    async def send(self, email: OutgoingEmail) -> None:
        """Hand the message to the mail server; DeliveryError when it was not accepted."""


class WebhookSender(Protocol):
    async def send(
        self, url: str, secret: str, message_id: str, timestamp: dt.datetime, body: str
    ) -> None:
        """POST the signed body; DeliveryError unless the answer is 2xx."""


class HostResolver(Protocol):
    async def __call__(self, host: str, port: int) -> list[str]:
        """The addresses `host` resolves to; none when it does not resolve."""


class OutcomePublisher(Protocol):
    async def publish(self, outcomes: Sequence[DeliveryState]) -> None: ...


class SecretBox(Protocol):
    def seal(self, plaintext: str) -> str: ...

    def open(self, ciphertext: str) -> str: ...

    def reseal(self, ciphertext: str) -> str | None:
        """The same secret under the current key; None when it is under it already."""


class EntitlementSource(Protocol):
    """The queries the reminder pass and the advisory fan-out run on the projections."""

    def due_on(self, term_end: dt.date) -> AsyncIterator[Entitlement]:
        """Entitlements ending on `term_end`, ordered by contact then partner of record."""

    def opportunities_on(
        self, term_end: dt.date, partner_ids: Sequence[str] | None = None
    ) -> AsyncIterator[Entitlement]:
        """Entitlements with a partner of record ending on `term_end`, ordered by partner;
        only those of `partner_ids` when given."""


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    notification_id: str
    to_address: str
    from_address: str
    subject: str
    text: str
    html: str
    list_unsubscribe_url: str | None
    notification_type: str


class RenderedParts(Protocol):
    @property
    def subject(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def html(self) -> str: ...

    def parts(self) -> tuple[str, str, str]: ...


class EmailRenderer(Protocol):
    def render(
        self,
        message: Message,
        *,
        advisory: Mapping[str, Any] | None,
        unsubscribe_url: str | None,
    ) -> RenderedParts: ...


class Counters(Protocol):
    def inc(self, name: str, value: int = 1, **labels: str) -> None: ...

    def set_gauge(self, name: str, value: float) -> None: ...
