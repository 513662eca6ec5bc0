"""Console sessions sealed in their own cookie, under their own key: never a partner session.

Same sealing as the partner sessions (adapters/session_cookies.py: Fernet, the token's
timestamp as the idle timer, `created` bounding the total age, a bounded revocation
list per process), but under a key derived with another context from
PORTAL_SESSION_SECRET, and with `"kind": "operator"` inside. So a partner's cookie put in
the console cookie's place, or the other way round, opens nothing. The operator's
admin credential is encrypted inside; the browser never reads it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from collections import OrderedDict

from cryptography.fernet import Fernet, InvalidToken

from services.portal.domain.operators import Operator, OperatorSession
from services.portal.domain.sessions import Clock

MAX_TOKEN_CHARS = 3800
KEY_CONTEXT = b"channelkeep-portal-console-cookie-v1\x00"


class ConsoleCookies:
    def __init__(
        self,
        secret: str,
        clock: Clock,
        *,
        idle_seconds: float,
        max_age_seconds: float,
        max_revoked: int,
    ) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(KEY_CONTEXT + secret.encode()).digest())
        self._fernet = Fernet(key)
        self._clock = clock
        self._idle = int(idle_seconds)
        self._max_age = max_age_seconds
        self._max_revoked = max_revoked
        self._revoked: OrderedDict[str, float] = OrderedDict()

    def create(self, operator: Operator) -> OperatorSession:
        return OperatorSession(
            session_id=secrets.token_urlsafe(16),
            operator=operator,
            csrf_token=secrets.token_urlsafe(32),
            created_at=self._clock(),
        )

    def seal(self, session: OperatorSession) -> str:
        payload = {
            "v": 1,
            "kind": "operator",
            "sid": session.session_id,
            "sub": session.operator.subject,
            "cred": session.operator.admin_credential,
            "method": session.operator.method,
            "csrf": session.csrf_token,
            "created": session.created_at,
        }
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return self._fernet.encrypt_at_time(raw, int(self._clock())).decode().rstrip("=")

    def open(self, token: str | None) -> OperatorSession | None:
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        now = self._clock()
        padded = token + "=" * (-len(token) % 4)
        try:
            payload = json.loads(
                self._fernet.decrypt_at_time(padded.encode(), self._idle, int(now))
            )
            if payload.get("kind") != "operator":
                return None
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
        except (InvalidToken, binascii.Error, ValueError, KeyError, TypeError, AttributeError):
            return None
        if now - session.created_at > self._max_age or self.revoked(session.session_id):
            return None
        return session

    def revoke(self, session: OperatorSession | None) -> None:
        if session is None:
            return
        self._revoked[session.session_id] = session.created_at + self._max_age
        self._revoked.move_to_end(session.session_id)
        while len(self._revoked) > self._max_revoked:
            self._revoked.popitem(last=False)

    def revoked(self, session_id: str) -> bool:
        now = self._clock()
        while self._revoked:
            oldest, ends = next(iter(self._revoked.items()))
            if ends >= now:
                break
            del self._revoked[oldest]
        return session_id in self._revoked
