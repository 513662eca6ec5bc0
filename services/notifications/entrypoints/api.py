"""HTTP entry point of the notifications service; run as a module."""

from __future__ import annotations

from chassis.run import serve_api
from chassis.settings import load_settings
from services.notifications.bootstrap import build_api
from services.notifications.config import Settings


def main() -> None:
    serve_api(load_settings(Settings), build_api)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
