"""Helpers for the reliability suite: a running suite, raw records in, topics read back."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from devkit.up import RunningSuite, fresh_env, start_ready_suite

ADMIN_TOKEN = os.environ.get("ADMIN_TOKEN", "dev-admin-token")


@dataclass
class Live:
    suite: RunningSuite
    data_dir: Path

    @property
    def bootstrap(self) -> str:
        return self.suite.embedded.kafka_bootstrap

    @property
    def mongo_url(self) -> str:
        return self.suite.embedded.mongo_url

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.suite.ports[service]}"

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def http(self) -> httpx.Client:
        return httpx.Client(timeout=15)


def running_suite(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[Live]:
    env = fresh_env(dict(os.environ))
    env["ADMIN_TOKEN"] = ADMIN_TOKEN
    env.update(extra_env or {})
    suite = start_ready_suite(data_dir, env)
    try:
        yield Live(suite, data_dir)
    finally:
        suite.stop()


def envelope(event_type: str, data: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    document = {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": "2027-01-05T10:00:00Z",
        "producer": "reliability-test",
        "data": data,
    }
    document.update(overrides)
    return document


def order_data(
    order_id: str,
    license_key: str,
    *,
    net: int = 100000,
    currency: str = "EUR",
    channel: str = "direct",
    kind: str = "new",
    partner_code: str | None = None,
    customer_id: str = "C-REL-1",
) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "sales_channel": channel,
        "storefront": "web",
        "partner_code": partner_code,
        "seller_code": None,
        "currency": currency,
        "customer": {
            "customer_id": customer_id,
            "org_name": "Reliability GmbH",
            "contact_name": "Rita Reliable",
            "email": f"{customer_id.lower()}@reliability.example",
            "country": "DE",
        },
        "lines": [
            {
                "line_id": "1",
                "kind": kind,
                "license_key": license_key,
                "sku": "SECURE-PRO-1Y",
                "product": "secure-pro",
                "quantity": 1,
                "term_start": "2027-01-10",
                "term_end": "2028-01-09",
                "net_amount_minor": net,
            }
        ],
    }


def refund_data(
    refund_id: str, order_id: str, amount: int, currency: str = "EUR"
) -> dict[str, Any]:
    return {
        "refund_id": refund_id,
        "order_id": order_id,
        "line_id": "1",
        "amount_minor": amount,
        "currency": currency,
        "reason": "test",
    }


def dumps(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def produce(
    bootstrap: str,
    records: list[tuple[str, bytes | None, bytes | None]],
    gate: threading.Lock | None = None,
) -> None:
    """Each record acknowledged before the next; while another thread holds `gate`, none."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=2_000_000, enable_idempotence=True
    )
    await producer.start()
    try:
        for topic, key, value in records:
            if gate is None:
                await producer.send_and_wait(topic, value, key=key)
                continue
            # Blocks this thread's loop while the gate is held: it serves nothing else.
            with gate:
                await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def produce_gzip(
    bootstrap: str, records: list[tuple[str, bytes | None, bytes | None]]
) -> None:
    """Records sent gzip-compressed: a 2.1 MB record travels in ~0.1 MB."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=8_000_000, compression_type="gzip"
    )
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def produce_with_headers(
    bootstrap: str,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]],
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=2_000_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, headers=headers)  # type: ignore[arg-type]
    finally:
        await producer.stop()


class _NotUtf8(str):
    """A header key whose bytes are not UTF-8: any Kafka client but aiokafka may write one."""

    __slots__ = ()

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"\xff\xfe-key"


async def produce_unreadable(
    bootstrap: str, topic: str, key: bytes, value: bytes
) -> tuple[int, int]:
    """A record aiokafka cannot read back (its header key is not UTF-8): (partition, offset).

    aiokafka itself refuses to write one, so its pure-Python batch builder is swapped in
    for this send (it writes the key's bytes as `encode` gives them).
    """
    from aiokafka.producer import message_accumulator
    from aiokafka.producer import producer as producer_module
    from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy

    swapped = (message_accumulator, producer_module)
    saved = [module.DefaultRecordBatchBuilder for module in swapped]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for module in swapped:
            module.DefaultRecordBatchBuilder = _DefaultRecordBatchBuilderPy  # type: ignore[attr-defined,misc]
        meta = await producer.send_and_wait(topic, value, key=key, headers=[(_NotUtf8("h"), b"x")])
        return meta.partition, meta.offset
    finally:
        for module, builder in zip(swapped, saved, strict=True):
            module.DefaultRecordBatchBuilder = builder  # type: ignore[attr-defined,misc]
        await producer.stop()


@dataclass(frozen=True)
class Read:
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, str]


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Any = None,
    wait_s: float = 30.0,
    idle_s: float = 0.0,
) -> list[Read]:
    """Everything on `topic` (read_committed), until `until(records)` holds or `wait_s` pass.

    With `idle_s`, the wait goes on past `wait_s` for as long as records keep arriving,
    ending `idle_s` after the last one: on a loaded machine a backlog still being worked
    off is slow, not lost, and a fixed wait would report it as lost."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        fetch_max_bytes=4_000_000,
        max_partition_fetch_bytes=2_000_000,
    )
    await consumer.start()
    out: list[Read] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for r in records:
                    headers = {k: bytes(v).decode("utf-8", "replace") for k, v in r.headers or ()}
                    out.append(Read(topic, r.key, r.value or b"", headers))
            if batches and idle_s:
                deadline = max(deadline, loop.time() + idle_s)
            if until is not None and until(out):
                break
    finally:
        await consumer.stop()
    return out


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
