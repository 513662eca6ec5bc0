"""How the one record a batch handler fails on is isolated.

A handler gets the validated records of one poll and returns the records to produce
and the ones it rejects (`chassis.records`). When it raises, `handle_isolating` tells
the broker's and the database's errors (retried by the loop, with backoff) from
anything else: those come from the records themselves, so the batch is split in halves
until the one record that fails alone is found, and that record becomes a dead letter
(CONTRACT 6.9: no input stops a worker).
"""

from __future__ import annotations

import logging

from aiokafka.errors import KafkaError
from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError, WTimeoutError

from chassis.metrics import WorkerCounters
from chassis.records import BatchHandler, HandlerResult, Inbound

log = logging.getLogger(__name__)

HANDLER_ERROR = "handler_error"
"""The dead-letter reason of a record its handler fails on alone."""

_TRANSIENT_LABELS = ("TransientTransactionError", "RetryableWriteError", "NetworkError")


def is_infrastructure(error: BaseException) -> bool:
    """Whether `error` is the broker's or the database's (retry) rather than the input's.

    An exception class may say so itself with a true `retryable` attribute (an
    optimistic-concurrency conflict, say).
    """
    if getattr(error, "retryable", False) is True:
        return True
    if isinstance(error, KafkaError):
        return True
    if isinstance(error, ConnectionFailure | ExecutionTimeout | WTimeoutError):
        return True
    if isinstance(error, PyMongoError):
        return any(error.has_error_label(label) for label in _TRANSIENT_LABELS)
    # A socket error or a timeout on the way to either (asyncio.TimeoutError is TimeoutError).
    return isinstance(error, OSError)


def failure_name(error: BaseException) -> str:
    """The exception's type only: its message may carry the record's personal data."""
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}"


async def handle_isolating(
    handler: BatchHandler, batch: list[Inbound], counters: WorkerCounters
) -> HandlerResult:
    """`handler(batch)`; when it fails on the input, the halves, down to single records.

    Infrastructure errors propagate (the loop retries the whole batch). Records handled
    in a half that succeeds keep their writes and output; the handlers are idempotent,
    so the writes of a failed attempt are those of a crash before commit.
    """
    try:
        return await handler(batch)
    except Exception as error:
        if is_infrastructure(error):
            raise
        if len(batch) == 1:
            return _dead_handler_record(batch[0], error, counters)
        counters.inc("batch_bisections_total", topic=batch[0].topic)
        log.warning(
            "batch handler failed on its input; splitting the batch",
            extra={"records": len(batch), "error": failure_name(error)},
        )
    middle = len(batch) // 2
    result = await handle_isolating(handler, batch[:middle], counters)
    result.extend(await handle_isolating(handler, batch[middle:], counters))
    return result


def _dead_handler_record(
    inbound: Inbound, error: BaseException, counters: WorkerCounters
) -> HandlerResult:
    name = failure_name(error)
    log.error(
        "handler failed on one record; dead-lettered",
        extra={
            "topic": inbound.topic,
            "partition": inbound.partition,
            "offset": inbound.offset,
            "event_id": inbound.envelope.event_id,
            "error": name,
        },
    )
    result = HandlerResult()
    result.reject(inbound, HANDLER_ERROR, f"{name} while handling this record")
    return result
