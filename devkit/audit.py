"""`./dev audit` (and the last step of `./dev lint`): pip-audit over the runtime lock.

The runtime lock (requirements/runtime.lock) is exactly what the image installs, so
what is audited is what ships; dev tools are not in it (`--lock requirements/dev.lock`
audits those too).

Fails when a pinned dependency has a known vulnerability. A package the
vulnerability service cannot look up (the service unreachable, as on machines that
only reach a package index mirror) is not a pass: the summary says how many were
not audited, and `--strict` (or `AUDIT_STRICT=1`) makes that a failure too.

    python -m devkit.audit [--strict] [--lock requirements/runtime.lock]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TIMEOUT_S = 300
RUNTIME_LOCK = Path("requirements/runtime.lock")


@dataclass
class Audit:
    audited: list[str] = field(default_factory=list)
    vulnerable: dict[str, list[str]] = field(default_factory=dict)
    not_audited: list[str] = field(default_factory=list)


def summarise(report: dict[str, Any]) -> Audit:
    """pip-audit's JSON report, reduced to what we act on."""
    audit = Audit()
    for dep in report.get("dependencies", []):
        name = f"{dep['name']}=={dep.get('version', '?')}"
        if dep.get("skip_reason"):
            audit.not_audited.append(dep["name"])
            continue
        audit.audited.append(name)
        ids = [v["id"] for v in dep.get("vulns", [])]
        if ids:
            audit.vulnerable[name] = ids
    return audit


def verdict(audit: Audit, *, strict: bool) -> tuple[int, str]:
    total = len(audit.audited) + len(audit.not_audited)
    if audit.vulnerable:
        listed = "; ".join(f"{n}: {', '.join(ids)}" for n, ids in sorted(audit.vulnerable.items()))
        return 1, f"audit: known vulnerabilities in {len(audit.vulnerable)} package(s): {listed}"
    if audit.not_audited:
        text = (
            f"audit: no known vulnerabilities in {len(audit.audited)} of {total} packages; "
            f"{len(audit.not_audited)} could not be looked up (vulnerability service "
            "unreachable from here?), run `./dev audit` where it is reachable"
        )
        return (1 if strict else 0), text
    return 0, f"audit: no known vulnerabilities in {total} packages"


def run(lock: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        proc = subprocess.run(
            [
                str(Path(sys.executable).with_name("pip-audit")),
                "--progress-spinner",
                "off",
                "--no-deps",
                "--disable-pip",
                "-r",
                str(lock),
                "-f",
                "json",
                "-o",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        if not out.exists():
            raise SystemExit(f"audit: pip-audit failed (exit {proc.returncode}): {proc.stderr}")
        return dict(json.loads(out.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.audit")
    parser.add_argument("--lock", type=Path, default=RUNTIME_LOCK)
    parser.add_argument(
        "--strict",
        action="store_true",
        default=os.environ.get("AUDIT_STRICT") == "1",
        help="packages that could not be looked up fail the audit",
    )
    args = parser.parse_args(argv)
    code, text = verdict(summarise(run(args.lock)), strict=args.strict)
    print(text, file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
