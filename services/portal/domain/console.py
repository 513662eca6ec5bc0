"""Pure rules of the channel team's console: search, the payables queue, tier-rule forms."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from services.portal.domain.charts import TIERS
from services.portal.domain.deals import amount_minor
from services.portal.domain.presentation import format_money

PARTNER_TYPES = ("var", "si", "msp", "distributor", "isv")
PARTNER_STATUSES = ("active", "suspended", "terminated")
RENEWAL_MODES = ("partner_first", "partner_only", "vendor_direct")
RENEWAL_MODE_HELP = {
    "partner_first": "the partner is told first and may win the renewal back",
    "partner_only": "renewals go through the partner only",
    "vendor_direct": "the vendor renews direct; the partner earns its commission",
}
SEARCHED = ("partner_id", "display_name", "legal_name", "seller_code", "contact_email")


def search_partners(
    partners: Iterable[Mapping[str, Any]], q: str, tier: str = "", status: str = ""
) -> list[Mapping[str, Any]]:
    """Partners whose id, names, seller code or contact contain `q` (any case)."""
    needle = q.strip().casefold()
    # Seller codes are shown XXXX-XXXX; people type them with or without the hyphen.
    bare = needle.replace("-", "")
    found = []
    for partner in partners:
        if tier and partner.get("tier") != tier:
            continue
        if status and partner.get("status") != status:
            continue
        texts = [str(partner.get(name) or "").casefold() for name in SEARCHED]
        code = str(partner.get("seller_code") or "").casefold().replace("-", "")
        if not needle or any(needle in t for t in texts) or (bare and bare in code):
            found.append(partner)
    return sorted(found, key=lambda p: str(p.get("display_name", "")).casefold())


@dataclass(frozen=True)
class PayableStatement:
    """Payable lines of one partner, month (of `occurred_at`) and currency."""

    partner_id: str
    month: str
    currency: str
    amount_minor: int
    lines: int


def payable_statements(lines: Iterable[Mapping[str, Any]]) -> list[PayableStatement]:
    sums: dict[tuple[str, str, str], list[int]] = {}
    for line in lines:
        if line.get("status") != "payable":
            continue
        key = (
            str(line.get("partner_id")),
            str(line.get("occurred_at", ""))[:7],
            str(line.get("currency")),
        )
        entry = sums.setdefault(key, [0, 0])
        entry[0] += int(line.get("amount_minor", 0))
        entry[1] += 1
    return [
        PayableStatement(pid, month, currency, amount, count)
        for (pid, month, currency), (amount, count) in sorted(sums.items())
    ]


def rules_in_force(body: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The rules version in force from `GET /v1/admin/tier-rules`, whatever its envelope.

    CONTRACT 6.4 says "versioned like rate tables": `{"versions": [...], "in_force": n}`
    is expected; a bare rules object or a list is taken too.
    """
    if not body:
        return None
    if "tiers" in body:
        return body
    versions = body.get("versions") or body.get("items") or body.get("tier_rules")
    if not isinstance(versions, list) or not versions:
        return None
    in_force = body.get("in_force")
    for version in versions:
        if (
            isinstance(version, dict)
            and in_force is not None
            and version.get("version") == in_force
        ):
            return version
    last = versions[-1]
    return last if isinstance(last, dict) else None


def parse_fx(text: str) -> tuple[dict[str, str], str | None]:
    """`"USD=0.92, GBP=1.17"` -> `{"USD": "0.92", ...}`; exact decimal strings, or an error."""
    rates: dict[str, str] = {}
    for part in text.replace("\n", ",").split(","):
        if not part.strip():
            continue
        currency, _, rate = part.partition("=")
        currency, rate = currency.strip().upper(), rate.strip()
        if len(currency) != 3 or not currency.isalpha():
            return {}, f"{part.strip()!r}: write each rate as CUR=rate, e.g. USD=0.92."
        try:
            value = Decimal(rate)
        except InvalidOperation:
            return {}, f"{currency}: {rate!r} is not a number."
        if not value.is_finite() or value <= 0:
            return {}, f"{currency}: the rate must be above 0."
        rates[currency] = rate
    return rates, None


def tier_rules_from_form(
    form: Mapping[str, str],
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The PUT /v1/admin/tier-rules body from the console form, or the errors per field.

    Revenue is typed in major units of the programme currency and sent as exact
    minor units (no rounding, like the deal amounts).
    """
    errors: dict[str, str] = {}
    currency = form.get("currency", "").strip().upper()
    try:
        effective_from = dt.date.fromisoformat(form.get("effective_from", "")).isoformat()
    except ValueError:
        effective_from = ""
        errors["effective_from"] = "Give the day the rules take effect (YYYY-MM-DD)."
    if len(currency) != 3 or not currency.isalpha():
        errors["currency"] = "A three-letter currency code, e.g. EUR."
    fx, fx_error = parse_fx(form.get("fx", ""))
    if fx_error:
        errors["fx"] = fx_error
    grace = form.get("demotion_grace_days", "").strip()
    if not grace.isdigit() or not 0 <= int(grace) <= 3650:
        errors["demotion_grace_days"] = "Whole days, 0 to 3650."
    tiers: dict[str, dict[str, int]] = {}
    for tier in TIERS:
        revenue = amount_minor(form.get(f"{tier}_revenue", ""), currency) if currency else None
        if revenue is None:
            errors[f"{tier}_revenue"] = f"An amount in {currency or 'the currency'}."
        certified = form.get(f"{tier}_certified", "").strip()
        if not certified.isdigit() or int(certified) > 10_000:
            errors[f"{tier}_certified"] = "A whole number of certified people."
        if revenue is not None and certified.isdigit():
            tiers[tier] = {"min_revenue_minor": revenue, "min_certified": int(certified)}
    if errors:
        return None, errors
    return {
        "effective_from": effective_from,
        "currency": currency,
        "fx": fx,
        "tiers": tiers,
        "demotion_grace_days": int(grace),
    }, {}


def tier_rules_form_values(rules: Mapping[str, Any] | None, today: dt.date) -> dict[str, str]:
    """The form pre-filled from the rules in force (revenue back in major units)."""
    values = {"effective_from": today.isoformat(), "currency": "EUR", "fx": "",
              "demotion_grace_days": "90"}  # fmt: skip
    if not rules:
        return values
    currency = str(rules.get("currency") or "EUR")
    values["currency"] = currency
    fx = rules.get("fx") or {}
    values["fx"] = ", ".join(f"{c}={r}" for c, r in fx.items()) if isinstance(fx, dict) else ""
    values["demotion_grace_days"] = str(rules.get("demotion_grace_days", 90))
    tiers = rules.get("tiers") or {}
    for tier in TIERS:
        rule = tiers.get(tier) or {}
        if "min_revenue_minor" in rule:
            text = format_money(int(rule["min_revenue_minor"]), currency)
            values[f"{tier}_revenue"] = text.split(" ", 1)[1].replace(",", "")
        if "min_certified" in rule:
            values[f"{tier}_certified"] = str(rule["min_certified"])
    return values


def preview_moves(body: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The partners an evaluation would move, as the tiers page lists them.

    Registration's preview (CONTRACT 6.4) answers every evaluated partner with its
    `tier`, `move` (`promotion`, `demotion`, `pending_demotion`, `none`) and
    `new_tier`; only a promotion or a demotion changes a tier, so only those are
    listed, as `{partner_id, display_name, from, to}`.
    """
    moves: list[dict[str, Any]] = []
    for change in (body or {}).get("changes", []):
        if not isinstance(change, Mapping):
            continue
        to = change.get("to", change.get("new_tier"))
        if change.get("move", "promotion") not in ("promotion", "demotion") or not to:
            continue
        moves.append(
            {
                "partner_id": change.get("partner_id", ""),
                "display_name": change.get("display_name", ""),
                "from": change.get("from", change.get("tier", "")),
                "to": to,
            }
        )
    return moves
