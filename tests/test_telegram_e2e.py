"""End to end: the real aiogram runtime (`serve`, as `wvb run` runs it) against a fake Bot API
server on 127.0.0.1 that speaks the real wire format. Runs on SQLite + memory state and on
PostgreSQL + Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from conversations.commands import WORKER_COMMANDS
from locales import LANGUAGES, translator
from storage.database import Database
from storage.models import Worker
from tests import bot_driver
from tests.bot_driver import RunningBot, data_of, start_bot, stop_bot
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer, SentMessage, SimulatedUser

MENU_PROMPT = "Main menu. What would you like to do?"


@pytest.fixture
async def running_bot(
    backend: Backend, fake_telegram: FakeTelegramServer
) -> AsyncIterator[RunningBot]:
    bot = await start_bot(backend, fake_telegram)
    try:
        yield bot
    finally:
        await stop_bot(bot)


async def onboard(bot: RunningBot, user: SimulatedUser, language: str) -> SentMessage:
    return await bot_driver.onboard(bot.server, user, language)


async def test_fifty_workers_at_once_each_answered_in_their_own_language(
    running_bot: RunningBot,
) -> None:
    codes = list(LANGUAGES)
    users = [
        running_bot.server.user(
            5_000_000 + index, first_name=f"W{index}", language_code=codes[index % len(codes)]
        )
        for index in range(50)
    ]

    async def one_worker(user: SimulatedUser, language: str) -> None:
        menu = await onboard(running_bot, user, language)
        expected = translator(language).gettext(MENU_PROMPT)
        assert menu.text == expected
        again = await running_bot.ask(
            user, lambda: user.send_command("menu"), lambda m: "menu:report" in data_of(m)
        )
        assert again.text == expected

    await asyncio.gather(
        *(one_worker(user, codes[index % len(codes)]) for index, user in enumerate(users))
    )
    database = Database(running_bot.settings.database_url)
    try:
        async with database.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(Worker))
            languages = (await session.execute(select(Worker.language))).scalars().all()
    finally:
        await database.dispose()
    assert count == 50
    assert sorted(languages) == sorted(codes[index % len(codes)] for index in range(50))
    assert all(request.status == 200 for request in running_bot.server.requests)


async def test_garbage_never_crashes_and_gets_a_reprompt(
    running_bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    server = running_bot.server
    user = server.user(6_000_001, language_code="en")
    await onboard(running_bot, user, "en")
    assert user.last_message().buttons()
    for act in (
        lambda: user.send_text(""),
        lambda: user.send_text("x" * 10_000),
        lambda: user.send_sticker(),
        lambda: user.send_photo(caption="a photo where a choice is expected"),
        lambda: user.send_voice(),
        lambda: user.send_document(),
        lambda: user.press("no-such-button"),
        lambda: user.press("x" * 64),
        lambda: user.edit_last_message("edited"),
    ):
        reply = await running_bot.ask(user, act, lambda m: "menu:report" in data_of(m))
        assert len(reply.text) < 1000
    before = len(server.sent)
    user.send_from_group("/start")
    user.send_channel_post("hello")
    await running_bot.ask(user, lambda: user.send_command("menu"), lambda m: True)
    group_replies = [m for m in server.sent[before:] if m.chat_id != user.chat_id]
    assert group_replies == [], "the bot stays silent in groups and channels"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert all(request.status == 200 for request in server.requests)


async def test_rate_limit_is_waited_out_and_retried(running_bot: RunningBot) -> None:
    server = running_bot.server
    user = server.user(6_000_002, language_code="th")
    server.fail_next("sendMessage", status=429, retry_after=1)
    started = time.monotonic()
    picker = await running_bot.ask(
        user, lambda: user.send_command("start"), lambda m: "lang:th" in data_of(m)
    )
    assert time.monotonic() - started >= 1.0
    assert server.too_many_requests == 1
    assert picker.buttons()[0]["callback_data"] == "lang:th"


async def test_commands_are_registered_in_every_language(running_bot: RunningBot) -> None:
    commands = running_bot.server.commands
    for language in LANGUAGES:
        code = None if language == "en" else language
        registered = commands[("all_private_chats", code)]
        assert [c["command"] for c in registered] == list(WORKER_COMMANDS)
        descriptions = [c["description"] for c in registered]
        assert descriptions == [translator(language).gettext(d) for d in WORKER_COMMANDS.values()]


async def test_a_long_message_is_split_within_telegram_limits(
    fake_telegram: FakeTelegramServer,
) -> None:
    from bot.channels.telegram.sender import TelegramSender, build_unpaced_bot
    from conversations.messages import Choice, Outbound

    user = fake_telegram.user(6_000_003)
    user.send_text("hi")  # makes the chat known to the server
    bot = build_unpaced_bot(fake_telegram.token, fake_telegram.base_url)
    try:
        paragraph = "ဝန်ထမ်း " * 300 + "\n\n"  # Burmese: multi-byte, many code points
        text = paragraph * 6 + "🙂" * 3000  # astral characters count twice in UTF-16
        sender = TelegramSender(bot)
        await sender.send(str(user.chat_id), Outbound(text, (Choice("OK", "ok"),)))
    finally:
        await bot.session.close()
    parts = user.messages()
    assert len(parts) >= 3
    assert all(len(p.text.encode("utf-16-le")) // 2 <= 4096 for p in parts)
    assert [bool(p.buttons()) for p in parts] == [False] * (len(parts) - 1) + [True]
    assert "".join(p.text for p in parts).replace("\n", "").replace(" ", "") == text.replace(
        "\n", ""
    ).replace(" ", "")


async def test_webhook_mode_rejects_requests_without_the_secret(
    backend: Backend, fake_telegram: FakeTelegramServer, unused_tcp_port: int
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/telegram/hook"
    bot = await start_bot(
        backend,
        fake_telegram,
        webhook_url=url,
        webhook_secret="s3cret-Token_1",
        webhook_listen=f"127.0.0.1:{unused_tcp_port}",
    )
    try:
        assert fake_telegram.webhook is not None
        assert fake_telegram.webhook["url"] == url
        assert fake_telegram.webhook["secret_token"] == "s3cret-Token_1"
        user = fake_telegram.user(6_000_004, language_code="es")
        update = {"message": {"message_id": 1, "date": int(time.time()), "text": "/start",
                              "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
                              "chat": {"id": user.chat_id, "type": "private", "first_name": "W"},
                              "from": {"id": user.id, "is_bot": False, "first_name": "W",
                                       "language_code": "es"}}}  # fmt: skip
        before = len(fake_telegram.sent)
        assert await fake_telegram.deliver_webhook(update, secret=None) == 401
        assert await fake_telegram.deliver_webhook(update, secret="wrong") == 401
        await asyncio.sleep(0.3)
        assert fake_telegram.sent[before:] == []
        assert await fake_telegram.deliver_webhook(update, secret="s3cret-Token_1") == 200
        picker = await bot.reply(user, lambda m: "lang:es" in data_of(m), before)
        assert picker.buttons()[0]["callback_data"] == "lang:es"
    finally:
        await stop_bot(bot)
