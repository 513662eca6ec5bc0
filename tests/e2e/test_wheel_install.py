"""The image's install step without docker: every entry point starts from the built wheel.

Builds the wheel from the tracked sources, installs it into a fresh venv the way the
Dockerfile does (the runtime lock with `--no-deps --require-hashes`, then the wheel with
`--no-deps`), and from that venv, in a directory outside the source tree and with no
path into it, starts the three APIs, the three workers and the portal against the
session's embedded broker and database: each API answers `/healthz`, each worker
touches its heartbeat file. A file the wheel leaves out (the portal's static files
once did), an import of dev tooling or a dependency missing from the runtime lock
fails here, not in a container.
"""

from __future__ import annotations

import ast
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from devkit.embedded import DEV_TUNING, EmbeddedSuite
from devkit.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"
APIS = ("registration", "commissions", "notifications", "portal")
WORKERS = ("registration", "commissions", "notifications")
STARTUP_TIMEOUT_S = 120.0
ADMIN_TOKEN = "wheel-test-admin-token"


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    outside: Path  # a working directory outside the source tree


def _pip(*args: str | Path) -> None:
    """pip of the test's own venv (its cache is warm), quietly; its output on failure."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *map(str, args)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"pip {' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"


def _tracked_sources(into: Path) -> Path:
    """A copy of what git would commit: no build/, egg-info or .venv leaks into the wheel."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Built and installed once per session; pip's cache makes the installs quick."""
    work = tmp_path_factory.mktemp("wheel-install")
    sources = _tracked_sources(work / "src")
    _pip("wheel", "--no-deps", "--wheel-dir", work / "wheels", sources)
    (wheel,) = (work / "wheels").glob("channelkeep-*.whl")
    # --without-pip, and pip of this venv drives it: no pip or setuptools in the
    # install, and seconds saved per run.
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(work / "venv")],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    python = work / "venv" / "bin" / "python"
    # As the Dockerfile does: nothing resolved, nothing unhashed, then our wheel alone.
    target = ("--python", python, "install", "--no-compile", "--no-deps")
    _pip(*target, "--require-hashes", "-r", RUNTIME_LOCK)
    _pip(*target, wheel)
    outside = work / "run"
    outside.mkdir()
    return Installed(wheel=wheel, python=python, outside=outside)


def test_the_dockerfile_installs_the_runtime_lock_then_the_wheel_alone() -> None:
    """What this module does is what the image does."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "--no-deps --require-hashes -r requirements/runtime.lock" in dockerfile
    assert "--no-deps /tmp/wheels/channelkeep-" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {"tests", "devkit", "requirements/dev.lock"} <= set(ignored)


def test_the_wheel_holds_the_product_and_nothing_of_dev(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert "services/portal/static/portal.css" in names
    assert "services/portal/static/portal.js" in names
    assert any(n.startswith("services/notifications/templates/") for n in names)
    assert any(n.startswith("shared/schemas/") and n.endswith(".json") for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"chassis", "services", "shared"}
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [
        line.split(":", 1)[1].strip()
        for line in zipfile.ZipFile(installed.wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert not [r for r in requires if r.lower().startswith(("faust", "noida", "secantus"))]


def test_no_product_module_imports_dev_tooling(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        for name in wheel.namelist():
            if not name.endswith(".py"):
                continue
            for node in ast.walk(ast.parse(wheel.read(name), filename=name)):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    modules = [node.module or ""]
                else:
                    continue
                for module in modules:
                    top = module.split(".", 1)[0]
                    assert top not in ("devkit", "tests", "bench", "noida_db"), (name, module)


def _clean_env(**settings: str) -> dict[str, str]:
    """No PYTHONPATH, no variable of this session: only what an operator would set."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **settings}


def test_production_refuses_to_start_without_broker_and_database(installed: Installed) -> None:
    modules = ("registration.entrypoints.api", "commissions.entrypoints.worker")
    processes = [
        subprocess.Popen(
            [str(installed.python), "-m", f"services.{module}"],
            cwd=installed.outside,
            env=_clean_env(ADMIN_TOKEN=ADMIN_TOKEN),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for module in modules
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 2, stderr
        assert "Traceback" not in stderr
        lines = stderr.splitlines()
        assert len(lines) == 2, lines
        assert "KAFKA_BOOTSTRAP is not set" in lines[0]
        assert "MONGO_URL is not set" in lines[1]


@dataclass
class Started:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])


@pytest.fixture
def every_entry_point(installed: Installed, embedded: EmbeddedSuite) -> Iterator[dict[str, Any]]:
    run = uuid.uuid4().hex[:8]
    ports = {api: free_port() for api in APIS}
    settings = _clean_env(
        ENVIRONMENT="production",
        KAFKA_BOOTSTRAP=embedded.kafka_bootstrap,
        MONGO_URL=embedded.mongo_url,
        ADMIN_TOKEN=ADMIN_TOKEN,
        UNSUBSCRIBE_SECRET=f"wheel-test-unsubscribe-{run}",
        # Production refuses the public dev values of these: fresh ones per run.
        WEBHOOK_SECRET_KEYS=Fernet.generate_key().decode(),
        PORTAL_SESSION_SECRET=secrets.token_urlsafe(32),
        CHECKOUT_TOKEN=f"wheel-test-checkout-{run}",
        TOPIC_PARTITIONS="1",
        LOG_LEVEL="INFO",
        **DEV_TUNING,
        **{f"{api.upper()}_PORT": str(port) for api, port in ports.items()},
        **{f"{s.upper()}_URL": f"http://127.0.0.1:{ports[s]}" for s in WORKERS},
        **{f"{s.upper()}_MONGO_DB": f"wheel_{s}_{run}" for s in WORKERS},
        COMMISSIONS_WORKER_GROUP=f"wheel-commissions-{run}",
        COMMISSIONS_OUTBOX_RELAY_ID=f"wheel-relay-{run}",
    )
    logs = installed.outside / f"logs-{run}"
    logs.mkdir()
    started: list[Started] = []
    beats: dict[str, Path] = {}
    try:
        for role, services in (("api", APIS), ("worker", WORKERS)):
            for service in services:
                name = f"{service}-{role}"
                env = dict(settings)
                if role == "worker":
                    beats[service] = logs / f"{name}.alive"
                    env["WORKER_HEARTBEAT_FILE"] = str(beats[service])
                log = logs / f"{name}.log"
                with open(log, "wb") as out:
                    process = subprocess.Popen(
                        [str(installed.python), "-m", f"services.{service}.entrypoints.{role}"],
                        cwd=installed.outside,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                started.append(Started(name, process, log))
        yield {"ports": ports, "beats": beats, "started": started}
    finally:
        for each in started:
            if each.process.poll() is None:
                each.process.send_signal(signal.SIGTERM)
        for each in started:
            try:
                each.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(each.process.pid, signal.SIGKILL)
                each.process.wait(timeout=5)


def _healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return int(answer.status)
    except (urllib.error.URLError, OSError):
        return 0


def test_every_entry_point_starts_from_the_wheel(
    installed: Installed, every_entry_point: dict[str, Any]
) -> None:
    ports: dict[str, int] = every_entry_point["ports"]
    beats: dict[str, Path] = every_entry_point["beats"]
    started: list[Started] = every_entry_point["started"]
    waiting = {f"{api}-api" for api in APIS} | {f"{worker}-worker" for worker in WORKERS}
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while waiting and time.monotonic() < deadline:
        for each in started:
            assert each.process.poll() is None, f"{each.name} exited:\n{each.tail()}"
        for api in APIS:
            if f"{api}-api" in waiting and _healthz(ports[api]) == 200:
                waiting.discard(f"{api}-api")
        for worker, beat in beats.items():
            if beat.exists():
                waiting.discard(f"{worker}-worker")
        time.sleep(0.5)
    tails = "\n".join(f"--- {e.name}\n{e.tail()}" for e in started if e.name in waiting)
    assert not waiting, f"not up within {STARTUP_TIMEOUT_S:.0f}s: {sorted(waiting)}\n{tails}"
    # Every one of them ran from the installed wheel, not from the source tree.
    site = installed.python.parent.parent
    for each in started:
        assert "Traceback" not in each.log.read_text(errors="replace"), each.tail()
    where = subprocess.run(
        [str(installed.python), "-c", "import services, chassis; print(services.__file__)"],
        cwd=installed.outside,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(where.strip()).is_relative_to(site)
    assert str(ROOT) not in where
