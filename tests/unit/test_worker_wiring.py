"""Every worker is wired one way: `run_worker_process` with its service's `prepare_worker`.

The preparation runs before anything consumes (chassis.worker.run_worker), so no handler
checks for its indexes, and no collection is created while transactions run.
"""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest

from services.commissions import bootstrap as commissions
from services.commissions.config import Settings as CommissionsSettings
from services.commissions.entrypoints import worker as commissions_worker
from services.notifications import bootstrap as notifications
from services.notifications.config import Settings as NotificationsSettings
from services.notifications.entrypoints import worker as notifications_worker
from services.registration import bootstrap as registration
from services.registration.config import Settings as RegistrationSettings
from services.registration.entrypoints import worker as registration_worker

COMMON: dict[str, Any] = {
    "environment": "dev",
    "admin_token": "wiring-admin-token-0123456789",
    "kafka_bootstrap": "127.0.0.1:9",
    "mongo_url": "mongodb://127.0.0.1:9",
}

WORKERS = [
    pytest.param(registration_worker, registration, RegistrationSettings(**COMMON), id="reg"),
    pytest.param(commissions_worker, commissions, CommissionsSettings(**COMMON), id="com"),
    pytest.param(
        notifications_worker,
        notifications,
        NotificationsSettings(**COMMON, unsubscribe_secret="wiring-unsubscribe-0123456789"),
        id="notif",
    ),
]


@pytest.mark.parametrize(("entrypoint", "bootstrap", "settings"), WORKERS)
def test_a_worker_prepares_its_database_before_it_consumes(
    entrypoint: ModuleType,
    bootstrap: ModuleType,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(entrypoint, "load_settings", lambda _: settings)
    monkeypatch.setattr(entrypoint, "run_worker_process", lambda _, **kw: calls.append(kw))
    if hasattr(entrypoint, "tune_gc"):
        monkeypatch.setattr(entrypoint, "tune_gc", lambda: None)
    entrypoint.main()
    [wiring] = calls
    assert wiring["prepare"] is bootstrap.prepare_worker
    stop = wiring.get("stop")
    assert stop is None or isinstance(stop, asyncio.Event)
