"""The devkit mail sink (used by `./dev up`, the e2e tests and the bench), as a process."""

from __future__ import annotations

import asyncio
import email
import email.policy
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from devkit.embedded import smtp_answers
from devkit.processes import free_port
from services.notifications.adapters.smtp import SmtpSender
from services.notifications.service_layer.ports import OutgoingEmail

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    directory = tmp_path_factory.mktemp("mail")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devkit.smtp_sink", "--port", str(port), "--dir", str(directory)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if smtp_answers("127.0.0.1", port):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield port, directory
    finally:
        process.terminate()
        assert process.wait(10) == 0, "stops cleanly on SIGTERM"


def kept(directory: Path) -> dict[str, Any]:
    messages = {}
    for path in directory.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        messages[str(message["Message-ID"])] = message
    return messages


def test_a_message_is_kept_as_an_eml_file_with_its_dots(sink: tuple[int, Path]) -> None:
    port, directory = sink
    message = EmailMessage()
    message["From"] = "vendor@example.com"
    message["To"] = "customer@example.com"
    message["Subject"] = "sink check"
    message["Message-ID"] = "<sink-check@example.com>"
    message.set_content("hello\n.\n.leading dot\n..two dots\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
        code, capabilities = smtp.ehlo("client.example")
        assert code == 250 and b"PIPELINING" in capabilities
        smtp.send_message(message)
    stored = kept(directory)["<sink-check@example.com>"]
    assert stored["Subject"] == "sink check"
    assert stored.get_content().replace("\r\n", "\n") == "hello\n.\n.leading dot\n..two dots\n"
    assert not list(directory.glob(".*.tmp")), "no half-written file is left behind"


def test_commands_out_of_order_are_refused(sink: tuple[int, Path]) -> None:
    port, _ = sink
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
        assert smtp.docmd("MAIL", "FROM:<a@example.com>")[0] == 503  # before EHLO
        smtp.ehlo("client.example")
        assert smtp.docmd("DATA")[0] == 503  # no recipient
        assert smtp.docmd("RCPT", "TO:<b@example.com>")[0] == 503  # no MAIL
        assert smtp.docmd("MAIL", "FROM:<a@example.com>")[0] == 250
        assert smtp.docmd("MAIL", "FROM:<a@example.com>")[0] == 503  # nested
        assert smtp.docmd("RSET")[0] == 250
        assert smtp.docmd("MAIL", "FROM:<a@example.com>")[0] == 250
        assert smtp.docmd("NOOP")[0] == 250
        assert smtp.docmd("BOGUS")[0] == 500


def test_pipelined_commands_get_their_replies_in_order(sink: tuple[int, Path]) -> None:
    port, directory = sink

    async def talk() -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()  # greeting
        content = b"Message-ID: <pipelined@example.com>\r\nSubject: p\r\n\r\nbody\r\n.\r\n"
        writer.write(
            b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\n"
        )
        replies = []
        while len(replies) < 4:
            line = await reader.readline()
            if line[3:4] != b"-":
                replies.append(line[:3])
        # The content, then the next commands, in one write (RFC 2920).
        writer.write(content + b"MAIL FROM:<a@example.com>\r\nRCPT TO:<c@example.com>\r\nQUIT\r\n")
        replies.extend([(await reader.readline())[:3] for _ in range(4)])
        writer.close()
        return replies

    assert asyncio.run(talk()) == [b"250", b"250", b"250", b"354", b"250", b"250", b"250", b"221"]
    assert "<pipelined@example.com>" in kept(directory)


def test_the_notifications_sender_pipelines_many_messages_into_it(
    sink: tuple[int, Path],
) -> None:
    port, directory = sink

    async def send_all() -> None:
        sender = SmtpSender(host="127.0.0.1", port=port, domain="vendor.example", connections=4)
        await asyncio.gather(
            *(
                sender.send(
                    OutgoingEmail(
                        notification_id=f"bulk-{n}",
                        to_address=f"contact{n}@customer.example",
                        from_address="Channelkeep <notify@vendor.example>",
                        subject=f"Message {n}",
                        text=f"Hello {n}\n.\n",
                        html=f"<p>Hello {n}</p>\n",
                        list_unsubscribe_url=None,
                        notification_type="security_advisory",
                    )
                )
                for n in range(200)
            )
        )
        await sender.close()

    asyncio.run(send_all())
    stored = kept(directory)
    for n in range(200):
        message = stored[f"<bulk-{n}@vendor.example>"]
        assert message["To"] == f"contact{n}@customer.example"
        assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == f"Hello {n}\n.\n"
