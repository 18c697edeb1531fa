"""Drive the real bot (`wvb run`, in this process) on WhatsApp: the Cloud API is the fake in
``tests/fake_whatsapp_api.py``, and the worker's messages reach the bot's webhook as Meta sends
them (signed POSTs, in Meta's envelope)."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot.runner import serve
from bot.settings import Settings
from storage.database import Database
from tests.conftest import Backend
from tests.fake_whatsapp_api import (
    DEFAULT_APP_SECRET,
    FakeWhatsAppServer,
    JSONDict,
    SentWaMessage,
    SimulatedWaUser,
    WebhookDeliverer,
)
from tests.patterns import RECEIPT_CODE, REFERENCE

REPLY_TIMEOUT = 30.0
VERIFY_TOKEN = "fake-verify-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def whatsapp_settings(
    backend: Backend, server: FakeWhatsAppServer, **overrides: object
) -> Settings:
    """Settings for a bot on WhatsApp only, against ``server``, listening on a free port."""
    return backend.settings(
        whatsapp_token=server.token,
        whatsapp_phone_number_id=server.phone_number_id,
        whatsapp_app_secret=DEFAULT_APP_SECRET,
        whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_api_base=server.base_url,
        whatsapp_listen=f"127.0.0.1:{free_port()}",
        **overrides,
    )


@dataclass
class WaBot:
    server: FakeWhatsAppServer
    settings: Settings
    deliverer: WebhookDeliverer
    task: asyncio.Task[None]
    stop: asyncio.Event

    def worker(self, wa_id: str | None, user_id: str | None = None) -> WaWorker:
        return WaWorker(self, SimulatedWaUser(wa_id, user_id))


@dataclass
class WaWorker:
    """A simulated worker and what the bot sent them."""

    bot: WaBot
    user: SimulatedWaUser
    seen: int = field(default=0)

    @property
    def recipient(self) -> str:
        """Where the bot writes to them: their BSUID if they have one (``identity.recipients``)."""
        return self.user.user_id or str(self.user.wa_id)

    def messages(self) -> list[SentWaMessage]:
        return self.bot.server.messages_to(self.recipient)

    async def send(self, value: JSONDict) -> None:
        statuses = await self.bot.deliverer.deliver(value)
        assert statuses[-1] == 200, statuses

    async def wait_for(
        self, predicate: Callable[[SentWaMessage], bool], since: int
    ) -> SentWaMessage:
        deadline = time.monotonic() + REPLY_TIMEOUT
        while time.monotonic() < deadline:
            for message in self.messages()[since:]:
                if predicate(message):
                    return message
            if self.bot.task.done():
                self.bot.task.result()
            await asyncio.sleep(0.02)
        shown = [m.text for m in self.messages()[since:]]
        raise AssertionError(f"no matching reply; the bot sent {shown}")

    async def ask(
        self, value: JSONDict, predicate: Callable[[SentWaMessage], bool] = lambda m: True
    ) -> SentWaMessage:
        """Send ``value`` as the worker; the first later message matching ``predicate``."""
        since = len(self.messages())
        await self.send(value)
        return await self.wait_for(predicate, since)

    async def text(
        self, body: str, predicate: Callable[[SentWaMessage], bool] = lambda m: True
    ) -> SentWaMessage:
        return await self.ask(self.user.text(body), predicate)

    async def press(
        self, payload: str, predicate: Callable[[SentWaMessage], bool] = lambda m: True
    ) -> SentWaMessage:
        """Tap the button or list row ``payload`` of the latest message that offers it."""
        carrier = next((m for m in reversed(self.messages()) if payload in m.choice_ids), None)
        assert carrier is not None, f"no message offers {payload}"
        interactive = carrier.payload["interactive"]
        if interactive["type"] == "button":
            title = next(
                b["reply"]["title"]
                for b in interactive["action"]["buttons"]
                if b["reply"]["id"] == payload
            )
            value = self.user.button_reply(payload, title, context_id=carrier.wamid)
        else:
            row = next(
                r
                for s in interactive["action"]["sections"]
                for r in s["rows"]
                if r["id"] == payload
            )
            value = self.user.list_reply(payload, row["title"], context_id=carrier.wamid)
        return await self.ask(value, predicate)

    async def choose(
        self, label: str, predicate: Callable[[SentWaMessage], bool] = lambda m: True
    ) -> SentWaMessage:
        """Choose ``label`` as a worker reads the last message: tap its button or list row;
        in a numbered text list (more than 10 choices) type its number; where choices are
        bullets (the bot asks for words), type the label."""
        last = self.messages()[-1]
        if last.type == "interactive":
            interactive = last.payload["interactive"]
            if interactive["type"] == "button":
                titles = {
                    b["reply"]["id"]: b["reply"]["title"] for b in interactive["action"]["buttons"]
                }
            else:
                titles = {
                    r["id"]: r["title"]
                    for s in interactive["action"]["sections"]
                    for r in s["rows"]
                }
            found = [payload for payload, title in titles.items() if label in title]
            if found:
                return await self.press(found[-1], predicate)
        text = last.text or ""
        numbers = [number for number, line in NUMBERED.findall(text) if label in line]
        if numbers:
            return await self.text(numbers[-1], predicate)
        bullets = [line for line in BULLETED.findall(text) if label in line]
        assert bullets, f"no choice {label!r} in {text!r}"
        return await self.text(bullets[-1].strip(), predicate)


NUMBERED = re.compile(r"^(\d+)\. (.*)$", re.MULTILINE)
BULLETED = re.compile(r"^• (.*)$", re.MULTILINE)


def says(fragment: str) -> Callable[[SentWaMessage], bool]:
    return lambda m: fragment in (m.text or "")


def offers(*payloads: str) -> Callable[[SentWaMessage], bool]:
    return lambda m: all(p in m.choice_ids for p in payloads)


@asynccontextmanager
async def whatsapp_bot(
    backend: Backend, server: FakeWhatsAppServer, **overrides: object
) -> AsyncIterator[WaBot]:
    """`wvb run` on WhatsApp against ``server`` for the length of the block; it is ready once
    its webhook answers Meta's verification handshake."""
    settings = whatsapp_settings(backend, server, **overrides)
    database = Database(settings.database_url)
    await database.upgrade()  # what `wvb db upgrade` does before `wvb run`
    await database.dispose()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop))
    host, port = settings.whatsapp_host_port
    deliverer = WebhookDeliverer(f"http://{host}:{port}/whatsapp/webhook")
    try:
        deadline = time.monotonic() + 20
        while True:
            if task.done():
                task.result()
            try:
                status, _ = await deliverer.verify(VERIFY_TOKEN, "12345")
            except OSError:
                status = 0
            if status == 200:
                break
            assert time.monotonic() < deadline, "the WhatsApp webhook never started"
            await asyncio.sleep(0.05)
        yield WaBot(server, settings, deliverer, task, stop)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await deliverer.close()


async def onboard(worker: WaWorker, language: str = "en") -> None:
    """A first "hello", the language, the privacy notice, no updates: the main menu."""
    await worker.text("hello", offers(f"lang:{language}"))
    await worker.press(f"lang:{language}", offers("privacy:ok"))
    await worker.press("privacy:ok", offers("sub:no"))
    await worker.press("sub:no", offers("menu:report"))


async def send_a_report(
    worker: WaWorker,
    details: str,
    *,
    evidence: Sequence[JSONDict] = (),
    affected: str = "me",
) -> tuple[str, str]:
    """An onboarded worker reports unpaid wages as a person would on WhatsApp: typing the
    numbers of the long category list, tapping buttons, then ``details`` and each ``evidence``
    message; no workplace or agency, not urgent, kept confidential. The reference and receipt
    code the bot gives."""
    await worker.text("/report", says("What is the problem about?"))
    await worker.choose("Wages", says("Wages"))
    await worker.choose("Done", offers("wp:skip"))
    await worker.press("wp:skip", says("agency"))
    await worker.choose("No", says("Tell us what happened"))
    await worker.text(details, says("dded"))
    for value in evidence:
        await worker.ask(value, says("dded"))
    await worker.choose("Done", offers("when:ongoing"))
    await worker.press("when:week", offers("who:me"))
    await worker.press(f"who:{affected}", offers("danger:yes"))
    await worker.press("danger:no", offers("share:share"))
    await worker.press("share:confidential", offers("review:send"))
    receipt = (await worker.press("review:send", says("receipt code"))).text or ""
    reference, code = REFERENCE.search(receipt), RECEIPT_CODE.search(receipt)
    assert reference is not None, receipt
    assert code is not None, receipt
    return reference.group(1), code.group(1)
