"""Every event type of the contract, through the real broker and back into the models."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer

from chassis.kafka import ensure_topics, make_producer
from shared.envelope import EventValidationError, encode, key_for, parse_event
from shared.examples import example_events
from shared.topics import all_topic_names
from tests.conftest import Names


async def test_every_event_type_survives_the_broker(kafka_bootstrap: str, names: Names) -> None:
    examples = example_events()
    contract_topics = {topic for topic, _ in examples}
    assert contract_topics == set(all_topic_names(include_dlq=False))
    fresh = {topic: names.topic(topic) for topic in contract_topics}
    await ensure_topics(kafka_bootstrap, fresh.values(), partitions=3)

    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        for topic, envelope in examples:
            await producer.send_and_wait(
                fresh[topic], encode(envelope), key=key_for(topic, envelope)
            )
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        *fresh.values(),
        bootstrap_servers=kafka_bootstrap,
        group_id=names.group(),
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    contract_of = {v: k for k, v in fresh.items()}
    received = []
    try:
        async with asyncio.timeout(30):
            while len(received) < len(examples):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        topic = contract_of[record.topic]
                        envelope = parse_event(topic, record.value)
                        assert record.key == key_for(topic, envelope)
                        received.append((topic, envelope))
    finally:
        await consumer.stop()

    by_id = {envelope.event_id: (topic, envelope) for topic, envelope in received}
    assert len(by_id) == len(examples)
    for topic, envelope in examples:
        assert by_id[envelope.event_id] == (topic, envelope)
    event_types = {envelope.event_type for _, envelope in received}
    # CONTRACT 1.2, 6.2 (customer sign-in), 6.3 (five deal.*), 6.5 (commission.adjusted),
    # 6.6 (notice.published), 6.9 (contact confirmation)
    assert len(event_types) == 25


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["data"]["lines"][0].update(net_amount_minor=1.5), "net_amount_minor"),
        (lambda d: d["data"].update(currency="euro"), "currency"),
        (lambda d: d["data"]["customer"].pop("email"), "email"),
    ],
)
async def test_a_malformed_event_is_rejected_naming_the_field(mutate, field) -> None:  # type: ignore[no-untyped-def]
    import json

    topic, envelope = next((t, e) for t, e in example_events() if e.event_type == "order.placed")
    document = json.loads(encode(envelope))
    mutate(document)
    with pytest.raises(EventValidationError) as raised:
        parse_event(topic, json.dumps(document).encode())
    assert raised.value.reason == "schema_violation"
    assert field in raised.value.detail
