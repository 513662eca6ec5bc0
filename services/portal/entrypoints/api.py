"""HTTP entry point of the partner portal; run as `python -m services.portal.entrypoints.api`."""

from __future__ import annotations

from chassis.run import serve_api
from chassis.settings import load_settings
from services.portal.config import Settings
from services.portal.entrypoints.app import build_app


def main() -> None:
    serve_api(load_settings(Settings), build_app)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
