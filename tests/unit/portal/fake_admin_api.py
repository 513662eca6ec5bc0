"""A fake of the three services' admin routes, for the console's unit tests.

Only the operator token opens them; a partner key gets `403` (a valid token of the
wrong kind, CONTRACT 2), anything else `401`. Tier rules and the evaluation preview
(CONTRACT 6.4) answer `404` until a test gives them, as on a registration without them.
`combined(...)` routes `/v1/admin` here and everything else to the partner fake.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.unit.portal.fake_apis import FakePartnerApis, _error

ADMIN_TOKEN = "operator-token-for-tests"


def partner(pid: str, name: str, tier: str = "gold", **extra: Any) -> dict[str, Any]:
    return {
        "partner_id": pid,
        "display_name": name,
        "legal_name": f"{name} GmbH",
        "type": "var",
        "tier": tier,
        "status": "active",
        "parent_partner_id": None,
        "contact_email": f"sales@{pid.lower()}.example",
        "branding": {"logo_url": None, "color": None, "phone": None, "website": None},
        "co_brand_customer_messages": False,
        "customer_ids": [],
        "seller_code": f"7K3M-{pid[-4:].upper():0>4}",
        "effective_at": "2026-01-01T00:00:00Z",
        "created_at": "2026-01-01T00:00:00Z",
        "tier_history": [{"value": tier, "effective_at": "2026-01-01T00:00:00Z"}],
        "status_history": [],
        **extra,
    }


def ledger_line(
    pid: str, month: str, amount: int, status: str = "payable", **extra: Any
) -> dict[str, Any]:
    return {
        "line_id": f"L-{pid}-{month}-{amount}-{status}",
        "partner_id": pid,
        "role": "partner_of_record",
        "order_id": f"WEB-{pid}-{month}",
        "refund_id": None,
        "base_amount_minor": amount * 10,
        "amount_minor": amount,
        "currency": "EUR",
        "status": status,
        "occurred_at": f"{month}-05T10:00:00Z",
        **extra,
    }


@dataclass
class FakeAdminApis:
    partners: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    deals: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    tier_rules: dict[str, Any] | None = None
    preview: dict[str, Any] | None = None
    below_minimum: set[str] = field(default_factory=set)
    partner_keys: set[str] = field(default_factory=lambda: {"key-A", "key-B"})
    admin_token: str = ADMIN_TOKEN
    requests: list[httpx.Request] = field(default_factory=list)
    patches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    reassigned: list[dict[str, Any]] = field(default_factory=list)
    evaluated: list[str] = field(default_factory=list)
    saved_rules: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or (token != self.admin_token and token not in self.partner_keys):
            return _error(401, "unauthorized", "unknown token")
        if token != self.admin_token:
            return _error(403, "forbidden", "this route takes the operator token")
        path, method = request.url.path, request.method
        body = json.loads(request.content) if request.content else None
        if path == "/v1/admin/partners" and method == "GET":
            return httpx.Response(200, json={"partners": self.partners, "next_after": None})
        if path == "/v1/admin/partners" and method == "POST":
            made = partner(f"P-NEW{len(self.partners)}", body["display_name"], body["tier"])
            made.update({k: v for k, v in body.items() if k in made})
            self.partners.append(made)
            return httpx.Response(201, json={**made, "api_key": "ckp_shown_once_secret"})
        if path.startswith("/v1/admin/partners/"):
            pid = path.rsplit("/", 1)[1]
            found = [p for p in self.partners if p["partner_id"] == pid]
            if not found:
                return _error(404, "partner_not_found", "no such partner")
            if method == "PATCH":
                self.patches.append((pid, body))
                found[0].update(body)
            return httpx.Response(200, json=found[0])
        if path == "/v1/admin/attribution-conflicts":
            return httpx.Response(200, json={"conflicts": self.conflicts})
        if path.endswith("/partner-of-record") and method == "PUT":
            self.reassigned.append({"license_key": path.split("/")[4], **body})
            return httpx.Response(200, json={"license_key": path.split("/")[4]})
        if path == "/v1/admin/deals":
            status = request.url.params.get("status")
            found = [d for d in self.deals if status in (None, d["status"])]
            return httpx.Response(200, json={"deals": found, "next_after": None})
        if path.startswith("/v1/admin/deals/") and method == "POST":
            deal_id, decision = path.split("/")[4:6]
            deal = next((d for d in self.deals if d["deal_id"] == deal_id), None)
            if deal is None:
                return _error(404, "unknown_deal", "no such deal")
            if deal["status"] != "submitted":
                return _error(409, "deal_not_pending", "already decided")
            if decision == "approve" and deal.get("conflicts"):
                return _error(409, "deal_conflict", "another partner's deal protects this")
            if decision == "approve":
                deal.update(status="approved", protected_until="2027-04-15T09:00:00Z")
            else:
                deal.update(status="rejected", reason=body["reason"])
            return httpx.Response(200, json=deal)
        if path == "/v1/admin/tier-rules":
            if self.tier_rules is None:
                return _error(404, "not_found", "Not Found")
            if method == "PUT":
                self.saved_rules.append(body)
                return httpx.Response(201, json=body)
            return httpx.Response(200, json=self.tier_rules)
        if path == "/v1/admin/tiers/preview":
            if self.preview is None:
                return _error(404, "not_found", "Not Found")
            return httpx.Response(200, json=self.preview)
        if path == "/v1/admin/tiers/evaluate":
            if self.preview is None:
                return _error(404, "not_found", "Not Found")
            self.evaluated.append(request.url.params["as_of"])
            return httpx.Response(200, json=self.preview)
        if path == "/v1/admin/commissions":
            pid = request.url.params.get("partner_id")
            found = [x for x in self.lines if pid in (None, x["partner_id"])]
            return httpx.Response(200, json={"lines": found})
        if path == "/v1/admin/payables/run":
            released = [x for x in self.lines if x["status"] == "accrued"]
            for x in released:
                x["status"] = "payable"
            as_of = request.url.params.get("as_of", "2027-01-15")
            return httpx.Response(
                200, json={"as_of": f"{as_of}T23:59:59Z", "payable_lines": len(released)}
            )
        if path.startswith("/v1/admin/statements/") and path.endswith("/paid"):
            pid, month = path.split("/")[4:6]
            if pid in self.below_minimum:
                return _error(
                    409,
                    "below_minimum_payout",
                    "payable total below MIN_PAYOUT_MINOR (EUR 1200 minor units): those lines"
                    " stay payable and carry into the next statement",
                )
            paid = [
                x
                for x in self.lines
                if x["partner_id"] == pid
                and x["status"] == "payable"
                and x["occurred_at"].startswith(month)
            ]
            for x in paid:
                x["status"] = "paid"
            return httpx.Response(
                200,
                json={"partner_id": pid, "month": month, "paid_lines": len(paid), "totals": []},
            )
        if path == "/v1/admin/deliveries":
            error = request.url.params.get("error")
            found = [
                d
                for d in self.deliveries
                if d["status"] == request.url.params.get("status", d["status"])
                and error in (None, d["error"])
            ]
            return httpx.Response(200, json={"deliveries": found, "total": len(found)})
        return _error(404, "not_found", "Not Found")


def combined(partner_apis: FakePartnerApis, admin: FakeAdminApis) -> httpx.MockTransport:
    """One transport: `/v1/admin/*` to the admin fake, the rest to the partner fake."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v1/admin"):
            if partner_apis.down:
                raise httpx.ConnectError("down", request=request)
            return admin.handle(request)
        return partner_apis.handle(request)

    return httpx.MockTransport(handle)
