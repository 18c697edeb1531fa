"""The WhatsApp 24-hour window store, in memory and on the real Redis, on a clock the test moves:
open for 24 hours less the margin after the worker's message, closed when unknown, the neutral
template due once per closed window, and nothing in Redis that names the worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from storage.redis_keys import RedisKeyNames
from storage.whatsapp_window import (
    OPENER_SECONDS,
    MemoryWhatsAppWindow,
    RedisWhatsAppWindow,
    WhatsAppWindow,
)
from tests.conftest import REDIS_URL
from tests.conftest import _drop_redis_keys as drop_redis_keys

PHONE = "66811111111"
OTHER = "TH.1234567"
HOUR = 3600.0
START = 1_800_000_000.0


@dataclass
class Clock:
    now: float = START

    def __call__(self) -> float:
        return self.now


@dataclass
class Stores:
    clock: Clock
    redis: Redis | None
    prefix: str

    def window(self, margin_minutes: int = 30) -> WhatsAppWindow:
        names = RedisKeyNames(b"s" * 32, self.prefix)
        if self.redis is None:
            return MemoryWhatsAppWindow(names, margin_minutes, clock=self.clock)
        return RedisWhatsAppWindow(self.redis, names, margin_minutes, clock=self.clock)


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    if request.param == "memory":
        yield Stores(Clock(), None, "memory")
        return
    if problem := request.getfixturevalue("services_problem"):
        pytest.skip(problem)
    prefix = f"wvbtest-{uuid.uuid4().hex[:10]}"
    client = Redis.from_url(REDIS_URL)
    try:
        yield Stores(Clock(), client, prefix)
    finally:
        await client.aclose()
        await drop_redis_keys(prefix)


async def test_unknown_is_closed_and_a_message_opens_it_for_the_day_less_the_margin(
    stores: Stores,
) -> None:
    window, clock = stores.window(), stores.clock
    assert not await window.is_open(PHONE)

    assert await window.wrote(PHONE, clock.now) is True, "it was closed: release what waits"
    assert await window.is_open(PHONE)
    assert not await window.is_open(OTHER), "one worker's message opens only their window"
    assert await window.is_open(PHONE, now=clock.now + 23.5 * HOUR - 1)
    assert not await window.is_open(PHONE, now=clock.now + 23.5 * HOUR)

    clock.now += 2 * HOUR
    assert await window.wrote(PHONE, clock.now) is False, "already open: nothing waits"
    assert await window.is_open(PHONE, now=clock.now + 23 * HOUR)


async def test_the_margin_is_configurable(stores: Stores) -> None:
    window, clock = stores.window(margin_minutes=0), stores.clock
    await window.wrote(PHONE, clock.now)
    assert await window.is_open(PHONE, now=clock.now + 24 * HOUR - 1)
    assert not await window.is_open(PHONE, now=clock.now + 24 * HOUR)


async def test_the_message_time_counts_clamped_to_now(stores: Stores) -> None:
    window, clock = stores.window(), stores.clock
    # Meta retries a webhook for days: a two-day-old message opens nothing.
    assert await window.wrote(PHONE, clock.now - 48 * HOUR) is False
    assert not await window.is_open(PHONE)
    # A message from an hour ago opens what is left of its window.
    assert await window.wrote(PHONE, clock.now - HOUR) is True
    assert not await window.is_open(PHONE, now=clock.now + 22.5 * HOUR)
    # A clock running ahead cannot stretch the window past 24 hours from now.
    assert await window.wrote(OTHER, clock.now + 10 * HOUR) is True
    assert not await window.is_open(OTHER, now=clock.now + 23.5 * HOUR)
    # An older message arriving after a newer one does not shorten the window.
    await window.wrote(PHONE, clock.now)
    await window.wrote(PHONE, clock.now - 3 * HOUR)
    assert await window.is_open(PHONE, now=clock.now + 23 * HOUR)


async def test_the_neutral_template_is_due_once_per_closed_window(stores: Stores) -> None:
    window, clock = stores.window(), stores.clock
    assert await window.opener_due(PHONE) is True
    assert await window.opener_due(PHONE) is False, "one template, however many messages wait"
    assert await window.opener_due(OTHER) is True

    assert await window.wrote(PHONE, clock.now) is True
    clock.now += 24 * HOUR  # the window closes again: a new template may ask
    assert await window.opener_due(PHONE) is True
    assert await window.opener_due(PHONE) is False

    await window.opener_failed(PHONE)  # it did not go: the next held message tries again
    assert await window.opener_due(PHONE) is True


async def test_a_template_sent_since_the_worker_wrote_makes_their_next_message_release(
    stores: Stores,
) -> None:
    """A relay that found the window closed just before the worker wrote holds its message and
    sends the template after they wrote: their answer to the template must release it, though
    the window is open."""
    window, clock = stores.window(), stores.clock
    assert await window.wrote(PHONE, clock.now) is True
    assert await window.opener_due(PHONE) is True
    clock.now += 60
    assert await window.wrote(PHONE, clock.now) is True
    assert await window.wrote(PHONE, clock.now) is False


async def test_a_silent_worker_gets_another_template_a_week_later(stores: Stores) -> None:
    window, clock = stores.window(), stores.clock
    assert await window.opener_due(PHONE) is True
    if stores.redis is None:  # Redis keeps its own time: its mark expires on its own clock
        clock.now += OPENER_SECONDS
        assert await window.opener_due(PHONE) is True
    else:
        names = RedisKeyNames(b"s" * 32, stores.prefix)
        ttl = await stores.redis.ttl(names.key("wa_opener", PHONE))
        assert OPENER_SECONDS - 5 <= ttl <= OPENER_SECONDS


async def test_closed_and_forget(stores: Stores) -> None:
    window, clock = stores.window(), stores.clock
    await window.wrote(PHONE, clock.now)
    await window.closed(PHONE)  # Meta said 131047 though we thought it open
    assert not await window.is_open(PHONE)
    assert await window.wrote(PHONE, clock.now) is True, "their next message releases"

    await window.opener_due(PHONE)
    await window.forget(PHONE)
    assert not await window.is_open(PHONE)
    assert await window.opener_due(PHONE) is True


async def test_lost_state_is_a_closed_window(stores: Stores) -> None:
    window, clock = stores.window(), stores.clock
    await window.wrote(PHONE, clock.now)
    if stores.redis is not None:
        names = RedisKeyNames(b"s" * 32, stores.prefix)
        await stores.redis.delete(names.key("wa_window", PHONE))
        assert not await window.is_open(PHONE)
        await stores.redis.set(names.key("wa_window", PHONE), b"garbage")
        assert not await window.is_open(PHONE), "what cannot be read is unknown: closed"
    else:
        assert not await stores.window().is_open(PHONE), "a restart forgets: closed"


async def test_redis_is_shared_by_processes_and_names_nobody(redis_prefix: str) -> None:
    clock = Clock()
    names = RedisKeyNames(b"s" * 32, redis_prefix)
    clients = [Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)]
    try:
        first, second = (RedisWhatsAppWindow(c, names, 30, clock=clock) for c in clients)
        assert await first.wrote(PHONE, clock.now) is True
        assert await second.is_open(PHONE), "another process sees the window"
        assert await second.wrote(PHONE, clock.now) is False
        assert await first.opener_due(OTHER) is True
        assert await second.opener_due(OTHER) is False, "one template across processes"

        keys = [key async for key in clients[0].scan_iter(match=f"{redis_prefix}:*")]
        assert len(keys) == 2
        for key in keys:
            value = await clients[0].get(key)
            for secret in (PHONE, OTHER, "1234567", "6681111"):
                assert secret.encode() not in key
                assert value is not None
                assert secret.encode() not in value
            ttl = await clients[0].ttl(key)
            assert 0 < ttl <= OPENER_SECONDS, "every key expires"
        window_ttl = await clients[0].ttl(names.key("wa_window", PHONE))
        assert 23.5 * HOUR - 5 <= window_ttl <= 23.5 * HOUR, "the window key ends with the window"
    finally:
        for client in clients:
            await client.aclose()


async def test_the_window_is_one_persons_whichever_of_their_ids_an_address_shows(
    stores: Stores,
) -> None:
    names = RedisKeyNames(b"s" * 32, stores.prefix)

    def ids(address: str) -> list[str]:
        return address.split("|")

    window: WhatsAppWindow = (
        MemoryWhatsAppWindow(names, clock=stores.clock, ids=ids)
        if stores.redis is None
        else RedisWhatsAppWindow(stores.redis, names, clock=stores.clock, ids=ids)
    )
    both = f"{PHONE}|{OTHER}"
    assert await window.wrote(PHONE, stores.clock.now) is True
    assert await window.is_open(both), "known by the phone: open for the address with both"
    assert await window.wrote(both, stores.clock.now) is False, "already open: nothing waits"
    assert await window.is_open(OTHER), "the user id shown beside the phone is theirs too"

    await window.closed(both)
    assert not await window.is_open(PHONE)
    assert await window.opener_due(PHONE) is True
    assert await window.opener_due(both) is False, "one template for the person"
    assert await window.wrote(OTHER, stores.clock.now) is True, "the number hidden: still them"
    assert await window.is_open(OTHER)
