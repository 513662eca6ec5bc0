"""How finance books commissions: `commissions.ledger.v1`, read_committed, to a GL CSV.

Each `commission.*` event becomes one general-ledger row. The CSV is the
record of what was booked: on start the consumer reads the `event_id`s already
in it and skips them, and it commits its Kafka offsets only after the rows are
flushed to disk. So a crash between the two replays a few events into rows that
are already there, and nothing is booked twice or lost.

Rows: accrued and clawed_back move money into "commissions accrued" (a
clawback is negative); payable moves it to "commissions payable"; paid to
"commissions paid". An adjustment (`commission.adjusted`, finance's own manual
line, payable at once, either sign) goes straight to "commissions payable", with
its reason and reference; its order fields are empty. Each row keeps the ledger
`line_id`, so anyone can trace a booking back to the ledger line and recompute it.
A CSV begun before the reason and reference columns existed keeps its header.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from shared.envelope import parse_event
from shared.events import CommissionLine
from shared.topics import COMMISSIONS_LEDGER

COLUMNS = [
    "event_id",
    "event_type",
    "booked_at",
    "account",
    "partner_id",
    "line_id",
    "order_id",
    "refund_id",
    "role",
    "currency",
    "amount_minor",
    "status",
    "reason",
    "reference",
]
ACCOUNT = {
    "commission.accrued": "commissions_accrued",
    "commission.clawed_back": "commissions_accrued",
    "commission.adjusted": "commissions_payable",
    "commission.payable": "commissions_payable",
    "commission.paid": "commissions_paid",
}


def booked_event_ids(path: Path) -> set[str] | None:
    """The event ids already booked, or None when there is no CSV yet."""
    if not path.exists():
        return None
    with path.open(newline="", encoding="utf-8") as existing:
        return {row["event_id"] for row in csv.DictReader(existing)}


def existing_columns(path: Path) -> list[str]:
    """The header of a CSV already begun (an older one may lack the newer columns)."""
    with path.open(newline="", encoding="utf-8") as existing:
        return next(csv.reader(existing), COLUMNS)


def gl_row(event_id: str, event_type: str, line: CommissionLine) -> dict[str, str]:
    return {
        "event_id": event_id,
        "event_type": event_type,
        "booked_at": line.occurred_at.isoformat().replace("+00:00", "Z"),
        "account": ACCOUNT[event_type],
        "partner_id": line.partner_id,
        "line_id": line.line_id,
        "order_id": line.order_id or "",
        "refund_id": line.refund_id or "",
        "role": line.role,
        "currency": line.currency,
        "amount_minor": str(line.amount_minor),
        "status": line.status,
        "reason": line.reason or "",
        "reference": line.reference or "",
    }


async def consume(
    bootstrap: str, topic: str, group: str, path: Path, idle_exit_s: float | None
) -> int:
    """Books new events; returns how many rows it appended. Stops after `idle_exit_s` idle."""
    booked = booked_event_ids(path)
    new_file = booked is None
    seen = booked or set()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        isolation_level="read_committed",  # never book an aborted transaction's lines
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    appended = 0
    try:
        # A local append, flushed once per poll: blocking here is the point (durable first).
        with open(path, "a", newline="", encoding="utf-8") as out:  # noqa: ASYNC230
            columns = COLUMNS if new_file else existing_columns(path)
            writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            idle = 0.0
            while idle_exit_s is None or idle < idle_exit_s:
                batches = await consumer.getmany(timeout_ms=500)
                if not batches:
                    idle += 0.5
                    continue
                idle = 0.0
                for records in batches.values():
                    for record in records:
                        envelope = parse_event(COMMISSIONS_LEDGER, record.value)
                        if envelope.event_id in seen:
                            continue
                        assert isinstance(envelope.data, CommissionLine)
                        writer.writerow(
                            gl_row(envelope.event_id, envelope.event_type, envelope.data)
                        )
                        seen.add(envelope.event_id)
                        appended += 1
                out.flush()
                os.fsync(out.fileno())
                await consumer.commit()
    finally:
        await consumer.stop()
    return appended


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:19092"))
    parser.add_argument("--topic", default=COMMISSIONS_LEDGER)
    parser.add_argument("--group", default="finance-gl")
    parser.add_argument("--csv", type=Path, default=Path("general-ledger.csv"))
    parser.add_argument("--idle-exit", type=float, default=None, help="stop after N idle seconds")
    args = parser.parse_args(argv)
    appended = asyncio.run(
        consume(args.bootstrap, args.topic, args.group, args.csv, args.idle_exit)
    )
    print(f"booked {appended} new rows into {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
