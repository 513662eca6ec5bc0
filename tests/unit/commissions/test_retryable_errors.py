"""Concurrency conflicts are retried by the chassis, never dead-lettered as bad input."""

from __future__ import annotations

import pytest

from chassis.batch import is_infrastructure
from services.commissions.service_layer.ingest import ConcurrentUpdateError
from services.commissions.service_layer.ports import HorizonUnavailableError

pytestmark = [pytest.mark.unit]


def test_a_conflict_with_another_writer_is_retried_not_isolated() -> None:
    assert is_infrastructure(ConcurrentUpdateError("order lines kept changing"))
    assert is_infrastructure(HorizonUnavailableError("broker unreachable"))
