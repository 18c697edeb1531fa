"""Chaos: `wvb run` (a real process, over the fake Bot API) on PostgreSQL + Redis while the
database stops for a minute, Redis restarts, and the bot itself is killed (SIGKILL) while a
report is being confirmed.

What must hold: every report a worker saw confirmed (a reference on screen) is stored exactly
once; no draft becomes two cases; every action of a worker is answered, while the database is
down with a translated "try again shortly"; and the running process recovers by itself.

The servers are private ones (tests/chaos_servers.py): the shared PostgreSQL and Redis are
never stopped. The outage lasts 60 s, so this file takes a few minutes; the figures printed
(``-s``) are the ones in docs/SECURITY.md ("Faults").
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from asyncio.subprocess import Process
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from locales import translator
from tests.bot_driver import REFERENCE, data_of, onboard, report
from tests.chaos_servers import (  # noqa: F401  # noqa: F401
    PrivatePostgres,
    PrivateRedis,
    chaos_backend,
    private_postgres,
    private_redis,
)
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer, SentMessage, SimulatedUser

WVB = str(Path(sys.executable).parent / "wvb")
OUTAGE_SECONDS = 60
STAFF_CHAT_ID = 555_000_111
UNAVAILABLE = "Our service is briefly unavailable. Please try again in a minute."


def unavailable_in(language: str) -> str:
    return translator(language).gettext(UNAVAILABLE)


@dataclass
class Tally:
    """What the workers saw, for the assertions and docs/SECURITY.md."""

    attempted: set[str] = field(default_factory=set)  # one name per draft sent
    confirmed: dict[str, str] = field(default_factory=dict)  # draft -> reference seen
    answers_during_outage: int = 0
    actions_during_outage: int = 0
    unavailable_seen: int = 0


@asynccontextmanager
async def wvb_run(
    backend: Backend, server: FakeTelegramServer, runtime: str, cwd: Path
) -> AsyncIterator[BotProcess]:
    env = backend.environment(backend.settings(telegram_runtime=runtime))
    env.update(
        WVB_TELEGRAM_TOKEN=server.token,
        WVB_TELEGRAM_API_BASE=server.base_url,
        WVB_STAFF_CHAT_ID=str(STAFF_CHAT_ID),
    )
    server.user(STAFF_CHAT_ID)  # the staff chat exists (a private chat, as staff alerts want)
    upgrade = await asyncio.create_subprocess_exec(WVB, "db", "upgrade", env=env, cwd=cwd)
    assert await upgrade.wait() == 0
    bot = BotProcess(env, cwd, server)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


class BotProcess:
    """`wvb run`, its log in a file (a pipe nobody reads would fill and stall the bot)."""

    def __init__(self, env: dict[str, str], cwd: Path, server: FakeTelegramServer) -> None:
        self.env = env
        self.cwd = cwd
        self.server = server
        self.log_path = cwd / "wvb-run.log"
        self.process: Process | None = None

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                WVB, "run", env=self.env, cwd=self.cwd, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 90  # slow to start on a busy 2-core machine
        while not self.server.long_polling:
            with suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 0.05)
            assert self.process.returncode is None, self.log()
            assert time.monotonic() < deadline, "wvb run never started polling"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self.process = None

    async def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
        code, self.process = self.process.returncode, None
        assert code == 0, self.log()[-4000:]


async def answer_to(
    server: FakeTelegramServer, user: SimulatedUser, act: Callable[[], object], timeout: float = 30
) -> SentMessage:
    """Whatever the bot answers next in this worker's chat."""
    since = len(server.sent)
    act()
    [message] = await server.wait_for(
        lambda m: m.chat_id == user.chat_id, start=since, timeout=timeout
    )
    return message


def carrier(user: SimulatedUser, payload: str) -> SentMessage:
    return next(m for m in reversed(user.messages()) if payload in data_of(m))


async def send_until_confirmed(
    server: FakeTelegramServer, user: SimulatedUser, language: str, timeout: float
) -> tuple[str, int]:
    """Press Send on the review until a receipt comes (each "try again" leads to one more
    press a second later); the reference and how many presses it took."""
    review = carrier(user, "review:send")
    deadline = time.monotonic() + timeout
    presses = 0
    while True:
        presses += 1
        answer = await answer_to(server, user, lambda: user.press("review:send", review))
        if answer.protect_content:
            found = REFERENCE.search(answer.text)
            assert found is not None, answer.text
            return found.group(1), presses
        assert unavailable_in(language) in answer.text, answer.text
        assert time.monotonic() < deadline, "never recovered"
        await asyncio.sleep(1)


async def to_review(server: FakeTelegramServer, user: SimulatedUser, text: str) -> None:
    await report(server, user, details=(text,), send=False)


async def stored_cases(backend: Backend) -> list[tuple[str, str]]:
    """(reference, draft key) of every case in the database."""
    dsn = backend.database_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT reference, draft_key FROM cases ORDER BY id")
    finally:
        await connection.close()
    return [(row["reference"], row["draft_key"]) for row in rows]


async def assert_no_loss_no_duplicate(backend: Backend, tally: Tally) -> list[tuple[str, str]]:
    cases = await stored_cases(backend)
    references = [reference for reference, _ in cases]
    drafts = [draft for _, draft in cases]
    assert len(set(references)) == len(references), "a reference stored twice"
    assert len(set(drafts)) == len(drafts), "a draft stored as two cases"
    assert set(tally.confirmed.values()) <= set(references), "a confirmed report is missing"
    assert len(cases) <= len(tally.attempted), "more cases than reports sent"
    return cases


async def logged(bot: BotProcess, line: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while line not in bot.log():
        assert time.monotonic() < deadline, f"never logged: {line}"
        await asyncio.sleep(0.2)


def figures(name: str, **values: Any) -> None:
    print(f"\n[chaos] {name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


async def test_postgres_down_for_a_minute_mid_reports_nothing_lost_or_doubled(
    chaos_backend: Backend,  # noqa: F811
    private_postgres: PrivatePostgres,  # noqa: F811
    fake_telegram: FakeTelegramServer,
    tmp_path: Path,
) -> None:
    server, tally = fake_telegram, Tally()
    languages = {1: "en", 2: "th", 3: "my", 4: "es"}
    users = {n: server.user(700_000 + n, language_code=lang) for n, lang in languages.items()}
    async with wvb_run(chaos_backend, server, "aiogram", tmp_path) as bot:
        for n, lang in languages.items():
            await onboard(server, users[n], lang)
        before = await report(server, users[1], details=("before the outage",))
        assert before is not None
        tally.attempted.add("w1-before")
        tally.confirmed["w1-before"] = before.reference
        await to_review(server, users[2], "sent during the outage")
        await to_review(server, users[3], "sent during the outage too")

        private_postgres.stop()
        down_at = time.monotonic()
        # Every action during the minute gets an answer; a Send gets "try again shortly".
        actions: list[tuple[int, Callable[[SimulatedUser], object]]] = [
            (2, lambda u: u.press("review:send", carrier(u, "review:send"))),
            (3, lambda u: u.press("review:send", carrier(u, "review:send"))),
            (4, lambda u: u.send_command("report")),
            (1, lambda u: u.send_command("status")),
            (2, lambda u: u.press("review:send", carrier(u, "review:send"))),
            (4, lambda u: u.send_text("hello?")),
        ]
        tally.attempted.update({"w2", "w3"})
        slowest = 0.0
        while time.monotonic() - down_at < OUTAGE_SECONDS:
            n, act = actions[tally.actions_during_outage % len(actions)]
            tally.actions_during_outage += 1
            asked_at = time.monotonic()
            answer = await answer_to(server, users[n], lambda u=users[n], a=act: a(u))
            slowest = max(slowest, time.monotonic() - asked_at)
            tally.answers_during_outage += 1
            assert not answer.protect_content, "a receipt while the database is down"
            assert unavailable_in(languages[n]) in answer.text, answer.text
            tally.unavailable_seen += 1
            await asyncio.sleep(min(5, max(0, OUTAGE_SECONDS - (time.monotonic() - down_at))))
        private_postgres.start()
        up_at = time.monotonic()
        reference, presses = await send_until_confirmed(server, users[2], "th", timeout=60)
        recovery = time.monotonic() - up_at
        tally.confirmed["w2"] = reference
        reference, _ = await send_until_confirmed(server, users[3], "my", timeout=30)
        tally.confirmed["w3"] = reference
        # The relays lived through it: an urgent report's staff alert goes out (outbox).
        urgent = await report(server, users[4], danger="yes", details=("after the outage",))
        assert urgent is not None
        tally.attempted.add("w4")
        tally.confirmed["w4"] = urgent.reference
        await server.wait_for(
            lambda m: m.chat_id == STAFF_CHAT_ID and urgent.reference in m.text, timeout=60
        )
        assert bot.process is not None
        assert bot.process.returncode is None, "the bot ran through it without a restart"
        for relay in ("outbox", "broadcast"):  # each logged the outage once, and its end
            await logged(bot, f"{relay} relay pass: storage reachable again")
            assert bot.log().count(f"{relay} relay pass: storage unreachable") == 1
        for typed in ("before the outage", "sent during the outage", "after the outage"):
            assert typed not in bot.log()
    cases = await assert_no_loss_no_duplicate(chaos_backend, tally)
    assert len(cases) == len(tally.confirmed) == 4
    figures(
        "postgres stopped",
        outage_s=OUTAGE_SECONDS,
        reports_attempted=len(tally.attempted),
        confirmed=len(tally.confirmed),
        stored=len(cases),
        duplicates=len(cases) - len({d for _, d in cases}),
        actions_during_outage=tally.actions_during_outage,
        answered=tally.answers_during_outage,
        try_again_shown=tally.unavailable_seen,
        slowest_answer_s=round(slowest, 2),
        recovery_s=round(recovery, 2),
        presses_to_confirm_after_restart=presses,
    )


async def test_redis_restarted_mid_conversation_the_bot_answers_and_reports_are_kept(
    chaos_backend: Backend,  # noqa: F811
    private_redis: PrivateRedis,  # noqa: F811
    fake_telegram: FakeTelegramServer,
    telegram_runtime: str,
    tmp_path: Path,
) -> None:
    server, tally = fake_telegram, Tally()
    first = server.user(710_001, language_code="en")
    second = server.user(710_002, language_code="km")
    async with wvb_run(chaos_backend, server, telegram_runtime, tmp_path):
        await onboard(server, first, "en")
        done = await report(server, first, details=("before the restart",))
        assert done is not None
        tally.attempted.add("first-1")
        tally.confirmed["first-1"] = done.reference
        await onboard(server, second, "km")
        await to_review(server, second, "at the review when Redis restarts")
        tally.attempted.add("second")

        private_redis.stop()  # drafts, locks, update ids and the send rate go with it
        for user, language, act in (
            (second, "km", lambda: second.press("review:send", carrier(second, "review:send"))),
            (first, "en", lambda: first.send_command("report")),
        ):
            answer = await answer_to(server, user, act)
            tally.actions_during_outage += 1
            assert unavailable_in(language) in answer.text, answer.text
            tally.unavailable_seen += 1
        private_redis.start()
        up_at = time.monotonic()
        # The draft was lost with Redis: the old button is answered (with the menu), and a new
        # report goes through.
        answer = await answer_to(
            server, second, lambda: second.press("review:send", carrier(second, "review:send"))
        )
        recovery = time.monotonic() - up_at
        assert not answer.protect_content, "a draft lost with Redis cannot be sent"
        assert "menu:report" in data_of(answer)
        again = await report(server, first, details=("after the restart",))
        assert again is not None
        tally.attempted.add("first-2")
        tally.confirmed["first-2"] = again.reference
        newcomer = server.user(710_003, language_code="id")
        await onboard(server, newcomer, "id")
    cases = await assert_no_loss_no_duplicate(chaos_backend, tally)
    assert len(cases) == len(tally.confirmed) == 2
    figures(
        f"redis stopped and started ({telegram_runtime})",
        reports_attempted=len(tally.attempted),
        confirmed=len(tally.confirmed),
        stored=len(cases),
        actions_while_down=tally.actions_during_outage,
        try_again_shown=tally.unavailable_seen,
        first_answer_after_start_s=round(recovery, 2),
    )


async def test_sigkill_while_a_receipt_is_sent_the_worker_still_gets_it_once(
    chaos_backend: Backend,  # noqa: F811
    fake_telegram: FakeTelegramServer,
    telegram_runtime: str,
    tmp_path: Path,
) -> None:
    server, tally = fake_telegram, Tally()
    held = server.user(720_001, language_code="ne")
    quick = server.user(720_002, language_code="bn")
    # The fake Bot API holds the receipt to ``held`` unanswered: the case is committed and the
    # bot is waiting on Telegram when it is killed, so the worker never sees that message.
    original = server._handlers["sendMessage"]
    holding = asyncio.Event()
    release = asyncio.Event()
    held_texts: list[str] = []

    async def send_message(params: dict[str, Any]) -> Any:
        receipt = str(params.get("chat_id")) == str(held.chat_id) and params.get("protect_content")
        if receipt and not holding.is_set():  # the first receipt only
            held_texts.append(str(params.get("text")))
            holding.set()
            await release.wait()
            raise RuntimeError("the bot was killed: this message never arrived")
        return await original(params)

    server._handlers["sendMessage"] = send_message
    async with wvb_run(chaos_backend, server, telegram_runtime, tmp_path) as bot:
        await onboard(server, held, "ne")
        await onboard(server, quick, "bn")
        await to_review(server, held, "confirmed while the bot is killed")
        await to_review(server, quick, "sent just before the kill")
        tally.attempted.update({"held", "quick"})

        held.press("review:send", carrier(held, "review:send"))
        await asyncio.wait_for(holding.wait(), 30)
        quick.press("review:send", carrier(quick, "review:send"))
        await bot.kill()
        release.set()
        killed_at = time.monotonic()
        await bot.start()

        # The held worker saw no receipt: pressing Send again shows one, for the same case.
        reference, presses = await send_until_confirmed(server, held, "ne", timeout=60)
        recovery = time.monotonic() - killed_at
        tally.confirmed["held"] = reference
        shown = next(m for m in reversed(held.messages()) if m.protect_content)
        assert shown.text == held_texts[0], "the very receipt (reference and code) it was sent"
        # The other worker's press was either handled before the kill or after the restart
        # (the update was not confirmed); if they saw nothing, they press again.
        receipts = [m for m in quick.messages() if m.protect_content]
        if not receipts:
            reference, _ = await send_until_confirmed(server, quick, "bn", timeout=30)
        else:
            found = REFERENCE.search(receipts[-1].text)
            assert found is not None
            reference = found.group(1)
        tally.confirmed["quick"] = reference
    cases = await assert_no_loss_no_duplicate(chaos_backend, tally)
    assert len(cases) == 2
    figures(
        f"SIGKILL during confirmation ({telegram_runtime})",
        reports_attempted=len(tally.attempted),
        confirmed=len(tally.confirmed),
        stored=len(cases),
        duplicates=len(cases) - len({d for _, d in cases}),
        receipt_after_restart_s=round(recovery, 2),
        presses=presses,
    )
