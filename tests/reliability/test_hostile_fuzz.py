"""Fuzz of hostile input (issue 19, CONTRACT 6.9): no exception escapes but as a dead letter.

Raw bytes and mutated real events go into `parse_event` for every topic (only
EventValidationError may come out), and into each service's worker as one poll of
its consume loop, with its real handler on the embedded database: the batch is
prepared (parsed, handled, failures isolated) without raising, and every record is
either handled or a dead letter. Bounded for CI; `HOSTILE_FUZZ_EXAMPLES=5000` for a
longer run. Figures go to `.data/reliability/hostile_fuzz.json` for
`python -m devkit.reliability report`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chassis.consumer import TransactionalProcessor
from chassis.metrics import WorkerCounters
from shared.envelope import EventValidationError, encode, parse_event
from shared.examples import example_events
from shared.topics import TOPICS

EXAMPLES = int(os.environ.get("HOSTILE_FUZZ_EXAMPLES", "200"))
FIGURES = Path(".data/reliability/hostile_fuzz.json")

TEMPLATES: dict[str, list[bytes]] = {}
for _topic, _envelope in example_events():
    TEMPLATES.setdefault(_topic, []).append(encode(_envelope))

HOSTILE_TEXT = [
    "9999-12-31T23:59:59Z",
    "0999-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "2027-02-30",
    "1999-12-31",
    "$where",
    "a.b",
    "$gt",
    "\x00",
    "\u202e",
    "\ufeff",
    "x" * 5000,
]

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**15, max_value=10**40),
    st.integers(max_value=-(10**15)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(codec=None, categories=None), max_size=20),
    st.sampled_from(HOSTILE_TEXT),
)
_AGGREGATE_IDS = {
    "order_id",
    "license_key",
    "refund_id",
    "advisory_id",
    "line_id",
    "notification_id",
}

hostile_values = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _get(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = dict(document) if isinstance(document, dict) else list(document)
    copy[head] = _replace(document[head], rest, value)  # type: ignore[index]
    return copy


@st.composite
def hostile_records(draw: st.DrawFn, topic: str) -> bytes | None:
    """Raw bytes, or a real event of `topic` with one part replaced or the bytes spliced."""
    kinds = ["bytes", "mutate", "mutate", "splice", "none", "text", "text", "text", "valid"]
    kind = draw(st.sampled_from(kinds))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "none":
        return None
    template = draw(st.sampled_from(TEMPLATES[topic]))
    if kind == "splice":
        at = draw(st.integers(0, len(template)))
        cut = draw(st.integers(0, 8))
        return template[:at] + draw(st.binary(max_size=8)) + template[at + cut :]
    document = json.loads(template)
    document["event_id"] = draw(st.uuids()).hex
    # Fresh aggregate ids, so a mutated event is not merely a conflicting duplicate.
    suffix = f"-{draw(st.integers(0, 10**6))}"
    for path in list(_paths(document)):
        if path and str(path[-1]) in _AGGREGATE_IDS and isinstance(_get(document, path), str):
            document = _replace(document, path, _get(document, path) + suffix)
    if kind == "valid":
        return json.dumps(document).encode()
    paths = list(_paths(document))
    if kind == "text":  # a string for a string: what passes the schema reaches the handler
        paths = [p for p in paths if isinstance(_get(document, p), str)]
        value: Any = draw(st.text(max_size=40) | st.sampled_from(HOSTILE_TEXT))
    else:
        value = draw(hostile_values)
    path = paths[draw(st.integers(0, len(paths) - 1))]
    mutated = _replace(document, path, value)
    text = json.dumps(mutated, allow_nan=True, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


FIGURES_SO_FAR: dict[str, Any] = {}


def _record_figures(name: str, cases: int, seconds: float, found: str) -> None:
    FIGURES_SO_FAR[f"{name}: cases"] = cases
    FIGURES_SO_FAR[f"{name}: seconds"] = round(seconds, 1)
    FIGURES_SO_FAR[f"{name}: found"] = found
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    previous["run"] = (
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, HOSTILE_FUZZ_EXAMPLES={EXAMPLES}"
    )
    previous.update(FIGURES_SO_FAR)
    FIGURES.write_text(json.dumps(previous, indent=2))


@pytest.mark.unit
@pytest.mark.parametrize("topic", sorted(TEMPLATES))
def test_parse_event_raises_nothing_but_event_validation_errors(topic: str) -> None:
    seen = [0]
    started = time.monotonic()

    @given(raw=hostile_records(topic))
    @settings(
        max_examples=EXAMPLES * 5,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(raw: bytes | None) -> None:
        seen[0] += 1
        try:
            parse_event(topic, raw if raw is not None else b"")
        except EventValidationError as error:
            assert error.reason and len(error.detail) <= 1000

    run()
    _record_figures(f"parse_event {topic}", seen[0], time.monotonic() - started, "nothing")


@dataclasses.dataclass
class _Record:
    offset: int
    value: bytes | None
    key: bytes | None = b"fuzz"
    headers: tuple[tuple[str, bytes | None], ...] = ()


def _factory(service: str, kafka: str, mongo: str, db_name: str) -> Any:
    common: dict[str, Any] = {
        "environment": "dev",  # the public dev keys (WEBHOOK_SECRET_KEYS) are fine here
        "admin_token": "fuzz-admin-token-0123456789",
        "kafka_bootstrap": kafka,
        "mongo_url": mongo,
    }
    if service == "registration":
        from services.registration import bootstrap as registration
        from services.registration.config import Settings as RegistrationSettings

        settings = RegistrationSettings(**common, REGISTRATION_MONGO_DB=db_name)
        return registration.build_processors(settings), registration.prepare_worker
    if service == "commissions":
        from services.commissions import bootstrap as commissions
        from services.commissions.config import Settings as CommissionsSettings

        return (
            commissions.build_processors(
                CommissionsSettings(**common, COMMISSIONS_MONGO_DB=db_name)
            ),
            commissions.prepare_worker,
        )
    from services.notifications import bootstrap as notifications
    from services.notifications.config import Settings as NotificationsSettings

    return (
        notifications.build_processors(
            NotificationsSettings(
                **common,
                NOTIFICATIONS_MONGO_DB=db_name,
                unsubscribe_secret="fuzz-unsubscribe-secret-0123456789",
            )
        ),
        notifications.prepare_worker,
    )


@pytest.mark.integration
@pytest.mark.parametrize("service", ["registration", "commissions", "notifications"])
async def test_every_worker_dead_letters_what_it_cannot_handle(
    service: str, kafka_bootstrap: str, mongo_url: str, mongo_db: Any
) -> None:
    factory, prepare = _factory(service, kafka_bootstrap, mongo_url, mongo_db.name)
    await prepare(mongo_db)  # as the worker does before it consumes (run_worker_process)
    counters = WorkerCounters()
    processor: TransactionalProcessor = next(iter(factory(mongo_db, counters, "fuzz")))
    topics = [t for t in processor.topics if t in TOPICS and t in TEMPLATES]
    # Every topic the worker consumes is fuzzed: one consumed later has its examples too.
    assert topics and topics == list(processor.topics), processor.topics
    offsets = iter(range(10**9))
    handled = [0]
    started = time.monotonic()
    batches = st.lists(st.tuples(st.sampled_from(topics), st.data()), min_size=1, max_size=6)
    examples = max(10, EXAMPLES // 4)
    collected: list[dict[TopicPartition, list[_Record]]] = []

    @given(batch=batches)
    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def collect(batch: list[tuple[str, Any]]) -> None:
        polls: dict[TopicPartition, list[_Record]] = {}
        for topic, data in batch:
            raw = data.draw(hostile_records(topic))
            polls.setdefault(TopicPartition(topic, 0), []).append(_Record(next(offsets), raw))
        collected.append(polls)

    collect()  # hypothesis draws the batches; the loop below runs them on the event loop
    try:
        for polls in collected:
            # Raises only for the broker's or the database's errors: none of those here.
            await processor._prepare(polls)  # type: ignore[arg-type]
            handled[0] += sum(len(rs) for rs in polls.values())
    finally:
        with contextlib.suppress(Exception):
            await processor.stop()
    reasons: dict[str, int] = {}
    for c in counters.snapshot():
        if c["name"] == "dead_letters_total":
            reason = c["labels"]["reason"]
            reasons[reason] = reasons.get(reason, 0) + c["value"]
    dead = sum(reasons.values())
    # handler_error: the handler raised on a record that passed the schema (isolated).
    isolated = reasons.get("handler_error", 0)
    _record_figures(
        f"worker {service}",
        handled[0],
        time.monotonic() - started,
        f"no exception escaped; {isolated} records isolated as handler_error;"
        f" {dead} dead letters ({', '.join(f'{k} {v}' for k, v in sorted(reasons.items()))});"
        f" {handled[0] - dead} handled",
    )
