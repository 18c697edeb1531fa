"""Who a WhatsApp worker is (bot/channels/whatsapp/identity.py): keyed on the business-scoped user
id (BSUID) when Meta gives one, else on the phone number; a worker known by their phone number is
adopted when their BSUID appears; the stored address follows the ids they write from; and no phone
number or BSUID reaches the database, Redis or a log line in any form.

The adoption tests run the real application (gateway, engine, services, outbox relay) on SQLite +
memory and on PostgreSQL + Redis; the end-to-end versions over the fake Cloud API are in
tests/test_whatsapp_e2e.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app import App, open_app
from bot.channels.outbox_relay import OutboxRelay
from bot.channels.whatsapp.identity import (
    CHANNEL,
    WaIdentity,
    format_address,
    identify,
    language_hint,
    parse_address,
    recipients,
)
from conversations.messages import Effects, Inbound, Outbound
from conversations.ports import WorkerRef
from locales import LANGUAGES
from storage.models import Worker
from tests.conftest import Backend
from tests.dumps import database_dump, leaks, phone_needles, redis_dump
from tests.test_secret_rotation import draft, rotated

PHONE = "66812345678"
BSUID = "TH.1234567890123456"
NEW_PHONE = "66898765432"


@dataclass(frozen=True)
class Ids:
    """What ``identify`` reads of a message (``updates.WaMessage``)."""

    wa_id: str = ""
    user_id: str = ""


# --- the rule, without a database ---------------------------------------------------------


def test_the_bsuid_names_the_worker_and_the_phone_number_is_an_alias() -> None:
    both = identify(Ids(PHONE, BSUID))
    assert (both.messenger_id, both.aliases) == (BSUID, (PHONE,))
    assert parse_address(both.address) == (PHONE, BSUID)
    phone_less = identify(Ids(user_id=BSUID))
    assert (phone_less.messenger_id, phone_less.aliases) == (BSUID, ())
    assert parse_address(phone_less.address) == (None, BSUID)
    phone_only = identify(Ids(wa_id=PHONE))
    assert (phone_only.messenger_id, phone_only.aliases) == (PHONE, ())
    assert parse_address(phone_only.address) == (PHONE, None)
    with pytest.raises(ValueError, match="sender id") as refused:
        identify(Ids("+66 81", "TH.1|2"))
    assert "66" not in str(refused.value)


def test_the_sender_tries_the_bsuid_first_and_the_phone_number_after_131062() -> None:
    assert recipients(format_address(PHONE, BSUID)) == (BSUID, PHONE)
    assert recipients(format_address(None, BSUID)) == (BSUID,)
    assert recipients(format_address(PHONE, None)) == (PHONE,)
    # The address stored before this module: the bare recipient string.
    assert recipients(PHONE) == (PHONE,)
    assert recipients(BSUID) == (BSUID,)
    assert recipients("") == ()
    assert recipients("not an id at all") == ()


WA_IDS = st.text("0123456789", min_size=6, max_size=15)
BSUIDS = st.builds(
    lambda country, rest: f"{country}.{rest}",
    st.sampled_from(["TH", "MM", "US", "KH"]),
    st.text("0123456789abcdefABCDEF", min_size=1, max_size=128),
) | st.builds(lambda rest: f"US.ENT.{rest}", st.text("0123456789", min_size=1, max_size=30))


@given(st.none() | WA_IDS, st.none() | BSUIDS)
def test_an_address_gives_back_the_ids_it_was_made_of(wa_id: str | None, bsuid: str | None) -> None:
    if wa_id is None and bsuid is None:
        with pytest.raises(ValueError, match="needs"):
            format_address(wa_id, bsuid)
        return
    assert parse_address(format_address(wa_id, bsuid)) == (wa_id, bsuid)


def test_a_malformed_id_is_refused_without_being_named() -> None:
    for wa_id, bsuid in ((f"+{PHONE}", None), (None, f"{BSUID}|{PHONE}"), ("٦٦٨", None)):
        with pytest.raises(ValueError, match="not a WhatsApp") as refused:
            format_address(wa_id, bsuid)
        assert PHONE not in str(refused.value)
        assert "٦" not in str(refused.value)


def test_the_language_hint_is_a_shipped_language_from_the_bsuid_country() -> None:
    assert [language_hint(f"{country}.1") for country in ("TH", "MM", "KH", "NP", "BD", "ID")] == [
        "th", "my", "km", "ne", "bn", "id",
    ]  # fmt: skip
    assert language_hint("MX.1") == "es"
    assert language_hint("US.ENT.5") == "en"
    assert language_hint("VN.1") is None, "Vietnamese is not shipped"
    assert language_hint("th.1") is None
    assert language_hint(PHONE) is None, "never from a phone number"
    assert language_hint("95911111111") is None, "not even a Myanmar one"
    from bot.channels.whatsapp.identity import _COUNTRY_LANGUAGES

    assert set(_COUNTRY_LANGUAGES.values()) <= set(LANGUAGES)


def test_an_identity_shows_no_id_in_its_repr() -> None:
    shown = repr(identify(Ids(PHONE, BSUID)))
    assert PHONE not in shown
    assert BSUID not in shown
    assert isinstance(identify(Ids(PHONE, BSUID)), WaIdentity)


# --- adoption and the address, through the real application -------------------------------


@dataclass
class WaWorker:
    """A WhatsApp worker talking to the application's gateway, as the runtime hands them on."""

    app: App
    wa_id: str = ""
    user_id: str = ""
    heard: list[Outbound] = field(default_factory=list)

    @property
    def ref(self) -> WorkerRef:
        identity = identify(Ids(self.wa_id, self.user_id))
        return self.app.gateway.worker(
            CHANNEL, identity.messenger_id, identity.address, aliases=identity.aliases
        )

    async def send(self, inbound: Inbound) -> Outbound:
        """One message to the bot; returns its last reply."""
        before = len(self.heard)

        async def deliver(replies: Sequence[Outbound], effects: Effects) -> None:
            self.heard.extend(replies)

        await self.app.gateway.handle(self.ref, inbound, deliver)
        assert len(self.heard) > before, "the bot answered"
        return self.heard[-1]

    async def press(self, payload: str) -> Outbound:
        offered = {choice.payload for reply in self.heard[-3:] for choice in reply.choices}
        assert payload in offered, (payload, offered)
        return await self.send(Inbound.choice_of(payload))

    async def onboard(self, language: str = "th") -> None:
        await self.send(Inbound.command_of("start"))
        await self.press(f"lang:{language}")
        await self.press("privacy:ok")
        menu = await self.press("sub:no")
        assert "menu:report" in {choice.payload for choice in menu.choices}


class RecordingSender:
    """Where the outbox relay would send, as the WhatsApp sender receives it."""

    channel = CHANNEL

    def __init__(self) -> None:
        self.addresses: list[str] = []

    async def send(self, address: str, message: Outbound) -> list[str]:
        self.addresses.append(address)
        return [str(len(self.addresses))]


async def staff_reply_goes_to(app: App, reference: str) -> str:
    """Staff reply to the case; the address the outbox relay hands the WhatsApp sender."""
    await app.casework.reply("cli:test", reference, "We called the employer.")
    sender = RecordingSender()
    await OutboxRelay(app.database, app.keyring, {CHANNEL: sender}).run_once()
    [address] = sender.addresses
    return address


async def worker_rows(app: App) -> int:
    async with app.database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Worker)) or 0)


async def test_a_worker_known_by_phone_is_adopted_when_their_bsuid_appears(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """Profile, case, unfinished conversation and address all move to the BSUID pseudonym."""
    caplog.set_level(logging.DEBUG)
    async with open_app(backend.settings(), upgrade_schema=True) as app:
        before = WaWorker(app, wa_id=PHONE)  # a payload without a BSUID
        await before.onboard("th")
        receipt = await app.cases.submit(before.ref, draft())
        old = before.ref.pseudonym
        await before.send(Inbound.command_of("report"))
        await before.press("cat:wages")
        await before.press("report:done")  # an unfinished report: the workplace is asked next
        assert "wp:skip" in {choice.payload for choice in before.heard[-1].choices}

        after = WaWorker(app, wa_id=PHONE, user_id=BSUID, heard=before.heard)
        assert after.ref.pseudonym != old
        agency = await after.press("wp:skip")  # the report goes on where it was
        assert "agency:none" in {choice.payload for choice in agency.choices}
        profile = await app.profiles.find(after.ref.pseudonym)
        assert profile is not None
        assert profile.language == "th"
        assert await app.profiles.find(old) is None
        assert await worker_rows(app) == 1
        # Still the reporter of their case (a staff question reaches them, they can answer it)
        # and reached at both ids, the BSUID first.
        address = await staff_reply_goes_to(app, receipt.reference)
        assert recipients(address) == (BSUID, PHONE)
        assert await app.casework.add_worker_message(after.ref, receipt.reference, "In May.")
        assert not await app.casework.add_worker_message(before.ref, receipt.reference, "x")

        needles = phone_needles(PHONE, BSUID)
        dump = await database_dump(backend, app)
        assert after.ref.pseudonym.encode() in dump, "the dump holds the data searched"
        assert leaks(dump, needles) == []
        assert leaks(await redis_dump(backend), needles) == []
        logs = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
        assert " -> report." in logs, "the turns were logged (so the search saw them)"
        assert leaks(logs.encode(), needles) == []


async def test_the_address_follows_the_ids_the_worker_writes_from(backend: Backend) -> None:
    async with open_app(backend.settings(), upgrade_schema=True) as app:
        worker = WaWorker(app, user_id=BSUID)  # phone-less (a username) at first
        await worker.onboard("my")
        receipt = await app.cases.submit(worker.ref, draft())
        assert await staff_reply_goes_to(app, receipt.reference) == format_address(None, BSUID)

        worker.wa_id = PHONE  # Meta shows their number now: the fallback for 131062
        await worker.send(Inbound.command_of("menu"))
        assert parse_address(await staff_reply_goes_to(app, receipt.reference)) == (PHONE, BSUID)

        worker.wa_id = ""  # they hid it again (a username): it is not kept
        await worker.send(Inbound.command_of("menu"))
        assert parse_address(await staff_reply_goes_to(app, receipt.reference)) == (None, BSUID)
        assert await worker_rows(app) == 1
        assert leaks(await database_dump(backend, app), phone_needles(PHONE, BSUID)) == []


async def test_a_message_with_only_the_phone_number_does_not_reach_the_bsuid_worker(
    backend: Backend,
) -> None:
    """A BSUID cannot be computed from a number, so a payload with the number alone is someone
    new: never given the profile of the worker who once wrote from that number (numbers are
    recycled), and never merged with it."""
    async with open_app(backend.settings(), upgrade_schema=True) as app:
        worker = WaWorker(app, wa_id=PHONE, user_id=BSUID)
        await worker.onboard("th")
        stranger = WaWorker(app, wa_id=PHONE)
        first = await stranger.send(Inbound.text_of("hello"))
        assert "lang:th" in {choice.payload for choice in first.choices}, "asked for a language"
        assert await app.profiles.find(stranger.ref.pseudonym) is None
        assert await app.profiles.find(worker.ref.pseudonym) is not None


async def test_a_new_number_with_a_bsuid_does_not_adopt_a_worker_known_by_their_bsuid(
    backend: Backend,
) -> None:
    """Whoever writes from a number a worker once had gets a BSUID of their own: the number is
    an alias only of a worker still known by it, so the BSUID worker is never handed over."""
    async with open_app(backend.settings(), upgrade_schema=True) as app:
        worker = WaWorker(app, wa_id=PHONE, user_id=BSUID)
        await worker.onboard("th")
        recycled = WaWorker(app, wa_id=PHONE, user_id="TH.999")
        await recycled.send(Inbound.text_of("hello"))
        assert await app.profiles.find(recycled.ref.pseudonym) is None
        assert await app.profiles.find(worker.ref.pseudonym) is not None
        assert await worker_rows(app) == 1


async def test_adoption_also_takes_a_worker_known_under_a_previous_secret_key(
    backend: Backend,
) -> None:
    """Aliases and key rotation are one path: a phone-known worker under the old key is found
    by the pseudonym of their number under that key, and moved to their BSUID under the new."""
    first = backend.settings()
    async with open_app(first, upgrade_schema=True) as app:
        before = WaWorker(app, wa_id=NEW_PHONE)
        await before.onboard("km")
    async with open_app(rotated(backend, first)) as app:
        after = WaWorker(app, wa_id=NEW_PHONE, user_id="KH.42")
        await after.send(Inbound.command_of("menu"))
        profile = await app.profiles.find(after.ref.pseudonym)
        assert profile is not None
        assert profile.language == "km"
        assert await worker_rows(app) == 1
