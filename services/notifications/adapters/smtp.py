"""E-mail over SMTP: a pool of kept-open connections, ESMTP PIPELINING when offered.

Messages are written straight to bytes (`email_bytes`, far cheaper than
`EmailMessage`): two alternative parts, 7bit when they are short-lined ASCII,
else quoted-printable (base64 for mostly non-Latin text, as `email` chooses),
headers encoded per RFC 2047 where needed and never carrying a line break;
`email.message` parses them back to what was rendered.

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
import base64
import binascii
import collections
import contextlib
import email.utils
import functools
import os
import socket
import ssl
import time
from dataclasses import dataclass
from email.header import Header

from services.notifications.service_layer.ports import DeliveryError, OutgoingEmail

# --- composing the message ------------------------------------------------------------------

_MAX_LINE = 78  # as `email.policy.default`: longer or non-ASCII text is quoted-printable
_CRLF = b"\r\n"


def _one_line(value: str) -> str:
    """No header injection: a header value never carries a line break."""
    if "\r" in value or "\n" in value:
        value = " ".join(value.replace("\r", "\n").split("\n"))
    return value


def _fold(name: str, value: str) -> str:
    """`Name: value`, folded at spaces to about 78 characters (a long word stays whole)."""
    line = f"{name}: {value}"
    if len(line) <= _MAX_LINE:
        return line
    words = value.split(" ")
    lines: list[str] = []
    current = f"{name}: {words[0]}"
    for word in words[1:]:
        if len(current) + 1 + len(word) > _MAX_LINE and current.strip():
            lines.append(current)
            current = ""
        current = f"{current} {word}"
    lines.append(current)
    return "\r\n".join(lines)


def _text_header(name: str, value: str) -> str:
    value = _one_line(value)
    if value.isascii() and "=?" not in value:
        return _fold(name, value)
    return f"{name}: " + Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def _address_header(name: str, value: str) -> str:
    """An address header as given (`formataddr` output); raw UTF-8 only if the address is."""
    value = _one_line(value)
    if value.isascii():
        return _fold(name, value)
    display, address = email.utils.parseaddr(value)
    if address and display and not display.isascii():
        return _fold(name, email.utils.formataddr((display, address), charset="utf-8"))
    return f"{name}: {value}"  # a non-ASCII address: needs SMTPUTF8, which `send` checks


def _part(text: str, subtype: str) -> tuple[bytes, bytes]:
    """(content-type + cte headers, body) of one text part, CRLF line ends."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    raw = text.encode("utf-8")
    short = max(map(len, raw.split(b"\n"))) <= _MAX_LINE
    if short and raw.isascii():
        cte, body = b"7bit", raw
    elif short:
        # Where `email` would send 8bit: quoted-printable keeps the transport 7-bit clean.
        cte, body = b"quoted-printable", binascii.b2a_qp(raw, istext=True)
    else:
        # As `email.contentmanager` decides: base64 if it is shorter on the first lines.
        sniff = b"\n".join(raw.splitlines()[:10]) + b"\n"
        if len(binascii.b2a_qp(sniff, istext=True)) > len(binascii.b2a_base64(sniff)):
            cte, body = b"base64", base64.encodebytes(raw)
        else:
            cte, body = b"quoted-printable", binascii.b2a_qp(raw, istext=True)
    head = b'Content-Type: text/%s; charset="utf-8"\r\nContent-Transfer-Encoding: %s\r\n' % (
        subtype.encode(),
        cte,
    )
    return head, body.replace(b"\n", _CRLF)


_date_cache: tuple[int, str] = (0, "")


def _date_header() -> str:
    global _date_cache  # one formatted date per second
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]


def email_bytes(outgoing: OutgoingEmail, *, domain: str) -> bytes:
    """The message as it goes on the wire (CRLF, before SMTP dot-stuffing)."""
    headers = [
        _address_header("From", outgoing.from_address),
        _address_header("To", outgoing.to_address),
        _text_header("Subject", outgoing.subject),
        f"Date: {_date_header()}",
        # Deterministic: a copy re-sent after a crash carries the same id, so mail
        # clients and archives can recognise it.
        f"Message-ID: <{_one_line(outgoing.notification_id)}@{_one_line(domain)}>",
        _text_header("X-Notification-Type", outgoing.notification_type),
    ]
    if outgoing.list_unsubscribe_url:
        headers.append(_fold("List-Unsubscribe", f"<{_one_line(outgoing.list_unsubscribe_url)}>"))
        headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    text_head, text_body = _part(outgoing.text, "plain")
    html_head, html_body = _part(outgoing.html, "html")
    while True:
        boundary = b"===============" + str(int.from_bytes(os.urandom(8))).encode() + b"=="
        if boundary not in text_body and boundary not in html_body:
            break
    headers.append("MIME-Version: 1.0")
    headers.append(f'Content-Type: multipart/alternative;\r\n boundary="{boundary.decode()}"')
    head = "\r\n".join(headers).encode("utf-8")
    delimiter = b"--" + boundary
    return b"".join(
        (
            head,
            b"\r\n\r\n",
            delimiter,
            _CRLF,
            text_head,
            _CRLF,
            text_body,
            _CRLF,
            delimiter,
            _CRLF,
            html_head,
            _CRLF,
            html_body,
            _CRLF,
            delimiter,
            b"--\r\n",
        )
    )


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

    def __init__(self, sender: SmtpSender) -> None:
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
