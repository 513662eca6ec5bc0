"""Prometheus metrics: HTTP metrics of the API process, and worker counters.

Workers run in their own processes (containers), so their counters travel in
their heartbeat documents and the API renders them on `/metrics`, labelled by
worker instance. Prometheus treats a restarted worker's reset as a counter reset.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_GAUGE_LABELS = ("topic", "partition")
"""The labels of a gauge key's parts after its name: `name:topic`, `name:topic:partition`."""


class WorkerCounters:
    """Counters, gauges and latency histograms, cheap to bump and to snapshot into a document.

    Gauge keys may carry a topic, and a partition, after colons (`consumer_lag:<topic>`,
    `lso_lag:<topic>:<partition>`); `render` makes them labels.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self.gauges: dict[str, float] = {}
        self.histograms: dict[str, dict[str, Any]] = {}

    def observe(self, name: str, seconds: float) -> None:
        histogram = self.histograms.setdefault(
            name, {"buckets": [0] * len(LATENCY_BUCKETS), "count": 0, "sum": 0.0}
        )
        for index, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                histogram["buckets"][index] += 1
        histogram["count"] += 1
        histogram["sum"] += seconds

    def inc(self, name: str, value: int = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        self._values[key] = self._values.get(key, 0) + value

    def get(self, name: str, **labels: str) -> int:
        return self._values.get((name, tuple(sorted(labels.items()))), 0)

    def set_gauge(self, name: str, value: float) -> None:
        self.gauges[name] = value

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "labels": dict(labels), "value": value}
            for (name, labels), value in sorted(self._values.items())
        ]


class HttpMetrics:
    """Request counts and latencies by route template, method and status."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["service", "method", "route"],
            registry=self.registry,
        )
        self.service = service

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        route = _route_template(request)
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            self.requests.labels(self.service, request.method, route, str(status)).inc()
            self.latency.labels(self.service, request.method, route).observe(
                time.perf_counter() - started
            )


def _route_template(request: Request) -> str:
    # Label by template (/v1/partners/{partner_id}), never by raw path: bounded cardinality.
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "other"))
    return "unmatched"


def exported_counter_name(service: str, counter: str) -> str:
    """The family name of a worker counter on `/metrics` (without the `_total` suffix).

    Counters are `channelkeep_worker_<name>`, except one a service names after
    itself (`notifications_isolation_violations_total`): that is a name the
    contract gives operators, exported exactly as it is.
    """
    name = counter.removesuffix("_total")
    if name.startswith(f"{service}_"):
        return name
    return f"channelkeep_worker_{name}"


def render(http: HttpMetrics, service: str, heartbeats: Iterable[Mapping[str, Any]]) -> bytes:
    """The API's own metrics followed by the counters its workers reported."""
    registry = CollectorRegistry()
    families: dict[str, CounterMetricFamily] = {}
    gauges: dict[str, GaugeMetricFamily] = {}
    histograms: dict[str, HistogramMetricFamily] = {}
    for beat in heartbeats:
        instance = str(beat.get("_id", "unknown"))
        for counter in beat.get("counters", []):
            labels = {"service": service, "instance": instance, **counter.get("labels", {})}
            name = exported_counter_name(service, counter["name"])
            # One family per name; our code always uses one label set per counter name.
            family = families.get(name)
            if family is None:
                family = families[name] = CounterMetricFamily(
                    name, f"worker counter {counter['name']}", labels=list(labels)
                )
            family.add_metric(list(labels.values()), counter["value"])
        for gauge_key, value in beat.get("gauges", {}).items():
            gauge_name, *where = gauge_key.split(":", 2)
            name = f"channelkeep_worker_{gauge_name}"
            label_names = ["service", "instance", *_GAUGE_LABELS[: len(where)]]
            family_g = gauges.setdefault(
                name, GaugeMetricFamily(name, f"worker gauge {gauge_name}", labels=label_names)
            )
            family_g.add_metric([service, instance, *where], value)
        for hist_name, hist in beat.get("histograms", {}).items():
            name = f"channelkeep_worker_{hist_name}"
            family_h = histograms.setdefault(
                name,
                HistogramMetricFamily(name, f"worker {hist_name}", labels=["service", "instance"]),
            )
            cumulative = [
                (str(bound), count)
                for bound, count in zip(LATENCY_BUCKETS, hist["buckets"], strict=True)
            ]
            cumulative.append(("+Inf", hist["count"]))
            family_h.add_metric([service, instance], cumulative, hist["sum"])

    class _Collector:
        def collect(self) -> Iterable[Any]:
            yield from families.values()
            yield from gauges.values()
            yield from histograms.values()

    registry.register(_Collector())
    return generate_latest(http.registry) + generate_latest(registry)
