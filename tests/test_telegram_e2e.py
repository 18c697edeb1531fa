"""End to end: the real Telegram runtimes, aiogram and python-telegram-bot (`serve`, as `wvb run`
runs it), against a fake Bot API server on 127.0.0.1 that speaks the real wire format. Runs on
SQLite + memory state and on PostgreSQL + Redis.

What is about Telegram itself: its updates and their garbage, 429s, the command menu, polling and
webhook mode, its limits and refusals. What a worker does on any messenger (fifty at once, each in
their own language, among others) is in the suites over ``tests/messenger_driver.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import pytest

from conversations.commands import WORKER_COMMANDS
from locales import LANGUAGES, translator
from tests import bot_driver
from tests.bot_driver import RunningBot, data_of, start_bot, stop_bot, unpaced_sender
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer, SentMessage, SimulatedUser


@pytest.fixture
async def running_bot(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> AsyncIterator[RunningBot]:
    async with bot_driver.running(backend, fake_telegram, telegram_runtime) as bot:
        yield bot


async def onboard(bot: RunningBot, user: SimulatedUser, language: str) -> SentMessage:
    return await bot_driver.onboard(bot.server, user, language)


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
        reply = await bot_driver.ask(
            running_bot.server, user, act, lambda m: "menu:report" in data_of(m)
        )
        assert len(reply.text) < 1000
    before = len(server.sent)
    user.send_from_group("/start")
    user.send_channel_post("hello")
    await bot_driver.ask(
        running_bot.server, user, lambda: user.send_command("menu"), lambda m: True
    )
    group_replies = [m for m in server.sent[before:] if m.chat_id != user.chat_id]
    assert group_replies == [], "the bot stays silent in groups and channels"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert all(request.status == 200 for request in server.requests)


async def test_rate_limit_is_waited_out_and_retried(running_bot: RunningBot) -> None:
    server = running_bot.server
    user = server.user(6_000_002, language_code="th")
    server.fail_next("sendMessage", status=429, retry_after=1)
    started = time.monotonic()
    picker = await bot_driver.ask(
        running_bot.server,
        user,
        lambda: user.send_command("start"),
        lambda m: "lang:th" in data_of(m),
    )
    assert time.monotonic() - started >= 1.0
    assert server.too_many_requests == 1
    assert "ไทย ✓" in picker.button_labels(), "language_code is marked"


async def test_commands_are_registered_in_every_language(running_bot: RunningBot) -> None:
    commands = running_bot.server.commands
    for language in LANGUAGES:
        code = None if language == "en" else language
        registered = commands[("all_private_chats", code)]
        assert [c["command"] for c in registered] == list(WORKER_COMMANDS)
        descriptions = [c["description"] for c in registered]
        assert descriptions == [translator(language).gettext(d) for d in WORKER_COMMANDS.values()]


async def test_polling_deletes_the_webhook_first_and_asks_for_three_kinds_of_update(
    running_bot: RunningBot,
) -> None:
    user = running_bot.server.user(6_000_006, language_code="en")
    await bot_driver.ask(
        running_bot.server, user, lambda: user.send_command("start"), lambda m: True
    )
    methods = [request.method for request in running_bot.server.requests]  # those answered
    assert methods[0] == "getMe"
    assert methods.index("deleteWebhook") < methods.index("getUpdates")
    [first_poll] = [r for r in running_bot.server.requests if r.method == "getUpdates"][:1]
    assert first_poll.params["allowed_updates"] == ["message", "edited_message", "callback_query"]


async def test_a_command_for_another_bot_is_only_text(running_bot: RunningBot) -> None:
    server = running_bot.server
    user = server.user(6_000_005, language_code="en")
    await onboard(running_bot, user, "en")
    other = await bot_driver.ask(server, user, lambda: user.send_text("/forget@another_bot"),
                                 lambda m: True)  # fmt: skip
    assert "forget:yes" not in data_of(other)
    ours_too = f"/forget@{server.bot_username}"
    ours = await bot_driver.ask(server, user, lambda: user.send_text(ours_too), lambda m: True)
    assert "forget:yes" in data_of(ours)


async def test_a_long_message_is_split_within_telegram_limits(
    fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> None:
    from conversations.messages import Choice, Outbound

    user = fake_telegram.user(6_000_003)
    user.send_text("hi")  # makes the chat known to the server
    async with unpaced_sender(telegram_runtime, fake_telegram) as sender:
        paragraph = "ဝန်ထမ်း " * 300 + "\n\n"  # Burmese: multi-byte, many code points
        text = paragraph * 6 + "🙂" * 3000  # astral characters count twice in UTF-16
        await sender.send(str(user.chat_id), Outbound(text, (Choice("OK", "ok"),)))
    parts = user.messages()
    assert len(parts) >= 3
    assert all(len(p.text.encode("utf-16-le")) // 2 <= 4096 for p in parts)
    assert [bool(p.buttons()) for p in parts] == [False] * (len(parts) - 1) + [True]
    assert "".join(p.text for p in parts).replace("\n", "").replace(" ", "") == text.replace(
        "\n", ""
    ).replace(" ", "")


async def test_send_failures_are_named_alike_on_both_runtimes(
    fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> None:
    from bot.channels.sending import Blocked, ChannelDown, Rejected, RetryAfter, SendFailure
    from conversations.messages import Outbound

    server = fake_telegram
    user = server.user(6_000_007)
    user.send_text("hi")  # makes the chat known to the server
    address, hello = str(user.chat_id), Outbound("hello")

    async def failure(prepare: Callable[[], object], to: str = address) -> SendFailure:
        prepare()
        with pytest.raises(SendFailure) as raised:
            await sender.send(to, hello)
        return raised.value

    async with unpaced_sender(telegram_runtime, server) as sender:
        assert len(await sender.send(address, hello)) == 1
        retry = await failure(lambda: server.fail_next("sendMessage", retry_after=3))
        assert isinstance(retry, RetryAfter)
        assert retry.seconds == 3.0
        assert server.too_many_requests == 1, "the broadcast sender does not retry a 429"
        bad = await failure(lambda: None, to="424242")  # chat not found
        assert isinstance(bad, Rejected)
        token = await failure(lambda: server.fail_next("sendMessage", status=401))
        assert isinstance(token, ChannelDown)
        assert "WVB_TELEGRAM_TOKEN" in str(token)
        down = await failure(lambda: server.fail_next("sendMessage", status=502))
        assert isinstance(down, ChannelDown)
        assert "unreachable" in str(down)
        blocked = await failure(lambda: server.block(user.chat_id))
        assert isinstance(blocked, Blocked)
    async with unpaced_sender(telegram_runtime, server) as sender:
        server.unblock(user.chat_id)
        await server.stop()  # nothing listens any more
        gone = await failure(lambda: None)
        assert isinstance(gone, ChannelDown)
        assert "unreachable" in str(gone)


async def test_webhook_mode_rejects_requests_without_the_secret(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str, unused_tcp_port: int
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/telegram/hook"
    bot = await start_bot(
        backend,
        fake_telegram,
        telegram_runtime,
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
        picker = await bot_driver.reply(bot.server, user, lambda m: "lang:es" in data_of(m), before)
        assert "Español ✓" in picker.button_labels(), "language_code is marked"
    finally:
        await stop_bot(bot)


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_a_rejected_token_or_an_unreachable_api_is_one_line_naming_the_setting(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str,
    unused_tcp_port: int,
) -> None:  # fmt: skip
    from bot.app import open_app
    from bot.errors import ChannelStartError

    wrong_secret = "W" * 35
    cases = [
        ({"telegram_token": f"654321:{wrong_secret}", "telegram_api_base": fake_telegram.base_url},
         "WVB_TELEGRAM_TOKEN: Telegram rejected the token"),
        ({"telegram_token": fake_telegram.token,
          "telegram_api_base": f"http://127.0.0.1:{unused_tcp_port}"},
         "WVB_TELEGRAM_API_BASE: cannot reach the Bot API ("),
    ]  # fmt: skip
    keys = backend.settings()  # one database, one set of keys (services/key_canary.py)
    for overrides, expected in cases:
        settings = backend.settings(
            telegram_runtime=telegram_runtime, secret_key=keys.secret_key,
            encryption_keys=keys.encryption_keys, **overrides,
        )  # fmt: skip
        async with open_app(settings, channels=True, upgrade_schema=True) as app:
            [channel] = app.channels
            with pytest.raises(ChannelStartError) as raised:
                await channel.start()
        message = str(raised.value)
        assert message.startswith(expected), message
        assert "\n" not in message
        assert wrong_secret not in message
