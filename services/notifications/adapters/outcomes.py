"""Publishes delivery outcomes to `notifications.deliveries.v1` (never the message body).

The event id is derived from the notification id, so an outcome published twice
(a crash between the send to Kafka and the outbox mark) is one event to any
consumer that dedupes on `event_id`, as every consumer must (CONTRACT 1.1).
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from chassis import tracing
from chassis.kafka import send_all
from chassis.records import OutRecord
from services.notifications.service_layer.ports import DeliveryState
from shared.envelope import encode, new_envelope
from shared.events import DeliveryFailed, DeliveryOutcome, DeliverySent, DeliverySuppressed
from shared.ids import derive_id

_MODELS: dict[str, tuple[str, type[DeliveryOutcome]]] = {
    "sent": ("delivery.sent", DeliverySent),
    "failed": ("delivery.failed", DeliveryFailed),
    "suppressed": ("delivery.suppressed", DeliverySuppressed),
}


def outcome_record(state: DeliveryState, topic: str) -> OutRecord:
    planned = state.planned
    event_type, model = _MODELS[state.status]
    data = model(
        notification_id=planned.notification_id,
        notification_type=planned.type,
        channel=planned.channel,
        audience=planned.audience,
        partner_scope=planned.partner_scope,
        license_keys=planned.license_keys,
        attempts=state.attempts,
        error=state.error,
        error_detail=state.error_detail,
    )
    envelope = new_envelope(
        event_type,
        data,
        occurred_at=state.finished_at or state.next_attempt_at,
        producer="notifications",
        event_id=derive_id("delivery-outcome", planned.notification_id),
    )
    record = OutRecord(topic=topic, key=planned.notification_id.encode(), value=encode(envelope))
    # The trace of the event that planned the delivery ends with its outcome.
    stored = state.traceparent
    parent = tracing.valid_traceparent(stored.encode("ascii")) if stored else None
    return tracing.produced(record, parent)


class KafkaOutcomePublisher:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def publish(self, outcomes: Sequence[DeliveryState]) -> None:
        await send_all(self.producer, [outcome_record(s, self.topic) for s in outcomes])
