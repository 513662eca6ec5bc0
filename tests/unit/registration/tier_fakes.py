"""An in-memory fake of the tier store port (services/registration/service_layer/tiers.py)."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.registration.domain.partners import Partner
from services.registration.domain.tiers import Standing, TierRules
from services.registration.service_layer.tiers import Certification, RefundEntry, RevenueLine
from tests.unit.registration.fakes import Store


@dataclass
class _Line:
    line: RevenueLine | None = None
    refunds: dict[str, RefundEntry] = field(default_factory=dict)


class FakeTierStore:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.rules: dict[int, TierRules] = {}
        self.certs: dict[str, Certification] = {}
        self.lines: dict[str, _Line] = {}
        self.below: dict[str, Standing] = {}
        self.evaluations: dict[dt.date, dict[str, int]] = {}

    async def rule_versions(self) -> list[TierRules]:
        return list(self.rules.values())

    async def add_rules(self, rules: TierRules) -> bool:
        if rules.version in self.rules:
            return False
        self.rules[rules.version] = rules
        return True

    async def add_certification(self, certification: Certification) -> bool:
        new = certification.certification_id not in self.certs
        self.certs.setdefault(certification.certification_id, certification)
        return new

    async def certifications(self, partner_id: str) -> list[Certification]:
        return [c for c in self.certs.values() if c.partner_id == partner_id]

    async def certified_counts(self, on: dt.date) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self.certs.values():
            if c.expires_on >= on:
                counts[c.partner_id] = counts.get(c.partner_id, 0) + 1
        return counts

    async def record_lines(self, lines: Sequence[RevenueLine]) -> None:
        for line in lines:
            self.lines.setdefault(line.line_ref, _Line()).line = line

    async def record_refunds(self, refunds: Sequence[RefundEntry]) -> None:
        for refund in refunds:
            self.lines.setdefault(refund.line_ref, _Line()).refunds[refund.refund_id] = refund

    async def revenue(
        self, after: dt.datetime, until: dt.datetime, partner_id: str | None = None
    ) -> dict[str, dict[str, int]]:
        totals: dict[str, dict[str, int]] = {}
        for entry in self.lines.values():
            line = entry.line
            if line is None or not after < line.occurred_at <= until:
                continue
            if partner_id is not None and line.partner_id != partner_id:
                continue
            amount = line.net_amount_minor - sum(
                r.amount_minor for r in entry.refunds.values() if r.occurred_at <= until
            )
            per = totals.setdefault(line.partner_id, {})
            per[line.currency] = per.get(line.currency, 0) + amount
        return totals

    async def partners(self) -> list[Partner]:
        return [copy.deepcopy(p) for p in self._store.partners.values()]

    async def standings(self, partner_id: str | None = None) -> dict[str, Standing]:
        return {p: s for p, s in self.below.items() if partner_id in (None, p)}

    async def save_standings(self, below: Sequence[Standing], cleared: Sequence[str]) -> None:
        for s in below:
            self.below[s.partner_id] = Standing(s.partner_id, s.below_since)
        for pid in cleared:
            self.below.pop(pid, None)

    async def last_evaluation(self) -> dt.date | None:
        return max(self.evaluations) if self.evaluations else None

    async def record_evaluation(
        self, as_of: dt.date, summary: Mapping[str, int], now: dt.datetime
    ) -> None:
        self.evaluations[as_of] = dict(summary)
