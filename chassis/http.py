"""The FastAPI app every service builds on: health, readiness, metrics, errors, limits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis import errors, heartbeat, metrics
from chassis.kafka import ensure_topics, make_producer
from chassis.mongo import Prepare, connect, database, ping
from chassis.retry import retry_until_ready
from chassis.settings import ServiceSettings

log = logging.getLogger(__name__)

Hook = Callable[[FastAPI], Awaitable[None]]

PREPARE_WAIT_S = 5.0
"""How long an API's start waits for its `prepare` before serving without it."""


class BodySizeLimit:
    """Refuses bodies over `limit` bytes with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0
        exceeded = False
        started = False

        async def limited() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # FastAPI turns any error while it reads the body into its own 400
            # ("There was an error parsing the body"): once the limit is passed,
            # whatever the app answers is replaced by the 413 (CONTRACT 6.9).
            nonlocal started
            if exceeded and not started:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited, guarded_send)
        if exceeded and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = JSONResponse(
            errors.error_body("payload_too_large", f"request body over {self.limit} bytes"), 413
        )
        await send({"type": "http.response.start", "status": 413, "headers": body.raw_headers})
        await send({"type": "http.response.body", "body": body.body})


class _TooLarge(Exception):
    pass


def create_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    topics: Sequence[str],
    on_startup: Hook | None = None,
    on_shutdown: Hook | None = None,
    prepare: Prepare | None = None,
) -> FastAPI:
    """An app with the contract's operational endpoints; the service adds its routers.

    `prepare` (the indexes and seed documents the API's own requests rely on) is
    retried until the database answers (`retry_until_ready`). The start waits for it
    a few seconds (usually it is done at once) before `on_startup`; while the database
    is still starting it carries on in the background, so `/healthz` answers and
    `/readyz` reports the database meanwhile.
    """

    http_metrics = metrics.HttpMetrics(settings.service_name)
    heartbeat_max_age = timedelta(seconds=max(10.0, settings.worker_heartbeat_seconds * 4))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.mongo = connect(settings)
        app.state.db = database(app.state.mongo, settings)
        app.state.producer = None
        kafka_task = asyncio.create_task(_start_kafka(app, settings, topics))
        prepared: asyncio.Task[bool] | None = None
        if prepare is not None:
            db = app.state.db
            prepared = asyncio.create_task(
                retry_until_ready("database preparation", lambda: prepare(db)), name="prepare"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(prepared), PREPARE_WAIT_S)
        if on_startup is not None:
            await on_startup(app)
        try:
            yield
        finally:
            if on_shutdown is not None:
                await on_shutdown(app)
            for task in (kafka_task, prepared):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            if app.state.producer is not None:
                await app.state.producer.stop()
            await app.state.mongo.close()

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    errors.install(app)
    app.middleware("http")(http_metrics.middleware)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)

    @app.get("/healthz", tags=["operations"], summary="the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": settings.service_name}

    async def database_check(request: Request) -> str:
        try:
            await asyncio.wait_for(ping(request.app.state.mongo), 2.0)
            return "ok"
        except Exception as error:  # any failure means "not ready", with its kind
            return f"unreachable: {type(error).__name__}"

    async def full_status(request: Request) -> JSONResponse:
        """The suite behind this API: broker, workers holding partitions, their alarms."""
        checks = {"database": await database_check(request)}
        producer: AIOKafkaProducer | None = request.app.state.producer
        if producer is None:
            checks["broker"] = "connecting"
        else:
            try:
                await asyncio.wait_for(producer.client.fetch_all_metadata(), 2.0)
                checks["broker"] = "ok"
            except Exception as error:
                checks["broker"] = f"unreachable: {type(error).__name__}"
        workers: list[dict[str, Any]] = []
        alarms: list[str] = []
        if checks["database"] == "ok":
            beats = await heartbeat.recent(request.app.state.db, heartbeat_max_age)
            assigned = [b for b in beats if b.get("assigned")]
            checks["consumers"] = (
                f"ok ({len(assigned)} worker(s))" if assigned else "no worker has partitions"
            )
            alarms = heartbeat.alarms(beats)
            checks["alarms"] = "ok" if not alarms else f"{len(alarms)} raised"
            workers = [heartbeat.summary(b) for b in beats]
        else:
            checks["consumers"] = checks["alarms"] = "unknown"
        ready = all(v == "ok" or v.startswith("ok ") for v in checks.values())
        return JSONResponse(
            {
                "status": "ready" if ready else "not_ready",
                "checks": checks,
                "alarms": alarms,
                "workers": workers,
            },
            status_code=200 if ready else 503,
        )

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="this API can answer requests: its database is reachable (`?full=1`: /status)",
    )
    async def readyz(request: Request, full: bool = False) -> JSONResponse:
        # Only what this pod needs to answer: a broker blip or a crash-looping worker
        # must not take every API replica out of its Service (registration's outbox
        # holds what it publishes until the broker is back; no route produces directly).
        if full:
            return await full_status(request)
        checks = {"database": await database_check(request)}
        ready = checks["database"] == "ok"
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get(
        "/status",
        tags=["operations"],
        summary="the whole service: database, broker, workers holding partitions, alarms",
    )
    async def status(request: Request) -> JSONResponse:
        return await full_status(request)

    @app.get("/metrics", tags=["operations"], summary="Prometheus text format")
    async def prometheus(request: Request) -> Response:
        try:
            beats = await heartbeat.recent(request.app.state.db, timedelta(hours=1))
        except Exception:
            beats = []
        return Response(
            metrics.render(http_metrics, settings.service_name, beats),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    return app


async def _start_kafka(app: FastAPI, settings: ServiceSettings, topics: Sequence[str]) -> None:
    """Connects in the background so the API serves /healthz while the broker comes up."""

    async def connect_producer() -> None:
        producer = make_producer(settings.kafka_bootstrap)
        try:
            await ensure_topics(
                settings.kafka_bootstrap,
                topics,
                partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
            )
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        app.state.producer = producer

    await retry_until_ready("connecting to the broker", connect_producer)


def app_state(request: Request) -> Any:
    return request.app.state
