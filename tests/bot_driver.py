"""Drive a worker's conversation through the fake Bot API: act, then wait for the bot's reply.

The Telegram-only form of ``tests/messenger_driver.py`` (which holds the one implementation of
the walks and waits): these take the fake server and its ``SimulatedUser``, acts that push an
update, and predicates on the server's ``SentMessage``, for tests about Telegram itself.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.channels.sending import Sender
from tests import messenger_driver as neutral
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer, SentMessage, SimulatedUser
from tests.messenger_driver import (
    DETAILS_CHOICES,
    RECEIPT_CODE,
    REFERENCE,
    REPLY_TIMEOUT,
    Receipt,
    RunningBot,
    Said,
    TelegramMessenger,
    TelegramWorker,
    serve_in_process,
    stop_bot,
)

__all__ = [
    "DETAILS_CHOICES",
    "RECEIPT_CODE",
    "REFERENCE",
    "REPLY_TIMEOUT",
    "Receipt",
    "RunningBot",
    "ask",
    "bot_with_staff_chat",
    "check_status",
    "data_of",
    "has",
    "onboard",
    "press",
    "reply",
    "report",
    "run_wvb",
    "running",
    "start_bot",
    "stop_bot",
    "ticked",
    "unpaced_sender",
]


def data_of(message: SentMessage) -> set[str]:
    return {button.get("callback_data", "") for button in message.buttons()}


def _worker(server: FakeTelegramServer, user: SimulatedUser) -> TelegramWorker:
    return TelegramWorker(TelegramMessenger(server), user)


def _on_record(predicate: Callable[[SentMessage], bool]) -> neutral.Predicate:
    return lambda said: predicate(said.raw)


async def reply(
    server: FakeTelegramServer,
    user: SimulatedUser,
    predicate: Callable[[SentMessage], bool],
    since: int,
) -> SentMessage:
    said: Said = await neutral.reply(_worker(server, user), _on_record(predicate), since)
    return said.raw  # type: ignore[no-any-return]


async def ask(
    server: FakeTelegramServer,
    user: SimulatedUser,
    act: Callable[[], object],
    predicate: Callable[[SentMessage], bool],
) -> SentMessage:
    """Do ``act`` as the worker and return the first later bot message matching ``predicate``."""

    async def acting() -> None:
        act()

    said = await neutral.ask(_worker(server, user), acting, _on_record(predicate))
    return said.raw  # type: ignore[no-any-return]


async def onboard(
    server: FakeTelegramServer,
    user: SimulatedUser,
    language: str,
    *,
    subscribe: bool = False,
    workplace_id: int | None = None,
) -> SentMessage:
    """``messenger_driver.onboard`` over Telegram: return the menu."""
    menu = await neutral.onboard(
        _worker(server, user), language, subscribe=subscribe, workplace_id=workplace_id
    )
    return menu.raw  # type: ignore[no-any-return]


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

    async def polling() -> bool:
        return server.long_polling or server.webhook is not None

    return await serve_in_process(server, settings, polling)


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


async def press(
    server: FakeTelegramServer,
    user: SimulatedUser,
    payload: str,
    expect: Callable[[SentMessage], bool],
) -> SentMessage:
    """Press the button ``payload`` on the latest message that carries it; await ``expect``."""
    said = await neutral.press(_worker(server, user), payload, _on_record(expect))
    return said.raw  # type: ignore[no-any-return]


def ticked(payload: str) -> Callable[[SentMessage], bool]:
    """The message shows the choice ``payload`` as selected."""
    selected = neutral.ticked(payload)
    return lambda m: selected(neutral.telegram_said(0, m))


def has(*payloads: str) -> Callable[[SentMessage], bool]:
    return lambda m: all(p in data_of(m) for p in payloads)


async def report(server: FakeTelegramServer, user: SimulatedUser, **answers: Any) -> Receipt | None:
    """``messenger_driver.report`` over Telegram (the receipt's ``message`` is the server's
    record of it)."""
    receipt = await neutral.report(_worker(server, user), **answers)
    if receipt is None:
        return None
    return Receipt(receipt.reference, receipt.code, receipt.message.raw)


async def check_status(
    server: FakeTelegramServer, user: SimulatedUser, reference: str, code: str
) -> SentMessage:
    """/status, then the reference, then the code: return the bot's answer."""
    said = await neutral.check_status(_worker(server, user), reference, code)
    return said.raw  # type: ignore[no-any-return]


@dataclass
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


async def run_wvb(env: dict[str, str], *args: str, stdin: str | None = None) -> CommandResult:
    """Run the `wvb` command without blocking the event loop the bot under test runs on
    (a blocking call would freeze the bot mid-transaction while the command waits for it);
    ``stdin``: what it reads on standard input."""
    process = await asyncio.create_subprocess_exec(
        WVB, *args, env=env,
        stdin=None if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    typed = None if stdin is None else stdin.encode()
    stdout, stderr = await asyncio.wait_for(process.communicate(typed), 120)
    assert process.returncode is not None
    return CommandResult(process.returncode, stdout.decode(), stderr.decode())
