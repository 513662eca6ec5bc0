"""Why a use case refused: a stable code, a message, the input field, and a kind the API maps."""

from __future__ import annotations

from typing import Literal

Kind = Literal[
    "invalid", "not_found", "conflict", "unauthorized", "forbidden", "rate_limited", "unavailable"
]


class UseCaseError(Exception):
    def __init__(
        self,
        kind: Kind,
        code: str,
        message: str,
        field: str | None = None,
        *,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: Kind = kind
        self.code = code
        self.message = message
        self.field = field
        self.retry_after_s = retry_after_s


def not_found(code: str, message: str) -> UseCaseError:
    return UseCaseError("not_found", code, message)


def invalid(code: str, message: str, field: str) -> UseCaseError:
    return UseCaseError("invalid", code, message, field)


def conflict(code: str, message: str, field: str | None = None) -> UseCaseError:
    return UseCaseError("conflict", code, message, field)
