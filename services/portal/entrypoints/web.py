"""What every page needs: the session cookie, CSRF checks, forms, rendering, security headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.portal.bootstrap import Portal
from services.portal.domain import presentation, roles
from services.portal.domain.sessions import Session, SignInCsrf, tokens_match

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
MAX_FORM_FIELDS = 50

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
)


def make_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(("html",), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = presentation.format_money
    env.filters["day"] = lambda value: str(value or "")[:10]
    env.filters["moment"] = lambda value: str(value or "").replace("T", " ")[:16]
    return env


def portal(request: Request) -> Portal:
    found: Portal = request.app.state.portal
    return found


PortalDep = Annotated[Portal, Depends(portal)]


class SignInRequired(Exception):
    """No live session: the handler answers with a redirect to the sign-in page."""

    def __init__(self, expired: bool = False) -> None:
        self.expired = expired


class CsrfRejected(Exception):
    """A form without the right CSRF token."""


class PageForbidden(Exception):
    """The signed-in key's role may not use this page (CONTRACT 6.7)."""


def current_session(request: Request, p: Portal) -> Session | None:
    """The request's live session; remembered so the response re-seals it (idle timer)."""
    if hasattr(request.state, "portal_session"):
        found: Session | None = request.state.portal_session
        return found
    session = p.sessions.open(request.cookies.get(p.cookie_name))
    request.state.portal_session = session
    return session


async def reseal_session(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Every response to a signed-in request carries the session sealed anew.

    That restarts the idle timer (the token's timestamp) and keeps what a page changed
    (the webhook URL). A response that set or deleted the cookie itself is left alone,
    and a session revoked meanwhile (sign-out in a concurrent request) is not revived.
    """
    response = await call_next(request)
    session: Session | None = getattr(request.state, "portal_session", None)
    if session is None:
        return response
    p = portal(request)
    prefix = f"{p.cookie_name}=".lower()
    if any(c.lower().startswith(prefix) for c in response.headers.getlist("set-cookie")):
        return response
    if not p.sessions.revoked(session.session_id):
        p.set_session_cookie(response, session)
    return response


def signed_in(request: Request, p: PortalDep) -> Session:
    session = current_session(request, p)
    if session is None:
        raise SignInRequired(expired=p.cookie_name in request.cookies)
    if not roles.may_open(session.role, request.url.path):
        raise PageForbidden
    return session


SessionDep = Annotated[Session, Depends(signed_in)]


async def read_form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (the only kind our forms send)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    raw = (await request.body()).decode("utf-8", errors="replace")
    parsed = parse_qs(raw, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    return {name: values[0].strip() for name, values in parsed.items()}


def check_csrf(session: Session, form: dict[str, str]) -> None:
    if not tokens_match(session.csrf_token, form.get("csrf_token")):
        raise CsrfRejected


def render(
    request: Request,
    template: str,
    session: Session | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    p = portal(request)
    branding = session.branding if session is not None else None
    page = p.templates.get_template(template).render(
        session=session,
        branding=branding,
        csrf_token=session.csrf_token if session is not None else "",
        path=request.url.path,
        today=p.today(),
        nav=roles.nav_for(session.role) if session is not None else [],
        role=session.role if session is not None else None,
        **context,
    )
    return HTMLResponse(page, status_code=status_code)


def render_sign_in(
    request: Request, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A signed-out sign-in form: its CSRF token, with the nonce in a short-lived cookie."""
    p = portal(request)
    nonce = SignInCsrf.new_nonce()
    response = render(
        request,
        template,
        None,
        status_code=status_code,
        sign_in_token=p.sign_in_csrf.token_for(nonce),
        expired=request.query_params.get("expired") == "1",
        **context,
    )
    response.set_cookie(
        p.sign_in_cookie_name,
        nonce,
        max_age=3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=p.settings.secure_cookies,
    )
    return response


async def security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if not request.url.path.startswith("/static/"):
        # Pages show a partner's data (and once, a webhook secret): never cache them.
        response.headers.setdefault("Cache-Control", "no-store")
    if portal(request).settings.secure_cookies:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response
