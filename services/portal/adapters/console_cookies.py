"""Console sessions sealed in their own cookie, under their own key: never a partner session.

Same sealing as the partner sessions (adapters/session_cookies.py: Fernet, the token's
timestamp as the idle timer, `created` bounding the total age, a bounded revocation
list per process), but under a key derived with another context from
PORTAL_SESSION_SECRET, and with `"kind": "operator"` inside. So a partner's cookie put in
the console cookie's place, or the other way round, opens nothing. The operator's
admin credential is encrypted inside; the browser never reads it.
"""

from __future__ import annotations

import secrets

from services.portal.adapters.sealed_cookies import MAX_TOKEN_CHARS, TimedSessionCookies
from services.portal.domain.operators import Operator, OperatorSession

__all__ = ["KEY_CONTEXT", "MAX_TOKEN_CHARS", "ConsoleCookies"]

KEY_CONTEXT = b"channelkeep-portal-console-cookie-v1\x00"


class ConsoleCookies(TimedSessionCookies[OperatorSession]):
    key_context = KEY_CONTEXT

    def create(self, operator: Operator) -> OperatorSession:
        return OperatorSession(
            session_id=secrets.token_urlsafe(16),
            operator=operator,
            csrf_token=secrets.token_urlsafe(32),
            created_at=self._clock(),
        )

    def seal(self, session: OperatorSession) -> str:
        return self._sealed.seal_payload(
            {
                "v": 1,
                "kind": "operator",
                "sid": session.session_id,
                "sub": session.operator.subject,
                "cred": session.operator.admin_credential,
                "method": session.operator.method,
                "csrf": session.csrf_token,
                "created": session.created_at,
            }
        )

    def open(self, token: str | None) -> OperatorSession | None:
        now = self._clock()
        payload = self._sealed.open_payload(token, now)
        if payload is None or payload.get("kind") != "operator":
            return None
        try:
            session = OperatorSession(
                session_id=str(payload["sid"]),
                operator=Operator(
                    subject=str(payload["sub"]),
                    admin_credential=str(payload["cred"]),
                    method=str(payload["method"]),
                ),
                csrf_token=str(payload["csrf"]),
                created_at=float(payload["created"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        return self._live(session, now)
