"""E-mail over SMTP with aiosmtplib: a small pool of kept-open connections.

A 5xx answer is permanent (the address or message is refused); a 4xx answer,
a timeout or a dropped connection is transient and retried by the dispatcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
from email.message import EmailMessage

import aiosmtplib

from services.notifications.service_layer.ports import DeliveryError, OutgoingEmail


def build_email(outgoing: OutgoingEmail, *, domain: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = outgoing.from_address
    message["To"] = outgoing.to_address
    message["Subject"] = outgoing.subject
    message["Date"] = email.utils.formatdate(usegmt=True)
    # Deterministic: a copy re-sent after a crash carries the same id, so mail
    # clients and archives can recognise it.
    message["Message-ID"] = f"<{outgoing.notification_id}@{domain}>"
    message["X-Notification-Type"] = outgoing.notification_type
    if outgoing.list_unsubscribe_url:
        message["List-Unsubscribe"] = f"<{outgoing.list_unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(outgoing.text)
    message.add_alternative(outgoing.html, subtype="html")
    return message


class SmtpSender:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        domain: str,
        connections: int = 4,
        timeout: float = 10.0,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.domain = domain
        self.timeout = timeout
        self.username = username
        self.password = password
        self.start_tls = start_tls
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        for _ in range(max(1, connections)):
            self._idle.put_nowait(self._client())

    def _client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout,
            start_tls=self.start_tls,
            username=self.username,
            password=self.password,
        )

    async def send(self, email_: OutgoingEmail) -> None:
        message = build_email(email_, domain=self.domain)
        client = await self._idle.get()
        try:
            await self._send_on(client, message)
        finally:
            self._idle.put_nowait(client)

    async def _send_on(self, client: aiosmtplib.SMTP, message: EmailMessage) -> None:
        for attempt in (1, 2):
            try:
                if not client.is_connected:
                    await client.connect()
                await client.send_message(message)
                return
            except aiosmtplib.SMTPRecipientsRefused as error:
                codes = [r.code for r in error.recipients]
                permanent = bool(codes) and all(500 <= c < 600 for c in codes)
                raise DeliveryError("smtp_recipient_refused", permanent=permanent) from None
            except aiosmtplib.SMTPResponseException as error:
                if 500 <= error.code < 600:
                    raise DeliveryError(f"smtp_{error.code}", permanent=True) from None
                raise DeliveryError(f"smtp_{error.code}") from None
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                # A kept-open connection the server dropped: reconnect once, then give up.
                with contextlib.suppress(Exception):
                    client.close()
                if attempt == 2:
                    raise DeliveryError(f"smtp_{type(error).__name__}") from None

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                with contextlib.suppress(Exception):
                    await client.quit()
