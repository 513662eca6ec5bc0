"""A worker's identity in its consumer group (chassis.worker)."""

from __future__ import annotations

import os

from chassis.settings import ServiceSettings
from chassis.worker import instance_id, static_member_id


def settings(instance: str) -> ServiceSettings:
    return ServiceSettings(
        kafka_bootstrap="127.0.0.1:1",
        mongo_url="mongodb://127.0.0.1:1",
        admin_token="an-admin-token-of-length",
        worker_instance_id=instance,
    )


def test_a_stable_instance_id_makes_a_static_member() -> None:
    configured = settings("registration-0")
    assert instance_id(configured) == "registration-0"
    assert static_member_id(configured, "registration.worker-registration-0") == (
        "registration.worker-registration-0"
    )


def test_a_throwaway_id_stays_a_dynamic_member() -> None:
    unconfigured = settings("")
    assert instance_id(unconfigured).endswith(f"-{os.getpid()}")
    assert static_member_id(unconfigured, "anything") is None
