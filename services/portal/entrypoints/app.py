"""The portal's FastAPI app: pages, static files, /healthz, /readyz, /status, /metrics.

Not `chassis.http.create_app`: that readiness checks a broker, a database and
workers, and the portal has none. Readiness here is the three services reachable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client.exposition import generate_latest

from chassis import errors, metrics
from chassis.http import BodySizeLimit
from services.portal.bootstrap import build_portal, service_urls
from services.portal.config import Settings
from services.portal.entrypoints import (
    console_pages,
    customer_pages,
    deal_pages,
    key_pages,
    pages,
    tier_page,
)
from services.portal.entrypoints.web import (
    CsrfRejected,
    PageForbidden,
    SignInRequired,
    current_session,
    make_templates,
    render,
    reseal_session,
    security_headers,
)
from services.portal.service_layer.ports import NotSignedIn, Unavailable, UpstreamError

STATIC = Path(__file__).resolve().parent.parent / "static"


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def build_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    # Wall-clock seconds: a session cookie outlives this process (restarts, other replicas).
    clock: Callable[[], float] = time.time,
    today: Callable[[], dt.date] = _utc_today,
) -> FastAPI:
    """`transport` replaces the network in tests (httpx.MockTransport of the three APIs)."""
    http_metrics = metrics.HttpMetrics(settings.service_name)
    urls = service_urls(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            transport=transport,
            timeout=settings.portal_upstream_timeout_seconds,
            follow_redirects=False,
        ) as http:
            app.state.portal = build_portal(
                settings, http, clock=clock, today=today, templates=make_templates()
            )
            yield

    app = FastAPI(
        title="Channelkeep partner portal",
        version="1.0.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    errors.install(app)
    app.middleware("http")(reseal_session)
    app.middleware("http")(security_headers)
    app.middleware("http")(http_metrics.middleware)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(pages.router)
    app.include_router(key_pages.router)
    app.include_router(deal_pages.router)
    app.include_router(customer_pages.router)
    app.include_router(tier_page.router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(_: Request, exc: SignInRequired) -> Response:
        return RedirectResponse("/sign-in?expired=1" if exc.expired else "/sign-in", 303)

    @app.exception_handler(NotSignedIn)
    async def _key_refused(request: Request, _: NotSignedIn) -> Response:
        # The key stopped working (partner suspended): end the session.
        portal = request.app.state.portal
        portal.sessions.revoke(current_session(request, portal))
        response = RedirectResponse("/sign-in?expired=1", 303)
        portal.delete_session_cookie(response)
        return response

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, _: CsrfRejected) -> Response:
        session = current_session(request, request.app.state.portal)
        return render(
            request,
            "error.html",
            session,
            403,
            title="The form expired",
            message="Please go back, reload the page and try again.",
        )

    @app.exception_handler(PageForbidden)
    async def _page_forbidden(request: Request, _: PageForbidden) -> Response:
        return _forbidden(request)

    @app.exception_handler(UpstreamError)
    async def _upstream(request: Request, error: UpstreamError) -> Response:
        # A refusal the page did not expect: the API's role check (403) is the last word.
        if error.status != 403:
            raise error
        return _forbidden(request)

    def _forbidden(request: Request) -> Response:
        session = current_session(request, request.app.state.portal)
        return render(
            request,
            "error.html",
            session,
            403,
            title="Not for this key",
            message="The key you signed in with has a role that cannot use this page."
            " An admin key of your company can.",
        )

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, _: Unavailable) -> Response:
        session = current_session(request, request.app.state.portal)
        return render(
            request,
            "error.html",
            session,
            503,
            title="Temporarily unavailable",
            message="Part of Channelkeep is not answering right now. Please try again shortly.",
        )

    # The channel team's console (/console): its own session kind, router and error pages.
    console_pages.install(app)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": settings.service_name}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> dict[str, str]:
        # Only what this pod needs: it is up. An upstream API that is down shows as a
        # 503 page on the routes that need it; taking every portal pod out of its
        # Service for it would turn one API's blip into a portal outage.
        return {"status": "ready", "service": settings.service_name}

    @app.get("/status", tags=["operations"])
    async def status(request: Request) -> JSONResponse:
        """For operators and `./dev up`: the three services' `/healthz` reachable."""
        http: httpx.AsyncClient = request.app.state.portal.http

        async def check(base: str) -> str:
            try:
                response = await http.get(f"{base}/healthz", timeout=2.0)
            except httpx.HTTPError as error:
                return f"unreachable: {type(error).__name__}"
            return "ok" if response.status_code == 200 else f"HTTP {response.status_code}"

        names = ("registration", "commissions", "notifications")
        results = await asyncio.gather(*(check(getattr(urls, n)) for n in names))
        checks = dict(zip(names, results, strict=True))
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", tags=["operations"])
    async def prometheus() -> Response:
        return Response(
            generate_latest(http_metrics.registry),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    return app
