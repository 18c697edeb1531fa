"""Issue 11, "Honest to the worker": the worker is told only what the software really does.

- Point 1: "our staff have been alerted" only when an alert has somewhere to go; otherwise the
  worker hears the truth and the emergency contacts, and `wvb run` warns the operator at start.
- Point 2: what a channel can do (delete messages, protect content) decides the words: Telegram
  deletes the message with the code and says so; the console cannot, and says that instead.
- Point 4: urgent cases have their own acknowledgement target (WVB_URGENT_ACKNOWLEDGE_HOURS),
  shown to the worker and counted by the case clock.

Real parts throughout: the real app (gateway, engine, services, database) on both backends, each
Telegram runtime over the fake Bot API, and `wvb run` / `wvb chat` as subprocesses.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App
from bot.channels.console import ConsoleChannel
from bot.settings import SettingsError, load_settings
from conversations.messages import Outbound
from conversations.ports import ReportDraft
from domain import payloads
from domain.answers import Answer
from locales import translator
from scheduler.case_clock import CaseClock
from services.casework import Remediation
from services.outbox import row_purpose
from storage.models import Case, CaseEvent, OutboxMessage
from tests.bot_driver import (
    REFERENCE,
    ask,
    bot_with_staff_chat,
    check_status,
    data_of,
    onboard,
    report,
    start_bot,
    stop_bot,
)
from tests.case_factory import insert_case
from tests.conftest import Backend, fresh_keys
from tests.fake_telegram_api import FakeTelegramServer
from tests.test_console_e2e import ConsoleWorker
from tests.test_quotas import COLLAPSED, Worker, app_on, in_language

ALERTED = "Because someone may be in danger, our staff have been alerted now."
RETALIATION_ALERTED = "and our staff have been alerted."
NOT_ALERTED = "We cannot alert our staff right now."
CONTACTS = "Call the hotline 1300 (free, 24 hours)"
STAFF_CHAT = -100_555_000
# What a channel that deletes says, and what one that cannot says instead.
DELETED = "For your safety, I deleted your message with the code."
NOT_DELETED = "I cannot delete your message with the code here."
UNPROTECTED = "This message is not protected here."
TRIES_TO_DELETE_CHAT = "I will also try to delete the messages in this chat from the last 2 days."
CANNOT_DELETE_CHAT = "I cannot delete the messages in this chat here."


def texts(replies: list[Outbound]) -> str:
    return "\n".join(reply.text for reply in replies)


def after_receipt(replies: list[Outbound]) -> str:
    """What the bot said from the receipt (the protected message) on."""
    start = next(i for i, reply in enumerate(replies) if reply.protect_content)
    return texts(replies[start:])


async def with_contacts(app: App) -> None:
    await app.staff.set_contacts("test", "*", "*", CONTACTS)


# -- point 1: "staff have been alerted" only when someone can be --------------------------------


async def test_without_a_staff_chat_an_urgent_reporter_hears_the_truth_and_the_contacts(
    backend: Backend,
) -> None:
    # Before: "our staff have been alerted now", while the alert waited in the outbox forever.
    async with app_on(backend, quota_updates_per_minute=100_000) as app:
        await with_contacts(app)
        worker = Worker(app, 7_400_001)
        await worker.onboard("en")
        told = after_receipt(await worker.urgent_report())
        assert ALERTED not in told
        assert NOT_ALERTED in told
        assert CONTACTS in told, "the emergency contacts, since nobody was alerted"
        # The second urgent report of the day would say "staff were already alerted": not true.
        again = after_receipt(await worker.urgent_report())
        assert COLLAPSED not in again
        assert NOT_ALERTED in again
        assert CONTACTS in again


async def test_in_thai_without_a_staff_chat_the_truth_is_told_in_thai(backend: Backend) -> None:
    async with app_on(backend) as app:
        worker = Worker(app, 7_400_002)
        await worker.onboard("th")
        told = after_receipt(await worker.urgent_report())
        assert in_language("th", ALERTED) not in told
        assert in_language("th", NOT_ALERTED) in told
        fallback = translator("th").gettext(
            "Go to a safe place if you can, and call the local emergency number."
        )
        assert fallback in told, "no contacts configured: the fallback advice"


async def test_with_a_staff_chat_configured_the_alert_is_promised(backend: Backend) -> None:
    telegram = {"telegram_token": "123456:" + "A" * 30, "staff_chat_id": STAFF_CHAT}
    async with app_on(backend, **telegram) as app:
        worker = Worker(app, 7_400_003)
        await worker.onboard("en")
        told = after_receipt(await worker.urgent_report())
        assert ALERTED in told
        assert NOT_ALERTED not in told


async def test_retaliation_reported_without_a_staff_chat_is_not_said_to_alert_staff(
    backend: Backend,
) -> None:
    async with app_on(backend) as app:
        await with_contacts(app)
        worker = Worker(app, 7_400_004)
        await worker.onboard("en")
        reference = "RETA-0001"
        await insert_case(app.database, worker.ref.pseudonym, reference, app.keyring)
        await app.casework.remediate("staff", reference, _remediation())
        await app.casework.record_validation(worker.ref, reference, Answer.YES)
        told = texts(await worker.press(payloads.retaliation(reference, Answer.YES)))
        assert "We opened a new urgent report about this" in told
        assert RETALIATION_ALERTED not in told
        assert NOT_ALERTED in told
        assert CONTACTS in told


def _remediation() -> Remediation:
    return Remediation("The wages were paid.", {})


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_a_public_staff_channel_is_refused_and_the_worker_is_not_told_staff_know(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> None:
    fake_telegram.register_chat({"id": STAFF_CHAT, "type": "channel", "title": "Staff news"})
    bot = await start_bot(backend, fake_telegram, telegram_runtime, staff_chat_id=STAFF_CHAT)
    try:
        user = fake_telegram.user(7_400_005, language_code="en")
        await onboard(fake_telegram, user, "en")
        receipt = await report(fake_telegram, user, categories=("forced",), danger="yes")
        assert receipt is not None
        await fake_telegram.wait_for(
            lambda m: m.chat_id == user.chat_id and NOT_ALERTED in m.text, timeout=15
        )
        said = "\n".join(m.text for m in user.messages())
        assert ALERTED not in said
    finally:
        await stop_bot(bot)
    assert not [m for m in fake_telegram.sent if m.chat_id == STAFF_CHAT], "nothing published"


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_a_private_staff_chat_gets_the_alert_the_worker_is_promised(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> None:
    async with bot_with_staff_chat(backend, fake_telegram, telegram_runtime, STAFF_CHAT):
        user = fake_telegram.user(7_400_006, language_code="en")
        await onboard(fake_telegram, user, "en")
        receipt = await report(fake_telegram, user, categories=("forced",), danger="yes")
        assert receipt is not None
        await fake_telegram.wait_for(
            lambda m: m.chat_id == user.chat_id and ALERTED in m.text, timeout=15
        )
        [alert] = await fake_telegram.wait_for(lambda m: m.chat_id == STAFF_CHAT, timeout=15)
        assert receipt.reference in alert.text
        assert NOT_ALERTED not in "\n".join(m.text for m in user.messages())


async def run_briefly(backend: Backend, server: FakeTelegramServer, tmp_path: Path,
                      **extra: str) -> str:  # fmt: skip
    """`wvb run` until it polls, then SIGTERM; returns what it logged."""
    from tests.test_run_process import WVB, kill_if_running, start_process, stop_and_read

    env = backend.environment(backend.settings())
    env.update(WVB_TELEGRAM_TOKEN=server.token, WVB_TELEGRAM_API_BASE=server.base_url, **extra)
    upgrade = await asyncio.create_subprocess_exec(WVB, "db", "upgrade", env=env, cwd=tmp_path)
    assert await upgrade.wait() == 0
    process = await start_process(env, tmp_path, server, stdout=asyncio.subprocess.PIPE)
    try:
        return await stop_and_read(process)
    finally:
        await kill_if_running(process)


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_wvb_run_warns_at_start_when_urgent_alerts_have_nowhere_to_go(
    backend: Backend, fake_telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    logs = await run_briefly(backend, fake_telegram, tmp_path)
    [warning] = [line for line in logs.splitlines() if "urgent" in line.lower()]
    assert " WARNING " in warning
    assert "WVB_STAFF_CHAT_ID" in warning, "it names what to set"


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_wvb_run_with_a_private_staff_chat_does_not_warn(
    backend: Backend, fake_telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    fake_telegram.register_chat({"id": STAFF_CHAT, "type": "supergroup", "title": "Staff"})
    logs = await run_briefly(backend, fake_telegram, tmp_path, WVB_STAFF_CHAT_ID=str(STAFF_CHAT))
    assert "WARNING" not in logs, logs


# -- point 2: the words follow what the channel can do -------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite-memory", "postgres-redis"], indirect=True)
async def test_telegram_deletes_the_code_and_says_so(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> None:
    bot = await start_bot(backend, fake_telegram, telegram_runtime)
    try:
        reporter = fake_telegram.user(7_400_010, language_code="en")
        await onboard(fake_telegram, reporter, "en")
        receipt = await report(fake_telegram, reporter)
        assert receipt is not None
        assert receipt.message.protect_content
        assert UNPROTECTED not in receipt.message.text, "Telegram protects the receipt"
        found = await check_status(fake_telegram, reporter, receipt.reference, receipt.code)
        assert receipt.reference in found.text
        await fake_telegram.wait_for(
            lambda m: m.chat_id == reporter.chat_id and DELETED in m.text, timeout=15
        )
        await asyncio.sleep(0.3)
        assert fake_telegram.is_deleted(reporter.chat_id, reporter.user_message_ids()[-1])
        assert NOT_DELETED not in "\n".join(m.text for m in reporter.messages())
        forget = await ask(fake_telegram, reporter, lambda: reporter.send_command("forget"),
                           lambda m: "forget:yes" in data_of(m))  # fmt: skip
        assert TRIES_TO_DELETE_CHAT in forget.text
        assert CANNOT_DELETE_CHAT not in forget.text
    finally:
        await stop_bot(bot)


async def test_the_console_says_it_cannot_delete_the_code(tmp_path: Path) -> None:
    # Before: "For your safety, I deleted your message with the code" under the code, still on
    # the screen. `wvb chat` as a newcomer runs it, on the embedded default.
    worker = await ConsoleWorker.start(tmp_path)
    try:
        await worker.start_a_wages_report()
        await worker.choose("No, or I don't know")
        await worker.prompt()
        await worker.type("My wages for October were not paid.")
        await worker.choose("Done")
        await worker.choose("In the last 7 days")
        await worker.choose("A few workers")
        await worker.choose("Yes")
        await worker.choose("Keep it confidential")
        await worker.choose("Send the report")
        receipt = await worker.prompt()
        assert UNPROTECTED in receipt, "the console cannot protect the receipt, and says so"
        # Point 1 in the console: no staff chat on the embedded default; point 4: 24 hours.
        assert ALERTED not in receipt
        assert NOT_ALERTED in receipt
        assert "within 24 hours" in receipt
        reference = REFERENCE.search(receipt)
        code = re.search(r"Secret receipt code: (\S+)", receipt)
        assert reference is not None, receipt
        assert code is not None, receipt

        await worker.type("/status")
        await worker.prompt()
        await worker.type(reference.group(1))
        await worker.prompt()
        await worker.type(code.group(1))
        answer = await worker.prompt()
        assert "Received" in answer
        assert DELETED not in answer, "the code is still on the screen"
        assert NOT_DELETED in answer
    finally:
        exit_code = await worker.quit()
    assert exit_code == 0, worker.output[-1500:]


async def test_the_console_forget_prompt_does_not_promise_to_delete_the_chat(
    backend: Backend,
) -> None:
    async with app_on(backend) as app:
        screen = StringIO()
        typed = ["/forget"]

        def read_line() -> str:
            if not typed:
                raise EOFError
            return typed.pop(0)

        console = ConsoleChannel(app.gateway, identity="forgetful", read_line=read_line,
                                 output=screen)  # fmt: skip
        await console.run(first="/start")
        shown = screen.getvalue()
    assert TRIES_TO_DELETE_CHAT not in shown
    assert CANNOT_DELETE_CHAT in shown


# -- point 4: urgent cases have their own acknowledgement target ---------------------------------


def test_urgent_acknowledge_hours_default_to_24_and_bad_values_name_the_variable() -> None:
    assert load_settings(_env_file=None).urgent_acknowledge_hours == 24
    assert load_settings(_env_file=None, urgent_acknowledge_hours="6").urgent_acknowledge_hours == 6
    for bad in ("0", "soon", "10000"):
        with pytest.raises(SettingsError, match=r"^WVB_URGENT_ACKNOWLEDGE_HOURS: "):
            load_settings(_env_file=None, urgent_acknowledge_hours=bad)


def test_a_bad_urgent_acknowledge_hours_is_one_line_and_exit_2(tmp_path: Path) -> None:
    from tests.test_settings_and_cli import wvb

    result = wvb("cases", "list", env={"WVB_URGENT_ACKNOWLEDGE_HOURS": "soon"}, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "WVB_URGENT_ACKNOWLEDGE_HOURS" in line


async def test_the_urgent_receipt_promises_the_urgent_target_in_hours(backend: Backend) -> None:
    keys = fresh_keys()  # one database, so one set of keys (other keys would be refused)
    async with app_on(backend, urgent_acknowledge_hours=6, **keys) as app:
        worker = Worker(app, 7_400_020)
        await worker.onboard("en")
        told = after_receipt(await worker.urgent_report())
        assert "within 6 hours" in told
        assert "we will confirm we have your report by" not in told
    async with app_on(backend, **keys) as app:
        worker = Worker(app, 7_400_021)
        await worker.onboard("km")
        told = after_receipt(await worker.urgent_report())
        t = translator("km")  # the catalog's plural form, in Khmer, for 24
        expected = t.ngettext(URGENT_TARGET_ONE, URGENT_TARGET_MANY, 24).format(count=t.number(24))
        assert expected in told


URGENT_TARGET_ONE = (
    "What happens next: this is urgent, so we aim to confirm we have your report within "
    "{count} hour."
)
URGENT_TARGET_MANY = (
    "What happens next: this is urgent, so we aim to confirm we have your report within "
    "{count} hours."
)


def urgent_draft(key: str, code: str, *, danger: bool = True) -> ReportDraft:
    return ReportDraft(
        key=key, language="en", categories=("wages",), workplace_id=None, workplace_text=None,
        agency=None, details=("locked in",), occurred="ongoing", affected="few",
        danger_now=danger, confidentiality="confidential", receipt_code=code,
    )  # fmt: skip


async def staff_texts(app: App) -> list[str]:
    async with app.database.sessions() as session:
        rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    return [
        Outbound.from_bytes(app.keyring.decrypt(row.payload_ciphertext, row_purpose(row))).text
        for row in rows
        if row.recipient == "staff"
    ]


async def test_an_urgent_case_not_acknowledged_in_time_is_overdue_and_escalated_at_once(
    backend: Backend,
) -> None:
    async with app_on(backend, urgent_acknowledge_hours=24) as app:
        worker = app.gateway.worker("telegram", 7_400_030, 7_400_030)
        late = await app.cases.submit(worker, urgent_draft("late", app.cases.new_receipt_code()))
        acked = await app.cases.submit(worker, urgent_draft("acked", app.cases.new_receipt_code()))
        normal = await app.cases.submit(
            worker, urgent_draft("normal", app.cases.new_receipt_code(), danger=False)
        )
        async with app.database.sessions() as session:
            created = {case.reference: case for case in (await session.scalars(select(Case))).all()}
        start = created[late.reference].created_at
        assert created[late.reference].acknowledge_due_at == start + timedelta(hours=24)
        assert created[normal.reference].acknowledge_due_at == start + timedelta(days=7)
        await app.casework.acknowledge("staff", acked.reference)
        before = len(await staff_texts(app))

        def clock(hours: float) -> CaseClock:
            moment: datetime = start + timedelta(hours=hours)
            return CaseClock(app.database, app.outbox, now=lambda: moment)

        await clock(23.5).run_due()
        assert (await staff_texts(app))[before:] == [], "not overdue yet"
        await clock(24.01).run_due()
        flagged = (await staff_texts(app))[before:]
        assert len(flagged) == 1, flagged
        assert late.reference in flagged[0]
        assert "acknowledgement overdue" in flagged[0]
        assert acked.reference not in flagged[0], "acknowledged in time"
        await clock(30).run_due()
        assert len((await staff_texts(app))[before:]) == 1, "flagged once"
        async with app.database.sessions() as session:
            actions = (
                await session.scalars(
                    select(CaseEvent.action).where(CaseEvent.case_id == created[late.reference].id)
                )
            ).all()
        assert "acknowledge_overdue" in actions
        # The daily escalation counts it too; the normal case is not overdue for days.
        escalated = await clock(25).escalate_daily()
        assert escalated == 1
        daily = (await staff_texts(app))[-1]
        assert f"{late.reference} (received" in daily
        assert normal.reference not in daily


def test_the_urgent_target_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    [row] = [line for line in readme.splitlines() if "`WVB_URGENT_ACKNOWLEDGE_HOURS`" in line]
    assert "24" in row
