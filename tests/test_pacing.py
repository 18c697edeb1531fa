"""One rate per bot token: conversation replies go before broadcasts, and a 429 met by any
sender pauses every sender of the token (in this process and, through Redis, in every other)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bot.channels.telegram.runtime import build_bot
from storage.send_rate import Lane, MemorySendRate, RedisSendRate, SendRate
from tests.conftest import REDIS_URL
from tests.fake_telegram_api import FakeTelegramServer

RATE = 20.0


@pytest.fixture(params=["memory", "redis"])
async def rates(
    request: pytest.FixtureRequest, redis_prefix: str
) -> AsyncIterator[tuple[SendRate, SendRate]]:
    """Two handles on one token's rate: the same object in memory, or two Redis clients (two
    processes) on the same key."""
    if request.param == "memory":
        rate = MemorySendRate(RATE)
        yield rate, rate
        return
    clients = [Redis.from_url(REDIS_URL) for _ in range(2)]
    try:
        first, second = (RedisSendRate(c, redis_prefix, RATE, name="telegram:1") for c in clients)
        yield first, second
    finally:
        for client in clients:
            await client.aclose()


def now() -> float:
    return asyncio.get_running_loop().time()


async def test_replies_take_the_rate_before_a_running_broadcast(
    rates: tuple[SendRate, SendRate],
) -> None:
    conversation, broadcast = rates
    granted_to_broadcast: list[float] = []
    stop = asyncio.Event()

    async def broadcasting() -> None:
        while not stop.is_set():
            await broadcast.take(1, Lane.BROADCAST)
            granted_to_broadcast.append(now())

    task = asyncio.create_task(broadcasting())
    await asyncio.sleep(1.0)  # the broadcast has the whole rate
    assert len(granted_to_broadcast) >= RATE * 0.5
    replies_started = now()
    for _ in range(10):  # a worker talking: each reply wants the next token at once
        await conversation.take(1, Lane.CONVERSATION)
    replies_took = now() - replies_started
    replies_ended = now()
    stop.set()
    await asyncio.wait_for(task, 5)
    during = [at for at in granted_to_broadcast if replies_started < at < replies_ended]
    # The replies had the full rate (10 at 20/s: half a second, not the second they would need
    # if they shared it half-and-half), and the broadcast got at most a stray token meanwhile.
    assert replies_took < 0.8, replies_took
    assert len(during) <= 2, during


async def test_a_429_to_a_reply_pauses_the_broadcasts_of_the_same_token(
    rates: tuple[SendRate, SendRate], fake_telegram: FakeTelegramServer
) -> None:
    conversation, broadcast = rates
    user = fake_telegram.user(7_000_001)
    user.send_text("hi")  # the chat exists
    bot = build_bot(fake_telegram.token, fake_telegram.base_url, conversation)
    fake_telegram.fail_next("sendMessage", status=429, retry_after=2)
    try:
        sending = asyncio.create_task(bot.send_message(chat_id=user.chat_id, text="reply"))
        while fake_telegram.too_many_requests == 0:
            await asyncio.sleep(0.01)
        limited_at = now()
        await broadcast.take(1, Lane.BROADCAST)
        assert now() - limited_at >= 1.5, "the broadcast waited out the reply's 429"
        message = await asyncio.wait_for(sending, 10)
        assert message.text == "reply", "the reply itself was retried after the pause"
    finally:
        await bot.session.close()
    assert [m.text for m in user.messages()] == ["reply"]
