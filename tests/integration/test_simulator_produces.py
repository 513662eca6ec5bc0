"""The simulator's CLI path produces its stream to a real broker."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer

from devkit.simulate import main
from shared.topics import CHECKOUT_ORDERS, CHECKOUT_REFUNDS, VENDOR_NOTICES
from tests.conftest import Names


async def count(bootstrap: str, topic: str, group: str) -> int:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen = 0
    try:
        while batches := await consumer.getmany(timeout_ms=1500):
            seen += sum(len(records) for records in batches.values())
    finally:
        await consumer.stop()
    return seen


async def test_simulate_sends_orders_and_refunds(kafka_bootstrap: str, names: Names) -> None:
    suffix = f".{names.run}"
    argv = [
        "--topic-suffix",
        suffix,
        "--orders",
        "120",
        "--seed",
        "9",
        "--refund-share",
        "0.2",
        "--quiet",
        "--bootstrap",
        kafka_bootstrap,
    ]
    assert await asyncio.to_thread(main, argv) == 0
    orders = await count(kafka_bootstrap, CHECKOUT_ORDERS + suffix, names.group("orders"))
    refunds = await count(kafka_bootstrap, CHECKOUT_REFUNDS + suffix, names.group("refunds"))
    assert orders == 120
    assert 0 < refunds < 120


async def test_simulate_publishes_a_product_notice(kafka_bootstrap: str, names: Names) -> None:
    suffix = f".{names.run}"
    argv = ["--topic-suffix", suffix, "--notice", "service_pack", "--quiet"]
    argv += ["--notice-products", "secure-pro,backup-plus", "--bootstrap", kafka_bootstrap]
    assert await asyncio.to_thread(main, argv) == 0  # --orders defaults to 0 with --notice
    assert await count(kafka_bootstrap, VENDOR_NOTICES + suffix, names.group("notices")) == 1
    assert await count(kafka_bootstrap, CHECKOUT_ORDERS + suffix, names.group("none")) == 0
