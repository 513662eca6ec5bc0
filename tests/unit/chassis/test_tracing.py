"""The traceparent header through the consume loop, with tracing off and on.

Off (the default), an output carries its input's traceparent unchanged and nothing of
the SDK runs; on, each output carries the context of a producer span that is the
child of its input's, and the batch's consumer span links to every input.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiokafka import TopicPartition
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from chassis import tracing
from chassis.consumer import TransactionalProcessor
from chassis.metrics import WorkerCounters
from chassis.records import HandlerResult, Inbound, OutRecord
from services.notifications.adapters.outcomes import outcome_record
from services.notifications.domain.model import PlannedDelivery
from services.notifications.service_layer.ports import DeliveryState
from services.registration.adapters.outbox import outbox_record
from shared.envelope import encode
from shared.examples import example_events
from shared.topics import REGISTRATION_ENTITLEMENTS

TOPIC = "chassis.test.traced"
TP = TopicPartition(TOPIC, 0)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER = "0af7651916cd43dd8448eb211c80319c"


def parent(trace_id: str = TRACE, span_id: str = "00f067aa0ba902b7") -> bytes:
    return f"00-{trace_id}-{span_id}-01".encode()


def _event_value(number: int) -> bytes:
    _, envelope = next(
        (t, e)
        for t, e in example_events()
        if t == REGISTRATION_ENTITLEMENTS and e.event_type == "entitlement.order_applied"
    )
    return encode(envelope.model_copy(update={"event_id": f"evt-{number}"}))


@dataclasses.dataclass
class _Record:
    offset: int
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    key: bytes | None = b"k"


class _Consumer:
    def __init__(self, polls: list[list[_Record]], processor: TransactionalProcessor) -> None:
        self.polls = polls
        self.processor = processor

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        if not self.polls:
            if timeout_ms:
                self.processor.request_stop()
            await asyncio.sleep(0)
            return {}
        return {TP: self.polls.pop(0)}

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def highwater(self, tp: TopicPartition) -> None:
        return None


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, list[tuple[str, bytes]]]] = []

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    async def send(self, topic: str, value: bytes, **kwargs: Any) -> asyncio.Future[None]:
        self.sent.append((topic, value, list(kwargs.get("headers") or [])))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_offsets_to_transaction(self, offsets: dict[Any, Any], group: str) -> None:
        return None


async def _run(polls: list[list[_Record]], max_in_flight: int) -> _Producer:
    async def handler(batch: list[Inbound]) -> HandlerResult:
        # Two outputs per input, naming it; one more naming nothing.
        produced = [
            OutRecord("out", None, f"{i.offset}/{n}".encode(), cause=i.envelope.event_id)
            for i in batch
            for n in (1, 2)
        ]
        produced.append(OutRecord("out", None, b"uncaused"))
        return HandlerResult(produce=produced)

    processor = TransactionalProcessor(
        bootstrap="127.0.0.1:1",
        topics=[TOPIC],
        group_id="g",
        transactional_id="t",
        handler=handler,
        counters=WorkerCounters(),
        retry_backoff_s=0,
        schema_of={TOPIC: REGISTRATION_ENTITLEMENTS},
        max_in_flight=max_in_flight,
    )
    producer = _Producer()
    processor._consumer = _Consumer(polls, processor)  # type: ignore[assignment]
    processor._producer = producer  # type: ignore[assignment]
    await asyncio.wait_for(processor.run(), 5)
    return producer


def _polls() -> list[list[_Record]]:
    return [
        [
            _Record(0, _event_value(0), (("traceparent", parent()),)),
            _Record(1, _event_value(1), (("other", b"x"),)),
        ],
        [
            _Record(2, _event_value(2), (("traceparent", parent(OTHER)), ("other", b"y"))),
            _Record(3, _event_value(3), (("traceparent", b"not-a-traceparent"),)),
        ],
    ]


def _traceparents(producer: _Producer) -> dict[bytes, bytes | None]:
    return {value: dict(headers).get("traceparent") for _, value, headers in producer.sent}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure("test", exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.shutdown()


@pytest.mark.parametrize("max_in_flight", [1, 3])
async def test_with_tracing_off_each_output_carries_its_inputs_traceparent_unchanged(
    max_in_flight: int,
) -> None:
    assert not tracing.enabled()
    producer = await _run(_polls(), max_in_flight)
    assert _traceparents(producer) == {
        b"0/1": parent(),
        b"0/2": parent(),
        b"1/1": None,  # its input had no traceparent
        b"1/2": None,
        b"2/1": parent(OTHER),
        b"2/2": parent(OTHER),
        b"3/1": None,  # a malformed one is not passed on
        b"3/2": None,
        b"uncaused": None,
    }


def test_without_any_traceparent_in_the_batch_the_outputs_are_left_as_they_are() -> None:
    outputs = [OutRecord("out", None, b"v", cause="evt-1")]
    assert tracing.carry([("evt-1", ()), ("evt-2", (("k", b"v"),))], outputs) is outputs


def test_an_outputs_own_traceparent_is_replaced_by_its_inputs() -> None:
    stale = OutRecord("out", None, b"v", headers=(("traceparent", parent(OTHER)),), cause="e")
    [carried] = tracing.carry([("e", (("traceparent", parent()),))], [stale])
    assert list(carried.headers) == [("traceparent", parent())]


async def test_with_tracing_on_outputs_are_published_in_child_spans_of_their_inputs(
    spans: InMemorySpanExporter,
) -> None:
    producer = await _run(_polls(), 1)
    finished = spans.get_finished_spans()
    publish = {s.context.span_id: s for s in finished if s.kind == SpanKind.PRODUCER}
    for value, traceparent in _traceparents(producer).items():
        assert traceparent is not None, value  # every output has a context when on
        _, trace_id, span_id, _ = traceparent.decode().split("-")
        span = publish[int(span_id, 16)]
        if value.startswith(b"0/"):
            assert trace_id == TRACE
            assert span.parent is not None and span.parent.span_id == 0x00F067AA0BA902B7
        elif value.startswith(b"2/"):
            assert trace_id == OTHER
        else:  # no (valid) input context: a child of the batch's span
            assert span.parent is not None
            assert trace_id not in (TRACE, OTHER)
    batches = [s for s in finished if s.kind == SpanKind.CONSUMER]
    assert len(batches) == 2
    linked = [{format(link.context.trace_id, "032x") for link in s.links} for s in batches]
    assert linked == [{TRACE}, {OTHER}]
    assert all(s.attributes and s.attributes["messaging.batch.message_count"] == 2 for s in batches)


def test_the_registration_outbox_publishes_the_trace_context_its_document_kept() -> None:
    doc = {"topic": "t", "key": "k", "value": b"v", "traceparent": parent().decode()}
    assert dict(outbox_record(doc).headers) == {"traceparent": parent()}
    assert outbox_record({**doc, "traceparent": "garbage"}).headers == ()
    assert outbox_record({"topic": "t", "key": "k", "value": b"v"}).headers == ()


def test_a_delivery_record_carries_the_trace_context_of_the_event_that_planned_it() -> None:
    now = dt.datetime(2027, 1, 5, tzinfo=dt.UTC)
    planned = PlannedDelivery(
        notification_id="n-1",
        type="commission_earned",
        channel="email",
        audience="partner",
        recipient="p-1",
        partner_scope="p-1",
        entitlements=(),
        occurred_at=now,
    )
    state = DeliveryState(planned, "sent", 1, now, finished_at=now, traceparent=parent().decode())
    assert dict(outcome_record(state, "deliveries").headers) == {"traceparent": parent()}
    untraced = dataclasses.replace(state, traceparent=None)
    assert outcome_record(untraced, "deliveries").headers == ()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, None),
    ],
)
def test_tracing_is_off_unless_an_exporter_is_configured(
    environ: dict[str, str], expected: str | None
) -> None:
    assert tracing.wanted(environ) == expected


def test_off_by_default_configure_sets_nothing_up(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    assert tracing.configure("test") is False
    assert not tracing.enabled() and tracing.current_traceparent() is None


def test_a_database_command_outside_any_traced_work_is_not_recorded(
    spans: InMemorySpanExporter,
) -> None:
    tracer = tracing._state.tracer
    assert tracer is not None
    with tracer.start_as_current_span("idle poll", kind=SpanKind.CLIENT):
        pass  # a dispatcher's or relay's poll: no parent, dropped
    with tracing.span("work"), tracer.start_as_current_span("find", kind=SpanKind.CLIENT):
        pass
    assert sorted(s.name for s in spans.get_finished_spans()) == ["find", "work"]


async def test_a_batchs_kafka_transaction_is_a_child_of_its_consumer_span(
    spans: InMemorySpanExporter,
) -> None:
    await _run(_polls()[:1], 3)
    finished = spans.get_finished_spans()
    [batch] = [s for s in finished if s.kind == SpanKind.CONSUMER]
    [commit] = [s for s in finished if s.name == "kafka transaction"]
    assert commit.parent is not None and commit.parent.span_id == batch.context.span_id
