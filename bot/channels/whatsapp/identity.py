"""Who a WhatsApp worker is, and where to write back to them, from the two ids Meta gives.

A WhatsApp user has a phone number (``wa_id``, digits) and, since Meta's 2026 rollout, a
business-scoped user id (BSUID, ``user_id`` / ``from_user_id``: a country code, a dot and up to
128 letters and digits, e.g. ``TH.1234567``). A message may carry both, or either one alone: a
user who adopted a WhatsApp username usually shows us only the BSUID.

**The pseudonym is keyed on the BSUID when the payload has one, else on the wa_id.**

- Meta puts the BSUID in every message webhook, username or not, while the phone number is
  withheld from users who adopt a username. Keyed on the phone, one worker would become two the
  day they adopt a username; keyed on the BSUID they stay one through adopting or changing it.
- The BSUID is scoped to our business portfolio, so it joins nothing outside it, and it is never
  given to another person; a phone number is both a global join key and recycled by carriers.
- Neither id survives a change of phone number: Meta then makes a new BSUID as well (its
  changelog of 2026-08-11, the ``user_changed_number`` system message). Such a worker starts
  afresh and reaches their cases with reference and receipt code, from any channel.

**When both ids appear, the wa_id is an alias**: a worker known only under
``pseudonym("whatsapp", wa_id)`` (they wrote before Meta sent BSUIDs, or a payload lacked it) is
adopted by the BSUID pseudonym, with their profile, cases, unfinished conversation and address,
through the gateway's one adoption path (``ConversationGateway.worker(aliases=...)``, the same
that moves workers to a new ``WVB_SECRET_KEY``). The reverse cannot be done: a BSUID cannot be
computed from a phone number, so a later payload with only a wa_id starts a profile of its own.

**The address holds every id the worker's latest message showed** (``format_address``), and the
sender tries them in the order ``recipients`` gives: the BSUID first, then the wa_id, the next
one only on error 131062 ("BSUID recipients are not supported for this message").

- The BSUID reaches the worker whether or not they hide their number, and it cannot reach a
  stranger: after a number change a message to the old BSUID fails, while one to the old number
  reaches whoever holds that number next.
- The wa_id is kept only as the fallback for 131062, and only while Meta shows it: the stored
  address is rewritten whenever the worker writes from a different one
  (``WorkerProfileService.mark_reachable``), so a worker who hides their number has it dropped.
- The address is stored encrypted and bound to the worker (``services.workers.address_purpose``),
  like a Telegram chat id; no id is ever logged, put in an exception or a Redis key.

**The language hint comes from the BSUID's country** (``language_hint``), only for a language we
ship, and never from the phone number. It only marks a language in the picker, which greets in
every language: a migrant with a SIM card of the country they work in is offered that country's
language first, and picks their own.

Library-free, like ``updates.py`` and ``rendering.py``: pure functions of the ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

CHANNEL = "whatsapp"
#: Graph error code: the message cannot go to a BSUID; the sender tries the next recipient.
BSUID_RECIPIENT_NOT_SUPPORTED = 131062
#: Between the ids of a stored address; neither a wa_id nor a BSUID can contain it.
_SEPARATOR = "|"
#: A phone number as Meta writes it (E.164 digits, no ``+``), and a BSUID as Meta describes it:
#: a two-letter country code, a dot, up to 128 letters and digits (``ENT.`` before them for a
#: parent BSUID). The same shapes ``api.py`` accepts as recipients: an id this module keeps can
#: be sent to.
_WA_ID = re.compile(r"[0-9]{6,15}")
_USER_ID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[0-9A-Za-z]{1,128}")
_COUNTRY = re.compile(r"([A-Z]{2})\.")

#: The language most people of a country read, for the countries whose language we ship
#: (``locales.LANGUAGES``); any other country gives no hint. English-speaking countries hint
#: English for an organisation whose default language is another.
_COUNTRY_LANGUAGES: dict[str, str] = {
    "TH": "th",
    "MM": "my",
    "KH": "km",
    "NP": "ne",
    "BD": "bn",
    "ID": "id",
    **dict.fromkeys(("US", "GB", "IE", "AU", "NZ"), "en"),
    **dict.fromkeys(
        (
            "ES", "MX", "GT", "HN", "SV", "NI", "CR", "PA", "CU", "DO", "PR",
            "CO", "VE", "EC", "PE", "BO", "CL", "AR", "UY", "PY",
        ),
        "es",
    ),
}  # fmt: skip


def is_wa_id(value: str) -> bool:
    """A phone number as Meta writes it: 6 to 15 ASCII digits (not ``\\d``: ``٦`` is one)."""
    return _WA_ID.fullmatch(value) is not None


def is_user_id(value: str) -> bool:
    """A business-scoped user id (or a parent one) as Meta describes it."""
    return _USER_ID.fullmatch(value) is not None


class SenderIds(Protocol):
    """What ``identify`` needs of a message (``updates.WaMessage``)."""

    @property
    def wa_id(self) -> str: ...

    @property
    def user_id(self) -> str: ...


@dataclass(frozen=True)
class WaIdentity:
    """Who wrote: ``messenger_id`` is pseudonymised (on channel ``"whatsapp"``), each of
    ``aliases`` names a pseudonym they may be known under from before, ``address`` is what the
    sender needs to write back. All kept out of ``repr``: each is, or holds, a phone number."""

    messenger_id: str = field(repr=False)
    aliases: tuple[str, ...] = field(default=(), repr=False)
    address: str = field(default="", repr=False)


def identify(message: SenderIds) -> WaIdentity:
    """The identity of a message's sender; the module docstring gives the rule and its reasons.
    ``updates.parse_document`` keeps only messages with at least one well-formed id."""
    wa_id = message.wa_id if is_wa_id(message.wa_id) else ""
    user_id = message.user_id if is_user_id(message.user_id) else ""
    if not (wa_id or user_id):
        raise ValueError("a WhatsApp message without a usable sender id")
    address = format_address(wa_id or None, user_id or None)
    if user_id:
        return WaIdentity(user_id, (wa_id,) if wa_id else (), address)
    return WaIdentity(wa_id, (), address)


def format_address(wa_id: str | None, bsuid: str | None) -> str:
    """The stored address of a worker with these ids (at least one)."""
    if wa_id is not None and not is_wa_id(wa_id):
        raise ValueError("not a WhatsApp phone id")  # never the value: it is a phone number
    if bsuid is not None and not is_user_id(bsuid):
        raise ValueError("not a WhatsApp business-scoped user id")
    ids = [value for value in (wa_id, bsuid) if value]
    if not ids:
        raise ValueError("an address needs a wa_id or a BSUID")
    return _SEPARATOR.join(ids)


def parse_address(address: str) -> tuple[str | None, str | None]:
    """The (wa_id, BSUID) of a stored address, each None when unknown. Reads every form stored
    so far: ``format_address``'s, and a bare wa_id or BSUID (the address before this module)."""
    wa_id: str | None = None
    bsuid: str | None = None
    for part in address.split(_SEPARATOR):
        if is_wa_id(part):
            wa_id = part
        elif is_user_id(part):
            bsuid = part
    return wa_id, bsuid


def recipients(address: str) -> tuple[str, ...]:
    """The ids to send to, in order: the BSUID, then the wa_id; the sender moves to the next one
    only on ``BSUID_RECIPIENT_NOT_SUPPORTED``. Empty for an address that holds neither."""
    wa_id, bsuid = parse_address(address)
    return tuple(value for value in (bsuid, wa_id) if value)


def language_hint(user_id: str) -> str | None:
    """A shipped language for the country a BSUID starts with (``MM.…`` → ``my``), or None."""
    country = _COUNTRY.match(user_id)
    return _COUNTRY_LANGUAGES.get(country.group(1)) if country else None
