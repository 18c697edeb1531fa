"""Casework end to end: staff act through the `wvb` CLI (or the Telegram staff chat), the worker
answers on their messenger (Telegram on both runtimes, WhatsApp), and only the worker's "yes"
closes the case — on SQLite + memory and PostgreSQL + Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from storage.database import Database
from tests.bot_driver import CommandResult, run_wvb
from tests.messenger_driver import Messenger, Worker, ask, has, onboard, press, reply, report
from tests.test_media_sanitizer import opus_with_tags

STAFF_CHAT = -100_888_000


@pytest.fixture
async def bot(messenger: Messenger) -> AsyncIterator[Messenger]:
    async with messenger.running(staff_chat=STAFF_CHAT):
        yield messenger


async def wvb(bot: Messenger, *args: str) -> CommandResult:
    return await run_wvb(bot.environment(), *args)


async def staff_does(bot: Messenger, *args: str) -> dict[str, object]:
    result = await wvb(bot, "cases", *args, "--json")
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


async def worker_receives(user: Worker, payload: str, since: int = 0) -> None:
    await reply(user, lambda m: any(payload in p for p in m.payloads), since)


async def test_a_case_closes_only_when_the_worker_confirms_the_fix(bot: Messenger) -> None:
    user = bot.user(5_100_001, language_code="en")
    await onboard(user, "en")
    receipt = await report(user, categories=("wages",))
    assert receipt is not None
    ref = receipt.reference

    assert (await staff_does(bot, "acknowledge", ref))["status"] == "acknowledged"
    await reply(user, lambda m: "read by our staff" in m.text)

    await staff_does(bot, "reply", ref, "--text", "Which month was not paid?")
    await worker_receives(user, f"ans:{ref}")
    question = next(m for m in reversed(user.messages()) if f"ans:{ref}" in m.payloads)
    assert "Which month was not paid?" in question.text
    assert question.protected is bot.protects
    await press(user, f"ans:{ref}", lambda m: "Type your answer" in m.text)
    await ask(user, lambda: user.text("October and November"), has("menu:report"))

    refused = await wvb(bot, "cases", "close", ref)
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1
    assert "confirm" in refused.stderr

    remediated = await staff_does(bot, "remediate", ref, "--summary", "Back pay was paid on 1 Dec.")
    assert remediated["status"] == "awaiting_validation"
    await worker_receives(user, f"val:{ref}:yes")
    prompt = next(m for m in reversed(user.messages()) if f"val:{ref}:no" in m.payloads)
    labels = " ".join(prompt.labels)
    for word in ("Yes", "Partly", "No", "Not sure"):
        assert word in labels
    assert "Back pay was paid on 1 Dec." in prompt.text
    await press(user, f"val:{ref}:no", has("comment:skip"))
    await ask(user, lambda: user.text("Only half was paid."), has("menu:report"))
    case = await staff_does(bot, "show", ref)
    assert case["status"] == "reopened"
    texts = [e.get("text") for e in case["entries"]]  # type: ignore[union-attr]
    assert texts[-2:] == ["October and November", "Only half was paid."]
    await bot.telegram.wait_for(lambda m: m.chat_id == STAFF_CHAT and ref in m.text
                                and "'no'" in m.text, timeout=20)  # fmt: skip

    await staff_does(bot, "status", ref, "investigating")
    since = bot.mark()
    await staff_does(bot, "remediate", ref, "--summary", "The rest was paid.",
                     "--summary-in", "en=The rest of the back pay was paid.")  # fmt: skip
    await worker_receives(user, f"val:{ref}:yes", since)
    latest = [m for m in user.messages() if f"val:{ref}:yes" in m.payloads][-1]
    assert "The rest of the back pay was paid." in latest.text
    assert "another language" not in latest.text
    await press(user, f"val:{ref}:yes", has("comment:skip"))
    assert (await staff_does(bot, "show", ref))["status"] == "closed"
    assert (await staff_does(bot, "close", ref))["status"] == "closed"  # nothing left to do

    events = [e["action"] for e in (await staff_does(bot, "show", ref))["events"]]  # type: ignore[index]
    assert events == ["received", "acknowledged", "staff_message", "worker_message",
                      "remediation", "validation_no", "worker_message", "status_changed",
                      "remediation", "validation_yes"]  # fmt: skip


async def test_staff_can_close_unvalidated_only_with_a_reason(bot: Messenger) -> None:
    user = bot.user(5_100_002, language_code="th")
    await onboard(user, "th")
    receipt = await report(user)
    assert receipt is not None
    no_reason = await wvb(bot, "cases", "close", receipt.reference, "--unvalidated")
    assert no_reason.returncode != 0
    assert "--reason" in no_reason.stderr
    closed = await staff_does(bot, "close", receipt.reference, "--unvalidated",
                              "--reason", "The factory closed down.")  # fmt: skip
    assert closed["status"] == "closed_unvalidated"
    listing = await wvb(bot, "cases", "list", "--status", "closed_unvalidated", "--json")
    listed = json.loads(listing.stdout)
    assert [c["reference"] for c in listed] == [receipt.reference]


async def test_the_database_refuses_closed_without_a_workers_yes(bot: Messenger) -> None:
    user = bot.user(5_100_003, language_code="en")
    await onboard(user, "en")
    receipt = await report(user)
    assert receipt is not None
    database = Database(bot.settings.database_url)

    async def close_directly() -> None:
        async with database.transaction() as session:
            await session.execute(text("UPDATE cases SET status = 'closed'"))

    try:
        with pytest.raises(Exception, match="only when a worker confirms"):
            await close_directly()
        async with database.transaction() as session:  # a "yes" from another round
            case_id = (await session.execute(text("SELECT id FROM cases"))).scalar_one()
            await session.execute(
                text(
                    "INSERT INTO validations (case_id, round, respondent, answer, at) "
                    "VALUES (:id, 99, 'reporter', 'yes', CURRENT_TIMESTAMP)"
                ),
                {"id": case_id},
            )
        with pytest.raises(Exception, match="only when a worker confirms"):
            await close_directly()
    finally:
        await database.dispose()


async def test_reply_to_a_forgotten_worker_tells_staff_they_cannot_be_reached(
    bot: Messenger,
) -> None:
    user = bot.user(5_100_004, language_code="en")
    await onboard(user, "en")
    receipt = await report(user)
    assert receipt is not None
    await ask(user, lambda: user.command("forget"), has("forget:yes"))
    await press(user, "forget:yes", lambda m: "/start" in m.text)
    result = await wvb(bot, "cases", "reply", receipt.reference, "--text", "Hello?")
    assert result.returncode == 1
    assert "cannot be reached" in result.stderr


async def test_staff_commands_in_telegram_follow_roles_and_strangers_get_nothing(
    bot: Messenger,
) -> None:
    env = bot.environment()
    for name, role, telegram_id in (("Mai", "case_handler", 7_000_001),
                                    ("Viktor", "viewer", 7_000_002)):  # fmt: skip
        added = await run_wvb(env, "staff", "add", name, "--role", role,
                              "--telegram-id", str(telegram_id))  # fmt: skip
        assert added.returncode == 0, added.stderr
    listed = await run_wvb(env, "staff", "list", "--json")
    assert str(7_000_001) not in listed.stdout, "staff ids are stored only as pseudonyms"

    worker = bot.user(5_200_001, language_code="en")
    await onboard(worker, "en")
    receipt = await report(worker, details=("The fire exit is locked.",))
    assert receipt is not None
    ref = receipt.reference

    handler = bot.staff_member(7_000_001)
    viewer = bot.staff_member(7_000_002)
    stranger = bot.staff_member(7_000_003)

    refused = await ask(viewer, lambda: viewer.text(f"/case {ref}"), lambda m: "cannot" in m.text)
    assert "viewer" in refused.text, "a viewer sees reports only"
    assert ref not in refused.text
    refused = await ask(viewer, lambda: viewer.text(f"/ack {ref}"), lambda m: "cannot" in m.text)
    assert "viewer" in refused.text
    shown = await ask(handler, lambda: handler.text(f"/case {ref}"), lambda m: ref in m.text)
    assert "The fire exit is locked." not in shown.text, "/case is a summary, not the content"
    assert f"http://127.0.0.1:8081/cases/{ref}" in shown.text, "it links to the case page"

    before = stranger.messenger.mark()
    await stranger.text(f"/ack {ref}")
    await stranger.text("/cases")
    await ask(stranger, lambda: stranger.command("help"), lambda m: True)
    assert [m for m in stranger.messenger.sent(before) if "/cases" in m.text or ref in m.text] == []

    acked = await ask(handler, lambda: handler.text(f"/ack {ref}"), lambda m: ref in m.text)
    assert "acknowledged" in acked.text
    await ask(handler, lambda: handler.text(f"/remediate {ref} The exit is open."),
              lambda m: "awaiting_validation" in m.text)  # fmt: skip
    await worker_receives(worker, f"val:{ref}:yes")
    await press(worker, f"val:{ref}:yes", has("comment:skip"))
    closed = await ask(handler, lambda: handler.text(f"/close {ref}"), lambda m: ref in m.text)
    assert "closed" in closed.text

    database = Database(bot.settings.database_url)
    try:
        async with database.sessions() as session:
            rows = (await session.execute(text("SELECT actor, action FROM audit_log"))).all()
    finally:
        await database.dispose()
    entries = {(actor, action) for actor, action in rows}
    assert ("staff:Mai", "case.summary") in entries
    assert ("staff:Viktor", "staff.refused") in entries
    assert ("unregistered", "staff.refused") in entries
    assert ("staff:Mai", "case.acknowledge") in entries
    assert ("staff:Mai", "case.remediate") in entries


async def test_site_validation_asks_other_workers_without_the_case_and_hides_small_counts(
    bot: Messenger,
) -> None:
    env = bot.environment()
    added = await run_wvb(env, "workplaces", "add", "Sunrise Garments", "--json")
    workplace = json.loads(added.stdout)["id"]
    workers = [bot.user(5_300_000 + n, language_code="en") for n in range(7)]
    references = []
    for worker in workers:
        await onboard(worker, "en")
        receipt = await report(worker, workplace=f"wp:{workplace}")
        assert receipt is not None
        references.append(receipt.reference)
        await press(worker, "panel:yes", has("menu:report"))
    reporter, ref = workers[0], references[0]

    since = bot.mark()
    await staff_does(bot, "remediate", ref, "--summary", "Toilets were repaired.",
                     "--site-sample", "6")  # fmt: skip
    questions = await bot.wait_for(
        lambda m: m.to != reporter.address and any(p.startswith("site:") for p in m.payloads),
        count=6,
        timeout=20,
        start=since,
    )
    for question in questions:
        assert "Sunrise Garments" in question.text
        assert "Toilets were repaired." in question.text
        shown = question.text + " ".join(question.payloads) + " ".join(question.labels)
        assert not any(r in shown for r in references)

    asked = {m.to: m for m in questions}
    panel = [w for w in workers[1:] if w.address in asked]
    for worker in panel[:4]:
        payload = next(p for p in asked[worker.address].payload_list if p.endswith(":no"))
        await press(worker, payload, has("menu:report"))
    hidden = (await staff_does(bot, "show", ref))["site_validation"]
    assert hidden == {"asked": 6, "answered": 4,
                      "answers": "hidden: fewer than 5 answers"}  # fmt: skip
    for worker in panel[4:]:
        payload = next(p for p in asked[worker.address].payload_list if p.endswith(":yes"))
        await press(worker, payload, has("menu:report"))
    shown = (await staff_does(bot, "show", ref))["site_validation"]
    assert shown == {"asked": 6, "answered": 6, "answers": {"no": 4, "yes": 2}}
    case = await staff_does(bot, "show", ref)
    assert case["status"] == "awaiting_validation", "other workers' yes never closes a case"


async def test_assignment_voice_answers_and_an_unreachable_worker_are_all_on_the_case(
    bot: Messenger,
) -> None:
    env = bot.environment()
    assert (await run_wvb(env, "staff", "add", "Mai", "--role", "case_handler")).returncode == 0
    user = bot.user(5_400_001, language_code="en")
    await onboard(user, "en")
    receipt = await report(user)
    assert receipt is not None
    ref = receipt.reference
    unknown = await wvb(bot, "cases", "assign", ref, "--to", "Nobody")
    assert unknown.returncode == 1
    assert "staff list" in unknown.stderr
    await staff_does(bot, "assign", ref, "--to", "Mai")
    assert (await staff_does(bot, "show", ref))["assigned_to"] == "Mai"

    await staff_does(bot, "reply", ref, "--text", "Can you tell us more?")
    await worker_receives(user, f"ans:{ref}")
    await press(user, f"ans:{ref}", lambda m: "Type your answer" in m.text)
    voice = opus_with_tags()  # a real Ogg Opus voice note, tagged with its author's name
    await ask(user, lambda: user.voice(voice), has("menu:report"))
    entries = (await staff_does(bot, "show", ref))["entries"]
    [answer] = [e for e in entries if e["kind"] == "voice"]  # type: ignore[union-attr]
    assert answer["author"] == "worker"
    assert answer["mime_type"].startswith("audio/")

    bot.block(user)
    await staff_does(bot, "reply", ref, "--text", "Are you safe?")
    await bot.telegram.wait_for(lambda m: m.chat_id == STAFF_CHAT and ref in m.text
                                and "could not reach" in m.text, timeout=20)  # fmt: skip
    events = [e["action"] for e in (await staff_does(bot, "show", ref))["events"]]  # type: ignore[index]
    assert "worker_unreachable" in events
