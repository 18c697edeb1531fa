"""Drive a worker's conversation through the fake Bot API: act, then wait for the bot's reply."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.channels.sending import Sender
from bot.runner import serve
from bot.settings import Settings
from locales import LANGUAGES
from storage.database import Database
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer, SentMessage, SimulatedUser

REPLY_TIMEOUT = 30.0


def data_of(message: SentMessage) -> set[str]:
    return {button.get("callback_data", "") for button in message.buttons()}


async def reply(
    server: FakeTelegramServer,
    user: SimulatedUser,
    predicate: Callable[[SentMessage], bool],
    since: int,
) -> SentMessage:
    [message] = await server.wait_for(
        lambda m: m.chat_id == user.chat_id and predicate(m), start=since, timeout=REPLY_TIMEOUT
    )
    return message


async def ask(
    server: FakeTelegramServer,
    user: SimulatedUser,
    act: Callable[[], object],
    predicate: Callable[[SentMessage], bool],
) -> SentMessage:
    """Do ``act`` as the worker and return the first later bot message matching ``predicate``."""
    since = len(server.sent)
    act()
    return await reply(server, user, predicate, since)


async def onboard(
    server: FakeTelegramServer,
    user: SimulatedUser,
    language: str,
    *,
    subscribe: bool = False,
    workplace_id: int | None = None,
) -> SentMessage:
    """/start, pick ``language`` by its button, accept the privacy notice, answer the broadcast
    offer (and, subscribing, pick ``workplace_id`` or skip when workplaces are listed); return
    the menu."""
    picker = await ask(
        server, user, lambda: user.send_command("start"), lambda m: "lang:en" in data_of(m)
    )
    assert [button["callback_data"] for button in picker.buttons()] == [
        f"lang:{code}" for code in LANGUAGES
    ], "one order, whatever the messenger's language"
    assert f"{LANGUAGES[language]} ✓" in picker.button_labels(), "language_code is marked"
    privacy = await ask(
        server,
        user,
        lambda: user.press_button(LANGUAGES[language]),
        lambda m: "privacy:ok" in data_of(m),
    )
    assert "/forget" in privacy.text
    offer = await ask(
        server,
        user,
        lambda: user.press("privacy:ok", privacy),
        lambda m: "sub:yes" in data_of(m),
    )
    if not subscribe:
        return await ask(
            server, user, lambda: user.press("sub:no", offer), lambda m: "menu:report" in data_of(m)
        )
    answer = await ask(
        server,
        user,
        lambda: user.press("sub:yes", offer),
        lambda m: bool(data_of(m) & {"menu:report", "sub:wp-skip"}),
    )
    if "menu:report" in data_of(answer):
        return answer
    choice = "sub:wp-skip" if workplace_id is None else f"sub:wp:{workplace_id}"
    return await ask(
        server, user, lambda: user.press(choice, answer), lambda m: "menu:report" in data_of(m)
    )


@dataclass
class RunningBot:
    server: FakeTelegramServer
    settings: Settings
    task: asyncio.Task[None]
    stop: asyncio.Event

    async def reply(
        self, user: SimulatedUser, predicate: Callable[[SentMessage], bool], since: int
    ) -> SentMessage:
        return await reply(self.server, user, predicate, since)

    async def ask(
        self,
        user: SimulatedUser,
        act: Callable[[], object],
        predicate: Callable[[SentMessage], bool],
    ) -> SentMessage:
        return await ask(self.server, user, act, predicate)


async def start_bot(
    backend: Backend, server: FakeTelegramServer, runtime: str, **overrides: object
) -> RunningBot:
    """`wvb run` in this process on the Telegram ``runtime`` (the ``telegram_runtime``
    fixture), against ``server``; returns once it polls (or has registered its webhook)."""
    settings = backend.settings(
        telegram_token=server.token,
        telegram_api_base=server.base_url,
        telegram_runtime=runtime,
        **overrides,
    )
    database = Database(settings.database_url)
    await database.upgrade()  # what `wvb db upgrade` does before `wvb run`
    await database.dispose()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop))
    deadline = time.monotonic() + 20
    while not (server.long_polling or server.webhook) and time.monotonic() < deadline:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    assert server.long_polling or server.webhook, "the bot never started polling"
    return RunningBot(server, settings, task, stop)


async def stop_bot(bot: RunningBot) -> None:
    bot.stop.set()
    await asyncio.wait_for(bot.task, 30)


@asynccontextmanager
async def running(
    backend: Backend, server: FakeTelegramServer, runtime: str, **overrides: object
) -> AsyncIterator[RunningBot]:
    """``start_bot`` for the length of a ``with`` block, stopped afterwards."""
    bot = await start_bot(backend, server, runtime, **overrides)
    try:
        yield bot
    finally:
        await stop_bot(bot)


@asynccontextmanager
async def bot_with_staff_chat(
    backend: Backend, server: FakeTelegramServer, runtime: str, staff_chat: int
) -> AsyncIterator[RunningBot]:
    """A running bot whose staff alerts go to a private supergroup ``staff_chat``."""
    server.register_chat({"id": staff_chat, "type": "supergroup", "title": "Staff"})
    async with running(backend, server, runtime, staff_chat_id=staff_chat) as bot:
        yield bot


@asynccontextmanager
async def unpaced_sender(runtime: str, server: FakeTelegramServer) -> AsyncIterator[Sender]:
    """The Telegram ``runtime``'s broadcast sender (no pacing, no waiting on 429) on
    ``server``, closed afterwards."""
    if runtime == "ptb":
        from bot.channels.telegram_ptb import sender as ptb

        request = ptb.unpaced_request()
        try:
            yield ptb.PtbSender(ptb.build_unpaced_bot(server.token, server.base_url, request))
        finally:
            await request.shutdown()
        return
    from bot.channels.telegram import sender as aiogram

    bot = aiogram.build_unpaced_bot(server.token, server.base_url)
    try:
        yield aiogram.TelegramSender(bot)
    finally:
        await bot.session.close()


WVB = str(Path(sys.executable).parent / "wvb")
REFERENCE = re.compile(r"(?<![-\w])([0-9A-Z]{4}-[0-9A-Z]{4})(?![-\w])")
RECEIPT_CODE = re.compile(r"(?<![-\w])([0-9A-Z]{4}(?:-[0-9A-Z]{4}){3})(?![-\w])")
DETAILS_CHOICES = {"report:done", "nav:back", "nav:menu"}


@dataclass
class Receipt:
    reference: str
    code: str
    message: SentMessage


async def press(
    server: FakeTelegramServer,
    user: SimulatedUser,
    payload: str,
    expect: Callable[[SentMessage], bool],
) -> SentMessage:
    """Press the button ``payload`` on the latest message that carries it; await ``expect``."""
    carrier = next((m for m in reversed(user.messages()) if payload in data_of(m)), None)
    if carrier is None:  # the message with the button may still be on its way
        [carrier] = await server.wait_for(
            lambda m: m.chat_id == user.chat_id and payload in data_of(m), timeout=REPLY_TIMEOUT
        )
    return await ask(server, user, lambda: user.press(payload, carrier), expect)


def ticked(payload: str) -> Callable[[SentMessage], bool]:
    """The message shows the choice ``payload`` as selected."""

    def check(message: SentMessage) -> bool:
        return any(
            button.get("callback_data") == payload and button["text"].startswith("✅")
            for button in message.buttons()
        )

    return check


def has(*payloads: str) -> Callable[[SentMessage], bool]:
    return lambda m: all(p in data_of(m) for p in payloads)


async def report(
    server: FakeTelegramServer,
    user: SimulatedUser,
    *,
    categories: tuple[str, ...] = ("wages",),
    workplace: str | None = None,
    agency: str | None = None,
    details: tuple[str, ...] = ("I was not paid for two months.",),
    photo: bytes | None = None,
    when: str = "week",
    affected: str = "few",
    danger: str = "no",
    share: str = "confidential",
    send: bool = True,
) -> Receipt | None:
    """Walk an onboarded worker through /report by pressing buttons, as a person would."""
    await ask(server, user, lambda: user.send_command("report"), has("cat:wages"))
    for code in categories:
        await press(server, user, f"cat:{code}", ticked(f"cat:{code}"))
    await press(server, user, "report:done", has("wp:skip"))
    if workplace is None:
        await press(server, user, "wp:skip", has("agency:none"))
    elif workplace.startswith("wp:"):
        await press(server, user, workplace, has("agency:none"))
    else:
        await ask(server, user, lambda: user.send_text(workplace), has("agency:none"))
    is_details = lambda m: data_of(m) == DETAILS_CHOICES  # noqa: E731
    if agency is None:
        await press(server, user, "agency:none", is_details)
    else:
        await ask(server, user, lambda: user.send_text(agency), is_details)
    for text in details:
        await ask(server, user, lambda t=text: user.send_text(t), is_details)  # type: ignore[misc]
    if photo is not None:
        await ask(server, user, lambda: user.send_photo("evidence", data=photo), is_details)
    await press(server, user, "report:done", has("when:ongoing"))
    await press(server, user, f"when:{when}", has("who:me"))
    await press(server, user, f"who:{affected}", has("danger:yes"))
    await press(server, user, f"danger:{danger}", has("share:share"))
    review = await press(
        server, user, f"share:{share}", lambda m: bool(data_of(m) & {"review:send", "warn:share"})
    )
    if "warn:share" in data_of(review):
        await press(server, user, "warn:share", has("review:send"))
    if not send:
        return None
    receipt = await press(server, user, "review:send", lambda m: m.protect_content)
    reference = REFERENCE.search(receipt.text)
    code = RECEIPT_CODE.search(receipt.text)
    assert reference is not None, receipt.text
    assert code is not None, receipt.text
    return Receipt(reference.group(1), code.group(1), receipt)


async def check_status(
    server: FakeTelegramServer, user: SimulatedUser, reference: str, code: str
) -> SentMessage:
    """/status, then the reference, then the code: return the bot's answer."""
    await ask(server, user, lambda: user.send_command("status"), lambda m: "K7M3-9Q2X" in m.text)
    await ask(server, user, lambda: user.send_text(reference), lambda m: True)
    return await ask(
        server, user, lambda: user.send_text(code), lambda m: "menu:report" not in data_of(m)
    )


@dataclass
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


async def run_wvb(env: dict[str, str], *args: str) -> CommandResult:
    """Run the `wvb` command without blocking the event loop the bot under test runs on
    (a blocking call would freeze the bot mid-transaction while the command waits for it)."""
    process = await asyncio.create_subprocess_exec(
        WVB, *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return CommandResult(process.returncode, stdout.decode(), stderr.decode())
