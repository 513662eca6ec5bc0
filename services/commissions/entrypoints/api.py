"""HTTP entry point of the commissions service; run as a module."""

from __future__ import annotations

from chassis.run import serve_api
from chassis.settings import load_settings
from services.commissions.bootstrap import build_api
from services.commissions.config import Settings


def main() -> None:
    serve_api(load_settings(Settings), build_api)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
