"""A client-side pause after an empty fetch, for a broker that answers one at once.

Works around the embedded broker (noida-db), which does not hold an empty fetch for
`fetch.max.wait.ms`; off unless `CONSUMER_EMPTY_FETCH_BACKOFF_MS` is set.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer


def throttle_empty_fetches(consumer: AIOKafkaConsumer, backoff_s: float) -> bool:
    """After a fetch that brought nothing, the consumer waits `backoff_s` before the next.

    What a broker does by holding an empty fetch for `fetch.max.wait.ms`, done on the
    client, for a broker that answers it at once (the embedded one): without it the
    consumer's background fetcher asks again and again for an idle partition (an empty
    topic beside a busy one, or everything once caught up), burning CPU in this process
    and the broker that the batch in hand needs. A record that arrives meanwhile waits
    at most `backoff_s` longer. Hooks aiokafka's fetcher (a private API): False, and
    nothing changed, when this aiokafka has no such hook.
    """
    fetcher = getattr(consumer, "_fetcher", None)
    fetch = getattr(fetcher, "_proc_fetch_request", None)
    if fetch is None or getattr(fetch, "throttled", False):
        return fetch is not None

    async def throttled(*args: Any, **kwargs: Any) -> Any:
        got_records = await fetch(*args, **kwargs)
        if not got_records:
            try:
                await asyncio.sleep(backoff_s)
            except asyncio.CancelledError:
                # As the fetch itself: cancelled means closed or unassigned, not an error.
                return False
        return got_records

    throttled.throttled = True  # type: ignore[attr-defined]
    fetcher._proc_fetch_request = throttled  # type: ignore[union-attr]
    return True
