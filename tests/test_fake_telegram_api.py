"""Tests of the fake Telegram Bot API server itself (wire format, then the real aiogram and
python-telegram-bot runtimes)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import SendMessage
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import ClientSession, FormData, web

from tests.fake_telegram_api import (
    DELETE_WINDOW_SECONDS,
    MAX_DOWNLOAD_FILE_SIZE,
    FakeTelegramServer,
    SentMessage,
    SimulatedUser,
)

pytestmark = pytest.mark.asyncio

JSONDict = dict[str, Any]


@pytest.fixture
def server(fake_telegram: FakeTelegramServer) -> FakeTelegramServer:
    return fake_telegram


@pytest_asyncio.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session


def as_form(params: JSONDict) -> dict[str, str]:
    """Encode like aiogram does: strings as they are, everything else JSON-serialised."""
    return {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in params.items()
    }


async def call(
    http: ClientSession,
    server: FakeTelegramServer,
    method: str,
    params: JSONDict | None = None,
    *,
    token: str | None = None,
) -> tuple[int, JSONDict]:
    url = f"{server.base_url}/bot{token or server.token}/{method}"
    async with http.post(url, data=as_form(params or {})) as response:
        body: JSONDict = await response.json()
        assert response.content_type == "application/json"
        return response.status, body


async def download(
    http: ClientSession, server: FakeTelegramServer, file_path: str, *, token: str | None = None
) -> tuple[int, bytes]:
    url = f"{server.base_url}/file/bot{token or server.token}/{file_path}"
    async with http.get(url) as response:
        return response.status, await response.read()


def keyboard(*buttons: tuple[str, str]) -> JSONDict:
    return {"inline_keyboard": [[{"text": text, "callback_data": data}] for text, data in buttons]}


# ---- basics --------------------------------------------------------------------------------


async def test_get_me_over_get_and_post(server: FakeTelegramServer, http: ClientSession) -> None:
    async with http.get(f"{server.base_url}/bot{server.token}/getMe") as response:
        assert response.status == 200
        got = await response.json()
    status, posted = await call(http, server, "getMe")
    assert status == 200
    assert got == posted
    assert got["ok"] is True
    me = got["result"]
    assert me["id"] == 123456
    assert me["is_bot"] is True
    assert me["username"] == "wvb_test_bot"
    assert server.requests[-1].method == "getMe"
    assert server.requests[-1].status == 200


async def test_wrong_token_unknown_method_and_case_insensitive_names(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    status, body = await call(http, server, "getMe", token="123456:WRONG")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    status, body = await call(http, server, "sendCarrierPigeon")
    assert status == 404
    assert body == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
    status, body = await call(http, server, "getme")
    assert status == 200
    assert body["result"]["is_bot"] is True
    async with http.get(f"{server.base_url}/somewhere/else") as response:
        assert response.status == 404


async def test_parameters_decode_the_same_in_every_encoding(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    user = server.user(501)
    params: JSONDict = {
        "chat_id": user.chat_id,
        "text": "hello",
        "protect_content": True,
        "reply_markup": keyboard(("Yes", "answer:yes")),
    }
    url = f"{server.base_url}/bot{server.token}/sendMessage"

    async with http.post(url, data=as_form(params)) as response:  # urlencoded, like aiogram
        assert response.status == 200
    multipart = FormData(as_form(params), default_to_multipart=True)
    async with http.post(url, data=multipart) as response:
        assert response.status == 200
    async with http.post(url, json=params) as response:
        assert response.status == 200
    async with http.get(url, params=as_form(params)) as response:
        assert response.status == 200

    decoded = [request.params for request in server.requests]
    assert len(decoded) == 4
    for recorded in decoded:
        assert recorded == params
    assert [message.message_id for message in server.sent] == [1, 2, 3, 4]
    assert all(message.protect_content for message in server.sent)
    assert server.sent[0].buttons() == [{"text": "Yes", "callback_data": "answer:yes"}]


# ---- getUpdates ----------------------------------------------------------------------------


async def test_get_updates_offset_limit_and_negative_offset(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    user = server.user(7)
    ids = [user.send_text(f"message {n}") for n in range(5)]
    assert ids == sorted(ids)

    _, body = await call(http, server, "getUpdates", {"limit": 2})
    assert [update["update_id"] for update in body["result"]] == ids[:2]
    _, body = await call(http, server, "getUpdates", {"offset": ids[2]})
    assert [update["update_id"] for update in body["result"]] == ids[2:]
    assert [update["update_id"] for update in server.pending_updates] == ids[2:]
    _, body = await call(http, server, "getUpdates", {"offset": -1})
    assert [update["update_id"] for update in body["result"]] == ids[-1:]
    _, body = await call(http, server, "getUpdates", {"offset": ids[-1] + 1, "timeout": 0})
    assert body == {"ok": True, "result": []}
    assert server.pending_updates == []


async def test_long_poll_waits_and_wakes_up(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    started = time.monotonic()
    status, body = await call(http, server, "getUpdates", {"timeout": 1})
    assert (status, body["result"]) == (200, [])
    assert time.monotonic() - started >= 0.9

    poll = asyncio.create_task(call(http, server, "getUpdates", {"timeout": 20}))
    while not server.long_polling:
        await asyncio.sleep(0.01)
    started = time.monotonic()
    update_id = server.user(8).send_text("wake up")
    status, body = await poll
    assert time.monotonic() - started < 2
    assert status == 200
    assert [update["update_id"] for update in body["result"]] == [update_id]
    assert body["result"][0]["message"]["text"] == "wake up"


async def test_concurrent_get_updates_the_newer_request_wins(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    older = asyncio.create_task(call(http, server, "getUpdates", {"timeout": 20}))
    while not server.long_polling:
        await asyncio.sleep(0.01)
    newer = asyncio.create_task(call(http, server, "getUpdates", {"timeout": 20}))
    status, body = await older
    assert status == 409
    assert body["description"].startswith("Conflict: terminated by other getUpdates request")
    while not server.long_polling:
        await asyncio.sleep(0.01)
    server.user(9).send_text("hi")
    status, body = await newer
    assert status == 200
    assert len(body["result"]) == 1


async def test_allowed_updates_filter(server: FakeTelegramServer, http: ClientSession) -> None:
    await call(http, server, "getUpdates", {"allowed_updates": ["message"], "timeout": 0})
    user = server.user(10)
    user.send_channel_post("not wanted")
    wanted = user.send_text("wanted")
    _, body = await call(http, server, "getUpdates", {"timeout": 0})
    assert [update["update_id"] for update in body["result"]] == [wanted]
    assert "channel_post" in server.dropped_updates[0]


# ---- webhooks ------------------------------------------------------------------------------


async def test_webhook_lifecycle(server: FakeTelegramServer, http: ClientSession) -> None:
    user = server.user(11)
    user.send_text("queued")
    status, body = await call(
        http,
        server,
        "setWebhook",
        {"url": "https://bot.example/hook", "secret_token": "s3cr3t_-X", "max_connections": 5},
    )
    assert (status, body["result"], body["description"]) == (200, True, "Webhook was set")
    assert server.webhook is not None
    assert server.webhook["secret_token"] == "s3cr3t_-X"

    status, body = await call(http, server, "getUpdates")
    assert status == 409
    assert body["description"].startswith(
        "Conflict: can't use getUpdates method while webhook is active"
    )
    _, body = await call(http, server, "getWebhookInfo")
    assert body["result"]["url"] == "https://bot.example/hook"
    assert body["result"]["pending_update_count"] == 1
    assert body["result"]["max_connections"] == 5

    _, body = await call(http, server, "deleteWebhook", {"drop_pending_updates": True})
    assert body["result"] is True
    assert server.webhook is None
    assert server.pending_updates == []
    _, body = await call(http, server, "getWebhookInfo")
    assert body["result"] == {"url": "", "has_custom_certificate": False, "pending_update_count": 0}


async def test_set_webhook_terminates_a_long_poll(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    poll = asyncio.create_task(call(http, server, "getUpdates", {"timeout": 20}))
    while not server.long_polling:
        await asyncio.sleep(0.01)
    await call(http, server, "setWebhook", {"url": "https://bot.example/hook"})
    status, body = await poll
    assert status == 409
    assert body["description"] == "Conflict: terminated by setWebhook request"


@pytest.mark.parametrize(
    ("secret", "description"),
    [
        ("has space", "Bad Request: secret token contains unallowed characters"),
        ("base64+/=", "Bad Request: secret token contains unallowed characters"),
        ("x" * 257, "Bad Request: secret token is too long"),
    ],
)
async def test_set_webhook_validates_the_secret_token(
    server: FakeTelegramServer, http: ClientSession, secret: str, description: str
) -> None:
    status, body = await call(
        http, server, "setWebhook", {"url": "https://bot.example/hook", "secret_token": secret}
    )
    assert (status, body["description"]) == (400, description)
    assert server.webhook is None


async def test_deliver_webhook_requires_a_webhook(server: FakeTelegramServer) -> None:
    with pytest.raises(AssertionError, match="no webhook is registered"):
        await server.deliver_webhook({"message": {}}, secret=None)


# ---- sendMessage ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "description"),
    [
        ({"text": ""}, "Bad Request: message text is empty"),
        ({"text": "   \n "}, "Bad Request: message text is empty"),
        ({}, "Bad Request: message text is empty"),
        ({"text": "x" * 4097}, "Bad Request: message is too long"),
        ({"text": "😀" * 2049}, "Bad Request: message is too long"),  # 4098 UTF-16 units
        ({"text": "<b></b>", "parse_mode": "HTML"}, "Bad Request: message text is empty"),
        (
            {"text": "1 < 2", "parse_mode": "HTML"},
            'Bad Request: can\'t parse entities: Unsupported start tag "" at byte offset 2',
        ),
        (
            {"text": "<b>bold", "parse_mode": "HTML"},
            (
                "Bad Request: can't parse entities: "
                'Can\'t find end tag corresponding to start tag "b"'
            ),
        ),
        (
            {"text": "<br/>", "parse_mode": "HTML"},
            'Bad Request: can\'t parse entities: Unsupported start tag "br/" at byte offset 0',
        ),
        (
            {"text": "Done.", "parse_mode": "MarkdownV2"},
            (
                "Bad Request: can't parse entities: "
                "Character '.' is reserved and must be escaped with the preceding '\\'"
            ),
        ),
        (
            {"text": "*bold", "parse_mode": "MarkdownV2"},
            "Bad Request: can't parse entities: Can't find end of Bold entity at byte offset 0",
        ),
        (
            {"text": "hi", "reply_markup": keyboard(("Long", "ж" * 33))},  # 66 bytes
            "Bad Request: BUTTON_DATA_INVALID",
        ),
        (
            {"text": "hi", "reply_markup": {"inline_keyboard": [[{"text": "Plain"}]]}},
            (
                "Bad Request: can't parse inline keyboard button: "
                "Text buttons are unallowed in the inline keyboard"
            ),
        ),
        (
            {"text": "hi", "reply_markup": keyboard(("", "data"))},
            "Bad Request: BUTTON_TEXT_INVALID",
        ),
        (
            {"text": "hi", "reply_markup": "{not json"},
            "Bad Request: can't parse reply keyboard markup JSON object",
        ),
    ],
)
async def test_send_message_rejects_what_telegram_rejects(
    server: FakeTelegramServer, http: ClientSession, extra: JSONDict, description: str
) -> None:
    user = server.user(20)
    status, body = await call(http, server, "sendMessage", {"chat_id": user.chat_id, **extra})
    assert status == 400
    assert body == {"ok": False, "error_code": 400, "description": description}
    assert server.sent == []
    assert server.requests[-1].status == 400


@pytest.mark.parametrize(
    ("text", "parse_mode"),
    [
        ("x" * 4096, None),
        ("😀" * 2048, None),
        ("<b>" + "x" * 4090 + "</b>&lt;&amp;&gt;", "HTML"),
        ("*" + "y" * 4096 + "*", "MarkdownV2"),
        ("1 < 2 & 3 > 2", None),
    ],
)
async def test_send_message_accepts_up_to_4096_visible_units(
    server: FakeTelegramServer, http: ClientSession, text: str, parse_mode: str | None
) -> None:
    user = server.user(21)
    params: JSONDict = {"chat_id": user.chat_id, "text": text}
    if parse_mode:
        params["parse_mode"] = parse_mode
    status, body = await call(http, server, "sendMessage", params)
    assert status == 200, body
    assert server.sent[-1].text == text


async def test_callback_data_limit_is_64_bytes(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    user = server.user(22)
    status, _ = await call(
        http,
        server,
        "sendMessage",
        {"chat_id": user.chat_id, "text": "ok", "reply_markup": keyboard(("A", "ж" * 32))},
    )
    assert status == 200


async def test_send_message_result_and_numbering(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    user = server.user(30, first_name="Ana", username="ana")
    other = server.user(31)
    user.send_text("hello")  # user messages share the chat's message_id sequence
    _, first = await call(
        http,
        server,
        "sendMessage",
        {"chat_id": user.chat_id, "text": "<b>Hi</b> Ana", "parse_mode": "HTML"},
    )
    _, second = await call(http, server, "sendMessage", {"chat_id": other.chat_id, "text": "Hi"})
    message = Message.model_validate(first["result"])
    assert message.message_id == 2
    assert message.text == "Hi Ana"
    assert message.chat.id == user.chat_id
    assert message.chat.username == "ana"
    assert message.from_user is not None
    assert message.from_user.is_bot
    assert second["result"]["message_id"] == 1
    sent = server.sent[0]
    assert (sent.chat_id, sent.text, sent.plain_text, sent.method) == (
        30,
        "<b>Hi</b> Ana",
        "Hi Ana",
        "sendMessage",
    )
    assert user.messages() == [sent]
    assert user.last_message() is sent


async def test_unknown_and_blocked_chats(server: FakeTelegramServer, http: ClientSession) -> None:
    status, body = await call(http, server, "sendMessage", {"chat_id": 999, "text": "hi"})
    assert (status, body["description"]) == (400, "Bad Request: chat not found")
    status, body = await call(http, server, "sendMessage", {"text": "hi"})
    assert (status, body["description"]) == (400, "Bad Request: chat_id is empty")
    user = server.user(40)
    server.block(user.chat_id)
    status, body = await call(http, server, "sendMessage", {"chat_id": user.chat_id, "text": "x"})
    assert (status, body["description"]) == (403, "Forbidden: bot was blocked by the user")
    status, _ = await call(
        http, server, "sendChatAction", {"chat_id": user.chat_id, "action": "typing"}
    )
    assert status == 403
    server.unblock(user.chat_id)
    status, _ = await call(http, server, "sendMessage", {"chat_id": user.chat_id, "text": "x"})
    assert status == 200


# ---- edits, deletes, callbacks, chat actions -----------------------------------------------


async def test_edit_delete_and_not_modified(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    user = server.user(50)
    markup = keyboard(("One", "1"), ("Two", "2"))
    _, body = await call(
        http,
        server,
        "sendMessage",
        {"chat_id": user.chat_id, "text": "Pick", "reply_markup": markup},
    )
    message_id = body["result"]["message_id"]
    target = {"chat_id": user.chat_id, "message_id": message_id}

    status, body = await call(
        http, server, "editMessageText", {**target, "text": "Pick", "reply_markup": markup}
    )
    assert status == 400
    assert body["description"].startswith("Bad Request: message is not modified")

    status, body = await call(http, server, "editMessageText", {**target, "text": "Picked"})
    assert status == 200
    assert body["result"]["text"] == "Picked"
    assert "reply_markup" not in body["result"]  # no reply_markup removes the keyboard
    assert "edit_date" in body["result"]

    status, body = await call(
        http, server, "editMessageReplyMarkup", {**target, "reply_markup": keyboard(("Undo", "u"))}
    )
    assert status == 200
    assert [message.method for message in user.messages()] == [
        "sendMessage",
        "editMessageText",
        "editMessageReplyMarkup",
    ]
    assert user.last_message().text == "Picked"
    assert user.last_message().button_labels() == ["Undo"]

    status, body = await call(
        http, server, "editMessageText", {**target, "message_id": 99, "text": "x"}
    )
    assert (status, body["description"]) == (400, "Bad Request: message to edit not found")

    status, body = await call(http, server, "deleteMessage", target)
    assert (status, body["result"]) == (200, True)
    assert server.deleted == [(user.chat_id, message_id)]
    assert all(message.deleted for message in user.messages())
    status, body = await call(http, server, "deleteMessage", target)
    assert (status, body["description"]) == (400, "Bad Request: message to delete not found")


async def test_callback_queries_and_answers(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    user = server.user(60, username="pressy")
    await call(
        http,
        server,
        "sendMessage",
        {
            "chat_id": user.chat_id,
            "text": "Language?",
            "reply_markup": keyboard(("English", "l:en"), ("Українська", "l:uk")),
        },
    )
    update_id = user.press_button("Укр")
    update = Update.model_validate(server.pending_updates[-1])
    assert update.update_id == update_id
    query = update.callback_query
    assert query is not None
    assert query.data == "l:uk"
    assert query.from_user.username == "pressy"
    assert isinstance(query.message, Message)
    assert query.message.text == "Language?"

    with pytest.raises(AssertionError, match=r"available labels: \['English', 'Українська'\]"):
        user.press_button("Deutsch")

    status, body = await call(
        http, server, "answerCallbackQuery", {"callback_query_id": query.id, "text": "x" * 201}
    )
    assert (status, body["description"]) == (400, "Bad Request: MESSAGE_TOO_LONG")
    status, body = await call(
        http, server, "answerCallbackQuery", {"callback_query_id": query.id, "text": "Saved"}
    )
    assert (status, body["result"]) == (200, True)
    assert server.callback_answers[-1]["text"] == "Saved"
    status, body = await call(http, server, "answerCallbackQuery", {"callback_query_id": query.id})
    assert status == 400
    assert body["description"].startswith("Bad Request: query is too old")

    status, _ = await call(
        http, server, "sendChatAction", {"chat_id": user.chat_id, "action": "typing"}
    )
    assert status == 200
    status, _ = await call(
        http, server, "sendChatAction", {"chat_id": user.chat_id, "action": "dancing"}
    )
    assert status == 400
    assert server.chat_actions == [(user.chat_id, "typing")]


async def test_simulated_updates_have_real_shapes(server: FakeTelegramServer) -> None:
    user = server.user(70, first_name="Olena", last_name="K", username="olena", language_code="uk")
    user.send_command("start", "ref_42")
    user.send_text("plain")
    user.edit_last_message("plain, edited")
    user.send_sticker()
    user.send_photo(caption="a photo")
    user.send_voice()
    user.send_document()
    user.send_from_group("/report@wvb_test_bot now")
    user.send_channel_post("news")

    updates = [Update.model_validate(raw) for raw in server.pending_updates]
    command, plain, edited, sticker, photo, voice, document, group, channel = updates
    assert command.message is not None
    assert command.message.text == "/start ref_42"
    assert command.message.entities is not None
    assert command.message.entities[0].type == "bot_command"
    assert command.message.entities[0].length == len("/start")
    assert command.message.from_user is not None
    assert command.message.from_user.language_code == "uk"
    assert command.message.chat.type == "private"
    assert plain.message is not None
    assert plain.message.entities is None
    assert edited.edited_message is not None
    assert edited.edited_message.message_id == plain.message.message_id
    assert edited.edited_message.text == "plain, edited"
    assert sticker.message is not None
    assert sticker.message.sticker is not None
    assert photo.message is not None
    assert photo.message.photo is not None
    assert photo.message.caption == "a photo"
    assert voice.message is not None
    assert voice.message.voice is not None
    assert document.message is not None
    assert document.message.document is not None
    assert group.message is not None
    assert group.message.chat.type == "group"
    assert group.message.chat.id < 0
    assert group.message.entities is not None
    assert group.message.entities[0].length == len("/report@wvb_test_bot")
    assert channel.channel_post is not None
    assert channel.channel_post.chat.type == "channel"
    assert channel.channel_post.from_user is None
    assert len({update.update_id for update in updates}) == len(updates)


# ---- commands ------------------------------------------------------------------------------


async def test_my_commands_keyed_by_scope_and_language(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    commands = [
        {"command": "start", "description": "Start"},
        {"command": "help", "description": "Help"},
    ]
    status, _ = await call(http, server, "setMyCommands", {"commands": commands})
    assert status == 200
    status, _ = await call(
        http,
        server,
        "setMyCommands",
        {"commands": commands[:1], "scope": {"type": "all_private_chats"}, "language_code": "uk"},
    )
    assert status == 200
    assert server.commands == {
        ("default", None): commands,
        ("all_private_chats", "uk"): commands[:1],
    }
    _, body = await call(
        http,
        server,
        "getMyCommands",
        {"scope": {"type": "all_private_chats"}, "language_code": "uk"},
    )
    assert body["result"] == commands[:1]
    await call(http, server, "deleteMyCommands")
    assert list(server.commands) == [("all_private_chats", "uk")]


@pytest.mark.parametrize(
    ("commands", "description"),
    [
        ([{"command": "Start", "description": "x"}], "Bad Request: BOT_COMMAND_INVALID"),
        ([{"command": "a" * 33, "description": "x"}], "Bad Request: BOT_COMMAND_INVALID"),
        ([{"command": "go-now", "description": "x"}], "Bad Request: BOT_COMMAND_INVALID"),
        ([{"command": "go", "description": ""}], "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID"),
        (
            [{"command": "go", "description": "d" * 257}],
            "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID",
        ),
        (
            [{"command": f"c{n}", "description": "x"} for n in range(101)],
            "Bad Request: BOT_COMMANDS_TOO_MUCH",
        ),
    ],
)
async def test_set_my_commands_validation(
    server: FakeTelegramServer, http: ClientSession, commands: list[JSONDict], description: str
) -> None:
    status, body = await call(http, server, "setMyCommands", {"commands": commands})
    assert (status, body["description"]) == (400, description)
    assert server.commands == {}


# ---- injected failures and rate limits -----------------------------------------------------


async def test_fail_next_injects_errors(server: FakeTelegramServer, http: ClientSession) -> None:
    user = server.user(80)
    params = {"chat_id": user.chat_id, "text": "x"}
    server.fail_next("sendMessage", retry_after=7, times=2)
    server.fail_next("sendMessage", status=403, description="Forbidden: user is deactivated")
    for _ in range(2):
        status, body = await call(http, server, "sendMessage", params)
        assert status == 429
        assert body == {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 7",
            "parameters": {"retry_after": 7},
        }
    status, body = await call(http, server, "sendMessage", params)
    assert (status, body["description"]) == (403, "Forbidden: user is deactivated")
    status, _ = await call(http, server, "sendMessage", params)
    assert status == 200
    assert server.too_many_requests == 2
    assert [request.status for request in server.requests] == [429, 429, 403, 200]


async def test_per_chat_and_global_rate_limits(http: ClientSession) -> None:
    async with FakeTelegramServer(per_chat_rate_per_second=1.0) as server:
        user = server.user(90)
        statuses = []
        for _ in range(4):
            status, body = await call(
                http, server, "sendMessage", {"chat_id": user.chat_id, "text": "x"}
            )
            statuses.append(status)
        assert statuses == [200, 200, 200, 429]  # burst of 3
        assert body["parameters"] == {"retry_after": 1}
        assert body["description"] == "Too Many Requests: retry after 1"
        assert server.too_many_requests == 1

    async with FakeTelegramServer(global_rate_per_second=2.0) as server:
        users = [server.user(100 + n) for n in range(3)]
        statuses = []
        for user in users:
            status, body = await call(
                http, server, "sendMessage", {"chat_id": user.chat_id, "text": "x"}
            )
            statuses.append(status)
        assert statuses == [200, 200, 429]  # burst of one second's worth
        assert body["parameters"]["retry_after"] == 1
        await asyncio.sleep(0.55)
        status, _ = await call(
            http, server, "sendMessage", {"chat_id": users[2].chat_id, "text": "x"}
        )
        assert status == 200


# ---- wait_for ------------------------------------------------------------------------------


async def test_wait_for_returns_matches_and_explains_timeouts(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    user = server.user(110)

    async def send_later() -> None:
        await asyncio.sleep(0.05)
        for text in ("one", "two", "three"):
            await call(http, server, "sendMessage", {"chat_id": user.chat_id, "text": text})

    sender = asyncio.create_task(send_later())
    found = await server.wait_for(lambda m: m.chat_id == user.chat_id, count=2, timeout=5)
    await sender
    assert [message.text for message in found] == ["one", "two"]
    assert [m.text for m in await server.wait_for(lambda m: True, start=2)] == ["three"]

    def never(message: SentMessage) -> bool:
        return message.text == "four"

    with pytest.raises(AssertionError, match=r"(?s)0 of 1 matching.*'three'"):
        await server.wait_for(never, timeout=0.2)


# ---- files: getFile and downloads ----------------------------------------------------------


async def test_get_file_and_download_what_users_sent(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    user = server.user(120)
    jpeg = b"\xff\xd8\xff\xe0 a real photo " + bytes(range(256)) * 40
    user.send_photo(caption="look", data=jpeg)
    photo = server.pending_updates[-1]["message"]["photo"]
    assert [size["width"] for size in photo] == [90, 320, 800]
    assert photo[-1]["file_size"] == len(jpeg)
    assert user.last_file_id == photo[-1]["file_id"]
    for size in photo:  # every size of the photo is a retrievable file
        status, body = await call(http, server, "getFile", {"file_id": size["file_id"]})
        assert status == 200, body
        file = body["result"]
        assert set(file) == {"file_id", "file_unique_id", "file_size", "file_path"}
        assert (file["file_id"], file["file_unique_id"], file["file_size"]) == (
            size["file_id"],
            size["file_unique_id"],
            size["file_size"],
        )
        assert file["file_path"].startswith("photos/file_")
        assert file["file_path"].endswith(".jpg")
        status, content = await download(http, server, file["file_path"])
        assert status == 200
        assert len(content) == size["file_size"] <= len(jpeg)
        assert content == server.file_content(size["file_id"])
    assert server.file_content(photo[-1]["file_id"]) == jpeg

    _, again = await call(http, server, "getFile", {"file_id": photo[-1]["file_id"]})
    assert again["result"]["file_path"] == file["file_path"]  # stable per file

    user.send_document(data=b"%PDF-1.7 report", file_name="report.pdf")
    document = server.pending_updates[-1]["message"]["document"]
    assert (document["file_name"], document["mime_type"], document["file_size"]) == (
        "report.pdf",
        "application/pdf",
        15,
    )
    _, body = await call(http, server, "getFile", {"file_id": document["file_id"]})
    assert body["result"]["file_path"].startswith("documents/file_")
    assert body["result"]["file_path"].endswith(".pdf")
    status, content = await download(http, server, body["result"]["file_path"])
    assert (status, content) == (200, b"%PDF-1.7 report")

    user.send_document(data=b"a,b\n1,2\n", file_name="table.csv", mime_type="text/csv")
    document = server.pending_updates[-1]["message"]["document"]
    assert document["mime_type"] == "text/csv"
    _, body = await call(http, server, "getFile", {"file_id": document["file_id"]})
    assert body["result"]["file_path"].endswith(".csv")
    assert (await download(http, server, body["result"]["file_path"]))[1] == b"a,b\n1,2\n"

    user.send_voice(data=b"OggS voice")
    voice = server.pending_updates[-1]["message"]["voice"]
    assert voice["file_size"] == len(b"OggS voice")
    _, body = await call(http, server, "getFile", {"file_id": voice["file_id"]})
    assert body["result"]["file_path"].startswith("voice/file_")
    assert (await download(http, server, body["result"]["file_path"]))[1] == b"OggS voice"
    assert len(server.downloads) == 6


@pytest.mark.parametrize(
    ("send", "kind", "directory", "magic"),
    [
        (lambda user: user.send_photo(), "photo", "photos/", b"\xff\xd8\xff"),
        (lambda user: user.send_document(), "document", "documents/", b"%PDF-"),
        (lambda user: user.send_voice(), "voice", "voice/", b"OggS"),
        (lambda user: user.send_sticker(), "sticker", "stickers/", b"RIFF"),
    ],
)
async def test_media_without_data_is_downloadable_placeholder(
    server: FakeTelegramServer,
    http: ClientSession,
    send: Callable[[SimulatedUser], int],
    kind: str,
    directory: str,
    magic: bytes,
) -> None:
    user = server.user(121)
    send(user)
    media = server.pending_updates[-1]["message"][kind]
    files = media if isinstance(media, list) else [media]
    for media_file in files:
        status, body = await call(http, server, "getFile", {"file_id": media_file["file_id"]})
        assert status == 200, body
        assert body["result"]["file_size"] == media_file["file_size"]  # as advertised
        assert body["result"]["file_path"].startswith(directory)
        status, content = await download(http, server, body["result"]["file_path"])
        assert status == 200
        assert len(content) == media_file["file_size"]
        assert content.startswith(magic)
    assert user.last_file_id == files[-1]["file_id"]


async def test_get_file_errors(server: FakeTelegramServer, http: ClientSession) -> None:
    user = server.user(122)
    for params in ({"file_id": "AgADnot-a-file"}, {}, {"file_id": ""}):
        status, body = await call(http, server, "getFile", params)
        assert (status, body["description"]) == (400, "Bad Request: invalid file_id")

    user.send_document(data=bytes(MAX_DOWNLOAD_FILE_SIZE + 1), file_name="big.bin")
    too_big = server.pending_updates[-1]["message"]["document"]
    assert too_big["file_size"] == 20 * 1024 * 1024 + 1
    status, body = await call(http, server, "getFile", {"file_id": too_big["file_id"]})
    assert (status, body["description"]) == (400, "Bad Request: file is too big")

    user.send_document(data=bytes(MAX_DOWNLOAD_FILE_SIZE), file_name="limit")
    at_limit = server.pending_updates[-1]["message"]["document"]
    status, body = await call(http, server, "getFile", {"file_id": at_limit["file_id"]})
    assert status == 200
    assert body["result"]["file_path"].startswith("documents/file_")
    assert "." not in body["result"]["file_path"]  # no extension in the file name


async def test_file_download_route_errors(server: FakeTelegramServer, http: ClientSession) -> None:
    user = server.user(123)
    user.send_voice(data=b"voice bytes")
    file_id = server.pending_updates[-1]["message"]["voice"]["file_id"]
    status, _ = await download(http, server, "voice/file_0.oga")  # getFile not called yet
    assert status == 404
    _, body = await call(http, server, "getFile", {"file_id": file_id})
    file_path = body["result"]["file_path"]

    url = f"{server.base_url}/file/bot123456:WRONG/{file_path}"
    async with http.get(url) as response:
        assert response.status == 401
        assert await response.json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }
    async with http.get(f"{server.base_url}/file/bot{server.token}/voice/nope.oga") as response:
        assert response.status == 404
        assert (await response.json())["error_code"] == 404
    assert await download(http, server, file_path) == (200, b"voice bytes")
    assert server.downloads == [file_path]


# ---- deleting users' messages, the 48-hour window, deleteMessages --------------------------


async def test_delete_user_messages_and_the_48_hour_window(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    user = server.user(130)
    user.send_text("/start")
    user.send_text("/help")
    user.send_photo(data=b"photo")
    _, body = await call(
        http,
        server,
        "sendMessage",
        {"chat_id": user.chat_id, "text": "Pick", "reply_markup": keyboard(("A", "a"))},
    )
    bot_message_id = body["result"]["message_id"]
    start, help_, photo = user.user_message_ids()
    assert (start, help_, photo, bot_message_id) == (1, 2, 3, 4)

    async def delete(message_id: int) -> tuple[int, JSONDict]:
        return await call(
            http, server, "deleteMessage", {"chat_id": user.chat_id, "message_id": message_id}
        )

    status, body = await delete(start)  # bots may delete incoming messages in private chats
    assert (status, body["result"]) == (200, True)
    assert server.deleted == [(user.chat_id, start)]
    assert server.deleted_ids == {(user.chat_id, start)}
    assert server.is_deleted(user.chat_id, start)
    assert not server.is_deleted(user.chat_id, help_)
    status, body = await delete(start)
    assert (status, body["description"]) == (400, "Bad Request: message to delete not found")

    server.age_messages(user.chat_id, DELETE_WINDOW_SECONDS - 3600)  # 47 hours: still fine
    status, _ = await delete(help_)
    assert status == 200
    server.age_messages(user.chat_id, 3600)  # now 48 hours old, the bot's message too
    for message_id in (photo, bot_message_id):
        status, body = await delete(message_id)
        assert (status, body["description"]) == (
            400,
            "Bad Request: message can't be deleted for everyone",
        )
    assert not user.messages()[0].deleted
    assert server.deleted == [(user.chat_id, start), (user.chat_id, help_)]

    # The aged dates are what the bot sees from now on, in callback queries and edits too.
    user.press("a")
    query_message = server.pending_updates[-1]["callback_query"]["message"]
    assert query_message["date"] <= time.time() - DELETE_WINDOW_SECONDS
    user.edit_last_message("a caption")
    edited = server.pending_updates[-1]["edited_message"]
    assert (edited["message_id"], edited["caption"]) == (photo, "a caption")
    assert edited["date"] <= time.time() - DELETE_WINDOW_SECONDS
    assert edited["edit_date"] >= time.time() - 60
    status, _ = await delete(photo)
    assert status == 400  # the edit did not make it new

    user.send_text("fresh")  # sent after the aging: deletable
    [*_, fresh] = user.user_message_ids()
    status, _ = await delete(fresh)
    assert status == 200
    assert server.is_deleted(user.chat_id, fresh)
    assert user.user_message_ids() == [start, help_, photo, fresh]

    other = server.user(131)
    other.send_from_group("hello group")
    assert other.user_message_ids() == []  # only messages in the private chat are listed
    with pytest.raises(ValueError, match="must not be negative"):
        server.age_messages(user.chat_id, -1)


async def test_delete_messages_skips_what_cannot_be_deleted(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    user = server.user(132)
    user.send_text("old one")
    server.age_messages(user.chat_id, DELETE_WINDOW_SECONDS)
    user.send_text("one")
    user.send_text("two")
    _, body = await call(http, server, "sendMessage", {"chat_id": user.chat_id, "text": "bot"})
    bot_message_id = body["result"]["message_id"]
    old, one, two = user.user_message_ids()
    await call(http, server, "deleteMessage", {"chat_id": user.chat_id, "message_id": two})

    status, body = await call(
        http,
        server,
        "deleteMessages",
        {"chat_id": user.chat_id, "message_ids": [old, one, two, bot_message_id, 99, one]},
    )
    assert (status, body) == (200, {"ok": True, "result": True})
    assert server.deleted == [
        (user.chat_id, two),
        (user.chat_id, one),
        (user.chat_id, bot_message_id),
    ]
    assert not server.is_deleted(user.chat_id, old)
    assert user.last_message().deleted

    # Nothing deletable at all is still a success.
    status, body = await call(
        http, server, "deleteMessages", {"chat_id": user.chat_id, "message_ids": [old, 99]}
    )
    assert (status, body["result"]) == (200, True)
    # JSON bodies and string identifiers work too.
    user.send_text("three")
    [*_, three] = user.user_message_ids()
    url = f"{server.base_url}/bot{server.token}/deleteMessages"
    async with http.post(url, json={"chat_id": user.chat_id, "message_ids": [str(three)]}) as r:
        assert r.status == 200
    assert server.is_deleted(user.chat_id, three)


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"chat_id": 140}, "Bad Request: message identifiers are not specified"),
        ({"chat_id": 140, "message_ids": []}, "Bad Request: message identifiers are not specified"),
        (
            {"chat_id": 140, "message_ids": "1,2"},
            "Bad Request: can't parse message_ids JSON object",
        ),
        (
            {"chat_id": 140, "message_ids": 5},
            "Bad Request: expected an Array of message identifiers",
        ),
        (
            {"chat_id": 140, "message_ids": list(range(1, 102))},
            "Bad Request: too many message identifiers specified",
        ),
        (
            {"chat_id": 140, "message_ids": [None]},
            "Bad Request: message identifier must be a Number",
        ),
        (
            {"chat_id": 140, "message_ids": ["x"]},
            "Bad Request: can't parse message identifier as a Number",
        ),
        (
            {"chat_id": 140, "message_ids": [1, 0]},
            "Bad Request: invalid message identifier specified",
        ),
        ({"message_ids": [1]}, "Bad Request: chat_id is empty"),
        ({"chat_id": 999, "message_ids": [1]}, "Bad Request: chat not found"),
    ],
)
async def test_delete_messages_validation(
    server: FakeTelegramServer, http: ClientSession, params: JSONDict, description: str
) -> None:
    server.user(140).send_text("keep me")
    status, body = await call(http, server, "deleteMessages", params)
    assert (status, body["description"]) == (400, description)
    assert server.deleted == []


async def test_delete_messages_accepts_exactly_100(
    server: FakeTelegramServer, http: ClientSession
) -> None:
    user = server.user(141)
    for n in range(100):
        user.send_text(f"m{n}")
    status, _ = await call(
        http,
        server,
        "deleteMessages",
        {"chat_id": user.chat_id, "message_ids": user.user_message_ids()},
    )
    assert status == 200
    assert len(server.deleted_ids) == 100


# ---- protect_content -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "value", "expected"),
    [
        ("form", "true", True),
        ("form", "false", False),
        ("json", True, True),
        ("json", 1, True),
        ("json", False, False),
        ("json", "true", True),
    ],
)
async def test_protect_content_is_recorded_as_a_bool(
    server: FakeTelegramServer, http: ClientSession, encoding: str, value: Any, expected: bool
) -> None:
    user = server.user(150)
    params = {"chat_id": user.chat_id, "text": "secret", "protect_content": value}
    url = f"{server.base_url}/bot{server.token}/sendMessage"
    if encoding == "json":
        async with http.post(url, json=params) as response:
            body = await response.json()
    else:
        async with http.post(url, data=as_form(params)) as response:
            body = await response.json()
    assert body["ok"] is True
    [sent] = server.sent
    assert sent.protect_content is expected
    assert sent.params["protect_content"] is expected
    assert body["result"].get("has_protected_content", False) is expected


# ---- the real aiogram runtime --------------------------------------------------------------


async def test_aiogram_polling_echo_and_buttons(server: FakeTelegramServer) -> None:
    bot = Bot(
        server.token, session=AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))
    )
    dp = Dispatcher()

    @dp.message(F.text == "/menu")
    async def menu(message: Message) -> None:
        markup = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="English", callback_data="lang:en")]]
        )
        await message.answer("Choose a language", reply_markup=markup)

    @dp.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    @dp.callback_query(F.data == "lang:en")
    async def chosen(query: CallbackQuery) -> None:
        await query.answer("Saved")
        assert isinstance(query.message, Message)
        await query.message.edit_text("Language: English")

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=5))
    try:
        user = server.user(1001)
        user.send_text("hello")
        [reply] = await server.wait_for(lambda m: m.chat_id == user.chat_id, timeout=10)
        assert reply.text == "echo: hello"
        assert reply.method == "sendMessage"

        user.send_command("menu")
        await server.wait_for(lambda m: m.text == "Choose a language", timeout=10)
        user.press_button("English")
        [edited] = await server.wait_for(lambda m: m.method == "editMessageText", timeout=10)
        assert edited.text == "Language: English"
        assert edited.message_id == user.messages()[1].message_id
        assert server.callback_answers[0]["text"] == "Saved"
    finally:
        await dp.stop_polling()
        await polling
    assert server.requests[0].method == "getMe"
    assert any(request.method == "getUpdates" for request in server.requests)


async def test_aiogram_maps_errors_to_its_exceptions(server: FakeTelegramServer) -> None:
    bot = server.make_bot()
    try:
        user = server.user(1002)
        sent = await bot.send_message(user.chat_id, "hi", protect_content=True)
        assert sent.message_id == 1
        assert server.sent[-1].protect_content is True

        server.fail_next("sendMessage", retry_after=3)
        with pytest.raises(TelegramRetryAfter) as retry:
            await bot.send_message(user.chat_id, "again")
        assert retry.value.retry_after == 3

        with pytest.raises(TelegramBadRequest, match="message is too long"):
            await bot.send_message(user.chat_id, "x" * 5000)
        with pytest.raises(TelegramBadRequest, match="can't parse entities"):
            await bot.send_message(user.chat_id, "<unknown>", parse_mode="HTML")
        markup = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Go", callback_data="d" * 65)]]
        )
        with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
            await bot.send_message(user.chat_id, "buttons", reply_markup=markup)
        with pytest.raises(TelegramBadRequest, match="chat not found"):
            await bot.send_message(424242, "nobody")
        with pytest.raises(TelegramBadRequest, match="message is not modified"):
            await bot.edit_message_text("hi", chat_id=user.chat_id, message_id=sent.message_id)

        server.block(user.chat_id)
        with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
            await bot.send_message(user.chat_id, "are you there?")

        await bot.set_my_commands(
            [BotCommand(command="start", description="Start")],
            scope=BotCommandScopeAllPrivateChats(),
            language_code="uk",
        )
        assert server.commands[("all_private_chats", "uk")] == [
            {"command": "start", "description": "Start"}
        ]
        got = await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats(), language_code="uk")
        assert [command.command for command in got] == ["start"]
        assert server.too_many_requests == 1
    finally:
        await bot.session.close()


async def test_aiogram_webhook_roundtrip(server: FakeTelegramServer) -> None:
    bot = server.make_bot()
    dp = Dispatcher()

    @dp.message()
    async def reply_in_webhook_response(message: Message) -> SendMessage:
        return message.answer(f"hook: {message.text}")

    app = web.Application()
    SimpleRequestHandler(
        dispatcher=dp, bot=bot, handle_in_background=False, secret_token="s3cret"
    ).register(app, path="/webhook")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        assert await bot.set_webhook(f"http://127.0.0.1:{port}/webhook", secret_token="s3cret")
        assert server.webhook is not None
        assert server.webhook["secret_token"] == "s3cret"
        info = await bot.get_webhook_info()
        assert info.url.endswith("/webhook")

        user = server.user(1003)
        user.send_text("via webhook")
        update = server.pending_updates[-1]
        assert await server.deliver_webhook(update, secret="wrong") == 401
        assert server.sent == []
        assert await server.deliver_webhook(update, secret="s3cret") == 200
        assert server.pending_updates == []
        [reply] = await server.wait_for(lambda m: m.chat_id == user.chat_id, timeout=5)
        assert reply.text == "hook: via webhook"

        assert await bot.delete_webhook(drop_pending_updates=True)
        assert server.webhook is None
    finally:
        await runner.cleanup()
        await bot.session.close()


async def test_aiogram_downloads_files_and_deletes_messages(server: FakeTelegramServer) -> None:
    bot = server.make_bot()
    try:
        user = server.user(1004)
        data = b"%PDF-1.7\n" + bytes(range(256)) * 300  # more than one 64 KiB chunk
        user.send_document(data=data, file_name="payslip.pdf")
        update = Update.model_validate(server.pending_updates[-1])
        assert update.message is not None
        assert update.message.document is not None
        file_id = update.message.document.file_id

        file = await bot.get_file(file_id)
        assert file.file_id == file_id
        assert file.file_size == len(data)
        assert file.file_path is not None
        assert file.file_path.endswith(".pdf")
        destination = io.BytesIO()
        result = await bot.download(file_id, destination=destination)
        assert result is destination
        assert destination.getvalue() == data
        assert destination.tell() == 0  # aiogram seeks back to the start

        user.send_photo(data=b"jpeg bytes")
        photo_update = Update.model_validate(server.pending_updates[-1])
        assert photo_update.message is not None
        assert photo_update.message.photo is not None
        downloaded = await bot.download(photo_update.message.photo[-1])  # a Downloadable
        assert downloaded is not None
        assert downloaded.read() == b"jpeg bytes"

        with pytest.raises(TelegramBadRequest, match="invalid file_id"):
            await bot.get_file("AgADunknown")

        user.send_text("old")
        document_id, photo_id, old_id = user.user_message_ids()
        assert await bot.delete_message(user.chat_id, document_id) is True
        assert server.is_deleted(user.chat_id, document_id)
        server.age_messages(user.chat_id, DELETE_WINDOW_SECONDS + 60)
        with pytest.raises(TelegramBadRequest, match="message can't be deleted for everyone"):
            await bot.delete_message(user.chat_id, photo_id)
        with pytest.raises(TelegramBadRequest, match="message to delete not found"):
            await bot.delete_message(user.chat_id, document_id)

        user.send_text("recent")
        recent_id = user.user_message_ids()[-1]
        assert await bot.delete_messages(user.chat_id, [old_id, photo_id, recent_id]) is True
        assert server.deleted == [(user.chat_id, document_id), (user.chat_id, recent_id)]
        with pytest.raises(TelegramBadRequest, match="too many message identifiers"):
            await bot.delete_messages(user.chat_id, list(range(1, 102)))
    finally:
        await bot.session.close()


async def test_aiogram_handler_downloads_and_deletes_while_polling(
    server: FakeTelegramServer,
) -> None:
    bot = server.make_bot()
    dp = Dispatcher()

    @dp.message(F.voice)
    async def on_voice(message: Message, bot: Bot) -> None:
        assert message.voice is not None
        buffer = io.BytesIO()
        await bot.download(message.voice, destination=buffer)
        content = buffer.getvalue()
        await message.delete()  # a bot may delete incoming messages in private chats
        await message.answer(f"got {len(content)} bytes: {content!r}")

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=5))
    try:
        user = server.user(1005)
        user.send_voice(data=b"OggS hello")
        [reply] = await server.wait_for(lambda m: m.chat_id == user.chat_id, timeout=10)
        assert reply.text == "got 10 bytes: b'OggS hello'"
        assert server.deleted == [(user.chat_id, user.user_message_ids()[0])]
        assert len(server.downloads) == 1
    finally:
        await dp.stop_polling()
        await polling


# ---- the real python-telegram-bot runtime --------------------------------------------------


async def test_ptb_speaks_the_wire_format_and_maps_errors_to_its_exceptions(
    server: FakeTelegramServer,
) -> None:
    """python-telegram-bot sends form fields with JSON-encoded values, like aiogram: the same
    calls, answered the same, raise PTB's exceptions."""
    import importlib
    from datetime import timedelta

    from telegram import Bot as PtbBot
    from telegram import BotCommand as PtbCommand
    from telegram import BotCommandScopeAllPrivateChats as PtbPrivateChats
    from telegram import InlineKeyboardButton as PtbButton
    from telegram import InlineKeyboardMarkup as PtbMarkup
    from telegram import MessageEntity as PtbEntity
    from telegram import Update as PtbUpdate
    from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter
    from telegram.request import HTTPXRequest

    importlib.import_module("bot.channels.telegram_ptb")  # opts into PTB's timedelta periods

    requests = [HTTPXRequest(), HTTPXRequest()]
    urls = {"base_url": f"{server.base_url}/bot", "base_file_url": f"{server.base_url}/file/bot"}
    bot = PtbBot(server.token, request=requests[0], **urls)
    stranger = PtbBot("654321:" + "W" * 35, request=requests[1], **urls)
    try:
        user = server.user(1006)
        markup = PtbMarkup([[PtbButton("Yes", callback_data="answer:yes")]])
        sent = await bot.send_message(
            user.chat_id, "Bold start", protect_content=True, reply_markup=markup,
            entities=[PtbEntity("bold", 0, 4)],
        )  # fmt: skip
        record = server.sent[-1]
        assert (sent.message_id, record.protect_content) == (1, True)
        assert record.buttons() == [{"text": "Yes", "callback_data": "answer:yes"}]
        assert record.params["entities"] == [{"type": "bold", "offset": 0, "length": 4}]

        server.fail_next("sendMessage", retry_after=3)
        with pytest.raises(RetryAfter) as retry:
            await bot.send_message(user.chat_id, "again")
        assert retry.value.retry_after == timedelta(seconds=3)
        with pytest.raises(BadRequest, match="too long"):
            await bot.send_message(user.chat_id, "x" * 5000)
        with pytest.raises(BadRequest, match="not modified"):
            await bot.edit_message_text(
                "Bold start", chat_id=user.chat_id, message_id=1, reply_markup=markup,
                entities=[PtbEntity("bold", 0, 4)],
            )  # fmt: skip
        with pytest.raises(InvalidToken):
            await stranger.get_me()

        await bot.set_my_commands(
            [PtbCommand("start", "Start")], scope=PtbPrivateChats(), language_code="uk"
        )
        assert server.commands[("all_private_chats", "uk")] == [
            {"command": "start", "description": "Start"}
        ]

        user.send_document(data=b"%PDF-1.7\n" + bytes(range(256)) * 300, file_name="pay.pdf")
        update = PtbUpdate.de_json(server.pending_updates[-1], bot)
        assert update.message is not None
        assert update.message.document is not None
        file = await bot.get_file(update.message.document.file_id)
        assert file.file_path is not None
        assert file.file_path.startswith(f"{server.base_url}/file/bot")
        content = await file.download_as_bytearray()
        assert bytes(content) == server.file_content(update.message.document.file_id)

        [document_id] = user.user_message_ids()
        assert await bot.delete_messages(user.chat_id, [document_id, sent.message_id])
        assert set(server.deleted) == {(user.chat_id, sent.message_id), (user.chat_id, document_id)}

        server.block(user.chat_id)
        with pytest.raises(Forbidden, match="blocked by the user"):
            await bot.send_message(user.chat_id, "are you there?")
    finally:
        for request in requests:
            await request.shutdown()
