"""A fake of the three services' partner APIs behind one httpx.MockTransport.

It answers like the real ones (CONTRACT 2.1-2.3): each key sees its own partner's
data alone, an unknown key gets 401. It records every request, so tests can check
which key the portal sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

REGISTRATION = "http://registration.test"
COMMISSIONS = "http://commissions.test"
NOTIFICATIONS = "http://notifications.test"


def entitlement(license_key: str, partner_id: str, term_end: str, org: str) -> dict[str, Any]:
    return {
        "license_key": license_key,
        "product": "secure-pro",
        "sku": "SECURE-PRO-1Y",
        "term_start": "2026-01-10",
        "term_end": term_end,
        "customer": {
            "customer_id": f"C-{license_key}",
            "org_name": org,
            "contact_name": "Jana Müller",
            "email": "jana@example.test",
            "country": "DE",
        },
        "partner_of_record": {
            "partner_id": partner_id,
            "since": "2026-01-10T09:00:00Z",
            "source": "partner_sale",
        },
    }


def line(partner_id: str, license_key: str, amount: int, status: str) -> dict[str, Any]:
    return {
        "line_id": f"L-{license_key}-{status}",
        "partner_id": partner_id,
        "role": "partner_of_record",
        "order_id": f"WEB-{license_key}",
        "line_ref": "1",
        "license_key": license_key,
        "refund_id": None,
        "kind": "renewal",
        "tier": "gold",
        "base_amount_minor": amount * 10,
        "rate_bps": 1000,
        "amount_minor": amount,
        "currency": "EUR",
        "status": status,
        "rate_table_version": 1,
        "occurred_at": "2027-01-05T10:00:00Z",
        "payable_at": "2027-02-04T10:00:00Z",
        "paid_at": None,
    }


@dataclass
class FakePartnerApis:
    keys: dict[str, str] = field(default_factory=lambda: {"key-A": "P-A", "key-B": "P-B"})
    entitlements: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    unregistered: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    webhooks: dict[str, str] = field(default_factory=dict)
    deals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # GET /v1/partner/tier per partner; a partner without one gets 409 no_tier_rules.
    tiers: dict[str, dict[str, Any]] = field(default_factory=dict)
    down: bool = False
    # CONTRACT 6.7: a key's role (admin unless listed) and the partners' key records.
    roles: dict[str, str] = field(default_factory=dict)
    key_records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def partner_calls(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.startswith("/v1/partner")]

    def keys_sent(self) -> set[str]:
        return {r.headers.get("authorization", "") for r in self.partner_calls()}

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("down", request=request)
        base = f"{request.url.scheme}://{request.url.host}"
        path = request.url.path
        if path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        if path.startswith("/v1/admin") or path.startswith("/v1/internal"):
            return _error(403, "forbidden", "the portal must never call admin routes")
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        partner_id = self.keys.get(key) if scheme == "Bearer" else None
        if partner_id is None:
            return _error(401, "unauthorized", "unknown token")
        role = self.roles.get(key, "admin")
        if role not in _roles_of(request.method, path):
            return _error(403, "role_forbidden", "this route needs another role")
        if base == REGISTRATION and path.startswith("/v1/partner/key"):
            return self._keys(request, partner_id, key, role)
        if base == REGISTRATION:
            return self._registration(request, partner_id)
        if base == COMMISSIONS:
            return self._commissions(request, partner_id)
        if base == NOTIFICATIONS:
            return self._notifications(request, partner_id)
        return _error(404, "not_found", "no such service")

    def _registration(self, request: httpx.Request, partner_id: str) -> httpx.Response:
        path = request.url.path
        own = self.entitlements.setdefault(partner_id, [])
        if path == "/v1/partner/me":
            if partner_id not in self.profiles:
                return _error(404, "not_found", "Not Found")
            return httpx.Response(200, json=self.profiles[partner_id])
        if path == "/v1/partner/tier":
            if partner_id not in self.tiers:
                return _error(409, "no_tier_rules", "no tier rules are in force at as_of")
            return httpx.Response(200, json=self.tiers[partner_id])
        if path == "/v1/partner/renewal-mode" and request.method == "PUT":
            mode = json.loads(request.content).get("renewal_mode")
            if mode not in ("partner_first", "partner_only", "vendor_direct"):
                return _error(422, "validation_error", "not a renewal mode", field="renewal_mode")
            self.profiles.setdefault(partner_id, {"display_name": partner_id})
            self.profiles[partner_id]["renewal_mode"] = mode
            return httpx.Response(
                200,
                json={"partner_id": partner_id, "renewal_mode": mode, "effective_at": "now"},
            )
        if path == "/v1/partner/entitlements" and request.method == "GET":
            before = request.url.params.get("term_end_before")
            found = [e for e in own if before is None or e["term_end"] < before]
            return httpx.Response(200, json={"entitlements": found, "next_after": None})
        if path.startswith("/v1/partner/entitlements/"):
            key = path.rsplit("/", 1)[1]
            match = [e for e in own if e["license_key"] == key]
            return httpx.Response(200, json=match[0]) if match else _error(404, "not_found", "no")
        if path == "/v1/partner/registrations" and request.method == "POST":
            body = json.loads(request.content)
            key = body["license_key"]
            if any(e["license_key"] == key for e in own):
                return httpx.Response(200, json=next(e for e in own if e["license_key"] == key))
            for other, held in self.entitlements.items():
                if other != partner_id and any(e["license_key"] == key for e in held):
                    return _error(409, "attributed_elsewhere", "held by another partner")
            if key not in self.unregistered:
                return _error(404, "unknown_license_key", "no such licence")
            record = {**self.unregistered.pop(key)}
            record["partner_of_record"] = {
                "partner_id": partner_id,
                "since": "2027-01-01T00:00:00Z",
                "source": "partner_registration",
            }
            own.append(record)
            return httpx.Response(201, json=record)
        if path.startswith("/v1/partner/deals"):
            return self._deals(request, partner_id)
        return _error(404, "not_found", "Not Found")

    def _deals(self, request: httpx.Request, partner_id: str) -> httpx.Response:
        """CONTRACT 6.3 as the fake knows it: own deals only, a conflict rejected at once."""
        path = request.url.path
        own = self.deals.setdefault(partner_id, [])
        if path == "/v1/partner/deals" and request.method == "GET":
            return httpx.Response(200, json={"deals": own, "next_after": None})
        if path == "/v1/partner/deals" and request.method == "POST":
            body = json.loads(request.content)
            if body["product"] not in ("secure-pro", "secure-team"):
                return _error(422, "unknown_product", "no such product", field="product")
            deal = {
                **body,
                "customer": {"customer_id": None, **body["customer"]},
                "deal_id": f"D-{partner_id}-{len(own) + 1}",
                "partner_id": partner_id,
                "status": "submitted",
                "submitted_at": "2027-01-15T09:00:00Z",
                "approved_at": None,
                "protected_until": None,
                "decided_at": None,
                "reason": None,
                "order_id": None,
            }
            email = body["customer"]["email"].lower()
            taken = any(
                d["status"] == "approved"
                and d["product"] == body["product"]
                and d["customer"]["email"].lower() == email
                for other, held in self.deals.items()
                if other != partner_id
                for d in held
            )
            own.append(deal)
            if taken:
                deal.update(status="rejected", reason="deal_conflict")
                return httpx.Response(
                    409,
                    json={
                        "error": {
                            "code": "deal_conflict",
                            "message": "another partner's deal protects this customer",
                            "deal_id": deal["deal_id"],
                        }
                    },
                )
            return httpx.Response(201, json={"deal_id": deal["deal_id"], "status": "submitted"})
        deal_id = path.rsplit("/", 1)[1]
        match = [d for d in own if d["deal_id"] == deal_id]
        return httpx.Response(200, json=match[0]) if match else _error(404, "unknown_deal", "no")

    def _commissions(self, request: httpx.Request, partner_id: str) -> httpx.Response:
        path = request.url.path
        own = self.lines.get(partner_id, [])
        if path == "/v1/partner/commissions":
            status = request.url.params.get("status")
            return httpx.Response(
                200, json={"lines": [x for x in own if status in (None, x["status"])]}
            )
        if path.startswith("/v1/partner/statements/"):
            month = path.rsplit("/", 1)[1]
            in_month = [x for x in own if x["occurred_at"].startswith(month)]
            if "text/csv" in request.headers.get("accept", ""):
                rows = ["line_id,amount_minor,currency"] + [
                    f"{x['line_id']},{x['amount_minor']},{x['currency']}" for x in in_month
                ]
                return httpx.Response(
                    200, text="\r\n".join(rows) + "\r\n", headers={"content-type": "text/csv"}
                )
            totals: dict[str, dict[str, Any]] = {}
            for x in in_month:
                t = totals.setdefault(
                    x["currency"],
                    {
                        "currency": x["currency"],
                        "accrued_minor": 0,
                        "payable_minor": 0,
                        "paid_minor": 0,
                        "net_minor": 0,
                    },
                )
                t[f"{x['status']}_minor"] += x["amount_minor"]
                t["net_minor"] += x["amount_minor"]
            return httpx.Response(
                200,
                json={
                    "partner_id": partner_id,
                    "month": month,
                    "lines": in_month,
                    "totals": list(totals.values()),
                },
            )
        return _error(404, "not_found", "Not Found")

    def _notifications(self, request: httpx.Request, partner_id: str) -> httpx.Response:
        path = request.url.path
        if path == "/v1/partner/webhook" and request.method == "PUT":
            url = json.loads(request.content)["url"]
            if not url.startswith("https://"):
                return _error(422, "webhook_target_refused", "url must be https", field="url")
            self.webhooks[partner_id] = url
            return httpx.Response(
                200,
                json={"url": url, "secret": f"whsec_{partner_id}_secret", "signature_scheme": "v1"},
            )
        if path == "/v1/partner/deliveries":
            deliveries = [
                {
                    "notification_id": f"N-{partner_id}",
                    "notification_type": "commission_earned",
                    "channel": "webhook",
                    "audience": "partner",
                    "status": "delivered",
                    "attempts": 1,
                    "error": None,
                    "partner_scope": partner_id,
                    "license_keys": [f"LK-{partner_id}-1"],
                    "created_at": "2027-01-05T10:00:01Z",
                    "finished_at": "2027-01-05T10:00:02Z",
                    "recipient": None,
                }
            ]
            return httpx.Response(200, json={"deliveries": deliveries, "total": 1})
        return _error(404, "not_found", "Not Found")

    def _keys(self, request: httpx.Request, partner_id: str, key: str, role: str) -> httpx.Response:
        path = request.url.path
        records = self.key_records.setdefault(
            partner_id,
            [
                {
                    "key_id": f"K-{partner_id}-0",
                    "name": "created with the partner",
                    "role": "admin",
                    "created_at": "2027-01-01T00:00:00Z",
                    "created_by": "operator",
                    "last_used_at": "2027-01-05T10:00:00Z",
                    "revoked_at": None,
                }
            ],
        )
        if path == "/v1/partner/key":
            return httpx.Response(200, json={"key_id": f"K-{key}", "role": role})
        if path == "/v1/partner/keys" and request.method == "GET":
            return httpx.Response(200, json={"keys": records})
        if path == "/v1/partner/keys" and request.method == "POST":
            body = json.loads(request.content)
            new_key = f"ckp_new_{len(records)}"
            record = {
                "key_id": f"K-{partner_id}-{len(records)}",
                "name": body["name"],
                "role": body["role"],
                "created_at": "2027-01-06T00:00:00Z",
                "created_by": f"K-{key}",
                "last_used_at": None,
                "revoked_at": None,
            }
            records.append(record)
            self.keys[new_key] = partner_id
            self.roles[new_key] = body["role"]
            return httpx.Response(
                201, json={"key_id": record["key_id"], "api_key": new_key, **body}
            )
        if path.startswith("/v1/partner/keys/") and request.method == "DELETE":
            key_id = path.rsplit("/", 1)[1]
            active = [r for r in records if not r["revoked_at"]]
            match = [r for r in active if r["key_id"] == key_id]
            if not match:
                return _error(404, "key_not_found", "no such active key")
            if match[0]["role"] == "admin" and sum(r["role"] == "admin" for r in active) == 1:
                return _error(409, "last_admin_key", "last admin key")
            match[0]["revoked_at"] = "2027-01-06T12:00:00Z"
            return httpx.Response(204)
        return _error(404, "not_found", "Not Found")


def _roles_of(method: str, path: str) -> set[str]:
    """The roles the real partner routes declare (require_partner_role)."""
    if path in ("/v1/partner/me", "/v1/partner/key", "/v1/partner/tier"):
        return {"admin", "sales", "finance"}
    if path.startswith(
        ("/v1/partner/entitlements", "/v1/partner/registrations", "/v1/partner/deals")
    ):
        return {"admin", "sales"}
    if path.startswith(("/v1/partner/commissions", "/v1/partner/statements")):
        return {"admin", "finance"}
    return {"admin"}


def _error(status: int, code: str, message: str, field: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return httpx.Response(status, json={"error": body})
