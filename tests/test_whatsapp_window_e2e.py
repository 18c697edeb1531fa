"""WhatsApp's 24-hour window end to end: `wvb run` on WhatsApp against the fake Cloud API, on
SQLite + memory and PostgreSQL + Redis. A staff reply after the window reaches the worker as the
neutral template, the content follows their answer, and two replies still send one template; a
broadcast reaches the workers inside the window and skips or templates the others as staff
chose."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bot.app import open_app
from bot.settings import Settings
from services.broadcasts import Segment
from services.window_hold import HELD_REASON
from tests.case_factory import insert_case
from tests.conftest import Backend
from tests.fake_whatsapp_api import FakeWhatsAppServer, SentWaMessage, SimulatedWaUser
from tests.whatsapp_driver import REPLY_TIMEOUT, WaBot, WaWorker, onboard, whatsapp_bot

PHONE = "66811111111"
OTHER_PHONE = "66822222222"
REFERENCE = "K7M3-9Q2X"
TEMPLATE = "wvb_new_message"
A_DAY_AGO = 25 * 3600.0


def a_day_ago() -> float:
    return time.time() - A_DAY_AGO


def templates(messages: list[SentWaMessage]) -> list[SentWaMessage]:
    return [message for message in messages if message.type == "template"]


async def until(condition: Callable[[], bool], bot: WaBot, what: str) -> None:
    deadline = time.monotonic() + REPLY_TIMEOUT
    while not condition():
        if bot.task.done():
            bot.task.result()
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def worker_outside_the_window(bot: WaBot, phone: str) -> WaWorker:
    """A worker who onboarded more than a day ago: their window has closed since."""
    worker = WaWorker(bot, SimulatedWaUser(phone, clock=a_day_ago))
    await onboard(worker)
    worker.user.clock = time.time
    return worker


async def configure_template(settings: Settings, server: FakeWhatsAppServer) -> None:
    server.register_template(TEMPLATE, "en")
    async with open_app(settings) as app:
        await app.whatsapp_templates.set("cli:test", "en", TEMPLATE)


async def test_a_staff_reply_after_the_window_arrives_as_the_template_then_follows_the_answer(
    backend: Backend, fake_whatsapp: FakeWhatsAppServer
) -> None:
    async with whatsapp_bot(backend, fake_whatsapp) as bot:
        await configure_template(bot.settings, fake_whatsapp)
        worker = await worker_outside_the_window(bot, PHONE)
        onboarded = len(worker.messages())
        async with open_app(bot.settings) as app:
            pseudonym = app.gateway.worker("whatsapp", PHONE, PHONE).pseudonym
            await insert_case(app.database, pseudonym, REFERENCE, app.keyring)
            await app.casework.reply("cli:test", REFERENCE, "We spoke to the manager")
            await app.casework.reply("cli:test", REFERENCE, "Your pay comes on Friday")

            await until(lambda: len(worker.messages()) > onboarded, bot, "no template came")
            await asyncio.sleep(3)  # the relay's next passes: still one template, no content
            sent = worker.messages()[onboarded:]
            assert [m.type for m in sent] == ["template"], [m.text for m in sent]
            template = sent[0].payload["template"]
            assert (template["name"], template["language"]["code"]) == (TEMPLATE, "en")
            waiting = await app.stuck_messages().list_messages("cli:test")
            assert [(m.status, m.last_error) for m in waiting] == [
                ("pending", HELD_REASON), ("pending", HELD_REASON),
            ]  # fmt: skip

            await worker.send(worker.user.template_button("wa:open", "Show message"))

            def content() -> list[str]:
                return [m.text or "" for m in worker.messages()[onboarded:]]

            await until(
                lambda: sum("Your pay comes on Friday" in t for t in content()) == 1, bot,
                "the held reply did not follow the worker's answer",
            )  # fmt: skip
            assert sum("We spoke to the manager" in text for text in content()) == 1
            assert len(templates(worker.messages())) == 1, "two replies, one template"
            await asyncio.sleep(1)
            assert len(content()) == 3, f"the tap itself is not answered: {content()}"
            deadline = time.monotonic() + REPLY_TIMEOUT  # the relay records what it sent
            while await app.stuck_messages().list_messages("cli:test"):
                assert time.monotonic() < deadline, "a released message is not recorded sent"
                await asyncio.sleep(0.1)


async def test_a_broadcast_reaches_the_window_and_skips_or_templates_the_others(
    backend: Backend, fake_whatsapp: FakeWhatsAppServer
) -> None:
    async with whatsapp_bot(backend, fake_whatsapp, quiet_hours="") as bot:
        await configure_template(bot.settings, fake_whatsapp)
        inside = bot.worker(OTHER_PHONE)
        await onboard(inside)
        outside = await worker_outside_the_window(bot, PHONE)
        async with open_app(bot.settings) as app:
            for phone in (PHONE, OTHER_PHONE):
                await app.profiles.set_subscribed(
                    app.gateway.worker("whatsapp", phone, phone).pseudonym, True
                )

            skipping = await app.broadcasts.create(
                "cli:test", {"en": "Union meeting on Sunday"}, Segment()
            )
            await until(
                lambda: any("Union meeting" in (m.text or "") for m in inside.messages()), bot,
                "the worker inside the window got nothing",
            )  # fmt: skip

            async def finished(broadcast_id: int) -> dict[str, object]:
                deadline = time.monotonic() + REPLY_TIMEOUT
                while True:
                    status = await app.broadcasts.status("cli:test", broadcast_id, audited=False)
                    if status["pending"] == status["held_for_window"]:
                        return status
                    assert time.monotonic() < deadline, status
                    await asyncio.sleep(0.1)

            status = await finished(int(skipping["id"]))
            assert (status["sent"], status["skipped"], status["held_for_window"]) == (1, 1, 0)
            assert not any("Union meeting" in (m.text or "") for m in outside.messages())
            assert templates(outside.messages()) == []

            templated = await app.broadcasts.create(
                "cli:test", {"en": "Training on Monday"}, Segment(), outside_window="template"
            )
            status = await finished(int(templated["id"]))
            assert (status["sent"], status["skipped"], status["held_for_window"]) == (1, 0, 1)
            assert len(templates(outside.messages())) == 1

            await outside.text("hello")
            await until(
                lambda: any("Training on Monday" in (m.text or "") for m in outside.messages()),
                bot, "the held broadcast did not follow the worker's message",
            )  # fmt: skip
            assert not any("Union meeting" in (m.text or "") for m in outside.messages())
            status = await finished(int(templated["id"]))
            assert (status["sent"], status["held_for_window"]) == (2, 0)
