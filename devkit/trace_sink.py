"""A local OTLP/HTTP trace receiver that prints what the suite's processes export.

`./dev up --trace-console` and `./dev demo --trace` start one and point every service at
it (`OTEL_EXPORTER_OTLP_ENDPOINT`), so the services run the same exporter as in
production, and the spans arrive here from every process: `./dev up` prints a line per
span as it arrives, the demo prints the renewal's trace as a tree at the end.
Developer tooling only, like the rest of devkit/.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    service: str
    kind: str
    start_ns: int
    end_ns: int
    links: tuple[str, ...]  # trace ids of the linked contexts

    @property
    def millis(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    def line(self) -> str:
        parent = self.parent_id[:8] if self.parent_id else "root"
        linked = f"  links {len(self.links)}" if self.links else ""
        return (
            f"trace {self.trace_id[:12]}  span {self.span_id[:8]} <- {parent:8}  "
            f"{self.service:22} {self.kind:8} {self.name}  {self.millis:.1f} ms{linked}"
        )


def _spans(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    found: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        service = next(
            (
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            ),
            "?",
        )
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                found.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        name=span.name,
                        service=service,
                        kind=_KINDS.get(span.kind, "?"),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        links=tuple(link.trace_id.hex() for link in span.links),
                    )
                )
    return found


class TraceSink:
    """Receives OTLP/HTTP protobuf exports on 127.0.0.1 (any free port)."""

    def __init__(self, on_span: Callable[[ReceivedSpan], None] | None = None) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self._on_span = on_span
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    received = _spans(body)
                except Exception:  # not OTLP protobuf: refuse, keep serving
                    self.send_response(400)
                    self.end_headers()
                    return
                sink._add(received)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                return None

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """What a service needs to export here, promptly (the batch processor's delay)."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }

    def __enter__(self) -> TraceSink:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _add(self, received: list[ReceivedSpan]) -> None:
        with self._lock:  # one request at a time, so printed lines never interleave
            self.spans.extend(received)
            if self._on_span is not None:
                for span in received:
                    self._on_span(span)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def tree(self, trace_id: str) -> list[str]:
        """The trace's spans as indented lines, parents before children, by start time."""
        spans = sorted(self.trace(trace_id), key=lambda s: s.start_ns)
        known = {s.span_id for s in spans}
        children: dict[str, list[ReceivedSpan]] = {}
        for span in spans:
            parent = span.parent_id if span.parent_id in known else ""
            children.setdefault(parent, []).append(span)
        lines: list[str] = []

        def walk(parent: str, depth: int) -> None:
            for span in children.get(parent, []):
                lines.append(
                    f"{'  ' * depth}{span.service}: {span.name} ({span.kind}, {span.millis:.1f} ms)"
                )
                walk(span.span_id, depth + 1)

        walk("", 0)
        # The batches that handled the trace's records are spans of their own (one per
        # batch, many traces), linked to each record's context.
        linked = sorted(
            (s for s in self.spans if trace_id in s.links and s.trace_id != trace_id),
            key=lambda s: s.start_ns,
        )
        if linked:
            lines.append("batches that handled its records (spans linked to it):")
        for span in linked:
            inner = [s for s in self.trace(span.trace_id) if s.parent_id == span.span_id]
            lines.append(
                f"  {span.service}: {span.name} ({span.kind}, {span.millis:.1f} ms, "
                f"{len(span.links)} linked records, {len(inner)} spans inside)"
            )
        return lines
