"""The SMTP adapter: the message it writes, and its (pipelining) client against scripted servers."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import email.utils
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest

from services.notifications.adapters.mime import email_bytes
from services.notifications.adapters.smtp import SmtpSender
from services.notifications.service_layer.ports import DeliveryError, OutgoingEmail


def outgoing(**overrides: Any) -> OutgoingEmail:
    fields: dict[str, Any] = {
        "notification_id": "0b7c6a1e-3f52-5d0e-9c11-2d5a1f0e4b77",
        "to_address": "jana@mueller-logistik.example",
        "from_address": email.utils.formataddr(("Channelkeep", "notify@vendor.example")),
        "subject": "[Security advisory, CRITICAL] Remote code execution",
        "text": "Hello Jana,\n\nplease update.\n",
        "html": "<p>Hello Jana,</p>\n<p>please update.</p>\n",
        "list_unsubscribe_url": None,
        "notification_type": "security_advisory",
    }
    fields.update(overrides)
    return OutgoingEmail(**fields)


def parse(raw: bytes) -> Any:
    return email.message_from_bytes(raw, policy=email.policy.default)


def legacy(message: OutgoingEmail) -> Any:
    """What `email.message.EmailMessage` makes of the same message, parsed back."""
    built = EmailMessage()
    built["From"] = message.from_address
    built["To"] = message.to_address
    built["Subject"] = message.subject
    built.set_content(message.text)
    built.add_alternative(message.html, subtype="html")
    return parse(built.as_bytes(policy=email.policy.SMTP))


def decoded(message: Any, kind: str) -> str:
    return str(message.get_body((kind,)).get_content()).replace("\r\n", "\n")


BODIES = [
    ("short ASCII", "Hello,\nline two\n", "<p>x</p>\n"),
    ("long ASCII lines", "word " * 60 + "\n", "<td>" + "y" * 300 + "</td>\n"),
    ("Latin text", "Grüße aus München, Jana Müller\n= sign & tab\there\n", "<p>Grüße</p>\n"),
    ("mostly non-Latin", "Здравствуйте, " * 30 + "\n", "<p>" + "€" * 200 + "</p>\n"),
    ("dots and From", ".\n..\n.starts with a dot\nFrom here\n", "<p>.</p>\n"),
    ("trailing spaces, no final newline", "end   \nlast", "<p>a</p>   "),
]


@pytest.mark.parametrize(("name", "text", "html"), BODIES, ids=[b[0] for b in BODIES])
def test_the_message_parses_back_to_what_was_rendered(name: str, text: str, html: str) -> None:
    message = outgoing(text=text, html=html)
    raw = email_bytes(message, domain="vendor.example")
    parsed = parse(raw)
    assert not parsed.defects and all(not p.defects for p in parsed.walk())
    assert parsed.get_content_type() == "multipart/alternative"
    reference = legacy(message)
    for kind in ("plain", "html"):
        assert decoded(parsed, kind) == decoded(reference, kind)
    assert b"\n" not in raw.replace(b"\r\n", b""), "CRLF line ends only"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert raw.isascii(), "7-bit clean: quoted-printable or base64 where needed"


def test_headers_are_encoded_and_folded() -> None:
    subject = "Müller Systems: Ihre Lizenz läuft in 30 Tagen ab " * 3
    message = outgoing(
        subject=subject,
        from_address=email.utils.formataddr(("Müller Systems via Channelkeep", "n@vendor.example")),
        list_unsubscribe_url="https://portal.example/v1/unsubscribe/" + "a" * 120,
        notification_type="renewal_reminder",
    )
    raw = email_bytes(message, domain="vendor.example")
    parsed = parse(raw)
    assert parsed["Subject"] == subject
    assert parsed["From"].addresses[0].display_name == "Müller Systems via Channelkeep"
    assert parsed["From"].addresses[0].addr_spec == "n@vendor.example"
    assert parsed["To"] == "jana@mueller-logistik.example"
    assert parsed["Message-ID"] == f"<{message.notification_id}@vendor.example>"
    assert parsed["X-Notification-Type"] == "renewal_reminder"
    assert parsed["List-Unsubscribe"] == f"<{message.list_unsubscribe_url}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Date"].datetime is not None
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if b"unsubscribe" not in line)


def test_a_long_ascii_subject_is_folded_and_reads_back_the_same() -> None:
    subject = "[Security advisory, CRITICAL] " + " ".join(["remote code execution"] * 8)
    raw = email_bytes(outgoing(subject=subject), domain="vendor.example")
    assert raw.count(b"\r\n ") >= 3, "folded"
    assert parse(raw)["Subject"] == subject


def test_advisories_carry_no_list_unsubscribe() -> None:
    parsed = parse(email_bytes(outgoing(list_unsubscribe_url=None), domain="vendor.example"))
    assert parsed["List-Unsubscribe"] is None and parsed["List-Unsubscribe-Post"] is None


def test_a_line_break_in_a_header_value_cannot_add_a_header() -> None:
    raw = email_bytes(
        outgoing(subject="Advisory\r\nBcc: attacker@evil.example"), domain="vendor.example"
    )
    parsed = parse(raw)
    assert parsed["Bcc"] is None
    assert "attacker@evil.example" in parsed["Subject"]


# --- a scripted SMTP server ------------------------------------------------------------------


@dataclass
class Script:
    """How the scripted server answers; what it saw."""

    pipelining: bool = True
    mail_reply: bytes = b"250 OK"
    rcpt_reply: bytes = b"250 OK"
    data_reply: bytes | None = None  # None: 354 if a recipient was accepted, else 503
    final_reply: bytes = b"250 Queued"
    drop_after_content: bool = False
    auth: bool = False
    commands: list[bytes] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    connections: int = 0
    early_commands: int = 0  # commands that arrived before the previous reply was read
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


class ScriptedServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.script.writers:
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        script = self.script
        script.connections += 1
        script.writers.append(writer)
        writer.write(b"220 scripted ESMTP\r\n")
        accepted = False
        try:
            while line := await reader.readline():
                command = line.rstrip(b"\r\n")
                script.commands.append(command)
                verb = command.split(b" ", 1)[0].upper()
                if not script.pipelining and len(reader._buffer):  # type: ignore[attr-defined]
                    script.early_commands += 1
                if verb == b"EHLO":
                    extensions = [b"250-scripted", b"250-8BITMIME"]
                    if script.pipelining:
                        extensions.append(b"250-PIPELINING")
                    if script.auth:
                        extensions.append(b"250-AUTH PLAIN LOGIN")
                    writer.write(b"\r\n".join([*extensions, b"250 HELP"]) + b"\r\n")
                elif verb == b"AUTH":
                    token = base64.b64encode(b"\0user\0secret")
                    ok = command == b"AUTH PLAIN " + token
                    writer.write(b"235 OK\r\n" if ok else b"535 Bad credentials\r\n")
                elif verb == b"MAIL":
                    accepted = False
                    writer.write(script.mail_reply + b"\r\n")
                elif verb == b"RCPT":
                    accepted = script.rcpt_reply.startswith(b"25")
                    writer.write(script.rcpt_reply + b"\r\n")
                elif verb == b"DATA":
                    reply = script.data_reply or (b"354 Go" if accepted else b"503 No recipients")
                    writer.write(reply + b"\r\n")
                    if reply.startswith(b"354"):
                        lines = [await reader.readline()]
                        while lines[-1] != b".\r\n":
                            lines.append(await reader.readline())
                        script.messages.append(b"".join(lines))
                        if script.drop_after_content:
                            writer.close()
                            return
                        writer.write(script.final_reply + b"\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 Bye\r\n")
                    await writer.drain()
                    writer.close()
                    return
                else:
                    writer.write(b"250 OK\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return


def sender(port: int, **overrides: Any) -> SmtpSender:
    return SmtpSender(
        host="127.0.0.1", port=port, domain="vendor.example", connections=1, timeout=5, **overrides
    )


@pytest.mark.parametrize("pipelining", [True, False])
async def test_a_message_is_delivered_with_and_without_pipelining(pipelining: bool) -> None:
    script = Script(pipelining=pipelining)
    async with ScriptedServer(script) as server:
        smtp = sender(server.port)
        await smtp.send(outgoing(text=".hidden dot\n"))
        await smtp.send(outgoing(notification_id="second"))
        await smtp.close()
    assert len(script.messages) == 2 and script.connections == 1
    mail_commands = [c for c in script.commands if c.startswith((b"MAIL", b"RCPT"))]
    assert mail_commands[:2] == [
        b"MAIL FROM:<notify@vendor.example>",
        b"RCPT TO:<jana@mueller-logistik.example>",
    ]
    # Transparency: the dot is doubled on the wire, and parses back single.
    assert b"\r\n..hidden dot\r\n" in script.messages[0]
    unstuffed = script.messages[0][: -len(b".\r\n")].replace(b"\r\n..", b"\r\n.")
    assert decoded(parse(unstuffed), "plain") == ".hidden dot\n"
    if not pipelining:
        assert script.early_commands == 0, "without PIPELINING each command waits for its reply"


@pytest.mark.parametrize(
    ("replies", "code", "permanent"),
    [
        ({"rcpt_reply": b"550 No such user"}, "smtp_recipient_refused", True),
        ({"rcpt_reply": b"450 Mailbox busy"}, "smtp_recipient_refused", False),
        ({"mail_reply": b"553 Sender refused"}, "smtp_553", True),
        ({"mail_reply": b"451 Try later"}, "smtp_451", False),
        ({"final_reply": b"554 Message refused"}, "smtp_554", True),
        ({"final_reply": b"452 Out of space"}, "smtp_452", False),
        ({"data_reply": b"554 No thanks"}, "smtp_554", True),
    ],
)
@pytest.mark.parametrize("pipelining", [True, False])
async def test_refusals_are_permanent_for_5xx_and_transient_for_4xx(
    replies: dict[str, bytes], code: str, permanent: bool, pipelining: bool
) -> None:
    script = Script(pipelining=pipelining, **replies)
    async with ScriptedServer(script) as server:
        smtp = sender(server.port)
        with pytest.raises(DeliveryError) as refused:
            await smtp.send(outgoing())
        assert (refused.value.code, refused.value.permanent) == (code, permanent)
        # The connection is still good for the next message (reset if needed).
        script.rcpt_reply, script.mail_reply = b"250 OK", b"250 OK"
        script.final_reply, script.data_reply = b"250 Queued", None
        await smtp.send(outgoing(notification_id="next"))
        await smtp.close()
    assert script.connections == 1
    assert script.messages[-1].count(b"Message-ID: <next@vendor.example>") == 1


async def test_data_accepted_after_a_refused_recipient_is_ended_without_content() -> None:
    # RFC 2920: the client must check every reply; a 354 after a refused RCPT gets a lone dot.
    script = Script(rcpt_reply=b"550 No such user", data_reply=b"354 Go ahead anyway")
    async with ScriptedServer(script) as server:
        smtp = sender(server.port)
        with pytest.raises(DeliveryError) as refused:
            await smtp.send(outgoing())
        await smtp.close()
    assert (refused.value.code, refused.value.permanent) == ("smtp_recipient_refused", True)
    assert script.messages == [b".\r\n"], "no content went out"


async def test_a_connection_the_server_dropped_while_idle_is_reopened_once() -> None:
    script = Script()
    async with ScriptedServer(script) as server:
        smtp = sender(server.port)
        await smtp.send(outgoing(notification_id="first"))
        for writer in script.writers:
            writer.close()  # the server times the idle connection out
        await asyncio.sleep(0.05)
        await smtp.send(outgoing(notification_id="second"))
        await smtp.close()
    assert len(script.messages) == 2 and script.connections == 2


async def test_a_connection_lost_after_the_content_is_not_sent_again_here() -> None:
    # The server may have taken it: the dispatcher retries later, with the same Message-ID.
    script = Script(drop_after_content=True)
    async with ScriptedServer(script) as server:
        smtp = sender(server.port)
        with pytest.raises(DeliveryError) as lost:
            await smtp.send(outgoing())
        await smtp.close()
    assert (lost.value.code, lost.value.permanent) == ("smtp_connection_lost", False)
    assert len(script.messages) == 1


async def test_an_unreachable_server_is_a_transient_error() -> None:
    script = Script()
    async with ScriptedServer(script) as server:
        port = server.port
    with pytest.raises(DeliveryError) as failed:
        await sender(port).send(outgoing())
    assert failed.value.permanent is False and failed.value.code.startswith("smtp_connect_")


async def test_auth_plain_when_configured() -> None:
    script = Script(auth=True)
    async with ScriptedServer(script) as server:
        smtp = sender(server.port, username="user", password="secret")
        await smtp.send(outgoing())
        await smtp.close()
        wrong = sender(server.port, username="user", password="wrong")
        with pytest.raises(DeliveryError) as refused:
            await wrong.send(outgoing())
    assert len(script.messages) == 1
    assert (refused.value.code, refused.value.permanent) == ("smtp_auth_535", False)


async def test_concurrent_sends_share_the_pool() -> None:
    script = Script()
    async with ScriptedServer(script) as server:
        smtp = SmtpSender(host="127.0.0.1", port=server.port, domain="v.example", connections=3)
        await asyncio.gather(*(smtp.send(outgoing(notification_id=f"n{i}")) for i in range(30)))
        await smtp.close()
    assert len(script.messages) == 30 and script.connections == 3
