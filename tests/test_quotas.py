"""Quotas per worker, and a /status throttle that nobody can hold shut (issue 10, points 2 and 3).

Each runs on SQLite + memory counters and on PostgreSQL + Redis counters, through the real
gateway, engine, services and storage (no Telegram: the conversation is driven with ``Inbound``s).
"""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from PIL import Image
from redis.asyncio import Redis
from sqlalchemy import func, select

from bot.app import App, open_app
from conversations.messages import Effects, Inbound, Outbound
from conversations.ports import EvidenceOutcome, ReportDraft, StatusOutcome
from locales import translator
from storage import codes
from storage.models import Case, CaseEntry, OutboxMessage
from tests.conftest import REDIS_URL, Backend

REFUSED = "You have already sent as many reports as one account can in 24 hours."
COLLAPSED = "Our staff were already alerted about an urgent report you sent in the last 24 hours."
ALERTED = "Because someone may be in danger, our staff have been alerted now."
FILE_REFUSED = (
    "This file was not added: you have sent as many files as one account can in 24 hours. "
    "Your report goes on"
)
SLOW_DOWN = "You are sending messages very fast"


def in_language(language: str, english_start: str) -> str:
    """The translation of the catalog message that starts with ``english_start``."""
    from locales.catalogs import TEMPLATE, read_catalog

    [full] = [
        m.id
        for m in read_catalog(TEMPLATE)
        if isinstance(m.id, str) and m.id.startswith(english_start)
    ]
    return translator(language).gettext(full)


def hours_sentence(language: str, hours: int) -> str:
    t = translator(language)
    return t.ngettext(
        "You can send a new report in about {count} hour.",
        "You can send a new report in about {count} hours.",
        hours,
    ).format(count=t.number(hours))


@asynccontextmanager
async def app_on(backend: Backend, **settings: object) -> AsyncIterator[App]:
    async with open_app(backend.settings(**settings), upgrade_schema=True) as app:
        yield app


class Worker:
    """One messenger account talking to the bot through the gateway, as a channel would."""

    def __init__(self, app: App, user_id: int) -> None:
        self.app = app
        self.ref = app.gateway.worker("telegram", user_id, user_id)

    async def send(self, inbound: Inbound) -> list[Outbound]:
        got: list[Outbound] = []

        async def deliver(replies: Sequence[Outbound], effects: Effects) -> None:
            got.extend(replies)

        await self.app.gateway.handle(self.ref, inbound, deliver)
        return got

    async def command(self, name: str) -> list[Outbound]:
        return await self.send(Inbound.command_of(name))

    async def press(self, payload: str) -> list[Outbound]:
        return await self.send(Inbound.choice_of(payload))

    async def text(self, text: str) -> list[Outbound]:
        return await self.send(Inbound.text_of(text))

    async def onboard(self, language: str = "en") -> None:
        await self.command("start")
        await self.press(f"lang:{language}")
        await self.press("privacy:ok")
        await self.press("sub:no")

    async def urgent_report(self) -> list[Outbound]:
        """Everything the bot answered while this worker tried to file an urgent report."""
        replies = await self.command("report")
        if not any(c.payload == "cat:wages" for r in replies for c in r.choices):
            return replies  # refused before anything was written
        for payload in ("cat:wages", "report:done", "wp:skip", "agency:none"):
            replies += await self.press(payload)
        replies += await self.text("Someone is locked in the dormitory")
        for payload in (
            "report:done",
            "when:ongoing",
            "who:few",
            "danger:yes",
            "share:confidential",
        ):
            replies += await self.press(payload)
        return replies + await self.press("review:send")


async def staff_alerts(app: App) -> int:
    async with app.database.sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.recipient == "staff")
            )
            or 0
        )


async def cases_stored(app: App) -> int:
    async with app.database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Case)) or 0)


# -- point 2: one account filing 30 urgent cases ------------------------------------------------


async def test_thirty_urgent_reports_from_one_account_alert_staff_once_and_lose_none(
    backend: Backend,
) -> None:
    # Measured before the quotas: 30 cases, 30 staff alerts. The update quota is lifted here so
    # the report and alert quotas are what is tested (the update quota has its own test).
    # A staff chat is configured: without one the worker is not told staff were alerted.
    staff_chat = {"telegram_token": "123456:" + "A" * 30, "staff_chat_id": -100_123}
    async with app_on(backend, quota_updates_per_minute=100_000, **staff_chat) as app:
        worker = Worker(app, 7_100_001)
        await worker.onboard("th")
        attempts = [await worker.urgent_report() for _ in range(30)]

        receipts = [a for a in attempts if any(r.protect_content for r in a)]
        refusals = [a for a in attempts if not any(r.protect_content for r in a)]
        alerts, cases = await staff_alerts(app), await cases_stored(app)
        assert alerts <= 1, f"{alerts} staff alerts for {cases} urgent cases of one account"
        assert cases == len(receipts) == 5, "5 cases a day; each one told to the worker"
        assert len(refusals) == 25

        texts = ["\n".join(r.text for r in attempt) for attempt in attempts]
        assert in_language("th", ALERTED) in texts[0]
        for text in texts[1:5]:
            assert in_language("th", COLLAPSED) in text, "the worker is told, exactly"
            assert in_language("th", ALERTED) not in text, "no alert is promised"
        for attempt in refusals:
            [refusal, menu] = attempt
            assert in_language("th", REFUSED) in refusal.text, "refused before writing anything"
            assert hours_sentence("th", 24) in refusal.text, "when they can report again"
            assert "🆘" in refusal.text, "and the emergency contacts"
            assert any(c.payload == "menu:report" for c in menu.choices)


async def test_the_last_alert_tells_staff_that_later_urgent_cases_come_without_one(
    backend: Backend,
) -> None:
    async with app_on(backend, quota_urgent_alerts_per_day=2) as app:
        worker = Worker(app, 7_100_002)
        await worker.onboard("en")
        for _ in range(3):
            await worker.urgent_report()
        async with app.database.sessions() as session:
            rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
        from services.outbox import row_purpose

        alerts = [
            Outbound.from_bytes(app.keyring.decrypt(r.payload_ciphertext, row_purpose(r)))
            for r in rows
            if r.recipient == "staff"
        ]
        assert len(alerts) == 2
        assert "no alert" not in alerts[0].text
        assert "get no alert of their own" in alerts[1].text
        assert await cases_stored(app) == 3


# -- evidence bytes ---------------------------------------------------------------------------


def noise_png(side: int = 420) -> bytes:
    generator = random.Random(side)
    image = Image.frombytes("RGB", (side, side), generator.randbytes(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def test_files_beyond_the_daily_evidence_bytes_are_refused_and_the_report_goes_on(
    backend: Backend,
) -> None:
    data = noise_png()
    assert 400_000 < len(data) < 700_000
    fetched: list[int] = []

    def photo() -> Inbound:
        async def fetch() -> bytes:
            fetched.append(len(data))
            return data

        return Inbound.media_of("photo", "", mime="image/png", fetch=fetch)

    async with app_on(backend, quota_evidence_mb_per_day=1) as app:
        worker = Worker(app, 7_100_003)
        await worker.onboard("es")
        await worker.command("report")
        for payload in ("cat:wages", "report:done", "wp:skip", "agency:none"):
            await worker.press(payload)
        first = await worker.send(photo())
        second = await worker.send(photo())
        assert in_language("es", "File added.") in first[-1].text
        assert in_language("es", FILE_REFUSED) in second[-1].text
        assert any(c.payload == "report:done" for c in second[-1].choices), "the report goes on"
        await worker.text("They did not pay us")
        for payload in ("report:done", "when:week", "who:few", "danger:no", "share:confidential"):
            await worker.press(payload)
        receipt = await worker.press("review:send")
        assert receipt[0].protect_content
        async with app.database.sessions() as session:
            kinds = (await session.scalars(select(CaseEntry.kind))).all()
        assert sorted(kinds) == ["photo", "text"], "one file kept, the refused one not"
        # a worker who already used the whole allowance: the file is not even downloaded
        await app.cases.quotas.take_evidence(worker.ref.pseudonym, 1024 * 1024 - len(data))
        await worker.command("report")
        for payload in ("cat:wages", "report:done", "wp:skip", "agency:none"):
            await worker.press(payload)
        fetched.clear()
        third = await worker.send(photo())
        assert in_language("es", FILE_REFUSED) in third[-1].text
        assert fetched == []


# -- updates a minute -------------------------------------------------------------------------


async def test_updates_over_the_minute_quota_get_one_slow_down_and_no_storage_work(
    backend: Backend,
) -> None:
    async with app_on(backend, quota_updates_per_minute=10) as app:
        worker = Worker(app, 7_100_004)
        await worker.onboard("my")  # 4 updates
        store = app.gateway.store
        locks = 0
        real_lock = store.lock

        def counting_lock(pseudonym: str) -> Any:
            nonlocal locks
            locks += 1
            return real_lock(pseudonym)

        store.lock = counting_lock  # type: ignore[method-assign]
        answers = [await worker.command("menu") for _ in range(20)]
        assert [len(a) > 0 for a in answers[:6]] == [True] * 6
        assert locks == 6, "only updates within the quota take the lock and the state"
        [slow_down] = answers[6]
        assert slow_down.text == in_language("my", SLOW_DOWN)
        assert all(a == [] for a in answers[7:]), "the rest are dropped, unanswered"


# -- point 3: /status cannot be held shut -----------------------------------------------------


@pytest.fixture
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real scrypt code path at a small cost, so 200 wrong guesses take a second, not 20."""
    monkeypatch.setattr(codes, "_SCRYPT_N", 2**4)


async def file_case(app: App, user_id: int) -> tuple[str, str]:
    worker = app.gateway.worker("telegram", user_id, user_id)
    code = app.cases.new_receipt_code()
    draft = ReportDraft(
        key=f"draft-{user_id}", language="en", categories=("wages",), workplace_id=None,
        workplace_text=None, agency=None, details=("not paid",), occurred="week",
        affected="few", danger_now=False, confidentiality="confidential", receipt_code=code,
    )  # fmt: skip
    receipt = await app.cases.submit(worker, draft)
    return receipt.reference, code


def pseudonym(app: App, user_id: int) -> str:
    return app.gateway.worker("telegram", user_id, user_id).pseudonym


async def test_forty_accounts_guessing_cannot_lock_out_an_honest_worker(
    backend: Backend, cheap_scrypt: None
) -> None:
    async with app_on(backend) as app:
        reference, code = await file_case(app, 7_200_000)
        outcomes = [
            (
                await app.cases.check_status(pseudonym(app, 7_300_000 + n), reference, f"X{k}")
            ).outcome
            for n in range(40)
            for k in range(5)
        ]
        assert outcomes == [StatusOutcome.NOT_FOUND] * 200
        honest = await app.cases.check_status(pseudonym(app, 7_200_001), reference, code)
        assert honest.outcome is StatusOutcome.FOUND, "a correct reference and code get through"
        assert honest.case is not None
        assert honest.case.reference == reference
        # the guessers go on: staff hear of it once, each guesser stays limited per account
        more = await app.cases.check_status(pseudonym(app, 7_300_100), reference, "X")
        assert more.outcome is StatusOutcome.NOT_FOUND
        assert await staff_alerts(app) == 1, "the circuit breaker alerts staff once a window"
        sixth = await app.cases.check_status(pseudonym(app, 7_300_000), reference, code)
        assert sixth.outcome is StatusOutcome.THROTTLED, "the per-account limit stays"


async def test_concurrent_guesses_of_one_account_are_counted_atomically(
    backend: Backend, cheap_scrypt: None
) -> None:
    async with app_on(backend) as app:
        reference, _ = await file_case(app, 7_200_010)
        guesser = pseudonym(app, 7_200_011)
        results = await asyncio.gather(
            *(app.cases.check_status(guesser, reference, f"Y{n}") for n in range(20))
        )
        checked = [r for r in results if r.outcome is StatusOutcome.NOT_FOUND]
        assert len(checked) == app.cases.policy.status_failures_per_worker == 5
        if backend.redis_url:  # counter keys name nobody: no pseudonym in Redis
            redis = Redis.from_url(REDIS_URL)
            try:
                keys = [k.decode() async for k in redis.scan_iter(f"{backend.redis_prefix}:*")]
            finally:
                await redis.aclose()
            assert any(":attempts:status:" in k for k in keys)
            assert not [k for k in keys if guesser in k or guesser[:16] in k]


# -- aiogram: a bound on the updates handled at once ------------------------------------------


async def test_aiogram_handles_at_most_the_configured_number_of_updates_at_once() -> None:
    from aiogram.types import Update

    from bot.channels.telegram.runtime import TelegramChannel
    from storage.send_rate import MemorySendRate

    channel = TelegramChannel(
        "123456:" + "A" * 30, "http://127.0.0.1:9", None,  # type: ignore[arg-type]
        MemorySendRate(25, 1), concurrent_updates=3,
    )  # fmt: skip
    running = peak = 0

    async def handler(update: Any, data: dict[str, Any]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    try:
        await asyncio.gather(
            *(channel._first_delivery_only(handler, Update(update_id=n), {}) for n in range(30))
        )
    finally:
        await channel.close()
    assert peak == 3


def test_quota_settings_have_safe_defaults() -> None:
    from bot.settings import load_settings

    settings = load_settings(_env_file=None)
    assert settings.quota_reports_per_day == 5
    assert settings.quota_urgent_alerts_per_day == 1
    assert settings.quota_evidence_mb_per_day == 100
    assert settings.quota_updates_per_minute == 120
    assert settings.telegram_concurrent_updates == 256


async def test_files_answering_staff_count_against_the_same_daily_evidence_bytes(
    backend: Backend, cheap_scrypt: None
) -> None:
    async with app_on(backend, quota_evidence_mb_per_day=1) as app:
        reference, _ = await file_case(app, 7_100_005)
        worker = app.gateway.worker("telegram", 7_100_005, 7_100_005)
        fetched: list[int] = []

        async def fetch() -> bytes:
            fetched.append(1)
            return noise_png()

        assert await app.cases.quotas.take_evidence(worker.pseudonym, 1024 * 1024)
        outcome = await app.casework.add_worker_file(worker, reference, "photo", fetch, None)
        assert outcome is EvidenceOutcome.OVER_QUOTA
        assert fetched == [], "not even downloaded"


async def test_a_worker_over_the_report_quota_keeps_an_unfinished_report() -> None:
    from tests.test_conversation_core import Chat, last_text

    chat = Chat()
    await chat.onboard("en")
    await chat.command("report")
    await chat.press("cat:wages")
    chat.cases.wait = 2 * 3600 - 10  # the quota was reached meanwhile (another process)
    refused = await chat.command("report")  # offers to resume the draft: no quota involved
    assert "did not finish" in last_text(refused)
    refused = await chat.press("resume:new")
    text = "\n".join(r.text for r in refused.replies)
    assert REFUSED in text
    assert hours_sentence("en", 2) in text
    assert "Hotline 1300" in text, "the emergency contacts"
    assert chat.state is not None
    assert chat.state.step == "menu"
    resumed = await chat.command("report")
    assert "did not finish" in last_text(resumed), "the unfinished report is still there"
