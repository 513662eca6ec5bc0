"""The notifications HTTP API (CONTRACT 2.3): thin handlers over the stores and use cases."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from chassis.bounds import BoundedDate
from chassis.errors import ApiError
from chassis.partner_audit import OPERATOR, AuditEntry
from services.notifications.domain import unsubscribe as unsubscribe_tokens
from services.notifications.domain.webhook_policy import (
    WebhookTargetRefused,
    check_addresses,
    parse_target,
)
from services.notifications.entrypoints.dependencies import Admin, ApiServices, Partner, Services
from services.notifications.service_layer.ports import (
    DeliveryCriteria,
    DeliveryError,
    DeliveryRecord,
    DeliveryStatus,
    WebhookConfig,
)
from services.notifications.service_layer.webhook_secrets import open_secret, rotate_all

router = APIRouter()


class WebhookIn(BaseModel):
    url: str = Field(min_length=8, max_length=2048, description="https URL to POST to")


class WebhookOut(BaseModel):
    url: str
    secret: str = Field(description="signing secret (Standard Webhooks); shown only now")
    signature_scheme: str = "standard-webhooks v1 (HMAC-SHA256)"


class WebhookSettingsOut(BaseModel):
    url: str
    signature_scheme: str = "standard-webhooks v1 (HMAC-SHA256)"


class WebhookTestOut(BaseModel):
    delivered: bool
    webhook_id: str
    error: str | None = Field(None, description="why not, as a short code")


class DeliveryOut(BaseModel):
    notification_id: str
    notification_type: str
    channel: str
    audience: str
    status: str
    attempts: int
    error: str | None = Field(description="a short code, e.g. `isolation_violation`")
    error_detail: str | None = Field(
        None, description="why, beside the code (for isolation: the checks that failed)"
    )
    partner_scope: str | None
    license_keys: list[str]
    created_at: dt.datetime | None
    finished_at: dt.datetime | None
    recipient: str | None = None


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]
    total: int


class ReminderRunOut(BaseModel):
    as_of: dt.date
    considered: int
    planned: int
    new: int


class WebhookSecretRotationOut(BaseModel):
    resealed: int = Field(description="secrets re-sealed under the first WEBHOOK_SECRET_KEYS key")
    current: int = Field(description="secrets already sealed under it")
    unreadable: list[str] = Field(
        description="partners whose secret no configured key opens; they must set a new one"
    )


def _delivery(record: DeliveryRecord, *, with_recipient: bool) -> DeliveryOut:
    return DeliveryOut(
        notification_id=record.notification_id,
        notification_type=record.notification_type,
        channel=record.channel,
        audience=record.audience,
        status=record.status,
        attempts=record.attempts,
        error=record.error,
        error_detail=record.error_detail,
        partner_scope=record.partner_scope,
        license_keys=record.license_keys,
        created_at=record.created_at,
        finished_at=record.finished_at,
        recipient=record.recipient if with_recipient else None,
    )


@router.put(
    "/v1/partner/webhook",
    response_model=WebhookOut,
    tags=["partner"],
    summary="set the webhook URL; returns a new signing secret, shown once",
)
async def put_webhook(body: WebhookIn, caller: Partner, s: Services) -> Any:
    try:
        target = parse_target(body.url, allow_loopback=s.webhook_allow_loopback)
        check_addresses(target, await s.resolve_host(target.host, target.port))
    except WebhookTargetRefused as refused:
        raise ApiError(422, refused.code, str(refused), field="url") from None
    secret = s.new_signing_secret()
    sealed = s.secret_box.seal(secret)
    now = s.clock.now()
    await s.webhooks.set(WebhookConfig(caller.partner_id, target.url, sealed), now)
    await s.partner_audit.record(  # CONTRACT 6.7; the host, never the secret
        AuditEntry(
            partner_id=caller.partner_id,
            actor_key_id=caller.key_id or OPERATOR,
            action="webhook.set",
            at=now,
            detail={"host": target.host},
        )
    )
    return WebhookOut(url=target.url, secret=secret)


async def _webhook_of(s: ApiServices, partner_id: str) -> WebhookConfig:
    config = (await s.webhooks.of([partner_id])).get(partner_id)
    if config is None:
        raise ApiError(404, "webhook_not_set", "no webhook is set; PUT /v1/partner/webhook first")
    return config


@router.get(
    "/v1/partner/webhook",
    response_model=WebhookSettingsOut,
    tags=["partner"],
    summary="the webhook URL in use (never the secret)",
)
async def get_webhook(caller: Partner, s: Services) -> Any:
    return WebhookSettingsOut(url=(await _webhook_of(s, caller.partner_id)).url)


@router.post(
    "/v1/partner/webhook/test",
    response_model=WebhookTestOut,
    tags=["partner"],
    summary="send one signed `webhook.test` event now and say how it went",
)
async def test_webhook(caller: Partner, s: Services) -> Any:
    """A ping, sent at once and not retried or recorded: it tests the receiver, nothing else."""
    config = await _webhook_of(s, caller.partner_id)
    now = s.clock.now()
    webhook_id = f"test-{uuid.uuid4()}"
    body = json.dumps(
        {
            "type": "webhook.test",
            "timestamp": now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "data": {"partner_id": caller.partner_id, "message": "Channelkeep test event"},
        },
        separators=(",", ":"),
    )
    try:
        secret = await open_secret(s.secret_box, s.webhooks, config)
        await s.webhook_sender.send(config.url, secret, webhook_id, now, body)
    except DeliveryError as error:
        return WebhookTestOut(delivered=False, webhook_id=webhook_id, error=error.code)
    return WebhookTestOut(delivered=True, webhook_id=webhook_id)


@router.get(
    "/v1/partner/deliveries",
    response_model=DeliveriesOut,
    tags=["partner"],
    summary="deliveries to the caller",
)
async def partner_deliveries(
    caller: Partner,
    s: Services,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Any:
    found = await s.deliveries.for_partner(caller.partner_id, limit, offset)
    return DeliveriesOut(
        deliveries=[_delivery(d, with_recipient=False) for d in found.records],
        total=found.total,
    )


@router.post(
    "/v1/admin/reminders/run",
    response_model=ReminderRunOut,
    tags=["admin"],
    summary="run the renewal-reminder pass as of a day (idempotent)",
)
async def run_reminders(
    _: Admin,
    s: Services,
    as_of: Annotated[
        BoundedDate | None, Query(description="YYYY-MM-DD; default today (UTC)")
    ] = None,
) -> Any:
    day = as_of or s.clock.now().astimezone(dt.UTC).date()
    summary = await s.reminders.run(day)
    return ReminderRunOut(
        as_of=summary.as_of,
        considered=summary.considered,
        planned=summary.planned,
        new=summary.new,
    )


@router.post(
    "/v1/admin/webhook-secrets/rotate",
    response_model=WebhookSecretRotationOut,
    tags=["admin"],
    summary="re-seal every webhook signing secret under the first WEBHOOK_SECRET_KEYS key",
)
async def rotate_webhook_secrets(_: Admin, s: Services) -> Any:
    """Run after putting a new key first in WEBHOOK_SECRET_KEYS on every notifications
    process; once it reports nothing unreadable, the old keys can be dropped (idempotent)."""
    report = await rotate_all(s.secret_box, s.webhooks)
    return WebhookSecretRotationOut(
        resealed=report.resealed, current=report.current, unreadable=report.unreadable
    )


@router.get(
    "/v1/admin/deliveries",
    response_model=DeliveriesOut,
    tags=["admin"],
    summary="deliveries by licence key, recipient (e-mail address or partner id), status, error",
)
async def admin_deliveries(
    _: Admin,
    s: Services,
    license_key: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    recipient: Annotated[str | None, Query(min_length=1, max_length=320)] = None,
    status: Annotated[
        DeliveryStatus | None,
        Query(description="e.g. `failed`: refused messages show `error: isolation_violation`"),
    ] = None,
    error: Annotated[
        str | None,
        Query(min_length=1, max_length=100, description="an error code: `isolation_violation`"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Any:
    """Operators' view (CONTRACT 2.3, 6.8), oldest first; `total` counts every match."""
    criteria = DeliveryCriteria(
        license_key=license_key, recipient=recipient, status=status, error=error
    )
    found = await s.deliveries.matching(criteria, limit, offset)
    return DeliveriesOut(
        deliveries=[_delivery(d, with_recipient=True) for d in found.records],
        total=found.total,
    )


_UNSUBSCRIBED_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Unsubscribed</title></head>
<body style="font-family:Arial,sans-serif;max-width:560px;margin:48px auto;color:#1d2327;">
<h1 style="font-size:22px;">You are unsubscribed</h1>
<p>You will no longer receive renewal reminders or other non-security e-mail at this address.</p>
<p>Security advisories about your licences are still sent: they may need you to act.</p>
</body></html>"""


async def _unsubscribe(token: str, s: ApiServices) -> HTMLResponse:
    contact = unsubscribe_tokens.verify(token, s.unsubscribe_secret)
    if contact is None:
        raise ApiError(400, "invalid_token", "this unsubscribe link is not valid")
    await s.preferences.unsubscribe(contact, s.clock.now())
    return HTMLResponse(_UNSUBSCRIBED_PAGE)


@router.get(
    "/v1/unsubscribe/{token}",
    response_class=HTMLResponse,
    tags=["public"],
    summary="signed link: stop reminders and other non-security e-mail for that contact",
)
async def unsubscribe(token: str, s: Services) -> HTMLResponse:
    return await _unsubscribe(token, s)


@router.post(
    "/v1/unsubscribe/{token}",
    response_class=HTMLResponse,
    tags=["public"],
    summary="one-click unsubscribe (RFC 8058), same effect as the GET",
)
async def unsubscribe_one_click(token: str, s: Services) -> HTMLResponse:
    return await _unsubscribe(token, s)
