"""Checkout simulator: realistic `order.placed` and `refund.issued` streams.

Web shop, retail counter and phone sales; partner-channel first sales by the
given resellers, then direct renewals and upgrades a year on, some carrying a
seller code (a share of them with a typo); several currencies (0, 2 and 3 minor
digits); partial and full refunds. Deterministic for a given `--seed`: the same
seed gives the same events, ids included, so benchmarks and demos repeat.

    ./dev simulate --orders 2000 --partner-codes 7K3M-9QXF,... --rate 200 --seed 7

Without `--partner-codes` every sale is direct and no seller code is typed.

`--notice service_pack` (or `end_of_life`, `maintenance`) also publishes one
product notice (`notice.published` on `vendor.notices.v1`, CONTRACT 6.6) for
`--notice-products` (default `secure-pro`); with it `--orders` defaults to 0:

    ./dev simulate --notice service_pack --notice-products secure-pro,secure-team
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from shared import seller_code
from shared.envelope import Envelope, encode, key_for, new_envelope
from shared.events import (
    Customer,
    EventData,
    NoticeKind,
    NoticePublished,
    OrderLine,
    OrderPlaced,
    RefundIssued,
)
from shared.topics import CHECKOUT_ORDERS, CHECKOUT_REFUNDS, VENDOR_NOTICES

PRODUCTS = (
    # product, sku stem, yearly net price in major units (scaled per currency below)
    ("secure-pro", "SECURE-PRO", 1234),
    ("secure-team", "SECURE-TEAM", 499),
    ("backup-plus", "BACKUP-PLUS", 289),
    ("vault-enterprise", "VAULT-ENT", 4890),
)
UPGRADES = {"secure-team": "secure-pro", "secure-pro": "vault-enterprise"}
# currency, country, minor digits, price factor against EUR
MARKETS = (
    ("EUR", "DE", 2, 1),
    ("EUR", "FR", 2, 1),
    ("GBP", "GB", 2, 1),
    ("USD", "US", 2, 1),
    ("JPY", "JP", 0, 160),
    ("BHD", "BH", 3, 1),
)
ORGS = (
    "Logistik",
    "Bakery",
    "Clinic",
    "Architects",
    "Law Firm",
    "Brewery",
    "Dental",
    "Freight",
    "Studio",
    "Foods",
    "Robotics",
    "Print Shop",
    "Consulting",
    "Garage",
)
NAMES = ("Jana", "Ali", "Chen", "Maria", "Olu", "Sven", "Aiko", "Priya", "Tomás", "Fatima")
STEM_NAMES = ("Müller", "Okafor", "Tanaka", "Rossi", "Novak", "Haddad", "Silva", "Berg")
NS_SIM = uuid.UUID("5f0d6c39-3b2f-5f63-9a55-5b1f3c1e2a10")


def _one_year_on(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, month=3, day=1)


@dataclass
class SoldLicense:
    license_key: str
    product: str
    sku: str
    customer: Customer
    currency: str
    digits: int
    factor: int
    term_end: dt.date
    partner_code: str | None


@dataclass
class Simulator:
    """Generates the stream; `events()` yields (topic, envelope) in business-time order."""

    seed: int
    partner_codes: Sequence[str] = ()
    start: dt.datetime = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    typo_share: float = 0.1
    seller_code_share: float = 0.5
    refund_share: float = 0.05
    partner_sale_share: float = 0.6
    rng: random.Random = field(init=False)
    sold: list[SoldLicense] = field(init=False, default_factory=list)
    clock: dt.datetime = field(init=False)
    counter: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # simulation, not security
        self.clock = self.start

    def _id(self, kind: str) -> str:
        self.counter += 1
        return str(uuid.uuid5(NS_SIM, f"{self.seed}/{kind}/{self.counter}"))

    def _customer(self) -> tuple[Customer, str, int, int]:
        currency, country, digits, factor = self.rng.choice(MARKETS)
        number = self.rng.randrange(10_000, 99_999)
        first, last = self.rng.choice(NAMES), self.rng.choice(STEM_NAMES)
        org = f"{last} {self.rng.choice(ORGS)}"
        slug = f"{last}-{org.split()[-1]}".lower().replace("ü", "ue").replace(" ", "")
        customer = Customer(
            customer_id=f"C-{number}",
            org_name=org,
            contact_name=f"{first} {last}",
            email=f"{first.lower().replace('á', 'a')}.{number}@{slug}.example",
            country=country,
        )
        return customer, currency, digits, factor

    def _price(self, base_major: int, digits: int, factor: int, quantity: int) -> int:
        jitter = self.rng.randrange(90, 111)  # list price +-10% (discounts, bundles)
        return int(base_major * factor * quantity * jitter * 10**digits // 100)

    def _typo(self, code: str) -> str:
        """One symbol substituted: the check symbol catches every such typo."""
        body = seller_code.normalize(code)
        position = self.rng.randrange(len(body))
        replacement = self.rng.choice([c for c in seller_code.ALPHABET if c != body[position]])
        return seller_code.format_code(body[:position] + replacement + body[position + 1 :])

    def _advance(self) -> dt.datetime:
        self.clock += dt.timedelta(seconds=self.rng.randrange(30, 900))
        return self.clock

    def _new_sale(self) -> OrderPlaced:
        customer, currency, digits, factor = self._customer()
        product, stem, price = self.rng.choice(PRODUCTS)
        by_partner = bool(self.partner_codes) and self.rng.random() < self.partner_sale_share
        partner_code = self.rng.choice(self.partner_codes) if by_partner else None
        at = self._advance()
        term_start = at.date() + dt.timedelta(days=1)
        term_end = _one_year_on(term_start) - dt.timedelta(days=1)
        quantity = self.rng.choice((1, 1, 1, 5, 10, 25))
        license_key = f"LK-{self._id('license')[:8].upper()}"
        order_id = ("PRT-" if by_partner else "WEB-") + self._id("order")[:10].upper()
        line = OrderLine(
            line_id="1",
            kind="new",
            license_key=license_key,
            sku=f"{stem}-1Y",
            product=product,
            quantity=quantity,
            term_start=term_start,
            term_end=term_end,
            net_amount_minor=self._price(price, digits, factor, quantity),
        )
        order = OrderPlaced(
            order_id=order_id,
            sales_channel="partner" if by_partner else "direct",
            storefront="web" if not by_partner else "marketplace",
            partner_code=partner_code,
            seller_code=None,
            currency=currency,
            customer=customer,
            lines=[line],
        )
        self.sold.append(
            SoldLicense(
                license_key,
                product,
                f"{stem}-1Y",
                customer,
                currency,
                digits,
                factor,
                term_end,
                partner_code,
            )
        )
        return order

    def _direct_follow_up(self) -> OrderPlaced:
        license = self.rng.choice(self.sold)
        self._advance()
        upgrade = license.product in UPGRADES and self.rng.random() < 0.25
        product = UPGRADES[license.product] if upgrade else license.product
        stem, price = next((s, p) for name, s, p in PRODUCTS if name == product)
        term_start = license.term_end + dt.timedelta(days=1)
        term_end = _one_year_on(term_start) - dt.timedelta(days=1)
        code = None
        if license.partner_code and self.rng.random() < self.seller_code_share:
            code = license.partner_code
            if self.rng.random() < self.typo_share:
                code = self._typo(code)
        line = OrderLine(
            line_id="1",
            kind="upgrade" if upgrade else "renewal",
            license_key=license.license_key,
            sku=f"{stem}-1Y",
            product=product,
            quantity=1,
            term_start=term_start,
            term_end=term_end,
            net_amount_minor=self._price(price, license.digits, license.factor, 1),
        )
        storefront = self.rng.choice(("web", "web", "web", "retail", "phone"))
        prefix = {"web": "WEB-", "retail": "POS-", "phone": "TEL-"}[storefront]
        order = OrderPlaced(
            order_id=prefix + self._id("order")[:10].upper(),
            sales_channel="direct",
            storefront=storefront,
            partner_code=None,
            seller_code=code,
            currency=license.currency,
            customer=license.customer,
            lines=[line],
        )
        license.term_end = term_end
        license.product, license.sku = product, f"{stem}-1Y"
        return order

    def _refund(self, order: OrderPlaced) -> tuple[str, Envelope[EventData]]:
        line = order.lines[0]
        full = self.rng.random() < 0.4
        amount = line.net_amount_minor if full else max(1, line.net_amount_minor // 3)
        refund = RefundIssued(
            refund_id=f"RF-{self._id('refund')[:10].upper()}",
            order_id=order.order_id,
            line_id=line.line_id,
            amount_minor=amount,
            currency=order.currency,
            reason="customer_cancelled" if full else "seat_reduction",
        )
        return CHECKOUT_REFUNDS, self._envelope("refund.issued", refund, self._advance())

    def _envelope(self, event_type: str, data: EventData, at: dt.datetime) -> Envelope[EventData]:
        producer = "webshop-eu" if event_type == "order.placed" else "checkout-refunds"
        return new_envelope(
            event_type, data, occurred_at=at, producer=producer, event_id=self._id("event")
        )

    def events(self, orders: int) -> Iterator[tuple[str, Envelope[EventData]]]:
        for _ in range(orders):
            follow_up = len(self.sold) > 3 and self.rng.random() < 0.5
            order = self._direct_follow_up() if follow_up else self._new_sale()
            yield CHECKOUT_ORDERS, self._envelope("order.placed", order, self.clock)
            if order.lines[0].net_amount_minor > 0 and self.rng.random() < self.refund_share:
                yield self._refund(order)


NOTICE_KINDS: tuple[NoticeKind, ...] = ("service_pack", "end_of_life", "maintenance")
NOTICE_TEXT = {
    "service_pack": ("Service pack {n} for {products}", "Fixes and faster scans; install it."),
    "end_of_life": ("{products}: end of life", "Support ends in twelve months; plan the move."),
    "maintenance": ("Maintenance window for {products}", "Licence checks pause for two hours."),
}


def notice_event(
    kind: NoticeKind, products: Sequence[str], seed: int, at: dt.datetime
) -> tuple[str, Envelope[EventData]]:
    """One product notice, deterministic for (kind, products, seed)."""
    number = seed % 9 + 1
    notice_id = f"NTC-SIM-{uuid.uuid5(NS_SIM, f'{seed}/notice/{kind}/{products}').hex[:8]}"
    title, summary = NOTICE_TEXT[kind]
    data = NoticePublished(
        notice_id=notice_id,
        kind=kind,
        title=title.format(n=number, products=", ".join(products)),
        summary=summary,
        url=f"https://vendor.example/notices/{notice_id}",
        products=list(products),
    )
    envelope: Envelope[EventData] = new_envelope(
        "notice.published",
        data,
        occurred_at=at,
        producer="vendor-product",
        event_id=str(uuid.uuid5(NS_SIM, f"{seed}/notice-event/{notice_id}")),
    )
    return VENDOR_NOTICES, envelope


async def publish_notice(args: argparse.Namespace) -> None:
    from chassis.kafka import ensure_topics, make_producer

    products = [p.strip() for p in args.notice_products.split(",") if p.strip()]
    topic, envelope = notice_event(
        args.notice, products, args.seed, dt.datetime.now(dt.UTC).replace(microsecond=0)
    )
    await ensure_topics(args.bootstrap, [topic + args.topic_suffix], partitions=args.partitions)
    producer = make_producer(args.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic + args.topic_suffix, encode(envelope), key=key_for(topic, envelope)
        )
    finally:
        await producer.stop()
    data = envelope.data
    print(f"published {args.notice} notice {getattr(data, 'notice_id', '')} for {products}")


async def produce(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from chassis.kafka import ensure_topics, make_producer

    if args.notice:
        await publish_notice(args)
        if not args.orders:
            return 0
    codes = [c.strip() for c in args.partner_codes.split(",") if c.strip()]
    simulator = Simulator(
        seed=args.seed,
        partner_codes=codes,
        typo_share=args.typo_share,
        refund_share=args.refund_share,
    )
    await ensure_topics(
        args.bootstrap,
        [CHECKOUT_ORDERS + args.topic_suffix, CHECKOUT_REFUNDS + args.topic_suffix],
        partitions=args.partitions,
    )
    producer = make_producer(args.bootstrap)
    await producer.start()
    sent = {CHECKOUT_ORDERS: 0, CHECKOUT_REFUNDS: 0}
    started = time.perf_counter()
    pending = []
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            disable=args.quiet,
        ) as progress:
            task = progress.add_task("orders", total=args.orders, rate="")
            for topic, envelope in simulator.events(args.orders):
                pending.append(
                    await producer.send(
                        topic + args.topic_suffix, encode(envelope), key=key_for(topic, envelope)
                    )
                )
                sent[topic] += 1
                if topic == CHECKOUT_ORDERS:
                    elapsed = time.perf_counter() - started
                    progress.update(
                        task, advance=1, rate=f"{sent[topic] / max(elapsed, 1e-9):.0f}/s"
                    )
                    if args.rate > 0:
                        ahead = sent[topic] / args.rate - elapsed
                        if ahead > 0:
                            await asyncio.gather(*pending)
                            pending.clear()
                            await asyncio.sleep(ahead)
                if len(pending) >= 1000:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
    finally:
        await producer.stop()
    elapsed = time.perf_counter() - started
    print(
        f"sent {sent[CHECKOUT_ORDERS]} orders and {sent[CHECKOUT_REFUNDS]} refunds "
        f"in {elapsed:.1f}s ({sent[CHECKOUT_ORDERS] / elapsed:.0f} orders/s), seed {args.seed}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(
        prog="./dev simulate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--orders", type=int, default=None, help="default 1000 (0 with --notice)")
    parser.add_argument("--rate", type=float, default=0, help="orders/s; 0 = as fast as possible")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--partner-codes", default="", help="comma-separated seller codes")
    parser.add_argument("--typo-share", type=float, default=0.1)
    parser.add_argument("--refund-share", type=float, default=0.05)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:19092"))
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument(
        "--topic-suffix", default="", help="write to '<topic><suffix>' (tests, side-by-side runs)"
    )
    parser.add_argument(
        "--notice",
        choices=NOTICE_KINDS,
        default=None,
        help="also publish one product notice of this kind (CONTRACT 6.6)",
    )
    parser.add_argument(
        "--notice-products", default="secure-pro", help="comma-separated products of the notice"
    )
    args = parser.parse_args(argv)
    if args.orders is None:
        args.orders = 0 if args.notice else 1000
    if args.notice and not any(p.strip() for p in args.notice_products.split(",")):
        parser.error("--notice-products: name at least one product")
    for code in filter(None, (c.strip() for c in args.partner_codes.split(","))):
        if not seller_code.is_valid(code):
            parser.error(f"--partner-codes: {code!r} is not a valid seller code")
    return asyncio.run(produce(args))


if __name__ == "__main__":
    sys.exit(main())
