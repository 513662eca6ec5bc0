"""The topic registry (CONTRACT 1.2): every topic with its owner, key and event types.

The one place that says which events may appear on which topic and what a
record is keyed by; producers key by aggregate id so one aggregate's events
stay in order on one partition.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from shared.events import EVENT_MODELS, EventData

__all__ = [
    "ALL_TOPICS",
    "CHECKOUT_ORDERS",
    "CHECKOUT_REFUNDS",
    "COMMISSIONS_LEDGER",
    "DLQ_DETAIL_HEADER",
    "DLQ_REASON_HEADER",
    "DLQ_SUFFIX",
    "NOTIFICATIONS_DELIVERIES",
    "REGISTRATION_CUSTOMERS",
    "REGISTRATION_DEALS",
    "REGISTRATION_ENTITLEMENTS",
    "REGISTRATION_PARTNERS",
    "SENSITIVE_FIELDS",
    "TOPICS",
    "VENDOR_ADVISORIES",
    "VENDOR_NOTICES",
    "Topic",
    "all_topic_names",
    "dlq_name",
    "hashed_key",
    "redact_sensitive",
    "topic",
    "topic_for_event",
]

CHECKOUT_ORDERS = "checkout.orders.v1"
CHECKOUT_REFUNDS = "checkout.refunds.v1"
VENDOR_ADVISORIES = "vendor.advisories.v1"
VENDOR_NOTICES = "vendor.notices.v1"
REGISTRATION_PARTNERS = "registration.partners.v1"
REGISTRATION_ENTITLEMENTS = "registration.entitlements.v1"
REGISTRATION_DEALS = "registration.deals.v1"
REGISTRATION_CUSTOMERS = "registration.customers.v1"
COMMISSIONS_LEDGER = "commissions.ledger.v1"
NOTIFICATIONS_DELIVERIES = "notifications.deliveries.v1"

DLQ_REASON_HEADER = "error.reason"
DLQ_DETAIL_HEADER = "error.detail"


DLQ_SUFFIX = ".dlq"
"""What a dead-letter topic's name adds to its source topic's (CONTRACT 1.4)."""


def dlq_name(topic_name: str) -> str:
    """The dead-letter topic of ``topic_name`` (CONTRACT 1.4)."""
    return f"{topic_name}{DLQ_SUFFIX}"


@dataclass(frozen=True, slots=True)
class Topic:
    """One topic: who produces it, what keys it, which events it carries."""

    name: str
    owner: str
    external: bool
    key_field: str
    event_types: Mapping[str, type[EventData]]
    description: str
    # True: the record key is the SHA-256 hex of the lower-cased key field, not the
    # field itself (an e-mail address is personal data; CONTRACT 6.2).
    key_hashed: bool = False
    # Readable by its one consumer only; its secret fields never reach a log or a DLQ.
    sensitive: bool = False

    @property
    def dlq(self) -> str:
        return dlq_name(self.name)


def _topic(
    name: str,
    owner: str,
    key_field: str,
    event_types: tuple[str, ...],
    description: str,
    *,
    key_hashed: bool = False,
    sensitive: bool = False,
) -> Topic:
    return Topic(
        name=name,
        owner=owner,
        external=owner.endswith("(external)"),
        key_field=key_field,
        event_types=MappingProxyType({et: EVENT_MODELS[et] for et in event_types}),
        description=description,
        key_hashed=key_hashed,
        sensitive=sensitive,
    )


ALL_TOPICS: tuple[Topic, ...] = (
    _topic(
        CHECKOUT_ORDERS,
        "checkout (external)",
        "order_id",
        ("order.placed",),
        "Orders from e-commerce and retail checkout; the system of record for what was sold.",
    ),
    _topic(
        CHECKOUT_REFUNDS,
        "checkout (external)",
        "order_id",
        ("refund.issued",),
        "Full and partial refunds of order lines.",
    ),
    _topic(
        VENDOR_ADVISORIES,
        "vendor security team (external)",
        "advisory_id",
        ("advisory.published",),
        "Security advisories to be sent to affected customers and their partners.",
    ),
    _topic(
        VENDOR_NOTICES,
        "vendor product management (external)",
        "notice_id",
        ("notice.published",),
        "Product notices (service packs, end of life, maintenance) for affected customers"
        " and their partners (CONTRACT 6.6).",
    ),
    _topic(
        REGISTRATION_PARTNERS,
        "registration",
        "partner_id",
        ("partner.created", "partner.updated"),
        "Partners as they now stand, without secrets.",
    ),
    _topic(
        REGISTRATION_ENTITLEMENTS,
        "registration",
        "license_key",
        (
            "entitlement.registered",
            "entitlement.updated",
            "entitlement.attribution_changed",
            "entitlement.order_applied",
            "entitlement.contact_confirmation_requested",
        ),
        "Entitlements and their partner of record; order_applied drives commissions;"
        " contact_confirmation_requested asks the contact in place to confirm a new one.",
    ),
    _topic(
        REGISTRATION_DEALS,
        "registration",
        "deal_id",
        ("deal.submitted", "deal.approved", "deal.rejected", "deal.won", "deal.expired"),
        "Registered deals and their decisions; an approved deal protects (partner, customer,"
        " product) for DEAL_PROTECTION_DAYS (CONTRACT 6.3).",
    ),
    _topic(
        REGISTRATION_CUSTOMERS,
        "registration",
        "email",
        ("customer.sign_in_requested",),
        "Sensitive (CONTRACT 6.2): one-time customer sign-in links for notifications to mail;"
        " only notifications reads it, and its token is never logged or dead-lettered in clear.",
        key_hashed=True,
        sensitive=True,
    ),
    _topic(
        COMMISSIONS_LEDGER,
        "commissions",
        "partner_id",
        (
            "commission.accrued",
            "commission.clawed_back",
            "commission.adjusted",
            "commission.payable",
            "commission.paid",
        ),
        "The commission ledger, one event per line or status change; read it read_committed.",
    ),
    _topic(
        NOTIFICATIONS_DELIVERIES,
        "notifications",
        "notification_id",
        ("delivery.sent", "delivery.failed", "delivery.suppressed"),
        "The outcome of every notification delivery, never the message body.",
    ),
)

TOPICS: Mapping[str, Topic] = MappingProxyType({t.name: t for t in ALL_TOPICS})

_TOPIC_OF_EVENT: Mapping[str, Topic] = MappingProxyType(
    {event_type: t for t in ALL_TOPICS for event_type in t.event_types}
)


def topic(name: str) -> Topic:
    """The registry entry of ``name``; KeyError if unknown."""
    return TOPICS[name]


def topic_for_event(event_type: str) -> Topic:
    """The one topic that carries ``event_type``; KeyError if unknown."""
    return _TOPIC_OF_EVENT[event_type]


def all_topic_names(*, include_dlq: bool = True) -> list[str]:
    """Every topic name, each followed by its dead-letter topic unless excluded."""
    names: list[str] = []
    for t in ALL_TOPICS:
        names.append(t.name)
        if include_dlq:
            names.append(t.dlq)
    return names


def hashed_key(value: str) -> str:
    """The SHA-256 hex of the lower-cased `value`: the key of a `key_hashed` topic."""
    return hashlib.sha256(value.strip().lower().encode("utf-8")).hexdigest()


SENSITIVE_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {REGISTRATION_CUSTOMERS: ("token",)}
)
"""Per sensitive topic, the `data` fields that are secrets (CONTRACT 6.2)."""

REDACTED = "[redacted]"


def redact_sensitive(topic_name: str, value: bytes, detail: str) -> tuple[bytes, str]:
    """A dead letter's value and detail with the topic's secret fields taken out.

    Topics that are not sensitive pass unchanged. For a sensitive one the secret
    fields of `data` are replaced and every occurrence of their values in `detail`
    too; a record that is not a JSON object cannot be searched for them, so its
    value is dropped and its detail reduced to a note (the reason header says why).
    """
    source = topic_name.removesuffix(".dlq")
    # Tests and replays run a topic under a suffixed name (`<topic>.<run>`).
    fields = next(
        (
            f
            for name, f in SENSITIVE_FIELDS.items()
            if source == name or source.startswith(f"{name}.")
        ),
        None,
    )
    if not fields:
        return value, detail
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        # RecursionError: nested too deep to parse (CONTRACT 6.9); it would escape the
        # dead-lettering of the record and halt the worker on it.
        return b"", "redacted: the record of a sensitive topic was not JSON"
    if not isinstance(parsed, dict):
        return b"", "redacted: the record of a sensitive topic was not a JSON object"
    data = parsed.get("data")
    secrets: list[str] = []
    if isinstance(data, dict):
        for name in fields:
            if name in data:
                if isinstance(data[name], str) and data[name]:
                    secrets.append(data[name])
                data[name] = REDACTED
    for secret in secrets:
        detail = detail.replace(secret, REDACTED)
    return json.dumps(parsed, separators=(",", ":")).encode("utf-8"), detail
