"""The embedded broker, database and mail sink for dev, tests and CI.

Starts noida-db (Kafka protocol) and SecantusDB (MongoDB protocol) as child
processes bound to 127.0.0.1 with state under DATA_DIR, waits until each
answers, and stops them as process groups. `KAFKA_BOOTSTRAP` / `MONGO_URL` /
`SMTP_HOST` set means "use that server": nothing is started for it.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from devkit.processes import ManagedProcess, ensure_port_free, stop_all, wait_until

HOST = "127.0.0.1"

DEV_TUNING = {
    # noida-db answers an empty fetch at once instead of holding it for fetch.max.wait.ms:
    # without a client-side pause an idle worker polls in a tight loop (~50% of a core).
    # Off by default in the services (it patches a private aiokafka method); every run
    # against the embedded servers turns it on: ./dev up, the demo, the benchmarks, tests.
    "CONSUMER_EMPTY_FETCH_BACKOFF_MS": "50",
    # SecantusDB runs a thread per connection and serves them unfairly: with 50 requests
    # in flight its throughput falls below what it manages with 10, and single statements
    # wait seconds. The registration API's cap (64 for a real MongoDB) is held at 8.
    "API_DB_CONCURRENCY": "8",
}
"""Settings that work around defects of the embedded servers; what a real one never needs."""


def kafka_answers(bootstrap: str, timeout: float = 1.0) -> bool:
    """True when `bootstrap` answers a Kafka ApiVersions request without error."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    client_id = b"channelkeep-probe"
    body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        header = _recv_exact(sock, 4)
        size = struct.unpack(">i", header)[0]
        reply = _recv_exact(sock, size)
    correlation, error_code = struct.unpack(">ih", reply[:6])
    return bool(correlation == 7 and error_code == 0)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = b""
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("closed")
        chunks += chunk
    return chunks


def mongo_answers(url: str, timeout_ms: int = 1000) -> bool:
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=timeout_ms)
    try:
        return bool(client.admin.command("ping").get("ok"))
    finally:
        client.close()


def smtp_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        return sock.recv(64).startswith(b"220")


def noida_binary() -> str:
    binary = Path(str(files("noida_db").joinpath("noida-db")))
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return str(binary)


@dataclass
class EmbeddedSuite:
    """What a local run needs besides the services; `start()` then `stop()`."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    with_smtp: bool = True
    startup_timeout: float = 60.0
    processes: list[ManagedProcess] = field(default_factory=list)
    kafka_bootstrap: str = ""
    mongo_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 0

    def _port(self, variable: str, default: int) -> int:
        raw = self.env.get(variable, str(default))
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            raise ValueError(f"{variable}={raw!r} is not a port number")
        return int(raw)

    def start(self) -> EmbeddedSuite:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        logs = self.data_dir / "logs"
        try:
            self._start_kafka(logs)
            self._start_mongo(logs)
            if self.with_smtp:
                self._start_smtp(logs)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_kafka(self, logs: Path) -> None:
        if self.env.get("KAFKA_BOOTSTRAP"):
            self.kafka_bootstrap = self.env["KAFKA_BOOTSTRAP"]
            return
        port = self._port("EMBEDDED_KAFKA_PORT", 19092)
        ensure_port_free(HOST, port, "EMBEDDED_KAFKA_PORT")
        kafka_dir = self.data_dir / "kafka"
        kafka_dir.mkdir(parents=True, exist_ok=True)
        broker = ManagedProcess(
            "broker (noida-db)",
            [
                noida_binary(),
                "start",
                "--data-dir",
                str(kafka_dir),
                "--host",
                HOST,
                "--only",
                "kafka",
                "--kafka-port",
                str(port),
            ],
            log_path=logs / "broker.log",
        )
        broker.start()
        self.processes.append(broker)
        self.kafka_bootstrap = f"{HOST}:{port}"
        wait_until(
            lambda: kafka_answers(self.kafka_bootstrap),
            timeout=self.startup_timeout,
            process=broker,
        )

    def _start_mongo(self, logs: Path) -> None:
        if self.env.get("MONGO_URL"):
            self.mongo_url = self.env["MONGO_URL"]
            return
        port = self._port("EMBEDDED_MONGO_PORT", 27117)
        ensure_port_free(HOST, port, "EMBEDDED_MONGO_PORT")
        storage = self.data_dir / "mongo"
        storage.mkdir(parents=True, exist_ok=True)
        server = ManagedProcess(
            "database (SecantusDB)",
            [
                str(Path(sys.executable).parent / "secantusd-py"),
                "--host",
                HOST,
                "--port",
                str(port),
                "--storage-path",
                str(storage),
                "--sync-on-commit",
                "--log-level",
                "WARNING",
            ],
            log_path=logs / "database.log",
            cwd=self.data_dir,
        )
        server.start()
        self.processes.append(server)
        self.mongo_url = f"mongodb://{HOST}:{port}/?directConnection=true"
        wait_until(
            lambda: mongo_answers(self.mongo_url), timeout=self.startup_timeout, process=server
        )

    def _start_smtp(self, logs: Path) -> None:
        if self.env.get("SMTP_HOST"):
            self.smtp_host = self.env["SMTP_HOST"]
            self.smtp_port = self._port("SMTP_PORT", 25)
            return
        port = self._port("EMBEDDED_SMTP_PORT", 2525)
        ensure_port_free(HOST, port, "EMBEDDED_SMTP_PORT")
        sink = ManagedProcess(
            "mail sink",
            [
                sys.executable,
                "-m",
                "devkit.smtp_sink",
                "--host",
                HOST,
                "--port",
                str(port),
                "--dir",
                str(self.data_dir / "mail"),
            ],
            log_path=logs / "mail-sink.log",
        )
        sink.start()
        self.processes.append(sink)
        self.smtp_host, self.smtp_port = HOST, port
        wait_until(lambda: smtp_answers(HOST, port), timeout=self.startup_timeout, process=sink)

    def service_env(self) -> dict[str, str]:
        """The settings every service process gets from a local run.

        The embedded servers' workarounds too, unless the environment says otherwise.
        """
        return {
            **{name: self.env.get(name, value) for name, value in DEV_TUNING.items()},
            "KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "MONGO_URL": self.mongo_url,
            "SMTP_HOST": self.smtp_host,
            "SMTP_PORT": str(self.smtp_port),
        }

    def stop(self) -> None:
        # All at once: the services are gone by now, and each guard escalates on its own.
        stop_all(self.processes)
        self.processes.clear()

    def __enter__(self) -> EmbeddedSuite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
