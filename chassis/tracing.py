"""Tracing: the W3C `traceparent` Kafka header through the suite, and OpenTelemetry spans.

Two layers, so that one renewal can be followed from checkout's `order.placed` to the
delivery record whatever is switched on:

- **Propagation, always on.** A record a handler produces from an input record
  (`OutRecord.cause` names that input's `event_id`) carries the input's `traceparent`
  header; outboxes keep it in their documents. With tracing off the header is copied
  unchanged: a dictionary lookup per output and a header scan per input, nothing when no
  input has one (figures in the README's "Tracing").
- **Spans, off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set** (or `OTEL_TRACES_EXPORTER`
  names `console`, which `./dev up --trace-console` and `./dev demo --trace` use). Then
  `configure` sets up the SDK with the OTLP/HTTP exporter, instruments FastAPI and
  PyMongo, and the consume loop opens a consumer span per batch, linked to each input's
  context, and a producer span per produced record, the child of its input's context
  (whose id becomes the record's `traceparent`). Until then nothing of the SDK is
  imported.

aiokafka's own instrumentation (`opentelemetry-instrumentation-aiokafka`, 0.66b1 supports
aiokafka 0.14) does not fit our loop: it makes a span per record inside `getmany`, ended
before the batch is handled, and injects the *current* context into every `send`, which
in a batch transaction is the batch's, not the record's input. So the loop does it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from chassis.records import Header, OutRecord

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
"""The Kafka header (and outbox document field) carrying a W3C trace context."""

# version 00: 2 + 32 + 16 + 2 hex digits and dashes; other versions are at least as long
# and begin the same (W3C Trace Context, 3.2). Anything else is not propagated.
_TRACEPARENT = re.compile(rb"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_MAX_TRACEPARENT = 128


class _State:
    tracer: Tracer | None = None
    provider: TracerProvider | None = None


_state = _State()


def enabled() -> bool:
    """Whether spans are recorded (the SDK was configured)."""
    return _state.tracer is not None


def wanted(environ: Mapping[str, str] | None = None) -> str | None:
    """Which exporter the environment asks for: "otlp", "console" or None (off)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporters = {e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",")}
    if "console" in exporters:
        return "console"
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return "otlp"
    return None


def configure(service_name: str, *, exporter: SpanExporter | None = None) -> bool:
    """At process start: the SDK, its exporter and the instrumentations, when asked for.

    `exporter` (tests: an in-memory one) switches tracing on whatever the environment
    says, with a synchronous processor so spans are there when a test looks.
    """
    kind = "test" if exporter is not None else wanted()
    if kind is None:
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}), sampler=_sampler()
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif kind == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if exporter is None:
        # The process's own provider, for libraries that ask the global one. Tests keep
        # theirs local: the global provider can be set once per process.
        trace.set_tracer_provider(provider)
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

        PymongoInstrumentor().instrument(tracer_provider=provider)
    _state.provider = provider
    _state.tracer = provider.get_tracer("channelkeep")
    log.info("tracing on", extra={"exporter": kind, "traced_as": service_name})
    return True


def _sampler() -> Any:
    """Every span of traced work; no database command outside any (a background poll).

    The dispatcher, the outbox relays and the heartbeats query MongoDB several times a
    second while idle: as root spans those would be most of what is exported.
    """
    from opentelemetry.sdk.trace.sampling import (
        ALWAYS_ON,
        Decision,
        ParentBased,
        Sampler,
        SamplingResult,
    )
    from opentelemetry.trace import SpanKind, get_current_span

    class WorkOnly(Sampler):
        def __init__(self) -> None:
            self._inner = ParentBased(ALWAYS_ON)

        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: Any = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            if kind == SpanKind.CLIENT and not (
                get_current_span(parent_context).get_span_context().is_valid
            ):
                return SamplingResult(Decision.DROP)
            return self._inner.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return "WorkOnly(ParentBased(ALWAYS_ON))"

    return WorkOnly()


def shutdown() -> None:
    """Flush what is buffered (the OTLP batch processor) and switch spans off."""
    provider, _state.provider, _state.tracer = _state.provider, None, None
    if provider is not None:
        with contextlib.suppress(Exception):
            provider.shutdown()


def instrument_app(app: FastAPI) -> None:
    """Server spans for every route of `app`, when tracing is on."""
    if _state.provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=_state.provider, excluded_urls="healthz,readyz,metrics,status"
    )


def valid_traceparent(value: bytes | None) -> bytes | None:
    """`value` when it is a well-formed W3C traceparent, else None (never propagated)."""
    if value is None or len(value) > _MAX_TRACEPARENT or not _TRACEPARENT.match(value):
        return None
    return value


def traceparent_in(headers: Sequence[tuple[str, bytes]]) -> bytes | None:
    """The record's well-formed `traceparent` header, if any."""
    for key, value in headers:
        if key == TRACEPARENT:
            return valid_traceparent(value)
    return None


def with_traceparent(record: OutRecord, traceparent: bytes) -> OutRecord:
    # The constructor, not dataclasses.replace: this runs once per output record.
    header: Header = (TRACEPARENT, traceparent)
    headers = (
        (*(h for h in record.headers if h[0] != TRACEPARENT), header)
        if record.headers
        else (header,)
    )
    return OutRecord(record.topic, record.key, record.value, headers, record.cause)


def current_traceparent() -> str | None:
    """The active span's context as a traceparent (an API request's), when tracing is on."""
    if _state.tracer is None:
        return None
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get(TRACEPARENT)


@functools.lru_cache(maxsize=1024)
def _context_of(traceparent: bytes | None) -> Any:
    """The remote context a traceparent names (cached: a batch's outputs share a few)."""
    from opentelemetry.propagate import extract

    if traceparent is None:
        return None
    return extract({TRACEPARENT: traceparent.decode("ascii")})


def produced(record: OutRecord, parent: bytes | None) -> OutRecord:
    """`record` with the trace context it goes out with.

    Off: `parent`, unchanged. On: a producer span, the child of `parent` (or of the
    current span), whose context the record carries.
    """
    tracer = _state.tracer
    if tracer is None:
        return record if parent is None else with_traceparent(record, parent)
    from opentelemetry.propagate import inject
    from opentelemetry.trace import Link, SpanKind, get_current_span

    # Parented by the input's context, linked to the batch's span it was made in.
    links = [Link(get_current_span().get_span_context())] if parent is not None else []
    with tracer.start_as_current_span(
        f"{record.topic} publish",
        context=_context_of(parent),
        kind=SpanKind.PRODUCER,
        links=links,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "publish",
            "messaging.destination.name": record.topic,
            "messaging.kafka.message.key": (record.key or b"").decode("utf-8", "replace")[:200],
        },
    ):
        carrier: dict[str, str] = {}
        inject(carrier)
    value = carrier.get(TRACEPARENT)
    return with_traceparent(record, value.encode("ascii")) if value else record


def carry(
    inputs: Sequence[tuple[str, Sequence[tuple[str, bytes]]]], outputs: list[OutRecord]
) -> list[OutRecord]:
    """The outputs, each with the `traceparent` of the input its `cause` names.

    `inputs` are (event_id, headers) of the batch's records. An output whose cause is
    not in the batch (or has no traceparent) gets a fresh context when tracing is on,
    and none when it is off.
    """
    parents: dict[str, bytes] = {}
    for event_id, headers in inputs:
        if headers:
            found = traceparent_in(headers)
            if found is not None:
                parents.setdefault(event_id, found)
    if not parents and _state.tracer is None:
        return outputs
    return [produced(r, parents.get(r.cause) if r.cause is not None else None) for r in outputs]


@contextlib.contextmanager
def batch_span(
    group: str, topics: Sequence[str], parents: Sequence[Sequence[tuple[str, bytes]]]
) -> Iterator[Any]:
    """A consumer span around one batch's handling, linked to each input's context.

    Yields the span's context (None when off), for the batch's commit to join later.
    """
    tracer = _state.tracer
    if tracer is None:
        yield None
        return
    from opentelemetry.trace import Link, SpanKind, get_current_span

    links = []
    for headers in parents:
        parent = traceparent_in(headers)
        if parent is not None:
            context = get_current_span(_context_of(parent)).get_span_context()
            links.append(Link(context))
    with tracer.start_as_current_span(
        f"{', '.join(sorted(set(topics)))} process",
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.consumer.group.name": group,
            "messaging.batch.message_count": len(parents),
        },
    ):
        from opentelemetry.context import get_current

        yield get_current()


@contextlib.contextmanager
def span(name: str, *, within: Any = None, **attributes: str | int) -> Iterator[None]:
    """An internal span, in the context `within` (a batch's) or the current one."""
    tracer = _state.tracer
    if tracer is None:
        yield
        return
    with tracer.start_as_current_span(name, context=within, attributes=attributes):
        yield
