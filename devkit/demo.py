"""`./dev demo`: the Channelkeep story on a fresh local suite, told for a channel manager.

Starts its own suite (broker, database, mail sink, three services) under a
temporary DATA_DIR on free ports, or with `--running` uses the one `./dev up`
runs; then tells the story of devkit/story.py with a progress display (the
partner-first renewal and steer-back at checkout, customer self-service, a
product notice, a deal won, a tier promotion and an adjustment on a statement)
and ends with tables: the entitlement and its partner of record, the commission
ledger finance sees, and the messages sent (with the path of each `.eml` file).
With `--trace`, the suite exports its spans to a local receiver (devkit/trace_sink.py)
and the demo ends with the trace of the renewal, from checkout's order to its
delivery records.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import os
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from chassis.kafka import clip_aborted_transactions
from devkit.story import TRACES, StoryResult, Suite, WebhookReceiver, tell
from devkit.trace_sink import TraceSink
from devkit.up import DEV_ADMIN_TOKEN, DEV_CHECKOUT_TOKEN, fresh_env, start_ready_suite
from shared.money import MINOR_DIGITS

# Wide enough for the ledger table when the output is not a terminal (CI logs, notes).
console = Console(width=None if sys.stdout.isatty() else 150)


def money(minor: int, currency: str) -> str:
    digits = MINOR_DIGITS.get(currency, 2)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**digits)
    return f"{sign}{whole:,}{f'.{fraction:0{digits}d}' if digits else ''} {currency}"


def entitlement_table(result: StoryResult) -> Table:
    table = Table(title="Entitlement and its partner of record", title_justify="left")
    for column in ("licence", "product", "term", "partner of record", "since", "how"):
        table.add_column(column)
    ent = result.entitlement
    por = ent.get("partner_of_record") or {}
    names = {
        result.reseller["partner_id"]: result.reseller.get("display_name", ""),
        result.distributor["partner_id"]: result.distributor.get("display_name", ""),
    }
    table.add_row(
        ent.get("license_key", ""),
        ent.get("product", ""),
        f"{ent.get('term_start', '')} to {ent.get('term_end', '')}",
        names.get(por.get("partner_id", ""), por.get("partner_id", "none")),
        str(por.get("since", ""))[:10],
        str(por.get("source", "")).replace("_", " "),
    )
    return table


def ledger_table(result: StoryResult) -> Table:
    names = {
        result.reseller["partner_id"]: "Alpine IT (reseller)",
        result.distributor["partner_id"]: "Nordic Channel (distributor)",
    }
    table = Table(
        title="Commission ledger, as finance reads it (commissions.ledger.v1)", title_justify="left"
    )
    for column in ("event", "partner", "order", "why", "rate", "amount", "status", "payable at"):
        table.add_column(column, justify="right" if column in ("rate", "amount") else "left")
    for line in result.ledger:
        why = line["role"].replace("_", " ")
        if line.get("refund_id"):
            why = f"refund {line['refund_id']}"
        elif line.get("reason"):
            why = str(line["reason"])
        rate = line.get("rate_bps")
        table.add_row(
            line["event_type"].removeprefix("commission."),
            names.get(line["partner_id"], "?"),
            f"{line['order_id']} ({line['kind']})" if line.get("order_id") else "adjustment",
            why,
            f"{rate / 100:.2f}%" if rate is not None and line["role"] != "adjustment" else "",
            money(line["amount_minor"], line["currency"]),
            line["status"],
            str(line.get("payable_at") or "")[:10],
        )
    return table


def mail_table(mail_dir: Path, started: float, watch: set[str]) -> Table:
    table = Table(title=f"Messages sent (kept in {mail_dir})", title_justify="left")
    for column in ("to", "subject", "from", "file"):
        table.add_column(column)
    for path in sorted(mail_dir.glob("*.eml")):
        if path.stat().st_mtime < started:
            continue
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        to = str(message.get("To", ""))
        if not any(address in to for address in watch):
            continue
        table.add_row(to, str(message.get("Subject", "")), str(message.get("From", "")), path.name)
    return table


def webhook_table(receiver: WebhookReceiver) -> Table:
    table = Table(title="Webhooks Alpine IT's CRM received (signed)", title_justify="left")
    table.add_column("type")
    table.add_column("webhook-id")
    for request, kind in zip(receiver.received, receiver.types(), strict=True):
        table.add_row(kind, request["headers"].get("webhook-id", ""))
    return table


async def run_story(suite: Suite, receiver: WebhookReceiver, mail_dir: Path) -> StoryResult:
    with console.status("Starting the story...") as status:

        def step(text: str) -> None:
            console.log(text)
            status.update(text)

        return await tell(suite, step, mail_dir=mail_dir, webhook_url=receiver.url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev demo", description=__doc__)
    parser.add_argument("--running", action="store_true", help="use the suite ./dev up runs")
    parser.add_argument("--mail-wait", type=float, default=15.0)
    parser.add_argument(
        "--trace",
        action="store_true",
        help="trace the suite (OTLP to a local receiver) and print the renewal's trace",
    )
    args = parser.parse_args(argv)
    if args.trace and args.running:
        parser.error("--trace starts its own suite: run `./dev up --trace-console` instead")
    sink = TraceSink() if args.trace else None
    if sink is not None:
        sink.__enter__()
    try:
        return _main(args, sink)
    finally:
        if sink is not None:
            sink.__exit__()


def trace_table(sink: TraceSink, result: StoryResult) -> list[str]:
    renewal = result.orders.get("renewal", "")
    trace_id = TRACES.get(f"order.placed {renewal}", "")
    services = sorted({s.service for s in sink.spans})
    lines = [
        f"Trace {trace_id} of the renewal {renewal} (checkout's traceparent); "
        f"{len(sink.spans)} spans received in all, from {', '.join(services) or 'no service'}"
    ]
    return lines + [f"  {line}" for line in sink.tree(trace_id)]


def _main(args: argparse.Namespace, sink: TraceSink | None) -> int:
    started = time.time()
    env = dict(os.environ)
    suite_handle = None
    if args.running:
        data_dir = Path(env.get("DATA_DIR", ".data")).resolve()
        ports = {"registration": 8001, "commissions": 8002, "notifications": 8003}
        bootstrap = env.get("KAFKA_BOOTSTRAP", "127.0.0.1:19092")
        token = env.get("ADMIN_TOKEN", DEV_ADMIN_TOKEN)
        checkout_token = env.get("CHECKOUT_TOKEN", DEV_CHECKOUT_TOKEN)
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="channelkeep-demo-"))
        env = fresh_env(env)
        if sink is not None:
            env.update(sink.env())
        token = env["ADMIN_TOKEN"]
        checkout_token = env.get("CHECKOUT_TOKEN") or DEV_CHECKOUT_TOKEN
        with console.status("Starting a fresh suite (broker, database, mail, 3 services)..."):
            suite_handle = start_ready_suite(data_dir, env)
        ports = suite_handle.ports
        bootstrap = suite_handle.embedded.kafka_bootstrap
        console.log(f"Suite ready; state under {data_dir}")
    if not env.get("KAFKA_BOOTSTRAP"):
        # The ledger reader on the embedded broker (chassis.kafka.clip_aborted_transactions).
        clip_aborted_transactions()
    suite = Suite(
        registration=f"http://127.0.0.1:{ports['registration']}",
        commissions=f"http://127.0.0.1:{ports['commissions']}",
        notifications=f"http://127.0.0.1:{ports['notifications']}",
        kafka_bootstrap=bootstrap,
        admin_token=token,
        checkout_token=checkout_token,
    )
    try:
        with WebhookReceiver() as receiver:
            mail_dir = data_dir / "mail"
            result = asyncio.run(run_story(suite, receiver, mail_dir))
            watch = {
                result.customer_email,
                result.reseller["contact_email"],
                result.distributor["contact_email"],
                result.second_reseller["contact_email"],
            }
            deadline = time.time() + args.mail_wait
            while time.time() < deadline and len(list(mail_dir.glob("*.eml"))) < 4:
                time.sleep(0.5)
            console.print()
            console.print(entitlement_table(result))
            console.print(ledger_table(result))
            console.print(mail_table(mail_dir, started, watch))
            console.print(webhook_table(receiver))
            if sink is not None:
                time.sleep(1.0)  # the services' batch span processors export every 200 ms
                console.print()
                for line in trace_table(sink, result):
                    console.print(line, highlight=False, soft_wrap=True)
    except (RuntimeError, TimeoutError) as error:
        console.print(f"[red]demo failed:[/red] {error}")
        if suite_handle is not None:
            console.print(f"service logs: {data_dir / 'logs'}")
        return 1
    finally:
        if suite_handle is not None:
            with console.status("Stopping the suite..."):
                suite_handle.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
