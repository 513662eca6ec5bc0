"""The isolation invariant (CONTRACT 4, made precise by CONTRACT 6.8), checked before each send.

A message to or branded for partner P names no other partner and lists only
entitlements whose partner of record is P; a customer message names at most
one partner and never mixes partner-of-record scopes; a security advisory or
product notice names no partner at all. The check reads both the message's
structure and its rendered text, so a template that printed the wrong thing
is caught too.

The text check looks for what *distinguishes* another partner, nothing else:

- The message's own partner (the partner it goes to, or the partner of record
  whose scope a customer message covers) and the vendor name nobody else.
  Another partner's marker that equals one of theirs is no marker at all (two
  resellers sharing a support line or a parent's domain is not a leak, CONTRACT
  6.8), and an occurrence wholly inside one of theirs does not count. The same
  holds for what the vendor wrote for everyone (product ids, an advisory's or
  notice's title, summary and link): it cannot leak a partner.
- Markers match as whole tokens, never as substrings: a name is a phrase on
  Unicode word boundaries ("Data" is not in "database", "Cloud" not in
  "cloudy"), a host is a whole host name (optionally `www.`), a phone number is
  its digits in any grouping, not inside a longer number.
- Names of several words match in any case. A name of one word matches only as
  the partner spells it ("Data", "DATA" for "DATA"): a one-word name that is
  also an ordinary word ("Data", "Cloud", "Secure") would otherwise refuse every
  message that says "your data" or lists `cloud-backup`, while a leaked name is
  copied as the partner writes it. A capitalised "Data" at the start of a
  sentence still counts: a refusal is visible to operators (metric, admin
  list) and can be fixed, a leak cannot be taken back.

A violation is reported as short codes only: they end up in delivery records a
partner can read, so they must not name the other partner either.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from services.notifications.domain.messages import Message
from services.notifications.domain.model import Partner, Vendor, host_of
from services.notifications.domain.rules import VENDOR_ONLY_TYPES

ERROR_CODE: Final[str] = "isolation_violation"
NO_PARTNER_TYPES: Final[frozenset[str]] = VENDOR_ONLY_TYPES
MarkerKind = Literal["name", "token", "email", "host", "phone"]
_PHONE_SEPARATORS: Final[str] = r"[\s\-./()]*"
_MIN_PHONE_DIGITS: Final[int] = 6
_NOT_DIGITS: Final[re.Pattern[str]] = re.compile(r"\D")
# Very short strings ("IT") would match ordinary words; ids and codes are long.
_MIN_MARKER_LENGTH: Final[int] = 4


@dataclass(frozen=True, slots=True)
class Marker:
    """One thing that identifies a partner, and how it is found in text."""

    kind: MarkerKind
    value: str

    @property
    def key(self) -> str:
        """Equal keys are the same marker (a shared phone, domain or address)."""
        if self.kind == "phone":
            return "phone:" + _digits(self.value)
        if self.kind == "name":
            return "name:" + " ".join(_normal(self.value).casefold().split())
        return f"{self.kind}:{_normal(self.value).casefold()}"

    def pattern(self) -> re.Pattern[str]:
        return _compiled(self.kind, self.value)


@functools.lru_cache(maxsize=1024)
def markers_of(partner: Partner) -> tuple[Marker, ...]:
    """Everything that would name this partner in a message (CONTRACT 4, isolation)."""
    candidates: list[Marker] = [
        Marker("token", partner.partner_id),
        Marker("name", partner.display_name),
        Marker("name", partner.legal_name),
    ]
    if partner.seller_code:
        candidates.append(Marker("token", partner.seller_code))
    if partner.contact_email:
        candidates.append(Marker("email", partner.contact_email))
    if partner.phone:
        kind: MarkerKind = "phone" if len(_digits(partner.phone)) >= _MIN_PHONE_DIGITS else "token"
        candidates.append(Marker(kind, partner.phone))
    host = host_of(partner.website)
    if host:
        candidates.append(Marker("host", host))
    found: dict[str, Marker] = {}
    for marker in candidates:
        if len(marker.value.strip()) >= _MIN_MARKER_LENGTH:
            found.setdefault(marker.key, marker)
    return tuple(found.values())


def vendor_texts(
    vendor: Vendor | None, announcement: Mapping[str, Any] | None = None
) -> tuple[str, ...]:
    """What the vendor says to everyone: its own markers and an advisory's or notice's text."""
    texts: list[str] = []
    if vendor is not None:
        texts += [vendor.name, vendor.support_email, vendor.phone or "", vendor.renew_url]
        texts.append(host_of(vendor.website) or "")
    for field in ("title", "summary", "url"):
        value = (announcement or {}).get(field)
        if isinstance(value, str):
            texts.append(value)
    return tuple(t for t in texts if t.strip())


def own_partner_ids(message: Message) -> frozenset[str]:
    """The partner a message is for: its recipient, or the scope of a customer message."""
    delivery = message.delivery
    if delivery.audience == "partner":
        return frozenset({delivery.recipient})
    if delivery.type in NO_PARTNER_TYPES:
        return frozenset()
    return frozenset(p for p in (delivery.partner_scope, message.branding.partner_id) if p)


def violations(
    message: Message,
    rendered: Iterable[str],
    related: Iterable[Partner],
    *,
    common: Iterable[str] = (),
) -> list[str]:
    """Empty when the message may go out; else why not (codes, never names or ids).

    `related` are the partners the message could touch (its recipient, its
    scope, the customer's other partners of record); `common` what the vendor
    wrote for everyone (`vendor_texts`).
    """
    found = _structure(message)
    related = list(related)
    own = own_partner_ids(message)
    if leaked_markers(message, rendered, related, own=own, common=common):
        found.append("text_names_another_partner")
    return list(dict.fromkeys(found))


def leaked_markers(
    message: Message,
    rendered: Iterable[str],
    related: Iterable[Partner],
    *,
    own: frozenset[str],
    common: Iterable[str] = (),
) -> list[Marker]:
    """The distinguishing markers of partners other than `own` that the text contains.

    An occurrence that lies wholly inside an occurrence of an own marker or of
    the vendor's text does not count ("Data" inside the own "Data Systems", a
    "Cloud" in the vendor's "Cloud agent update"); one that merely overlaps it
    does ("Secure Data" stays another partner's name when the own one is "Data").
    """
    related = list(related)
    own_markers = [m for p in related if p.partner_id in own for m in markers_of(p)]
    shared = {m.key for m in own_markers}
    texts = [_normal(html.unescape(text)) for text in rendered]
    # Most messages name no other partner at all: a cheap substring test on the
    # folded text rules a marker out before any regular expression runs.
    screen = _Screen(texts)
    candidates = [
        marker
        for partner in related
        if partner.partner_id not in own
        for marker in markers_of(partner)
        if marker.key not in shared and screen.may_hold(marker)
    ]
    if not candidates:
        return []
    covering = [_blanking(m) for m in own_markers]
    covering += [_blanking(Marker("name", t)) for t in common]
    products = {e.product for e in message.delivery.entitlements if e.product}
    covering += [_blanking(Marker("token", p)) for p in sorted(products)]
    spanned = [
        (text, [m.span() for pattern in covering if pattern for m in pattern.finditer(text)])
        for text in texts
    ]
    return [marker for marker in candidates if _found(marker.pattern(), spanned)]


class _Screen:
    """A necessary condition for a marker to match: its text (or digits) occur at all."""

    def __init__(self, texts: list[str]) -> None:
        self.folded = [t.casefold() for t in texts]

    def may_hold(self, marker: Marker) -> bool:
        if marker.kind == "phone":
            # Its digits in any grouping; a literal first digit keeps the scan fast.
            body = _compiled("phone-body", marker.value)
            return any(body.search(t) for t in self.folded)
        value = _normal(marker.value).casefold()
        if marker.kind == "name":
            value = max(value.split(), key=len, default=value)
        return any(value in t for t in self.folded)


def _found(pattern: re.Pattern[str], texts: list[tuple[str, list[tuple[int, int]]]]) -> bool:
    for text, spans in texts:
        for match in pattern.finditer(text):
            start, end = match.span()
            if not any(a <= start and end <= b for a, b in spans):
                return True
    return False


def _structure(message: Message) -> list[str]:
    delivery = message.delivery
    named = message.named_partner_ids
    found: list[str] = []
    if delivery.audience == "partner":
        owner = delivery.recipient
        if message.to_partner is None or message.to_partner.partner_id != owner:
            found.append("recipient_mismatch")
        if delivery.partner_scope != owner:
            found.append("scope_is_not_recipient")
        if named - {owner}:
            found.append("names_another_partner")
        if message.branding.partner_id is not None:
            found.append("partner_message_branded_by_partner")
        if any(e.partner_of_record != owner for e in delivery.entitlements):
            found.append("lists_another_partners_entitlement")
        return found
    if len(named) > 1:
        found.append("names_several_partners")
    if named and named != frozenset({delivery.partner_scope}):
        found.append("names_partner_outside_scope")
    if delivery.type in NO_PARTNER_TYPES:
        if named or delivery.partner_scope is not None:
            found.append("advisory_names_partner")
    elif any(e.partner_of_record != delivery.partner_scope for e in delivery.entitlements):
        found.append("mixes_partner_scopes")
    return found


def _blanking(marker: Marker) -> re.Pattern[str] | None:
    """How an own or vendor marker is found to be discounted: in any case."""
    if len(marker.value.strip()) < 2:
        return None
    return _compiled("token" if marker.kind == "name" else marker.kind, marker.value)


def _normal(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _digits(text: str) -> str:
    return _NOT_DIGITS.sub("", text)


@functools.lru_cache(maxsize=4096)
def _compiled(kind: str, value: str) -> re.Pattern[str]:
    return _build(kind, value)


def _phrase(value: str) -> str:
    return r"\s+".join(re.escape(word) for word in _normal(value).split())


def _build(kind: str, value: str) -> re.Pattern[str]:
    if kind in ("phone", "phone-body"):
        body = _PHONE_SEPARATORS.join(re.escape(d) for d in _digits(value))
        return re.compile(body if kind == "phone-body" else rf"(?<!\d){body}(?!\d)")
    if kind == "host":
        host = re.escape(_normal(value).removeprefix("www."))
        return re.compile(rf"(?<![\w.\-])(?:www\.)?{host}(?![\w\-]|\.\w)", re.IGNORECASE)
    if kind == "email":
        address = re.escape(_normal(value).strip())
        return re.compile(rf"(?<![\w.+\-]){address}(?![\w\-]|\.\w)", re.IGNORECASE)
    phrase = _phrase(value)
    edges = rf"(?<!\w){phrase}(?!\w)"
    if kind == "name" and len(_normal(value).split()) == 1:
        # One word: only as the partner spells it (see the module docstring).
        return re.compile(edges)
    return re.compile(edges, re.IGNORECASE)
