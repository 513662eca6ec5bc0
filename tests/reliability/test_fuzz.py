"""HTTP fuzz from each service's OpenAPI document (schemathesis): no 5xx, and every
4xx is the contract's error shape `{"error": {"code", "message"}}` (CONTRACT 2).

Bounded examples per operation keep the CI run short; `--reliability` runs more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.reliability.harness import ADMIN_TOKEN, Live, running_suite

pytestmark = [pytest.mark.e2e]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    # A generous lookup limit: the fuzzer is not the brute force the security test stops.
    yield from running_suite(
        tmp_path_factory.mktemp("fuzz"), {"SELLER_CODE_LOOKUPS_PER_MINUTE": "100000"}
    )


@pytest.fixture(scope="module")
def partner_key(live: Live) -> str:
    response = httpx.post(
        f"{live.url('registration')}/v1/admin/partners",
        headers=live.admin(),
        json={
            "display_name": "Fuzz Partner",
            "legal_name": "Fuzz Partner Ltd",
            "type": "var",
            "tier": "silver",
            "contact_email": "fuzz@partners.example",
            "branding": {},
            "co_brand_customer_messages": False,
            "customer_ids": [],
        },
        timeout=15,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["api_key"])


def _check(case: Any, partner_key: str) -> None:
    path = case.operation.path
    token = partner_key if path.startswith("/v1/partner/") else ADMIN_TOKEN
    headers = dict(case.headers or {})
    headers["Authorization"] = f"Bearer {token}"
    response = case.call(headers=headers, timeout=15)
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    if 400 <= response.status_code < 500:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        assert isinstance(error, dict) and {"code", "message"} <= set(error), (
            f"{where}: {response.status_code} {response.text[:300]}"
        )


@pytest.mark.parametrize(
    "service",
    [
        "registration",
        "commissions",
        "notifications",
    ],
)
def test_no_5xx_and_every_error_has_the_contract_shape(
    live: Live, partner_key: str, service: str
) -> None:
    base = live.url(service)
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    schema.config.update(base_url=base)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            _check(case, partner_key)

        try:
            run()
        except AssertionError as failure:
            failures.append(str(failure).splitlines()[0])
    assert not failures, "\n".join(failures)
