"""The advisory fan-out reads contacts a slice of the id range at a time."""

from __future__ import annotations

import uuid

from services.notifications.domain.model import contact_id
from services.notifications.service_layer.advisories import contact_window_end


def walk(total: int, page: int) -> list[str | None]:
    ends: list[str | None] = []
    after = ""
    while True:
        end = contact_window_end(after, total, page)
        ends.append(end)
        if end is None:
            return ends
        assert end > after, "each slice starts where the last one ended"
        after = end


def test_slices_cover_every_contact_exactly_once() -> None:
    contacts = sorted(contact_id(f"contact{n}@customer.example") for n in range(2000))
    ends = walk(total=2000, page=100)
    seen: list[str] = []
    after = ""
    for end in ends:
        seen.extend(c for c in contacts if c > after and (end is None or c <= end))
        after = end or after
    assert seen == contacts
    sizes = []
    after = ""
    for end in ends[:-1]:
        assert end is not None
        sizes.append(sum(1 for c in contacts if after < c <= end))
        after = end
    # About 4/5 of a page each (ids are spread evenly), so a page rarely has to be cut.
    assert 60 <= sum(sizes) / len(sizes) <= 100


def test_a_small_job_or_an_id_that_is_no_uuid_reads_to_the_end() -> None:
    assert contact_window_end("", total=50, page_size=500) is None
    assert contact_window_end("not-a-uuid", total=10**6, page_size=500) is None
    assert contact_window_end(str(uuid.UUID(int=(1 << 128) - 2)), 10**6, 500) is None
    first = contact_window_end("", total=10**6, page_size=500)
    assert first is not None and uuid.UUID(first).int < (1 << 128) // 1000
