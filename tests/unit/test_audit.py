"""The audit's verdict from pip-audit's JSON report (devkit.audit)."""

from __future__ import annotations

from devkit.audit import summarise, verdict

REPORT = {
    "dependencies": [
        {"name": "fastapi", "version": "0.1", "vulns": []},
        {"name": "aiohttp", "version": "3.0", "vulns": [{"id": "PYSEC-1"}, {"id": "GHSA-x"}]},
        {"name": "tzdata", "skip_reason": "Dependency not found on PyPI"},
    ]
}


def test_a_known_vulnerability_fails_and_is_named() -> None:
    code, text = verdict(summarise(REPORT), strict=False)
    assert code == 1
    assert "aiohttp==3.0: PYSEC-1, GHSA-x" in text


def test_packages_not_looked_up_are_counted_and_fail_only_when_strict() -> None:
    report = {"dependencies": REPORT["dependencies"][:1] + REPORT["dependencies"][2:]}
    code, text = verdict(summarise(report), strict=False)
    assert code == 0
    assert "1 of 2 packages" in text and "1 could not be looked up" in text
    assert verdict(summarise(report), strict=True)[0] == 1


def test_all_audited_and_clean_passes() -> None:
    code, text = verdict(summarise({"dependencies": REPORT["dependencies"][:1]}), strict=True)
    assert (code, text) == (0, "audit: no known vulnerabilities in 1 packages")
