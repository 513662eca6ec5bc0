"""`POST /v1/registrations` of the running registration API against a bare-FastAPI baseline.

Starts the embedded broker and database, seeds partners and entitlements, then
runs the registration API (`python -m services.registration.entrypoints.api`,
its outbox relay included) and a bare FastAPI endpoint doing one indexed
insert (`bench/_registration_baseline.py`) as separate processes. At 1, 10 and
50 concurrent clients it drives each for `--seconds` and prints requests/s,
p50 and p99, and the ratio of the registration API to the baseline. Half of the
registrations carry a seller code. Each request registers a fresh licence.

    .venv/bin/python bench/registration_api.py [--seconds 5] [--levels 1,10,50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
from _report import figure
from pymongo import AsyncMongoClient

from devkit.embedded import DEV_TUNING, EmbeddedSuite
from devkit.processes import free_port
from services.registration.adapters import documents
from services.registration.adapters.mongo import ENTITLEMENTS, MongoUnitOfWork, ensure_indexes
from services.registration.bootstrap import utc_now
from services.registration.domain.entitlements import CustomerInfo, Entitlement, LineFacts
from services.registration.service_layer.partners import NewPartner, PartnerService

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "bench-admin-token"  # noqa: S105 - a throwaway local token
CUSTOMER = {
    "org_name": "Müller Logistik GmbH",
    "contact_name": "Jana Müller",
    "email": "jana@mueller-logistik.example",
    "country": "DE",
}


def _registrations(codes: list[str]) -> Iterator[dict[str, Any]]:
    """Fresh licences, every other one with a seller code."""
    for n in itertools.count():
        body: dict[str, Any] = {"license_key": f"LK-{n:07d}", "customer": CUSTOMER}
        if n % 2 == 0:
            body["seller_code"] = codes[n % len(codes)]
        yield body


async def seed(db: Any, keys: int) -> list[str]:
    await ensure_indexes(db)
    partners = PartnerService(lambda: MongoUnitOfWork(db), utc_now)
    codes = []
    for n in range(10):
        partner, _ = await partners.create(
            NewPartner(f"Partner {n}", f"Partner {n} GmbH", "var", "gold", f"p{n}@example.com")
        )
        codes.append(partner.seller_code)
    now = utc_now()
    customer = CustomerInfo("C-1", "Müller Logistik GmbH", "Jana", "jana@example.com", "DE")
    for start in range(0, keys, 1000):
        docs = [
            documents.entitlement_to_doc(
                Entitlement.from_line(
                    LineFacts(
                        "new",
                        f"LK-{i:07d}",
                        "SECURE-PRO-1Y",
                        "secure-pro",
                        dt.date(2027, 1, 10),
                        dt.date(2028, 1, 9),
                    ),
                    customer,
                    now,
                ),
                1,
            )
            for i in range(start, min(start + 1000, keys))
        ]
        await db[ENTITLEMENTS].insert_many(docs)
    return codes


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of `pid` and its children (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_of(int(child)) for child in children)


def database_pid(suite: EmbeddedSuite) -> int:
    found = [p.proc.pid for p in suite.processes if "database" in p.name and p.proc is not None]
    return found[0] if found else 0


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def wait_up(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


async def drive(
    url: str, bodies: Iterator[dict[str, Any]], concurrency: int, seconds: float
) -> tuple[float, float, float, int, float, dict[int | str, int]]:
    """(requests/s, p50 ms, p99 ms, non-2xx answers, max ms, answers by status)."""
    latencies: list[float] = []
    failures = 0
    statuses: dict[int | str, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal failures
            while time.perf_counter() < stop_at:
                body = next(bodies)
                began = time.perf_counter()
                status: int | str
                try:
                    status = (await client.post(url, json=body)).status_code
                except httpx.TransportError as error:  # the 30 s timeout, a reset: by name
                    status = type(error).__name__
                latencies.append(time.perf_counter() - began)
                statuses[status] = statuses.get(status, 0) + 1
                if not isinstance(status, int) or not 200 <= status < 300:
                    failures += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return len(latencies) / elapsed, p50, p99, failures, latencies[-1] * 1000, statuses


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--levels", default="1,10,50")
    parser.add_argument("--keys", type=int, default=40_000)
    parser.add_argument("--quick", action="store_true", help="2 s at 10 and 50 clients")
    parser.add_argument(
        "--compare-concurrency",
        default="",
        help="A/B: e.g. 256,8 runs one API per API_DB_CONCURRENCY value, interleaved per level"
        " and round (no baseline), and prints each run and the medians",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --compare-concurrency")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.levels, args.keys = 2.0, "10,50", 10_000
    levels = [int(x) for x in args.levels.split(",")]
    if args.compare_concurrency:
        await compare(args, levels, [int(x) for x in args.compare_concurrency.split(",")])
        return
    async with _seeded(args.keys) as (tmp, suite, client, db_name, codes):
        api_port, base_port = free_port(), free_port()
        service_env = _api_env(suite, db_name, api_port)
        processes = [
            start(
                ["-m", "services.registration.entrypoints.api"],
                service_env,
                Path(tmp) / "api.log",
            ),
            start(
                [
                    "bench/_registration_baseline.py",
                    "--port",
                    str(base_port),
                    "--mongo",
                    suite.mongo_url,
                    "--db",
                    db_name,
                ],
                service_env,
                Path(tmp) / "baseline.log",
            ),
        ]
        try:
            await wait_up(f"http://127.0.0.1:{api_port}/healthz")
            await wait_up(f"http://127.0.0.1:{base_port}/docs")
            baseline_keys = (f"BL-{i:07d}" for i in itertools.count())

            def baseline_bodies() -> Iterator[dict[str, Any]]:
                for key in baseline_keys:
                    yield {"license_key": key, "customer": CUSTOMER}

            reg_bodies, base_bodies = _registrations(codes), baseline_bodies()
            # Warm both up (connections, first-request imports).
            await drive(f"http://127.0.0.1:{base_port}/baseline", base_bodies, 4, 1.0)
            await drive(f"http://127.0.0.1:{api_port}/v1/registrations", reg_bodies, 4, 1.0)
            print(
                f"{'clients':>7}  {'baseline req/s':>14} {'p50':>7} {'p99':>8} {'max':>8}   "
                f"{'registration req/s':>18} {'p50':>7} {'p99':>8} {'max':>8}   ratio"
            )
            db_pid = database_pid(suite)
            cpu_lines = []
            for level in levels:
                cpu_0 = (cpu_of(processes[1].pid), cpu_of(db_pid))
                b = await drive(
                    f"http://127.0.0.1:{base_port}/baseline", base_bodies, level, args.seconds
                )
                cpu_1 = (cpu_of(processes[0].pid), cpu_of(db_pid), cpu_of(processes[1].pid))
                r = await drive(
                    f"http://127.0.0.1:{api_port}/v1/registrations",
                    reg_bodies,
                    level,
                    args.seconds,
                )
                cpu_2 = (cpu_of(processes[0].pid), cpu_of(db_pid))
                print(
                    f"{level:>7}  {b[0]:>14.0f} {b[1]:>5.0f}ms {b[2]:>6.0f}ms {b[4]:>6.0f}ms   "
                    f"{r[0]:>18.0f} {r[1]:>5.0f}ms {r[2]:>6.0f}ms {r[4]:>6.0f}ms   "
                    f"{r[0] / b[0]:.2f}"
                    + (f"   (non-2xx {b[3]}/{r[3]}: {r[5]})" if b[3] or r[3] else "")
                )
                figure(
                    f"POST /v1/registrations, {level} clients",
                    r[0],
                    "req/s",
                    baseline=b[0],
                    baseline_name="bare FastAPI + one insert",
                    aim=">= 0.50" + (", p99 < 50 ms" if level == 50 else ""),
                )
                figure(f"p99 at {level} clients", r[2], "ms", baseline=b[2])
                # On a shared machine wall time follows whatever else runs; CPU per
                # request does not. The registration process includes its relay.
                done_b, done_r = b[0] * args.seconds, r[0] * args.seconds
                base_proc = cpu_1[2] - cpu_0[0]
                cpu_lines.append(
                    f"{level:>7}  CPU ms/request: baseline process"
                    f" {1000 * base_proc / done_b:.2f} database"
                    f" {1000 * (cpu_1[1] - cpu_0[1]) / done_b:.2f};  registration process"
                    f" {1000 * (cpu_2[0] - cpu_1[0]) / done_r:.2f} database"
                    f" {1000 * (cpu_2[1] - cpu_1[1]) / done_r:.2f}"
                )
            print("\n".join(cpu_lines))
            outbox = client[db_name]["outbox"]
            unsent = await outbox.count_documents({"sent_at": None})
            total = await outbox.count_documents({})
            print(f"outbox: {total} events written, {unsent} not yet relayed at the end")
        finally:
            _stop(processes)


@contextlib.asynccontextmanager
async def _seeded(
    keys: int,
) -> AsyncIterator[tuple[Path, EmbeddedSuite, AsyncMongoClient[dict[str, Any]], str, list[str]]]:
    """A private broker and database, a fresh database seeded with `keys` licences."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"EMBEDDED_KAFKA_PORT": str(free_port()), "EMBEDDED_MONGO_PORT": str(free_port())}
        with EmbeddedSuite(data_dir=Path(tmp), env=env, with_smtp=False) as suite:
            db_name = f"bench_api_{uuid.uuid4().hex[:8]}"
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
                suite.mongo_url, tz_aware=True
            )
            try:
                codes = await seed(client[db_name], keys)
                yield Path(tmp), suite, client, db_name, codes
            finally:
                await client.close()


def _api_env(suite: EmbeddedSuite, db_name: str, port: int, **extra: str) -> dict[str, str]:
    """The registration API's environment against `suite`, on `port`."""
    return {
        **os.environ,
        **DEV_TUNING,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "KAFKA_BOOTSTRAP": suite.kafka_bootstrap,
        "MONGO_URL": suite.mongo_url,
        "REGISTRATION_MONGO_DB": db_name,
        "REGISTRATION_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        # The load comes from one address: no per-client limit in the way.
        "REGISTRATIONS_PER_MINUTE": "100000000",
        **extra,
    }


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every server, then SIGKILL whichever has not exited within 10 s."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


async def compare(args: argparse.Namespace, levels: list[int], variants: list[int]) -> None:
    """Registration APIs differing only in API_DB_CONCURRENCY, driven in turn, same database."""
    async with _seeded(args.keys) as (tmp, suite, _, db_name, codes):
        ports = [free_port() for _ in variants]
        processes = [
            start(
                ["-m", "services.registration.entrypoints.api"],
                _api_env(suite, db_name, port, API_DB_CONCURRENCY=str(variant)),
                Path(tmp) / f"api-{port}.log",
            )
            for variant, port in zip(variants, ports, strict=True)
        ]
        try:
            for port in ports:
                await wait_up(f"http://127.0.0.1:{port}/healthz")

            bodies = _registrations(codes)
            for port in ports:
                await drive(f"http://127.0.0.1:{port}/v1/registrations", bodies, 4, 1.0)
            runs: dict[tuple[int, int], list[tuple[float, ...]]] = {}
            print(
                f"{'round':>5} {'clients':>7} {'API_DB_CONCURRENCY':>18}"
                "  req/s    p50    p99    max (ms)"
            )
            for round_ in range(args.rounds):
                for level in levels:
                    for variant, port in zip(variants, ports, strict=True):
                        r = await drive(
                            f"http://127.0.0.1:{port}/v1/registrations",
                            bodies,
                            level,
                            args.seconds,
                        )
                        runs.setdefault((level, variant), []).append((*r[:3], r[4]))
                        print(
                            f"{round_:>5} {level:>7} {variant:>18} {r[0]:>6.1f} {r[1]:>6.0f}"
                            f" {r[2]:>6.0f} {r[4]:>6.0f}" + (f"   non-2xx {r[5]}" if r[3] else "")
                        )
            print("medians")
            for (level, variant), found in runs.items():
                med = [statistics.median(column) for column in zip(*found, strict=True)]
                print(
                    f"{'':>5} {level:>7} {variant:>18} {med[0]:>6.1f} {med[1]:>6.0f}"
                    f" {med[2]:>6.0f} {med[3]:>6.0f}"
                )
        finally:
            _stop(processes)


if __name__ == "__main__":
    asyncio.run(main())
