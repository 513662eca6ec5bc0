"""WEBHOOK_SECRET_KEYS rotation: old secrets stay readable, re-sealed on use or all at once."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from chassis.settings import load_settings
from services.notifications.adapters.webhooks import FernetSecretBox, legacy_fernet
from services.notifications.config import DEV_WEBHOOK_SECRET_KEYS, Settings
from services.notifications.service_layer.ports import DeliveryError, WebhookConfig
from services.notifications.service_layer.webhook_secrets import open_secret, rotate_all
from tests.unit.notifications.fakes import FakeWebhooks

NOW = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def _under(key: str, ciphertext: str) -> bool:
    try:
        Fernet(key).decrypt(ciphertext.encode())
    except Exception:
        return False
    return True


async def _stored(webhooks: FakeWebhooks, box: FernetSecretBox, partner: str, secret: str) -> None:
    await webhooks.set(
        WebhookConfig(partner, f"https://{partner}.example/in", box.seal(secret)), NOW
    )


async def test_after_a_rotation_old_secrets_open_and_are_resealed_on_use() -> None:
    webhooks = FakeWebhooks()
    await _stored(webhooks, FernetSecretBox([OLD_KEY]), "P-1", "whsec_one")

    rotated = FernetSecretBox([NEW_KEY, OLD_KEY])  # the new key first, the old one kept
    config = (await webhooks.of(["P-1"]))["P-1"]
    assert await open_secret(rotated, webhooks, config) == "whsec_one"

    resealed = webhooks.configs["P-1"].secret_ciphertext
    assert resealed != config.secret_ciphertext
    assert _under(NEW_KEY, resealed) and not _under(OLD_KEY, resealed)
    # The old key can now go: the row opens under the new key alone.
    assert FernetSecretBox([NEW_KEY]).open(resealed) == "whsec_one"
    # Used again, nothing is rewritten.
    again = webhooks.configs["P-1"]
    assert await open_secret(rotated, webhooks, again) == "whsec_one"
    assert webhooks.configs["P-1"] == again


async def test_the_admin_rotation_reseals_every_row_and_names_the_unreadable() -> None:
    webhooks = FakeWebhooks()
    old = FernetSecretBox([OLD_KEY])
    for n in range(3):
        await _stored(webhooks, old, f"P-{n}", f"whsec_{n}")
    rotated = FernetSecretBox([NEW_KEY, OLD_KEY])
    await _stored(webhooks, rotated, "P-new", "whsec_new")
    await _stored(webhooks, FernetSecretBox([Fernet.generate_key().decode()]), "P-lost", "x")

    report = await rotate_all(rotated, webhooks)

    assert (report.resealed, report.current, report.unreadable) == (3, 1, ["P-lost"])
    only_new = FernetSecretBox([NEW_KEY])
    for n in range(3):
        assert only_new.open(webhooks.configs[f"P-{n}"].secret_ciphertext) == f"whsec_{n}"
    again = await rotate_all(rotated, webhooks)
    assert (again.resealed, again.current) == (0, 4)


async def test_rows_sealed_before_webhook_secret_keys_stay_readable() -> None:
    # Earlier releases sealed under a hash of UNSUBSCRIBE_SECRET.
    settings = Settings(environment="dev", admin_token="test-admin-token-123")
    legacy = legacy_fernet(settings.legacy_webhook_key_material()[-1])
    ciphertext = legacy.encrypt(b"whsec_legacy").decode()
    webhooks = FakeWebhooks()
    await webhooks.set(WebhookConfig("P-1", "https://p.example/in", ciphertext), NOW)
    box = FernetSecretBox(settings.webhook_keys(), settings.legacy_webhook_key_material())

    assert await open_secret(box, webhooks, webhooks.configs["P-1"]) == "whsec_legacy"
    assert _under(DEV_WEBHOOK_SECRET_KEYS, webhooks.configs["P-1"].secret_ciphertext)
    # A box without the legacy material (a later release) reads the re-sealed row.
    assert (
        FernetSecretBox(settings.webhook_keys()).open(webhooks.configs["P-1"].secret_ciphertext)
        == "whsec_legacy"
    )


def test_a_secret_no_key_opens_is_a_permanent_delivery_error() -> None:
    sealed = FernetSecretBox([OLD_KEY]).seal("whsec_x")
    with pytest.raises(DeliveryError) as raised:
        FernetSecretBox([NEW_KEY]).reseal(sealed)
    assert raised.value.permanent


def test_production_refuses_to_start_without_webhook_secret_keys() -> None:
    base = {
        "environment": "production",
        "admin_token": "test-admin-token-123",
        "kafka_bootstrap": "kafka:9092",
        "mongo_url": "mongodb://mongo/?replicaSet=rs0",
        "unsubscribe_secret": "prod-like-unsubscribe-secret-0123456789",
    }
    with pytest.raises(ValidationError, match="set WEBHOOK_SECRET_KEYS"):
        Settings(**base)
    with pytest.raises(ValidationError, match="key 2 is not a Fernet key"):
        Settings(**base, webhook_secret_keys=f"{NEW_KEY},not-a-key")
    settings = Settings(**base, webhook_secret_keys=f" {NEW_KEY} , {OLD_KEY}")
    assert settings.webhook_keys() == [NEW_KEY, OLD_KEY]
    assert NEW_KEY not in repr(settings)  # a secret, never printed


def test_a_refused_configuration_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("ADMIN_TOKEN", "test-admin-token-123")
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("MONGO_URL", "mongodb://mongo/?replicaSet=rs0")
    monkeypatch.setenv("UNSUBSCRIBE_SECRET", "prod-like-unsubscribe-secret-0123456789")
    monkeypatch.delenv("WEBHOOK_SECRET_KEYS", raising=False)
    with pytest.raises(SystemExit) as refused:
        load_settings(Settings)
    assert refused.value.code == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert message.startswith("notifications: cannot start: set WEBHOOK_SECRET_KEYS")
    monkeypatch.setenv("WEBHOOK_SECRET_KEYS", "not-a-key")
    with pytest.raises(SystemExit):
        load_settings(Settings)
    message = capsys.readouterr().err
    assert "WEBHOOK_SECRET_KEYS: key 1 is not a Fernet key" in message
    assert "not-a-key" not in message
