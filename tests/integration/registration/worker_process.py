"""The registration worker as its own process, on test topics: what the scale-out test runs.

Same wiring as `services.registration.entrypoints.worker` (the chassis' run_worker with
its signal handling and heartbeats), except that it consumes the fresh topics of one
test. `python -m tests.integration.registration.worker_process SOURCE OUT GROUP` with
the settings in the environment.
"""

from __future__ import annotations

import asyncio
import sys

from chassis import logging as ck_logging
from chassis.worker import run_worker
from services.registration.bootstrap import build_processors, prepare_worker
from services.registration.config import Settings
from shared.topics import CHECKOUT_ORDERS, REGISTRATION_ENTITLEMENTS


def main(source: str, out: str, group: str) -> None:
    settings = Settings()
    ck_logging.configure(settings.log_level, settings.service_name)
    asyncio.run(
        run_worker(
            settings,
            topics=[source, out],
            prepare=prepare_worker,
            processors=build_processors(
                settings,
                topics=[source],
                group_id=group,
                schema_of={source: CHECKOUT_ORDERS},
                topic_map={REGISTRATION_ENTITLEMENTS: out},
                retry_backoff_s=0.2,
            ),
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
