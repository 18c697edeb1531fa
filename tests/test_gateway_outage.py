"""The bot when storage is down (the fast half of tests/test_chaos.py): the worker is told to
try again shortly in their language, the log gets one line, a replay-safe turn (sending a report)
keeps its state until its replies went out, and with Redis down updates are still handled and
replies still paced."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot.channels.gateway import ConversationGateway
from bot.channels.telegram.shared import first_delivery
from conversations.engine import Turn
from conversations.messages import Effects, Inbound, Outbound
from conversations.state import ConversationState
from locales import translator
from storage.conversation_state import MemoryConversationStore
from storage.crypto import Keyring, Pseudonymizer
from storage.outage import OutageLog, storage_unreachable
from storage.send_rate import Lane, RedisSendRate
from tests.chaos_servers import free_port
from tests.test_conversation_core import Chat

UNAVAILABLE = "Our service is briefly unavailable. Please try again in a minute."


def gateway_of(chat: Chat) -> tuple[ConversationGateway, MemoryConversationStore]:
    store = MemoryConversationStore(Keyring((b"k" * 32,)), 3600)
    return ConversationGateway(chat.engine, store, Pseudonymizer(b"s" * 32)), store


def wrapped(error: BaseException) -> DBAPIError:
    """``error`` as SQLAlchemy raises it from the driver."""
    try:
        raise DBAPIError("SELECT 1", None, error) from error
    except DBAPIError as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "unreachable"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (RedisConnectionError("Connection refused"), True),
        (wrapped(asyncpg.CannotConnectNowError("the database system is starting up")), True),
        (wrapped(asyncpg.AdminShutdownError("terminating connection")), True),
        (IntegrityError("INSERT", None, Exception("duplicate key")), False),
        (ValueError("invalid literal"), False),
    ],
)
def test_which_errors_mean_storage_is_unreachable(error: BaseException, unreachable: bool) -> None:
    assert storage_unreachable(error) is unreachable


async def test_a_turn_failing_on_a_stopped_database_says_try_again_shortly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chat = Chat()

    async def database_down(*args: object) -> object:
        raise wrapped(ConnectionRefusedError(111, "Connect call failed"))

    chat.engine.handle = database_down  # type: ignore[method-assign]
    gateway, _ = gateway_of(chat)
    replies: list[Outbound] = []

    async def deliver(sent: Sequence[Outbound], effects: Effects) -> None:
        replies.extend(sent)

    worker = gateway.worker("telegram", 1, 1)
    await gateway.handle(worker, Inbound.command_of("report", "th"), deliver)
    assert [r.text for r in replies] == [translator("th").gettext(UNAVAILABLE)]
    assert replies[0].text != UNAVAILABLE, "translated"
    assert "Traceback" not in caplog.text
    assert [r.levelname for r in caplog.records if r.name == "bot.channels.gateway"] == ["WARNING"]


async def test_redis_down_before_the_turn_still_gets_an_answer() -> None:
    chat = Chat()
    gateway, store = gateway_of(chat)

    @asynccontextmanager
    async def lock_unreachable(pseudonym: str) -> AsyncIterator[None]:
        raise RedisConnectionError("Error 111 connecting")
        yield  # pragma: no cover

    store.lock = lock_unreachable  # type: ignore[method-assign]
    replies: list[Outbound] = []

    async def deliver(sent: Sequence[Outbound], effects: Effects) -> None:
        replies.extend(sent)

    await gateway.handle(gateway.worker("telegram", 2, 2), Inbound.text_of("hi", "es"), deliver)
    assert [r.text for r in replies] == [translator("es").gettext(UNAVAILABLE)]


async def test_a_replay_safe_turn_keeps_its_state_until_the_replies_went_out() -> None:
    chat = Chat()
    gateway, store = gateway_of(chat)
    worker = gateway.worker("telegram", 3, 3)
    before = ConversationState(step="report.review", language="en", onboarded=True)
    await store.save(worker.pseudonym, before)

    async def sent_report(*args: object) -> Turn:
        after = ConversationState(step="menu", language="en", onboarded=True)
        return Turn(after, [Outbound("receipt")], deliver_first=True)

    chat.engine.handle = sent_report  # type: ignore[method-assign]

    async def killed_while_sending(sent: Sequence[Outbound], effects: Effects) -> None:
        raise ConnectionResetError("the process died here")

    with pytest.raises(ConnectionResetError):
        await gateway.handle(worker, Inbound.choice_of("review:send"), killed_while_sending)
    kept = await store.load(worker.pseudonym)
    assert kept is not None
    assert kept.step == "report.review", "Send can be pressed again to see the receipt"

    async def delivered(sent: Sequence[Outbound], effects: Effects) -> None:
        return None

    await gateway.handle(worker, Inbound.choice_of("review:send"), delivered)
    saved = await store.load(worker.pseudonym)
    assert saved is not None
    assert saved.step == "menu"


def test_the_try_again_message_is_translated_everywhere() -> None:
    for language in ("th", "my", "km", "ne", "bn", "id", "es"):
        assert translator(language).gettext(UNAVAILABLE) != UNAVAILABLE, language


class UnreachableUpdates:
    async def first_time(self, update_id: int) -> bool:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:1")


async def test_with_redis_down_an_update_is_handled_rather_than_dropped() -> None:
    assert await first_delivery(UnreachableUpdates(), 7) is True


async def test_with_redis_down_replies_are_paced_in_process_and_broadcasts_wait() -> None:
    redis = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=None)
    rate = RedisSendRate(redis, "wvbtest-down", 30.0)
    try:
        assert await rate.take(1, Lane.CONVERSATION) == 1
        with pytest.raises(RedisConnectionError):
            await rate.take(1, Lane.BROADCAST)
    finally:
        await redis.aclose()


def test_a_relay_logs_an_outage_once_and_its_end_and_other_failures_in_full(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("tests.relay")
    outage = OutageLog(logger, "relay pass")
    for _ in range(50):  # a minute of passes with the database stopped
        outage.failed(wrapped(ConnectionRefusedError(111, "Connect call failed")))
    outage.succeeded()
    outage.succeeded()
    outage.failed(ValueError("a bug"))
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "tests.relay"]
    assert lines == [
        ("WARNING", "relay pass: storage unreachable (DBAPIError); retrying"),
        ("WARNING", "relay pass: storage reachable again"),
        ("ERROR", "relay pass failed"),
    ]
    assert caplog.records[-1].exc_info is not None, "a bug keeps its traceback"
