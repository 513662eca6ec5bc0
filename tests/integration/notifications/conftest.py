"""Fixtures of the notifications integration tests: a mail sink, a service, a receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.conftest import Names
from tests.integration.notifications.harness import MailSink, Receiver, Service


@pytest.fixture
def mail() -> Iterator[MailSink]:
    sink = MailSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
async def service(
    kafka_bootstrap: str, mongo_url: str, names: Names, mail: MailSink
) -> AsyncIterator[Service]:
    svc = Service(kafka_bootstrap, mongo_url, names.run, mail.port)
    await svc.provision()
    try:
        yield svc
    finally:
        await svc.stop_worker()
        client, db = svc.db()
        await client.drop_database(db.name)
        await client.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = await Receiver(fail_first=1).start()
    try:
        yield hook
    finally:
        await hook.stop()
