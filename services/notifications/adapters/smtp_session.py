"""One kept-open SMTP session (`_Connection`): the protocol, pipelined when offered.

See `smtp` (the pool of sessions) for which replies are permanent and what is retried.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import email.utils
import functools
import socket
import ssl
from dataclasses import dataclass
from typing import Protocol

from services.notifications.service_layer.ports import DeliveryError

_CRLF = b"\r\n"


class ServerSettings(Protocol):
    """Where and how a session connects and authenticates (an `SmtpSender`'s settings)."""

    host: str
    port: int
    timeout: float
    username: str | None
    password: str | None
    start_tls: bool


def _stuffed(payload: bytes) -> bytes:
    """DATA content from CRLF-ended lines: a dot doubled at the start of a line, the final dot."""
    payload = payload.replace(b"\r\n.", b"\r\n..")
    if payload.startswith(b"."):
        payload = b"." + payload
    if not payload.endswith(_CRLF):
        payload += _CRLF
    return payload + b".\r\n"


# --- the protocol -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400


class _Lost(Exception):
    """The connection ended or misbehaved (args `("content sent",)`: after the content)."""


MAX_REPLY_LINE = 8192


class _ReplyReader(asyncio.Protocol):
    """Splits what the server writes into replies, in order (several may come at once)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._lines: list[bytes] = []
        self.replies: collections.deque[Reply] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_REPLY_LINE:
                    self._fail()
                break
            line = bytes(self._buffer[: end + 1]).rstrip(b"\r\n")
            del self._buffer[: end + 1]
            if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in (b"", b" ", b"-"):
                self._fail()
                return
            self._lines.append(line[4:])
            if line[3:4] != b"-":
                self.replies.append(Reply(int(line[:3]), b"\n".join(self._lines)))
                self._lines = []
        self._wake()

    def _fail(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    def eof_received(self) -> bool | None:
        self.lost = True
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def reply(self) -> Reply:
        while not self.replies:
            if self.lost:
                raise _Lost
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self.replies.popleft()


@functools.cache
def _local_hostname() -> str:
    return socket.getfqdn() or "localhost"


def _refusal(reply: Reply, code: str | None = None) -> DeliveryError:
    return DeliveryError(code or f"smtp_{reply.code}", permanent=500 <= reply.code < 600)


class _Connection:
    """One kept-open SMTP session."""

    def __init__(self, sender: ServerSettings) -> None:
        self.sender = sender
        self.reader: _ReplyReader | None = None
        self.extensions: dict[str, str] = {}

    @property
    def usable(self) -> bool:
        reader = self.reader
        return (
            reader is not None
            and not reader.lost
            and not reader.replies  # an unasked-for reply (e.g. 421 on idle): start again
            and reader.transport is not None
            and not reader.transport.is_closing()
        )

    def close(self) -> None:
        if self.reader is not None and self.reader.transport is not None:
            self.reader.transport.abort()
        self.reader = None

    async def _command(self, line: bytes) -> Reply:
        assert self.reader is not None and self.reader.transport is not None
        self.reader.transport.write(line + _CRLF)
        return await self.reader.reply()

    async def open(self) -> None:
        """Connect, greet, STARTTLS and AUTH as configured; any failure is transient."""
        self.close()
        sender = self.sender
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(sender.timeout):
                _, reader = await loop.create_connection(_ReplyReader, sender.host, sender.port)
                self.reader = reader
                greeting = await reader.reply()
                if greeting.code != 220:
                    raise _refusal(greeting, f"smtp_connect_{greeting.code}")
                await self._hello()
                if sender.start_tls:
                    if "STARTTLS" not in self.extensions:
                        raise DeliveryError("smtp_starttls_not_offered")
                    started = await self._command(b"STARTTLS")
                    if started.code != 220:
                        raise _refusal(started, f"smtp_starttls_{started.code}")
                    assert reader.transport is not None
                    transport = await loop.start_tls(
                        reader.transport,
                        reader,
                        ssl.create_default_context(),
                        server_hostname=sender.host,
                    )
                    assert isinstance(transport, asyncio.Transport)
                    reader.transport = transport
                    await self._hello()
                if sender.username:
                    await self._authenticate(sender.username, sender.password or "")
        except DeliveryError as error:
            self.close()
            raise DeliveryError(error.code) from None  # the server's state, not this message
        except (_Lost, OSError, TimeoutError, ssl.SSLError) as error:
            self.close()
            raise DeliveryError(f"smtp_connect_{type(error).__name__}") from None

    async def _hello(self) -> None:
        name = _local_hostname().encode("idna")
        reply = await self._command(b"EHLO " + name)
        self.extensions = {}
        if reply.code == 250:
            for line in reply.text.split(b"\n")[1:]:
                keyword, _, params = line.decode("ascii", "replace").strip().partition(" ")
                if keyword.upper().startswith("AUTH="):
                    keyword, params = "AUTH", keyword[5:] + " " + params
                self.extensions[keyword.upper()] = params.strip()
            return
        reply = await self._command(b"HELO " + name)
        if reply.code != 250:
            raise _refusal(reply, f"smtp_helo_{reply.code}")

    async def _authenticate(self, username: str, password: str) -> None:
        mechanisms = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in mechanisms:
            token = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
            reply = await self._command(f"AUTH PLAIN {token}".encode())
        elif "LOGIN" in mechanisms:
            reply = await self._command(b"AUTH LOGIN")
            for value in (username, password):
                if reply.code != 334:
                    break
                reply = await self._command(base64.b64encode(value.encode()))
        else:
            raise DeliveryError("smtp_auth_not_offered")
        if reply.code != 235:
            raise DeliveryError(f"smtp_auth_{reply.code}")

    async def transaction(self, from_address: bytes, to_address: bytes, content: bytes) -> None:
        """One message; raises DeliveryError (refused) or _Lost (connection gone)."""
        reader = self.reader
        assert reader is not None and reader.transport is not None
        params = b""
        if not (from_address.isascii() and to_address.isascii() and content.isascii()):
            if "SMTPUTF8" not in self.extensions:
                raise DeliveryError("smtp_utf8_not_offered", permanent=True)
            params = b" SMTPUTF8"
        mail = b"MAIL FROM:<" + from_address + b">" + params + _CRLF
        rcpt = b"RCPT TO:<" + to_address + b">" + _CRLF
        if "PIPELINING" in self.extensions:
            reader.transport.write(mail + rcpt + b"DATA\r\n")
            mail_reply = await reader.reply()
            rcpt_reply = await reader.reply()
            data_reply = await reader.reply()
        else:
            reader.transport.write(mail)
            mail_reply = await reader.reply()
            rcpt_reply = data_reply = mail_reply
            if mail_reply.ok:
                reader.transport.write(rcpt)
                rcpt_reply = data_reply = await reader.reply()
                if rcpt_reply.ok:
                    reader.transport.write(b"DATA\r\n")
                    data_reply = await reader.reply()
        if mail_reply.ok and rcpt_reply.ok and data_reply.code == 354:
            reader.transport.write(content)
            try:
                final = await reader.reply()
            except _Lost:
                raise _Lost("content sent") from None
            if final.code == 421:
                self.close()
            if not 200 <= final.code < 300:
                raise _refusal(final)
            return
        # Refused before the content (RFC 2920 3.1: check every reply; a DATA
        # accepted in spite of that is ended with a lone dot, else RSET).
        if data_reply.code == 354:
            reader.transport.write(b".\r\n")
            await reader.reply()
        elif mail_reply.ok:
            await self._command(b"RSET")
        if 421 in (mail_reply.code, rcpt_reply.code, data_reply.code):
            self.close()
        if not mail_reply.ok:
            raise _refusal(mail_reply)
        if not rcpt_reply.ok:
            raise _refusal(rcpt_reply, "smtp_recipient_refused")
        raise _refusal(data_reply)

    async def quit(self) -> None:
        if self.usable:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self._command(b"QUIT")
        self.close()


def _envelope_address(value: str) -> bytes:
    address = email.utils.parseaddr(value)[1] or value
    if any(c in address for c in "<>\r\n "):
        raise DeliveryError("smtp_bad_address", permanent=True)
    return address.encode("utf-8")
