"""Process entry points shared by the services: serve an API, run a worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import uvicorn
from fastapi import FastAPI

from chassis import logging as ck_logging
from chassis import tracing
from chassis.mongo import Prepare
from chassis.settings import ServiceSettings
from chassis.worker import BackgroundTask, ProcessorFactory, run_worker


def serve_api(settings: ServiceSettings, build: Callable[[ServiceSettings], FastAPI]) -> None:
    ck_logging.configure(settings.log_level, settings.service_name)
    # Off (nothing imported) unless OTEL_EXPORTER_OTLP_ENDPOINT is set: chassis.tracing.
    tracing.configure(f"{settings.service_name}-api")
    app = build(settings)
    tracing.instrument_app(app)
    try:
        _serve(settings, app)
    finally:
        tracing.shutdown()


def _serve(settings: ServiceSettings, app: FastAPI) -> None:
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=settings.http_keep_alive_seconds,
        server_header=False,
        # uvicorn would take X-Forwarded-For from 127.0.0.1 (any local process)
        # as the client; chassis/clients.py applies TRUSTED_PROXIES instead.
        proxy_headers=False,
        forwarded_allow_ips="",
    )


def run_worker_process(
    settings: ServiceSettings,
    *,
    topics: Sequence[str],
    prepare: Prepare,
    processors: ProcessorFactory,
    background: Sequence[BackgroundTask] = (),
    stop: asyncio.Event | None = None,
) -> None:
    """Runs a service's worker until SIGTERM: the one way every worker is wired.

    `prepare` creates the indexes and collections the worker uses (its database's
    `prepare_worker`), retried until the database answers, and finishes before any
    processor consumes or any background job starts. Preparing first is also what
    avoids the embedded database's livelock when a collection is created while
    transactions run (a consume loop's writes creating the collection an index
    creation creates at the same moment). `stop` is set on SIGTERM/SIGINT; a service
    whose background loops watch an event of their own (to finish in-flight work
    rather than be cancelled) passes that event here.
    """
    ck_logging.configure(settings.log_level, settings.service_name)
    asyncio.run(
        run_worker(
            settings,
            topics=topics,
            processors=processors,
            background=background,
            stop=stop,
            prepare=prepare,
        )
    )
