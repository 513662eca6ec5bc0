"""Webhook signing secrets after a key rotation: re-sealed when used, or all at once.

WEBHOOK_SECRET_KEYS lists the keys newest first. A rotation puts a new key first and
keeps the old ones after it, so every row stays readable; these two use cases move the
rows to the new key, after which the old key can be dropped from the list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.notifications.service_layer.ports import (
    DeliveryError,
    SecretBox,
    WebhookConfig,
    Webhooks,
)

log = logging.getLogger(__name__)


async def open_secret(box: SecretBox, webhooks: Webhooks, config: WebhookConfig) -> str:
    """The signing secret of `config`; a row under an older key is re-sealed on the way."""
    secret = box.open(config.secret_ciphertext)
    resealed = box.reseal(config.secret_ciphertext)
    if resealed is not None:
        try:
            await webhooks.replace_secret(config.partner_id, config.secret_ciphertext, resealed)
        except Exception as error:  # the send must not fail for this: the next use retries
            log.warning(
                "webhook secret not re-sealed",
                extra={"partner_id": config.partner_id, "error": type(error).__name__},
            )
    return secret


@dataclass(frozen=True, slots=True)
class RotationReport:
    resealed: int
    current: int
    unreadable: list[str]


async def rotate_all(box: SecretBox, webhooks: Webhooks) -> RotationReport:
    """Re-seals every stored secret under the first key; unreadable rows are named."""
    resealed = current = 0
    unreadable: list[str] = []
    async for config in webhooks.all():
        try:
            new = box.reseal(config.secret_ciphertext)
        except DeliveryError:
            unreadable.append(config.partner_id)
            continue
        if new is None:
            current += 1
        elif await webhooks.replace_secret(config.partner_id, config.secret_ciphertext, new):
            resealed += 1
        else:
            current += 1  # replaced meanwhile by a new secret, sealed under the first key
    log.info(
        "webhook secrets rotated",
        extra={"resealed": resealed, "current": current, "unreadable": len(unreadable)},
    )
    return RotationReport(resealed, current, unreadable)
