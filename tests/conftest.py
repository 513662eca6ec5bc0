"""Test harness: the real embedded broker and database, started once per session.

Integration tests ask for `embedded` (or `kafka_bootstrap` / `mongo_url`); unit
tests never start anything. `KAFKA_BOOTSTRAP` / `MONGO_URL` in the environment
point the tests at servers that already run. A broker that cannot start fails
the tests that need it; nothing is skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from chassis.kafka import clip_aborted_transactions
from devkit.embedded import DEV_TUNING, EmbeddedSuite
from devkit.processes import free_port


def pytest_configure(config: pytest.Config) -> None:
    """The embedded servers' workarounds for every Settings the tests build, in this
    process and in the processes it starts (the services default them to off)."""
    for name, value in DEV_TUNING.items():
        os.environ.setdefault(name, value)


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSuite]:
    env = {k: os.environ[k] for k in ("KAFKA_BOOTSTRAP", "MONGO_URL") if os.environ.get(k)}
    # Free ports, so the tests run beside a `./dev up` that holds the default ones.
    env["EMBEDDED_KAFKA_PORT"] = str(free_port())
    env["EMBEDDED_MONGO_PORT"] = str(free_port())
    suite = EmbeddedSuite(data_dir=tmp_path_factory.mktemp("embedded"), env=env, with_smtp=False)
    suite.start()
    environ = pytest.MonkeyPatch()
    if "KAFKA_BOOTSTRAP" not in env:
        # The embedded broker's workaround (see chassis.kafka.clip_aborted_transactions), for
        # the readers of this process and, through the environment, the workers it starts.
        environ.setenv("KAFKA_CLIP_ABORTED_TRANSACTIONS", "true")
        clip_aborted_transactions()
    try:
        yield suite
    finally:
        environ.undo()
        suite.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(embedded: EmbeddedSuite) -> str:
    return embedded.kafka_bootstrap


@pytest.fixture(scope="session")
def mongo_url(embedded: EmbeddedSuite) -> str:
    return embedded.mongo_url


class Names:
    """Fresh topic, group and database names for one test."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:10]

    def topic(self, base: str = "t") -> str:
        return f"{base}.{self.run}"

    def group(self, base: str = "g") -> str:
        return f"{base}-{self.run}"

    def database(self, base: str = "test") -> str:
        return f"{base}_{self.run}"


@pytest.fixture
def names() -> Names:
    return Names()


@pytest.fixture
async def mongo_db(mongo_url: str, names: Names) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    db = client[names.database()]
    try:
        yield db
    finally:
        await client.drop_database(db.name)
        await client.close()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The folder says the speed: tests/unit, tests/integration, tests/e2e."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for speed in ("unit", "integration", "e2e"):
            if speed in parts and not item.get_closest_marker(speed):
                item.add_marker(getattr(pytest.mark, speed))


def pytest_addoption(parser: pytest.Parser) -> None:
    """`./dev test --reliability` also runs the long fault, load and soak runs."""
    parser.addoption(
        "--reliability", action="store_true", default=False, help="long reliability runs"
    )
