"""Write each service's OpenAPI document to openapi/<service>.json, or check them.

``python -m devkit.openapi_export`` builds every API app (no lifespan: nothing
connects) and writes its document; ``--check`` writes nothing and exits 1, listing
the files that differ, so CI catches a route, model or security change whose
document was not regenerated (tests/unit/test_openapi_documents.py runs the same
comparison). The portal is a web front end with no OpenAPI document.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr

from chassis.auth import PartnerPrincipal

REPO_ROOT = Path(__file__).resolve().parent.parent
OPENAPI_DIR = "openapi"
# Only the documents need building: no token is checked and nothing connects.
_PLACEHOLDER_TOKEN = SecretStr("openapi-export-placeholder-token")


async def _no_partner(_: str) -> PartnerPrincipal | None:
    return None


def _registration() -> FastAPI:
    from services.registration.bootstrap import build_api
    from services.registration.config import Settings

    return build_api(Settings.model_construct(admin_token=_PLACEHOLDER_TOKEN), run_relay=False)


def _commissions() -> FastAPI:
    from services.commissions.bootstrap import build_api
    from services.commissions.config import Settings

    settings = Settings.model_construct(admin_token=_PLACEHOLDER_TOKEN)
    return build_api(settings, partner_keys=_no_partner)


def _notifications() -> FastAPI:
    from services.notifications.bootstrap import build_api
    from services.notifications.config import Settings

    settings = Settings.model_construct(admin_token=_PLACEHOLDER_TOKEN)
    return build_api(settings, partner_keys=_no_partner)


BUILDERS: dict[str, Callable[[], FastAPI]] = {
    "registration": _registration,
    "commissions": _commissions,
    "notifications": _notifications,
}


def document(service: str) -> dict[str, Any]:
    # Settings.model_construct reads no environment, so the document never depends on it.
    return BUILDERS[service]().openapi()


def render(service: str) -> str:
    return json.dumps(document(service), indent=2, ensure_ascii=False) + "\n"


def path_of(service: str, root: Path = REPO_ROOT) -> Path:
    return root / OPENAPI_DIR / f"{service}.json"


def write(root: Path = REPO_ROOT) -> list[Path]:
    written = []
    for service in BUILDERS:
        path = path_of(service, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(service), encoding="utf-8")
        written.append(path)
    return written


def check(root: Path = REPO_ROOT) -> list[str]:
    """The committed documents that differ from what the code generates (relative paths)."""
    stale = []
    for service in BUILDERS:
        path = path_of(service, root)
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != render(service):
            stale.append(str(path.relative_to(root)))
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.openapi_export", description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root")
    args = parser.parse_args(argv)
    if args.check:
        stale = check(args.root)
        for name in stale:
            print(f"stale: {name} (run: python -m devkit.openapi_export)", file=sys.stderr)
        return 1 if stale else 0
    for path in write(args.root):
        print(path.relative_to(args.root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
