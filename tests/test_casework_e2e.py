"""Casework end to end: staff act through the `wvb` CLI, the worker answers in Telegram, and
only the worker's "yes" closes the case — on SQLite + memory and PostgreSQL + Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from storage.database import Database
from tests.bot_driver import (
    CommandResult,
    RunningBot,
    ask,
    bot_with_staff_chat,
    data_of,
    has,
    onboard,
    press,
    report,
    run_wvb,
)
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer, SimulatedUser

STAFF_CHAT = -100_888_000


@pytest.fixture
async def bot(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> AsyncIterator[RunningBot]:
    async with bot_with_staff_chat(backend, fake_telegram, telegram_runtime, STAFF_CHAT) as running:
        yield running


async def wvb(bot: RunningBot, backend: Backend, *args: str) -> CommandResult:
    return await run_wvb(backend.environment(bot.settings), *args)


async def staff_does(bot: RunningBot, backend: Backend, *args: str) -> dict[str, object]:
    result = await wvb(bot, backend, "cases", *args, "--json")
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


async def worker_receives(
    server: FakeTelegramServer, user: SimulatedUser, payload: str, since: int = 0
) -> None:
    await server.wait_for(lambda m: m.chat_id == user.chat_id and any(
        payload in d for d in data_of(m)), timeout=20, start=since)  # fmt: skip


async def test_a_case_closes_only_when_the_worker_confirms_the_fix(
    backend: Backend, bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    server = fake_telegram
    user = server.user(5_100_001, language_code="en")
    await onboard(server, user, "en")
    receipt = await report(server, user, categories=("wages",))
    assert receipt is not None
    ref = receipt.reference

    assert (await staff_does(bot, backend, "acknowledge", ref))["status"] == "acknowledged"
    await server.wait_for(lambda m: m.chat_id == user.chat_id and "read by our staff" in m.text,
                          timeout=20)  # fmt: skip

    await staff_does(bot, backend, "reply", ref, "--text", "Which month was not paid?")
    await worker_receives(server, user, f"ans:{ref}")
    question = next(m for m in reversed(user.messages()) if f"ans:{ref}" in data_of(m))
    assert "Which month was not paid?" in question.text
    assert question.protect_content
    await press(server, user, f"ans:{ref}", lambda m: "Type your answer" in m.text)
    await ask(server, user, lambda: user.send_text("October and November"),
              has("menu:report"))  # fmt: skip

    refused = await wvb(bot, backend, "cases", "close", ref)
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1
    assert "confirm" in refused.stderr

    remediated = await staff_does(
        bot, backend, "remediate", ref, "--summary", "Back pay was paid on 1 Dec."
    )
    assert remediated["status"] == "awaiting_validation"
    await worker_receives(server, user, f"val:{ref}:yes")
    prompt = next(m for m in reversed(user.messages()) if f"val:{ref}:no" in data_of(m))
    labels = " ".join(b["text"] for b in prompt.buttons())
    for word in ("Yes", "Partly", "No", "Not sure"):
        assert word in labels
    assert "Back pay was paid on 1 Dec." in prompt.text
    await press(server, user, f"val:{ref}:no", has("comment:skip"))
    await ask(server, user, lambda: user.send_text("Only half was paid."), has("menu:report"))
    case = await staff_does(bot, backend, "show", ref)
    assert case["status"] == "reopened"
    texts = [e.get("text") for e in case["entries"]]  # type: ignore[union-attr]
    assert texts[-2:] == ["October and November", "Only half was paid."]
    await server.wait_for(lambda m: m.chat_id == STAFF_CHAT and ref in m.text and "'no'" in m.text,
                          timeout=20)  # fmt: skip

    await staff_does(bot, backend, "status", ref, "investigating")
    since = len(server.sent)
    await staff_does(bot, backend, "remediate", ref, "--summary", "The rest was paid.",
               "--summary-in", "en=The rest of the back pay was paid.")  # fmt: skip
    await worker_receives(server, user, f"val:{ref}:yes", since)
    latest = [m for m in user.messages() if f"val:{ref}:yes" in data_of(m)][-1]
    assert "The rest of the back pay was paid." in latest.text
    assert "another language" not in latest.text
    await press(server, user, f"val:{ref}:yes", has("comment:skip"))
    assert (await staff_does(bot, backend, "show", ref))["status"] == "closed"
    assert (await staff_does(bot, backend, "close", ref))[
        "status"
    ] == "closed"  # nothing left to do

    events = [e["action"] for e in (await staff_does(bot, backend, "show", ref))["events"]]  # type: ignore[index]
    assert events == ["received", "acknowledged", "staff_message", "worker_message",
                      "remediation", "validation_no", "worker_message", "status_changed",
                      "remediation", "validation_yes"]  # fmt: skip


async def test_staff_can_close_unvalidated_only_with_a_reason(
    backend: Backend, bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    user = fake_telegram.user(5_100_002, language_code="th")
    await onboard(fake_telegram, user, "th")
    receipt = await report(fake_telegram, user)
    assert receipt is not None
    no_reason = await wvb(bot, backend, "cases", "close", receipt.reference, "--unvalidated")
    assert no_reason.returncode != 0
    assert "--reason" in no_reason.stderr
    closed = await staff_does(bot, backend, "close", receipt.reference, "--unvalidated",
                        "--reason", "The factory closed down.")  # fmt: skip
    assert closed["status"] == "closed_unvalidated"
    listing = await wvb(bot, backend, "cases", "list", "--status", "closed_unvalidated", "--json")
    listed = json.loads(listing.stdout)
    assert [c["reference"] for c in listed] == [receipt.reference]


async def test_the_database_refuses_closed_without_a_workers_yes(
    backend: Backend, bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    user = fake_telegram.user(5_100_003, language_code="en")
    await onboard(fake_telegram, user, "en")
    receipt = await report(fake_telegram, user)
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
    backend: Backend, bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    user = fake_telegram.user(5_100_004, language_code="en")
    await onboard(fake_telegram, user, "en")
    receipt = await report(fake_telegram, user)
    assert receipt is not None
    await ask(fake_telegram, user, lambda: user.send_command("forget"), has("forget:yes"))
    await press(fake_telegram, user, "forget:yes", lambda m: "/start" in m.text)
    result = await wvb(bot, backend, "cases", "reply", receipt.reference, "--text", "Hello?")
    assert result.returncode == 1
    assert "cannot be reached" in result.stderr


async def test_staff_commands_in_telegram_follow_roles_and_strangers_get_nothing(
    backend: Backend, bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    server = fake_telegram
    env = backend.environment(bot.settings)
    for name, role, telegram_id in (("Mai", "case_handler", 7_000_001),
                                    ("Viktor", "viewer", 7_000_002)):  # fmt: skip
        added = await run_wvb(env, "staff", "add", name, "--role", role,
                              "--telegram-id", str(telegram_id))  # fmt: skip
        assert added.returncode == 0, added.stderr
    listed = await run_wvb(env, "staff", "list", "--json")
    assert str(7_000_001) not in listed.stdout, "staff ids are stored only as pseudonyms"

    worker = server.user(5_200_001, language_code="en")
    await onboard(server, worker, "en")
    receipt = await report(server, worker, details=("The fire exit is locked.",))
    assert receipt is not None
    ref = receipt.reference

    handler = server.user(7_000_001, language_code="en")
    viewer = server.user(7_000_002, language_code="en")
    stranger = server.user(7_000_003, language_code="en")

    shown = await ask(server, viewer, lambda: viewer.send_text(f"/case {ref}"),
                      lambda m: ref in m.text)  # fmt: skip
    assert "The fire exit is locked." not in shown.text, "/case is a summary, not the content"
    refused = await ask(server, viewer, lambda: viewer.send_text(f"/ack {ref}"),
                        lambda m: "cannot" in m.text)  # fmt: skip
    assert "viewer" in refused.text

    before = len(server.sent)
    stranger.send_text(f"/ack {ref}")
    stranger.send_text("/cases")
    await ask(server, stranger, lambda: stranger.send_command("help"), lambda m: True)
    assert [m for m in server.sent[before:] if "/cases" in m.text or ref in m.text] == []

    acked = await ask(server, handler, lambda: handler.send_text(f"/ack {ref}"),
                      lambda m: ref in m.text)  # fmt: skip
    assert "acknowledged" in acked.text
    await ask(server, handler, lambda: handler.send_text(f"/remediate {ref} The exit is open."),
              lambda m: "awaiting_validation" in m.text)  # fmt: skip
    await worker_receives(server, worker, f"val:{ref}:yes")
    await press(server, worker, f"val:{ref}:yes", has("comment:skip"))
    closed = await ask(server, handler, lambda: handler.send_text(f"/close {ref}"),
                       lambda m: ref in m.text)  # fmt: skip
    assert "closed" in closed.text

    database = Database(bot.settings.database_url)
    try:
        async with database.sessions() as session:
            rows = (await session.execute(text("SELECT actor, action FROM audit_log"))).all()
    finally:
        await database.dispose()
    entries = {(actor, action) for actor, action in rows}
    assert ("staff:Viktor", "case.summary") in entries
    assert ("staff:Viktor", "staff.refused") in entries
    assert ("unregistered", "staff.refused") in entries
    assert ("staff:Mai", "case.acknowledge") in entries
    assert ("staff:Mai", "case.remediate") in entries


async def test_site_validation_asks_other_workers_without_the_case_and_hides_small_counts(
    backend: Backend, bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    server = fake_telegram
    env = backend.environment(bot.settings)
    added = await run_wvb(env, "workplaces", "add", "Sunrise Garments", "--json")
    workplace = json.loads(added.stdout)["id"]
    workers = [server.user(5_300_000 + n, language_code="en") for n in range(7)]
    references = []
    for worker in workers:
        await onboard(server, worker, "en")
        receipt = await report(server, worker, workplace=f"wp:{workplace}")
        assert receipt is not None
        references.append(receipt.reference)
        await press(server, worker, "panel:yes", has("menu:report"))
    reporter, ref = workers[0], references[0]

    since = len(server.sent)
    await staff_does(bot, backend, "remediate", ref, "--summary", "Toilets were repaired.",
                     "--site-sample", "6")  # fmt: skip
    questions = await server.wait_for(
        lambda m: m.chat_id != reporter.chat_id and "site:" in str(m.buttons()),
        count=6,
        timeout=20,
        start=since,
    )
    for question in questions:
        assert "Sunrise Garments" in question.text
        assert "Toilets were repaired." in question.text
        assert not any(r in question.text or r in str(question.buttons()) for r in references)

    asked = {m.chat_id: m for m in questions}
    panel = [w for w in workers[1:] if w.chat_id in asked]
    for worker in panel[:4]:
        payload = next(b["callback_data"] for b in asked[worker.chat_id].buttons()
                       if b["callback_data"].endswith(":no"))  # fmt: skip
        await press(server, worker, payload, has("menu:report"))
    hidden = (await staff_does(bot, backend, "show", ref))["site_validation"]
    assert hidden == {"asked": 6, "answered": 4,
                      "answers": "hidden: fewer than 5 answers"}  # fmt: skip
    for worker in panel[4:]:
        payload = next(b["callback_data"] for b in asked[worker.chat_id].buttons()
                       if b["callback_data"].endswith(":yes"))  # fmt: skip
        await press(server, worker, payload, has("menu:report"))
    shown = (await staff_does(bot, backend, "show", ref))["site_validation"]
    assert shown == {"asked": 6, "answered": 6, "answers": {"no": 4, "yes": 2}}
    case = await staff_does(bot, backend, "show", ref)
    assert case["status"] == "awaiting_validation", "other workers' yes never closes a case"


async def test_assignment_voice_answers_and_an_unreachable_worker_are_all_on_the_case(
    backend: Backend, bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    server = fake_telegram
    env = backend.environment(bot.settings)
    assert (await run_wvb(env, "staff", "add", "Mai", "--role", "case_handler")).returncode == 0
    user = server.user(5_400_001, language_code="en")
    await onboard(server, user, "en")
    receipt = await report(server, user)
    assert receipt is not None
    ref = receipt.reference
    unknown = await wvb(bot, backend, "cases", "assign", ref, "--to", "Nobody")
    assert unknown.returncode == 1
    assert "staff list" in unknown.stderr
    await staff_does(bot, backend, "assign", ref, "--to", "Mai")
    assert (await staff_does(bot, backend, "show", ref))["assigned_to"] == "Mai"

    await staff_does(bot, backend, "reply", ref, "--text", "Can you tell us more?")
    await worker_receives(server, user, f"ans:{ref}")
    await press(server, user, f"ans:{ref}", lambda m: "Type your answer" in m.text)
    from tests.test_media_sanitizer import opus_with_tags

    voice = opus_with_tags()  # a real Ogg Opus voice note, tagged with its author's name
    await ask(server, user, lambda: user.send_voice(data=voice), has("menu:report"))
    entries = (await staff_does(bot, backend, "show", ref))["entries"]
    [answer] = [e for e in entries if e["kind"] == "voice"]  # type: ignore[union-attr]
    assert answer["author"] == "worker"
    assert answer["mime_type"].startswith("audio/")

    server.block(user.chat_id)
    await staff_does(bot, backend, "reply", ref, "--text", "Are you safe?")
    await server.wait_for(lambda m: m.chat_id == STAFF_CHAT and ref in m.text
                          and "could not reach" in m.text, timeout=20)  # fmt: skip
    events = [e["action"] for e in (await staff_does(bot, backend, "show", ref))["events"]]  # type: ignore[index]
    assert "worker_unreachable" in events
