"""Which portal pages a key's role may open (CONTRACT 6.7), and so which the nav shows.

The APIs refuse anyway (403); the portal only hides what would be refused, so a
finance key sees commissions and statements but not registrations, a sales key
the reverse, and only admin keys see keys, the webhook and the delivery log.
"""

from __future__ import annotations

ROLES = ("admin", "sales", "finance")
EVERY_ROLE = frozenset(ROLES)

# (path, nav label, roles); the first matching prefix decides.
PAGES: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("/overview", "Overview", EVERY_ROLE),
    ("/entitlements", "Entitlements", frozenset({"admin", "sales"})),
    ("/register", "Register a licence", frozenset({"admin", "sales"})),
    ("/deals", "Deals", frozenset({"admin", "sales"})),
    ("/commissions", "Commissions", frozenset({"admin", "finance"})),
    ("/tier", "Tier", EVERY_ROLE),
    ("/settings", "Settings", frozenset({"admin"})),
    ("/webhook", "Webhook", frozenset({"admin"})),
    ("/deliveries", "Delivery log", frozenset({"admin"})),
    ("/keys", "Keys", frozenset({"admin"})),
)


def _roles_of(path: str) -> frozenset[str]:
    for prefix, _, roles in PAGES:
        if path == prefix or path.startswith(prefix + "/") or path.startswith(prefix + "."):
            return roles
    return EVERY_ROLE  # sign-out, brand.css: every signed-in key


def may_open(role: str, path: str) -> bool:
    return role in _roles_of(path)


def nav_for(role: str) -> list[tuple[str, str]]:
    return [(path, label) for path, label, roles in PAGES if role in roles]


def sees_renewals(role: str) -> bool:
    return may_open(role, "/entitlements")


def sees_commissions(role: str) -> bool:
    return may_open(role, "/commissions")
