"""HTTP entry point of the registration service: run as a module.

`bootstrap.build_api` builds the app; the routers live in `entrypoints/routes/`,
one per resource, and `routes/install.py` adds them with the error mapping.
"""

from __future__ import annotations

from chassis.run import serve_api
from chassis.settings import load_settings
from services.registration.bootstrap import build_api
from services.registration.config import ApiSettings


def main() -> None:
    serve_api(load_settings(ApiSettings), build_api)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
