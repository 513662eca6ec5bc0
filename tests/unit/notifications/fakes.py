"""In-memory fakes of the service's own ports, for unit tests of the use cases."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from services.notifications.domain.model import Partner, PlannedDelivery, notice_key
from services.notifications.service_layer.ports import (
    DeliveryError,
    DeliveryState,
    OutgoingEmail,
    WebhookConfig,
)


class FakeClock:
    def __init__(self, now: dt.datetime) -> None:
        self.current = now

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += dt.timedelta(seconds=seconds)


class FakeCounters:
    def __init__(self) -> None:
        self.values: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self.gauges: dict[str, float] = {}

    def inc(self, name: str, value: int = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        self.values[key] = self.values.get(key, 0) + value

    def total(self, name: str) -> int:
        return sum(v for (n, _), v in self.values.items() if n == name)

    def set_gauge(self, name: str, value: float) -> None:
        self.gauges[name] = value


class FakeDeliveries:
    def __init__(self) -> None:
        self.records: dict[str, DeliveryState] = {}
        self.outbox: set[str] = set()
        self.due_asked: list[dt.datetime] = []

    async def plan(
        self,
        planned: Sequence[PlannedDelivery],
        now: dt.datetime,
        *,
        traces: Mapping[str, str] | None = None,
    ) -> int:
        new = 0
        for p in planned:
            if p.notification_id not in self.records:
                self.records[p.notification_id] = DeliveryState(
                    p,
                    "pending",
                    0,
                    now,
                    None,
                    now,
                    traceparent=(traces or {}).get(p.notification_id),
                )
                new += 1
        return new

    async def due(self, now: dt.datetime, limit: int) -> list[DeliveryState]:
        self.due_asked.append(now)
        due = [
            s for s in self.records.values() if s.status == "pending" and s.next_attempt_at <= now
        ]
        return sorted(due, key=lambda s: s.next_attempt_at)[:limit]

    async def settle(self, states: Sequence[DeliveryState], *, published: bool) -> None:
        for state in states:
            notification_id = state.planned.notification_id
            if self.records[notification_id].status != "pending":
                continue
            self.records[notification_id] = state
            if state.status != "pending" and not published:
                self.outbox.add(notification_id)

    async def unpublished(self, limit: int) -> list[DeliveryState]:
        return [self.records[i] for i in sorted(self.outbox)][:limit]

    async def mark_published(self, notification_ids: Sequence[str]) -> None:
        self.outbox.difference_update(notification_ids)

    async def get(self, notification_id: str) -> DeliveryState | None:
        return self.records.get(notification_id)


class FakeProjections:
    def __init__(self, partners: Iterable[Partner] = ()) -> None:
        self.by_id = {p.partner_id: p for p in partners}

    async def partners(self, partner_ids: Iterable[str]) -> dict[str, Partner]:
        return {p: self.by_id[p] for p in partner_ids if p in self.by_id}


class FakePreferences:
    def __init__(self) -> None:
        self.off: set[str] = set()

    async def unsubscribe(self, contact_id: str, now: dt.datetime) -> None:
        self.off.add(contact_id)

    async def unsubscribed(self, contact_ids: Iterable[str]) -> set[str]:
        return self.off & set(contact_ids)


class FakeWebhooks:
    def __init__(self) -> None:
        self.configs: dict[str, WebhookConfig] = {}

    async def set(self, config: WebhookConfig, now: dt.datetime) -> None:
        self.configs[config.partner_id] = config

    async def of(self, partner_ids: Iterable[str]) -> dict[str, WebhookConfig]:
        return {p: self.configs[p] for p in partner_ids if p in self.configs}

    async def all(self) -> AsyncIterator[WebhookConfig]:
        for partner_id in sorted(self.configs):
            yield self.configs[partner_id]

    async def replace_secret(self, partner_id: str, old: str, new: str) -> bool:
        config = self.configs.get(partner_id)
        if config is None or config.secret_ciphertext != old:
            return False
        self.configs[partner_id] = WebhookConfig(partner_id, config.url, new)
        return True


class FakeAdvisories:
    def __init__(self, advisories: Iterable[Mapping[str, Any]] = ()) -> None:
        # Keyed as the fan-out jobs are: an advisory by its id, a notice by `notice/<id>`.
        self.by_id = {
            notice_key(a["notice_id"]) if "notice_id" in a else a["advisory_id"]: a
            for a in advisories
        }

    async def advisories(self, advisory_ids: Iterable[str]) -> dict[str, Mapping[str, Any]]:
        return {a: self.by_id[a] for a in advisory_ids if a in self.by_id}


class FakeEmailSender:
    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []
        self.failures: list[DeliveryError] = []

    async def send(self, email: OutgoingEmail) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(email)


class FakeWebhookSender:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []
        self.failures: list[DeliveryError] = []

    async def send(
        self, url: str, secret: str, message_id: str, timestamp: dt.datetime, body: str
    ) -> None:
        self.calls.append((url, secret, message_id, body))
        if self.failures:
            raise self.failures.pop(0)


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[DeliveryState] = []

    async def publish(self, outcomes: Sequence[DeliveryState]) -> None:
        self.published.extend(outcomes)


class PlainBox:
    """Seals by prefixing: enough to see that the dispatcher opens what was sealed."""

    def seal(self, plaintext: str) -> str:
        return "sealed:" + plaintext

    def open(self, ciphertext: str) -> str:
        return ciphertext.removeprefix("sealed:")

    def reseal(self, ciphertext: str) -> str | None:
        return None
