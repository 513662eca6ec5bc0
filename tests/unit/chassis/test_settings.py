"""Production settings name what is missing in one line each; dev keeps its embedded defaults."""

from __future__ import annotations

import pytest

from chassis.settings import EMBEDDED_KAFKA, EMBEDDED_MONGO, load_settings
from services.commissions.config import Settings as CommissionsSettings
from services.portal.config import Settings as PortalSettings
from services.registration.config import Settings as RegistrationSettings

SERVER_VARIABLES = ("KAFKA_BOOTSTRAP", "MONGO_URL", "ENVIRONMENT")


@pytest.fixture(autouse=True)
def _no_servers_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in SERVER_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("ADMIN_TOKEN", "an-admin-token-of-length")


def test_production_without_broker_and_database_exits_with_one_line_each(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        load_settings(RegistrationSettings)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("registration: cannot start: KAFKA_BOOTSTRAP is not set;")
    assert lines[1].startswith("registration: cannot start: MONGO_URL is not set;")


def test_every_problem_is_one_line_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("MONGO_URL", "mongodb://db/?replicaSet=rs0")
    monkeypatch.setenv("COMMISSIONS_PORT", "eighty")
    monkeypatch.delenv("ADMIN_TOKEN")
    with pytest.raises(SystemExit):
        load_settings(CommissionsSettings)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "commissions: cannot start: ADMIN_TOKEN is not set",
        "commissions: cannot start: COMMISSIONS_PORT: Input should be a valid integer,"
        " unable to parse string as an integer",
    ]


def test_explicit_servers_are_used_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "kafka-0:9092,kafka-1:9092")
    monkeypatch.setenv("MONGO_URL", "mongodb://db/?replicaSet=rs0")
    settings = load_settings(RegistrationSettings)
    assert settings.kafka_bootstrap == "kafka-0:9092,kafka-1:9092"
    assert settings.mongo_url.get_secret_value() == "mongodb://db/?replicaSet=rs0"


def test_dev_defaults_to_the_embedded_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "dev")
    settings = load_settings(RegistrationSettings)
    assert settings.kafka_bootstrap == EMBEDDED_KAFKA
    assert settings.mongo_url.get_secret_value() == EMBEDDED_MONGO


def test_the_portal_needs_neither_broker_nor_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_SESSION_SECRET", "portal-session-secret-for-the-test-0123")
    settings = load_settings(PortalSettings)
    assert settings.environment == "production"


def test_the_embedded_broker_workaround_is_off_unless_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "dev")
    monkeypatch.delenv("CONSUMER_EMPTY_FETCH_BACKOFF_MS", raising=False)
    assert RegistrationSettings().consumer_empty_fetch_backoff_ms == 0
    monkeypatch.setenv("CONSUMER_EMPTY_FETCH_BACKOFF_MS", "50")
    assert RegistrationSettings().consumer_empty_fetch_backoff_ms == 50
