"""E-mail over SMTP: a pool of kept-open connections, ESMTP PIPELINING when offered.

Messages are written straight to bytes by `mime.email_bytes`; one session's
protocol is `smtp_session`, this module the pool of them.

Each connection sends one message at a time. When the server offers
PIPELINING (RFC 2920) the envelope goes in one write (`MAIL`, `RCPT`, `DATA`),
then the content: two round trips a message instead of four; otherwise the
commands go one by one. Every reply is checked, whatever was pipelined:

- a `5xx` to `MAIL`, `RCPT`, `DATA` or the content is permanent (the address
  or the message is refused: `smtp_recipient_refused`, `smtp_<code>`);
- a `4xx`, a timeout or a dropped connection is transient and retried by the
  dispatcher; so are failures to connect, greet, start TLS or authenticate
  (the server, not this message, is the problem);
- a kept-open connection that turns out dead before any content went out (the
  server dropped it while idle) is reopened and the message tried once more;
  once the content was written, nothing is retried here: the message may have
  been taken, and the dispatcher decides (the same Message-ID goes again).
"""

from __future__ import annotations

import asyncio

from services.notifications.adapters.mime import email_bytes
from services.notifications.adapters.smtp_session import (
    _Connection,
    _envelope_address,
    _Lost,
    _stuffed,
)
from services.notifications.service_layer.ports import DeliveryError, OutgoingEmail


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
        self.connections = max(1, connections)
        self._idle: asyncio.Queue[_Connection] | None = None

    def _pool(self) -> asyncio.Queue[_Connection]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self.connections):
                self._idle.put_nowait(_Connection(self))
        return self._idle

    async def send(self, email_: OutgoingEmail) -> None:
        content = _stuffed(email_bytes(email_, domain=self.domain))
        from_address = _envelope_address(email_.from_address)
        to_address = _envelope_address(email_.to_address)
        pool = self._pool()
        connection = await pool.get()
        try:
            await self._send_on(connection, from_address, to_address, content)
        finally:
            pool.put_nowait(connection)

    async def _send_on(
        self, connection: _Connection, from_address: bytes, to_address: bytes, content: bytes
    ) -> None:
        for attempt in (1, 2):
            reused = connection.usable
            if not reused:
                await connection.open()
            try:
                async with asyncio.timeout(self.timeout):
                    await connection.transaction(from_address, to_address, content)
                return
            except DeliveryError:
                raise
            except (_Lost, OSError) as error:
                # A kept-open connection the server dropped: reopen once, if no
                # content went out; else the dispatcher decides.
                connection.close()
                if attempt == 2 or not reused or error.args == ("content sent",):
                    raise DeliveryError("smtp_connection_lost") from None
            except TimeoutError:
                connection.close()
                raise DeliveryError("smtp_timeout") from None

    async def close(self) -> None:
        if self._idle is None:
            return
        while not self._idle.empty():
            await self._idle.get_nowait().quit()
