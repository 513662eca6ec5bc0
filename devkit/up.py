"""`./dev up`: the whole suite on this machine, stopped cleanly by Ctrl-C or SIGTERM.

Broker, database and mail sink (unless pointed elsewhere), then each service's
API and worker as separate processes, as they run in production.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from devkit.embedded import EmbeddedSuite
from devkit.processes import (
    ManagedProcess,
    PortInUse,
    ensure_port_free,
    free_port,
    stop_all,
    wait_until,
)
from devkit.trace_sink import TraceSink

# name, port variable, default port, processes (the portal is a web front end, no worker)
SERVICES = (
    ("registration", "REGISTRATION_PORT", 8001, ("api", "worker")),
    ("commissions", "COMMISSIONS_PORT", 8002, ("api", "worker")),
    ("notifications", "NOTIFICATIONS_PORT", 8003, ("api", "worker")),
    ("portal", "PORTAL_PORT", 8004, ("api",)),
)
DEV_ADMIN_TOKEN = "dev-admin-token"  # noqa: S105 (the contract's documented dev default)
DEV_CHECKOUT_TOKEN = "dev-checkout-token"  # noqa: S105 (CONTRACT 6.1: a dev value in ./dev up)


@dataclass
class RunningSuite:
    embedded: EmbeddedSuite
    services: list[ManagedProcess]
    ports: dict[str, int]

    def stop(self) -> None:
        stop_all(self.services)
        self.embedded.stop()


def service_ready(name: str, port: int) -> bool:
    """The whole service is up: `/status` (database, broker, a worker holding partitions).

    An API's `/readyz` asks only for its database, which is not enough here: a suite
    is ready when its workers consume. The portal's `/status` asks for the three APIs.
    """
    path = "/status"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
        return bool(response.status == 200)


def start_suite(data_dir: Path, env: dict[str, str]) -> RunningSuite:
    """Starts everything and returns once every process is launched (not yet ready)."""
    ports = {}
    for name, variable, default, _ in SERVICES:
        port = int(env.get(variable, default))
        ensure_port_free("127.0.0.1", port, variable)
        ports[name] = port
    embedded = EmbeddedSuite(data_dir=data_dir, env=env).start()
    service_env = {
        **env,
        **embedded.service_env(),
        "ADMIN_TOKEN": env.get("ADMIN_TOKEN") or DEV_ADMIN_TOKEN,
        "CHECKOUT_TOKEN": env.get("CHECKOUT_TOKEN") or DEV_CHECKOUT_TOKEN,
        "ENVIRONMENT": env.get("ENVIRONMENT", "dev"),
        "WEBHOOK_ALLOW_LOOPBACK": env.get("WEBHOOK_ALLOW_LOOPBACK", "true"),
        # The embedded broker's workaround (chassis.kafka.clip_aborted_transactions).
        "KAFKA_CLIP_ABORTED_TRANSACTIONS": env.get(
            "KAFKA_CLIP_ABORTED_TRANSACTIONS", "false" if env.get("KAFKA_BOOTSTRAP") else "true"
        ),
        "DATA_DIR": str(data_dir),
        **{
            f"{name.upper()}_URL": env.get(f"{name.upper()}_URL") or f"http://127.0.0.1:{port}"
            for name, port in ports.items()
            if name != "portal"
        },
        # Customers' sign-in links open the portal this run serves (CONTRACT 6.2).
        "PORTAL_URL": env.get("PORTAL_URL") or f"http://127.0.0.1:{ports['portal']}",
        "PYTHONUNBUFFERED": "1",
    }
    processes: list[ManagedProcess] = []
    suite = RunningSuite(embedded, processes, ports)
    try:
        for name, _, _, roles in SERVICES:
            for role in roles:
                process = ManagedProcess(
                    f"{name}-{role}",
                    [sys.executable, "-m", f"services.{name}.entrypoints.{role}"],
                    log_path=data_dir / "logs" / f"{name}-{role}.log",
                    env={**service_env, "WORKER_INSTANCE_ID": f"{name}-dev"},
                )
                process.start()
                processes.append(process)
    except BaseException:
        suite.stop()
        raise
    return suite


def _ready_or_stopping(name: str, port: int, stop: threading.Event) -> bool:
    return stop.is_set() or service_ready(name, port)


def start_ready_suite(data_dir: Path, env: dict[str, str], timeout: float = 90.0) -> RunningSuite:
    """A fresh suite on the ports `env` names, returned once every service is ready."""
    suite = start_suite(data_dir, env)
    try:
        for name, port in suite.ports.items():
            api = next(p for p in suite.services if p.name == f"{name}-api")
            wait_until(
                functools.partial(service_ready, name, port),
                timeout=timeout,
                interval=0.5,
                process=api,
            )
    except BaseException:
        suite.stop()
        raise
    return suite


def fresh_env(base: dict[str, str]) -> dict[str, str]:
    """`base` with every server setting dropped and free ports for everything we start."""
    env = {
        k: v
        for k, v in base.items()
        if k
        not in (
            "KAFKA_BOOTSTRAP",
            "MONGO_URL",
            "SMTP_HOST",
            "SMTP_PORT",
            "REGISTRATION_URL",
            "COMMISSIONS_URL",
            "NOTIFICATIONS_URL",
            "PORTAL_URL",
        )
    }
    ports = ["EMBEDDED_KAFKA_PORT", "EMBEDDED_MONGO_PORT", "EMBEDDED_SMTP_PORT"]
    for variable in [*ports, *(port_variable for _, port_variable, _, _ in SERVICES)]:
        env[variable] = str(free_port())
    env.setdefault("ADMIN_TOKEN", DEV_ADMIN_TOKEN)
    env.setdefault("CHECKOUT_TOKEN", DEV_CHECKOUT_TOKEN)
    return env


def print_table(suite: RunningSuite, data_dir: Path) -> None:
    rows = [
        ("broker (Kafka protocol)", suite.embedded.kafka_bootstrap),
        ("database (MongoDB protocol)", suite.embedded.mongo_url),
        (
            "mail sink (SMTP)",
            f"{suite.embedded.smtp_host}:{suite.embedded.smtp_port}  -> {data_dir / 'mail'}",
        ),
    ]
    for name, _, _, _ in SERVICES:
        port = suite.ports[name]
        if name == "portal":
            rows.append(("partner portal (web)", f"http://127.0.0.1:{port}  (sign in with a key)"))
        else:
            rows.append((f"{name} API + worker", f"http://127.0.0.1:{port}  (docs: /docs)"))
    width = max(len(r[0]) for r in rows)
    print("\nChannelkeep is running:\n")
    for what, where in rows:
        print(f"  {what.ljust(width)}  {where}")
    print(f"\n  logs: {data_dir / 'logs'}   admin token: $ADMIN_TOKEN or {DEV_ADMIN_TOKEN}")
    print(f"  checkout token: $CHECKOUT_TOKEN or {DEV_CHECKOUT_TOKEN}")
    print("  Ctrl-C stops everything.\n", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev up", description=__doc__)
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    parser.add_argument(
        "--trace-console",
        action="store_true",
        help="trace every service (OTLP to a local receiver) and print each span here",
    )
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.trace_console:
        sink = TraceSink(on_span=lambda span: print(span.line(), flush=True)).__enter__()
        env.update(sink.env())
        print(f"Tracing: every service exports to {sink.endpoint}; spans print below.")
    data_dir = Path(env.get("DATA_DIR", ".data")).resolve()

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    try:
        suite = start_suite(data_dir, env)
    except (PortInUse, ValueError) as error:
        print(f"./dev up: {error}", file=sys.stderr)
        return 2
    except (RuntimeError, TimeoutError) as error:
        print(f"./dev up: {error}", file=sys.stderr)
        return 1
    try:
        print_table(suite, data_dir)
        for name, port in suite.ports.items():
            api = next(p for p in suite.services if p.name == f"{name}-api")
            remaining = args.ready_timeout - (time.monotonic() - started)
            wait_until(
                functools.partial(_ready_or_stopping, name, port, stop),
                timeout=max(1.0, remaining),
                interval=0.5,
                process=api,
            )
            if stop.is_set():
                break
        if not stop.is_set():
            print(f"All services ready in {time.monotonic() - started:.1f}s.", flush=True)
        while not stop.is_set():
            dead = [p for p in suite.services if not p.alive()]
            if dead:
                for process in dead:
                    print(
                        f"{process.name} exited; its log ({process.log_path}) ends:\n"
                        f"{process.log_tail()}",
                        file=sys.stderr,
                    )
                return 1
            stop.wait(1.0)
        return 0
    except (RuntimeError, TimeoutError) as error:
        print(f"./dev up: {error}", file=sys.stderr)
        return 1
    finally:
        print("Stopping...", flush=True)
        began = time.monotonic()
        suite.stop()
        print(f"Stopped in {time.monotonic() - began:.1f}s.", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
