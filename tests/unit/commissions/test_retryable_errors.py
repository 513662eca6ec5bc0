"""Concurrency conflicts (commissions and registration) are retried by the chassis, never
dead-lettered as bad input."""

from __future__ import annotations

import pytest

from chassis.batch import is_infrastructure
from services.commissions.service_layer.ingest import ConcurrentUpdateError
from services.commissions.service_layer.ports import HorizonUnavailableError
from services.registration.service_layer.unit_of_work import ConcurrentUpdate

pytestmark = [pytest.mark.unit]


def test_a_conflict_with_another_writer_is_retried_not_isolated() -> None:
    assert is_infrastructure(ConcurrentUpdateError("order lines kept changing"))
    assert is_infrastructure(HorizonUnavailableError("broker unreachable"))


def test_a_registration_write_conflict_is_retried_never_dead_lettered() -> None:
    """A write conflict (another writer, or a killed worker's open transaction) is not
    the record's fault: the batch is retried, the order is not dead-lettered."""
    assert is_infrastructure(ConcurrentUpdate("write conflict"))
    assert is_infrastructure(ConcurrentUpdate("duplicate key on _id"))
