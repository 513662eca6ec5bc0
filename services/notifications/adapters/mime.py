"""An e-mail as it goes on the wire, written straight to bytes (`email_bytes`, far cheaper
than `EmailMessage`): two alternative parts, 7bit when they are short-lined ASCII, else
quoted-printable (base64 for mostly non-Latin text, as `email` chooses), headers encoded
per RFC 2047 where needed and never carrying a line break; `email.message` parses them
back to what was rendered. The SMTP side is `smtp_session` and `smtp`.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import os
import time
from email.header import Header

from services.notifications.service_layer.ports import OutgoingEmail

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
