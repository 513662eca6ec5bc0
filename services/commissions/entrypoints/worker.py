"""Stream worker of the commissions service; run as a module.

Consumes order_applied and refunds, runs the outbox relay and the daily payables job.
"""

from __future__ import annotations

import gc

from chassis.run import run_worker_process
from chassis.settings import load_settings
from services.commissions.bootstrap import (
    build_background,
    build_processors,
    consumes,
    prepare_worker,
    produces,
)
from services.commissions.config import Settings

GC_GEN0_THRESHOLD = 50_000
"""Allocations between young-generation collections (CPython's default: 700).

A batch allocates hundreds of thousands of short-lived objects (envelopes, order
lines, documents, records) that reference counting frees; at the default the
cycle collector runs hundreds of times per batch and finds nothing. Memory stays
bounded: cycles are still collected, only less often.
"""


def tune_gc() -> None:
    """Startup objects (modules, schemas) out of the collector's way; fewer collections."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def main() -> None:
    settings = load_settings(Settings)
    tune_gc()
    run_worker_process(
        settings,
        topics=[*consumes(settings), *produces(settings)],
        prepare=prepare_worker,
        processors=build_processors(settings),
        background=build_background(settings),
    )


if __name__ == "__main__":
    main()
