"""The conversation core on its own: no messenger, no database, microseconds per test.

The worker profiles here are a small in-memory implementation of the ``WorkerProfiles`` port;
the real, database-backed one is exercised in ``test_storage.py`` and the end-to-end tests.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from conversations.engine import ConversationEngine, Turn
from conversations.messages import Inbound, InboundKind
from conversations.ports import (
    CaseReceipt,
    CaseStatusView,
    EvidenceOutcome,
    FetchMedia,
    ReportDraft,
    Services,
    StatusOutcome,
    StatusResult,
    ValidationAnswer,
    WithdrawOutcome,
    WorkerProfile,
    WorkerRef,
    WorkplaceOption,
)
from conversations.state import ConversationState
from domain.statuses import CaseStatus
from locales import LANGUAGES


class ProfilesInMemory:
    def __init__(self) -> None:
        self.saved: dict[str, tuple[str, str]] = {}
        self.subscribed: set[str] = set()
        self.workplaces: dict[str, int | None] = {}
        self.reached: list[str] = []

    async def find(self, pseudonym: str) -> WorkerProfile | None:
        if pseudonym not in self.saved:
            return None
        return WorkerProfile(
            self.saved[pseudonym][0],
            subscribed=pseudonym in self.subscribed,
            workplace_id=self.workplaces.get(pseudonym),
        )

    async def save(self, worker: WorkerRef, language: str) -> None:
        self.saved[worker.pseudonym] = (language, worker.address)

    async def forget(self, pseudonym: str) -> None:
        self.saved.pop(pseudonym, None)
        self.subscribed.discard(pseudonym)

    async def set_subscribed(self, pseudonym: str, subscribed: bool) -> None:
        if subscribed:
            self.subscribed.add(pseudonym)
        else:
            self.subscribed.discard(pseudonym)

    async def set_workplace(self, pseudonym: str, workplace_id: int | None) -> None:
        self.workplaces[pseudonym] = workplace_id

    async def mark_reachable(self, worker: WorkerRef) -> None:
        self.reached.append(worker.pseudonym)


class CasesInMemory:
    """The ``Cases`` port without a database; ``services.cases`` is tested on real ones."""

    def __init__(self) -> None:
        self.submitted: dict[str, tuple[ReportDraft, CaseReceipt]] = {}
        self.evidence: dict[str, list[bytes]] = {}
        self.contacts: str | None = "Hotline 1300"
        self.codes = iter(f"CODE-{n:04d}-AAAA-BBBB" for n in range(1000))
        self.withdrawn: list[str] = []
        self.wait = 0  # seconds until the worker may report again (the daily quota)
        self.staff_reachable = True  # a staff chat is configured

    async def workplaces(self) -> list[WorkplaceOption]:
        return [WorkplaceOption(1, "Golden Fish Co."), WorkplaceOption(2, "Sunrise Garments")]

    async def emergency_contacts(self, language: str, workplace_id: int | None) -> str | None:
        return self.contacts

    async def can_alert_staff(self) -> bool:
        return self.staff_reachable

    async def report_wait(self, pseudonym: str) -> int:
        return self.wait

    async def add_evidence(
        self,
        draft_key: str,
        kind: str,
        fetch: FetchMedia,
        declared_mime: str | None,
        *,
        pseudonym: str,
    ) -> EvidenceOutcome:
        data = await fetch()
        if data == b"virus":
            return EvidenceOutcome.UNSUPPORTED
        if data == b"bomb":
            return EvidenceOutcome.REFUSED
        self.evidence.setdefault(draft_key, []).append(data)
        return EvidenceOutcome.STORED

    async def discard_draft(self, draft_key: str) -> None:
        self.evidence.pop(draft_key, None)

    def new_receipt_code(self) -> str:
        return next(self.codes)

    async def submit(self, worker: WorkerRef, draft: ReportDraft) -> CaseReceipt:
        if draft.key not in self.submitted:
            now = datetime(2026, 11, 21, tzinfo=UTC)
            receipt = CaseReceipt(
                f"REF{len(self.submitted):05d}",
                urgent=draft.danger_now or "forced" in draft.categories,
                acknowledge_due=now + timedelta(days=7),
                response_due=now + timedelta(days=90),
            )
            self.submitted[draft.key] = (draft, receipt)
        return self.submitted[draft.key][1]

    async def check_status(self, pseudonym: str, reference: str, code: str) -> StatusResult:
        if (reference, code) != ("MINE-0001", "RIGHT-CODE"):
            return StatusResult(StatusOutcome.NOT_FOUND)
        now = datetime(2026, 11, 21, tzinfo=UTC)
        view = CaseStatusView("MINE-0001", CaseStatus.RECEIVED, now, now, now, False, (),
                              withdraw_token=f"proof-for-{pseudonym}")  # fmt: skip
        return StatusResult(StatusOutcome.FOUND, view)

    async def withdraw(self, pseudonym: str, token: str) -> WithdrawOutcome:
        self.withdrawn.append(token)
        if token != f"proof-for-{pseudonym}":
            return WithdrawOutcome.NOT_POSSIBLE
        return WithdrawOutcome.WITHDRAWN


class CaseworkInMemory:
    def __init__(self) -> None:
        self.answers: list[tuple[str, str]] = []
        self.messages: list[tuple[str, str]] = []
        self.awaiting: tuple[str, ...] = ()  # cases waiting for the worker's answer about a fix

    async def awaiting_answer(self, worker: WorkerRef) -> tuple[str, ...]:
        return self.awaiting

    async def record_validation(self, worker: WorkerRef, reference: str, answer: str) -> str:
        if reference != "MINE-0001":
            return ValidationAnswer.NOT_APPLICABLE
        self.answers.append((reference, answer))
        outcomes = {"yes": ValidationAnswer.CLOSED, "unsure": ValidationAnswer.NOTED}
        return outcomes.get(answer, ValidationAnswer.REOPENED)

    async def add_worker_message(self, worker: WorkerRef, reference: str, text: str) -> bool:
        if reference != "MINE-0001":
            return False
        self.messages.append((reference, text))
        return True

    async def add_worker_file(
        self, worker: WorkerRef, reference: str, kind: str, fetch: FetchMedia, mime: str | None
    ) -> EvidenceOutcome:
        self.messages.append((reference, f"{kind}:{(await fetch()).decode()}"))
        return EvidenceOutcome.STORED

    async def join_site_panel(self, worker: WorkerRef, reference: str) -> bool:
        self.messages.append((reference, "joined panel"))
        return True

    async def record_site_answer(self, worker: WorkerRef, token: str, answer: str) -> bool:
        self.answers.append((f"site:{token}", answer))
        return token == "TOKEN"

    async def record_retaliation_answer(
        self, worker: WorkerRef, reference: str, answer: str, receipt_code: str
    ) -> tuple[str, bool] | None:
        if reference != "MINE-0001" or answer != "yes":
            return None
        self.answers.append((reference, f"retaliation:{receipt_code}"))
        return "NEWC-0002", len(self.answers) == 1


class LearningInMemory:
    def __init__(self) -> None:
        self.feedback: list[tuple[str, str, bool]] = []

    async def record_feedback(self, topic: str, language: str, helpful: bool) -> None:
        self.feedback.append((topic, language, helpful))


WORKER = WorkerRef(pseudonym="p" * 64, channel="test", address="42")


class Chat:
    """Drives the engine turn by turn, keeping the state the way a state store would."""

    def __init__(self, language_hint: str | None = None) -> None:
        self.profiles = ProfilesInMemory()
        self.cases = CasesInMemory()
        self.casework = CaseworkInMemory()
        self.learning = LearningInMemory()
        self.engine = ConversationEngine(
            Services(
                profiles=self.profiles,
                cases=self.cases,
                casework=self.casework,
                learning=self.learning,
            )
        )
        self.state: ConversationState | None = None
        self.hint = language_hint

    async def send(self, inbound: Inbound) -> Turn:
        if self.state is not None:  # round-trip through JSON, as every store does
            self.state = ConversationState.from_json(self.state.to_json())
        turn = await self.engine.handle(WORKER, inbound, self.state)
        self.state = turn.state
        assert turn.replies, "the bot must always answer"
        return turn

    async def command(self, name: str) -> Turn:
        return await self.send(Inbound.command_of(name, self.hint))

    async def text(self, text: str) -> Turn:
        return await self.send(Inbound.text_of(text, self.hint))

    async def press(self, payload: str) -> Turn:
        return await self.send(Inbound.choice_of(payload, self.hint))

    async def onboard(self, language: str = "en") -> Turn:
        await self.command("start")
        await self.press(f"lang:{language}")
        await self.press("privacy:ok")
        return await self.press("sub:no")


def last_text(turn: Turn) -> str:
    return turn.replies[-1].text


def payloads(turn: Turn) -> list[str]:
    return [choice.payload for choice in turn.replies[-1].choices]


async def test_start_offers_every_language_named_in_its_own_script() -> None:
    turn = await Chat().command("start")
    labels = [choice.label for choice in turn.replies[-1].choices]
    assert labels == [
        "English",
        "ไทย",
        "မြန်မာ",
        "ខ្មែរ",
        "नेपाली",
        "বাংলা",
        "Bahasa Indonesia",
        "Español",
    ]
    assert set(labels) == set(LANGUAGES.values())


async def test_messenger_language_is_marked_and_prompts_in_it() -> None:
    turn = await Chat(language_hint="th-TH").command("start")
    assert turn.replies[-1].choices[1].label == "ไทย ✓", "marked in its place, not moved"
    assert "ภาษา" in last_text(turn)  # the picker speaks Thai before anything is chosen


async def test_onboarding_picks_language_shows_privacy_then_menu_and_saves_profile() -> None:
    chat = Chat()
    await chat.command("start")
    privacy = await chat.press("lang:th")
    assert chat.state is not None
    assert chat.state.step == "privacy"
    assert "/forget" in last_text(privacy)
    assert chat.profiles.saved == {}, "nothing is stored before the privacy notice is accepted"
    offer = await chat.press("privacy:ok")
    assert chat.state.step == "subscribe.offer"
    assert payloads(offer) == ["sub:yes", "sub:no", "nav:back"]
    assert chat.profiles.subscribed == set(), "nobody is subscribed without saying yes"
    menu = await chat.press("sub:no")
    assert chat.state.step == "menu"
    assert payloads(menu) == [
        "menu:learn",
        "menu:report",
        "menu:status",
        "menu:language",
        "menu:help",
    ]
    assert chat.profiles.saved == {WORKER.pseudonym: ("th", "42")}


async def test_typed_number_presses_that_choice() -> None:
    chat = Chat()
    await chat.command("start")
    await chat.text("2")  # ไทย is the second choice
    assert chat.state is not None
    assert chat.state.language == "th"
    assert chat.state.step == "privacy"


async def test_language_name_typed_out_is_understood() -> None:
    chat = Chat()
    await chat.command("start")
    await chat.text("Español")
    assert chat.state is not None
    assert chat.state.language == "es"


@pytest.mark.parametrize(
    "inbound",
    [
        Inbound.text_of(""),
        Inbound.text_of("   "),
        Inbound.text_of("x" * 10_000),
        Inbound.text_of("99"),
        Inbound.media_of("sticker"),
        Inbound.media_of("photo", caption="look"),
        Inbound(InboundKind.UNSUPPORTED),
        Inbound.choice_of("no-such-button"),
        Inbound.choice_of("lang:xx"),
    ],
    ids=[
        "empty",
        "blank",
        "10k",
        "out-of-range",
        "sticker",
        "photo",
        "edited",
        "unknown-callback",
        "unknown-lang",
    ],
)
@pytest.mark.parametrize("step", ["language", "privacy", "menu"])
async def test_unexpected_input_gets_a_short_reprompt_at_every_step(
    step: str, inbound: Inbound
) -> None:
    chat = Chat()
    await chat.command("start")
    if step in ("privacy", "menu"):
        await chat.press("lang:en")
    if step == "menu":
        await chat.press("privacy:ok")
        await chat.press("sub:no")
    assert chat.state is not None
    assert chat.state.step == step
    turn = await chat.send(inbound)
    assert chat.state.step == step, "garbage must not move the conversation"
    assert len(turn.replies) == 1
    reply = turn.replies[0]
    assert reply.choices, "the re-prompt repeats the question with its choices"
    assert len(reply.text) < 1500
    assert "x" * 100 not in reply.text, "the worker's text is never echoed back"


async def test_back_returns_to_the_previous_step() -> None:
    chat = Chat()
    await chat.command("start")
    await chat.press("lang:en")
    turn = await chat.press("nav:back")
    assert chat.state is not None
    assert chat.state.step == "language"
    assert "lang:en" in payloads(turn)


async def test_back_cancel_and_menu_are_understood_as_typed_words_in_the_workers_language() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.press("menu:language")
    assert chat.state is not None
    assert chat.state.step == "language"
    await chat.text("back")
    assert chat.state.step == "menu"
    await chat.press("menu:language")
    await chat.text("Cancel")
    assert chat.state.step == "menu"
    await chat.press("menu:language")
    await chat.text("MENU")
    assert chat.state.step == "menu"


async def test_menu_help_and_language_work_from_anywhere() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.press("menu:language")
    help_turn = await chat.command("help")
    assert "/report" in help_turn.replies[0].text
    assert chat.state is not None
    assert chat.state.step == "menu"
    await chat.command("language")
    assert chat.state.step == "language"
    await chat.command("menu")
    assert chat.state.step == "menu"


async def test_changing_language_after_onboarding_updates_profile_and_returns_to_menu() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("language")
    turn = await chat.press("lang:es")
    assert chat.state is not None
    assert chat.state.step == "menu"
    assert "Español" in turn.replies[0].text
    assert chat.profiles.saved[WORKER.pseudonym][0] == "es"


async def test_offer_yes_subscribes_and_asks_the_workplace_which_can_be_skipped() -> None:
    chat = Chat()
    await chat.command("start")
    await chat.press("lang:en")
    await chat.press("privacy:ok")
    question = await chat.press("sub:yes")
    assert chat.profiles.subscribed == {WORKER.pseudonym}
    assert payloads(question) == ["sub:wp:1", "sub:wp:2", "sub:wp-skip"]
    assert "Golden Fish Co." in [choice.label for choice in question.replies[-1].choices]
    menu = await chat.text("2")  # a typed number picks Sunrise Garments
    assert chat.profiles.workplaces == {WORKER.pseudonym: 2}
    assert "menu:report" in payloads(menu)
    assert "/stop" in menu.replies[0].text


async def test_a_workplace_not_offered_is_refused() -> None:
    chat = Chat()
    await chat.command("start")
    await chat.press("lang:en")
    await chat.press("privacy:ok")
    await chat.press("sub:yes")
    turn = await chat.press("sub:wp:99")
    assert chat.profiles.workplaces == {}
    assert chat.state is not None
    assert chat.state.step == "subscribe.workplace"
    assert "sub:wp-skip" in payloads(turn)


async def test_stop_and_subscribe_change_the_subscription_in_the_workers_language() -> None:
    chat = Chat()
    await chat.onboard("es")
    assert chat.profiles.subscribed == set()
    await chat.command("subscribe")
    turn = await chat.press("sub:wp-skip")
    assert chat.profiles.subscribed == {WORKER.pseudonym}
    assert chat.profiles.workplaces == {}, "skipping keeps no workplace"
    assert "/stop" in turn.replies[0].text
    turn = await chat.command("stop")
    assert chat.profiles.subscribed == set()
    assert "/subscribe" in turn.replies[0].text
    assert "broadcast messages" not in turn.replies[0].text  # Spanish, not the English source
    assert chat.state is not None
    assert chat.state.step == "menu"


async def test_stop_before_onboarding_leads_to_the_language_picker_and_stores_nothing() -> None:
    chat = Chat()
    turn = await chat.command("stop")
    assert "lang:en" in payloads(turn)
    assert chat.profiles.saved == {}
    assert chat.profiles.subscribed == set()


async def test_every_turn_of_a_known_worker_tells_profiles_they_are_reachable() -> None:
    chat = Chat()
    await chat.onboard("en")
    before = len(chat.profiles.reached)
    await chat.command("menu")
    assert len(chat.profiles.reached) == before + 1


async def test_unknown_command_lists_the_commands() -> None:
    chat = Chat()
    await chat.onboard("en")
    turn = await chat.command("frobnicate")
    assert "/start" in turn.replies[0].text
    assert "/forget" in turn.replies[0].text


async def test_first_message_without_start_begins_onboarding() -> None:
    chat = Chat(language_hint="km")
    turn = await chat.text("hello")
    assert chat.state is not None
    assert chat.state.step == "language"
    assert turn.replies[-1].choices[3].label == "ខ្មែរ ✓"


async def test_returning_worker_with_expired_state_lands_in_the_menu_in_their_language() -> None:
    chat = Chat()
    await chat.onboard("th")
    chat.state = None  # the idle draft expired; the profile remains
    turn = await chat.text("hello")
    assert chat.state is not None
    assert chat.state.step == "menu"
    assert chat.state.language == "th"
    assert "menu:report" in payloads(turn)


async def test_state_from_an_unknown_version_starts_over() -> None:
    assert ConversationState.from_json('{"v": 999, "step": "x"}') == ConversationState()


def photo(data: bytes = b"jpeg-bytes", caption: str = "") -> Inbound:
    async def fetch() -> bytes:
        return data

    return Inbound.media_of("photo", caption, mime="image/jpeg", fetch=fetch)


async def walk_to_review(chat: Chat, *, affected: str = "few", danger: str = "no") -> Turn:
    await chat.onboard("en")
    await chat.command("report")
    await chat.press("cat:wages")
    await chat.press("cat:documents")
    await chat.press("report:done")
    await chat.press("wp:2")
    await chat.text("Best Jobs Agency")
    await chat.text("They keep my passport.")
    await chat.send(photo(caption="my payslip"))
    await chat.press("report:done")
    await chat.press("when:ongoing")
    await chat.press(f"who:{affected}")
    await chat.press(f"danger:{danger}")
    return await chat.press("share:confidential")


async def test_a_report_is_collected_reviewed_and_submitted_once() -> None:
    chat = Chat()
    review = await walk_to_review(chat)
    text = last_text(review)
    for expected in (
        "Wages and pay",
        "Documents taken",
        "Sunrise Garments",
        "Best Jobs Agency",
        "They keep my passport.",
        "1 file",
        "Keep it confidential",
    ):
        assert expected in text, expected  # fmt: skip
    assert payloads(review) == ["review:send", "review:edit", "nav:cancel"]
    turn = await chat.press("review:send")
    receipt = turn.replies[0]
    assert receipt.protect_content
    assert "REF00000" in receipt.text
    assert "CODE-0000-AAAA-BBBB" in receipt.text
    [(draft, _)] = chat.cases.submitted.values()
    assert draft.categories == ("wages", "documents")
    assert draft.workplace_id == 2
    assert draft.agency == "Best Jobs Agency"
    assert draft.details == ("They keep my passport.", "my payslip")
    assert chat.cases.evidence[draft.key] == [b"jpeg-bytes"]
    assert chat.state is not None
    assert chat.state.step == "site.optin", "a listed workplace: may we ask about it later?"
    await chat.press("panel:yes")
    assert chat.casework.messages == [("REF00000", "joined panel")]
    assert chat.state.step == "menu"
    assert "report" not in chat.state.data
    again = await chat.press("review:send")  # a stale second press
    assert len(chat.cases.submitted) == 1
    assert again.replies


async def test_categories_toggle_in_place_and_need_one_before_done() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("report")
    empty = await chat.press("report:done")
    assert "at least one" in empty.replies[0].text
    turn = await chat.press("cat:safety")
    assert turn.replies[0].replace_previous
    assert "✅" in next(c.label for c in turn.replies[0].choices if c.payload == "cat:safety")
    turn = await chat.press("cat:safety")
    assert "✅" not in next(c.label for c in turn.replies[0].choices if c.payload == "cat:safety")


async def test_urgent_category_shows_emergency_contacts_at_once() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("report")
    await chat.press("cat:forced")
    turn = await chat.press("report:done")
    assert "Hotline 1300" in turn.replies[0].text
    assert chat.state is not None
    assert chat.state.step == "report.workplace"


async def test_danger_now_shows_a_fallback_when_no_contacts_are_configured() -> None:
    chat = Chat()
    chat.cases.contacts = None
    await chat.onboard("en")
    await chat.command("report")
    await chat.press("cat:wages")
    await chat.press("report:done")
    await chat.press("wp:skip")
    await chat.press("agency:none")
    await chat.text("no pay for two months")
    await chat.press("report:done")
    await chat.press("when:week")
    await chat.press("who:many")
    turn = await chat.press("danger:yes")
    assert "emergency number" in turn.replies[0].text
    assert chat.state is not None
    assert chat.state.step == "report.confidentiality"
    again = await chat.press("nav:back")  # the contacts are not repeated on the way back
    assert all("emergency number" not in r.text for r in again.replies)


async def test_only_me_and_share_warns_before_review() -> None:
    chat = Chat()
    await walk_to_review(chat, affected="me")
    turn = await chat.press("share:share")  # change the answer through the step
    assert chat.state is not None
    assert chat.state.step == "report.review"  # confidential was chosen first; now edit:
    await chat.press("review:edit")
    await chat.press("edit:confidentiality")
    turn = await chat.press("share:share")
    assert chat.state.step == "report.warning"
    assert "guess who reported" in turn.replies[-1].text
    review = await chat.press("warn:confidential")
    assert chat.state.step == "report.review"
    assert "Keep it confidential" in last_text(review)


async def test_editing_a_section_returns_to_the_review() -> None:
    chat = Chat()
    await walk_to_review(chat)
    await chat.press("review:edit")
    await chat.press("edit:occurred")
    review = await chat.press("when:earlier")
    assert chat.state is not None
    assert chat.state.step == "report.review"
    assert "More than a month ago" in last_text(review)


async def test_typed_numbers_press_choices_and_typed_names_answer_free_questions() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("report")
    await chat.text("1")  # wages
    await chat.text("14")  # Done
    assert chat.state is not None
    assert chat.state.step == "report.workplace"
    await chat.text("Blue Factory, Mae Sot")
    assert chat.state.data["report"]["workplace_text"] == "Blue Factory, Mae Sot"
    turn = await chat.text("2")  # the agency's name is asked for: "2" is a name, not Back
    assert chat.state.step == "report.details"
    assert chat.state.data["report"]["agency"] == "2"
    assert not turn.replies[-1].numbered, "the console must not number what is not numbers"
    await chat.text("3")  # describing: three, not the third button (Menu)
    assert chat.state.step == "report.details"
    assert chat.state.data["report"]["details"] == ["3"]


async def test_a_typed_number_answering_staff_is_the_answer_not_the_menu() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.press("ans:MINE-0001")
    await chat.text("1")  # "how many days were you not paid?"
    assert chat.casework.messages == [("MINE-0001", "1")]


async def test_typing_no_where_an_agency_name_is_asked_means_none() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("report")
    await chat.press("cat:wages")
    await chat.press("report:done")
    await chat.press("wp:skip")
    await chat.text("No")
    assert chat.state is not None
    assert chat.state.data["report"]["agency"] is None


async def test_cancel_discards_the_draft_and_its_files() -> None:
    chat = Chat()
    await walk_to_review(chat)
    assert chat.cases.evidence
    confirm = await chat.press("nav:cancel")
    assert payloads(confirm) == ["cancel:no", "cancel:yes"], "keeping it comes first"
    assert chat.cases.evidence, "nothing deleted before the worker confirms"
    await chat.press("cancel:yes")
    assert chat.cases.evidence == {}
    assert chat.state is not None
    assert "report" not in chat.state.data


async def test_unfinished_report_can_be_resumed() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("report")
    await chat.press("cat:hours")
    await chat.press("report:done")
    await chat.command("menu")
    turn = await chat.command("report")
    assert payloads(turn)[:2] == ["resume:continue", "resume:new"]
    turn = await chat.press("resume:continue")
    assert chat.state is not None
    assert chat.state.step == "report.workplace", "straight to the first open question"
    assert "wp:skip" in payloads(turn)
    back = await chat.press("nav:back")
    assert chat.state.step == "report.categories", "Back reaches the answers given before"
    hours = next(c.label for c in back.replies[-1].choices if c.payload == "cat:hours")
    assert hours.startswith("✅"), "with the answer kept"


async def test_cancel_typed_anywhere_asks_before_deleting_a_started_report() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("report")
    await chat.press("cat:hours")
    await chat.press("report:done")
    confirm = await chat.text("Cancel")
    assert payloads(confirm) == ["cancel:no", "cancel:yes"]
    back = await chat.press("cancel:no")
    assert chat.state is not None
    assert chat.state.step == "report.workplace", "back where Cancel was typed"
    assert "wp:skip" in payloads(back)
    assert chat.state.data["report"]["categories"] == ["hours"]


async def test_unsupported_files_and_stickers_are_refused_politely() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("report")
    await chat.press("cat:other")
    await chat.press("report:done")
    await chat.press("wp:skip")
    await chat.press("agency:none")
    turn = await chat.send(photo(b"virus"))
    assert "can't keep this type of file" in turn.replies[0].text
    turn = await chat.send(Inbound.media_of("sticker"))
    assert "Please send text, photos" in turn.replies[0].text
    assert chat.state is not None
    assert chat.state.data["report"]["files"] == 0


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "I could not safely check this file"), ("th", "เราตรวจไฟล์นี้อย่างปลอดภัยไม่ได้")],
)
async def test_a_file_refused_by_the_sandbox_is_explained_and_the_report_goes_on(
    language: str, expected: str
) -> None:
    chat = Chat()
    await chat.onboard(language)
    await chat.command("report")
    await chat.press("cat:other")
    await chat.press("report:done")
    await chat.press("wp:skip")
    await chat.press("agency:none")
    turn = await chat.send(photo(b"bomb"))
    assert expected in turn.replies[0].text
    assert "report:done" in payloads(turn)  # still collecting: send more, or press Done
    assert chat.state is not None
    assert chat.state.data["report"]["files"] == 0
    await chat.send(photo(b"a good photo"))
    assert chat.state.data["report"]["files"] == 1


async def test_status_asks_reference_then_code_and_erases_the_code_message() -> None:
    chat = Chat(language_hint="es")
    turn = await chat.command("status")  # works before onboarding, e.g. on a new phone
    assert "K7M3-9Q2X" in turn.replies[0].text
    bad = await chat.text("12")
    assert "K7M3-9Q2X" in bad.replies[0].text
    await chat.text("ABCD-EFGH")
    turn = await chat.text("WRONG-CODE")
    assert turn.effects.erase_inbound
    assert "/status" in turn.replies[0].text


async def test_a_worker_withdraws_their_report_after_the_code_keeping_it_is_the_first_choice() -> (
    None
):
    chat = Chat()
    await chat.onboard("en")
    await chat.command("status")
    await chat.text("MINE-0001")
    found = await chat.text("RIGHT-CODE")
    assert payloads(found)[:1] == ["status:withdraw"]
    assert chat.state is not None
    assert "RIGHT-CODE" not in chat.state.to_json(), "the code is not kept, only the proof"
    confirm = await chat.press("status:withdraw")
    assert payloads(confirm) == ["withdraw:no", "withdraw:yes"], "the safe choice first"
    assert "MINE-0001" in confirm.replies[-1].text
    kept = await chat.press("withdraw:no")
    assert chat.cases.withdrawn == []
    assert "menu:report" in payloads(kept)
    assert await chat.press("withdraw:yes") is not None  # an old button: no proof any more
    assert chat.cases.withdrawn == []

    await chat.command("status")
    await chat.text("MINE-0001")
    await chat.text("RIGHT-CODE")
    await chat.press("status:withdraw")
    done = await chat.press("withdraw:yes")
    assert chat.cases.withdrawn == [f"proof-for-{WORKER.pseudonym}"]
    said = "\n".join(reply.text for reply in done.replies)
    assert "Report MINE-0001 is withdrawn." in said
    assert "Deleted now: everything you wrote and every file you sent" in said
    assert "Kept, so that reports can still be counted" in said
    assert "menu:report" in payloads(done)


async def test_forget_erases_profile_and_state_after_confirmation() -> None:
    chat = Chat()
    await chat.onboard("th")
    keep = await chat.command("forget")
    assert payloads(keep) == ["forget:no", "forget:yes"], "keeping everything comes first"
    assert "staff will not" not in last_text(keep).casefold(), "no case waits for an answer"
    await chat.press("forget:no")
    assert chat.profiles.saved
    await chat.command("forget")
    turn = await chat.press("forget:yes")
    assert turn.forget_state
    assert turn.effects.erase_chat
    assert chat.profiles.saved == {}


async def test_validation_answer_is_understood_at_any_step_and_asks_for_a_comment() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("report")  # in the middle of something else
    turn = await chat.press("val:MINE-0001:no")
    assert "open again" in turn.replies[0].text
    assert chat.state is not None
    assert chat.state.step == "validation.comment"
    await chat.text("The wages are still late.")
    assert chat.casework.answers == [("MINE-0001", "no")]
    assert chat.casework.messages == [("MINE-0001", "The wages are still late.")]
    assert chat.state.step == "menu"


async def test_yes_closes_and_tells_the_worker_how_to_come_back() -> None:
    chat = Chat()
    await chat.onboard("en")
    turn = await chat.press("val:MINE-0001:yes")
    assert "closed" in turn.replies[0].text
    assert "/report" in turn.replies[0].text
    await chat.press("comment:skip")
    assert chat.state is not None
    assert chat.state.step == "menu"
    assert chat.casework.messages == []


async def test_a_button_for_someone_elses_case_does_nothing() -> None:
    chat = Chat()
    await chat.onboard("en")
    turn = await chat.press("val:OTHR-0002:yes")
    assert "not linked to this chat" in turn.replies[0].text
    assert chat.casework.answers == []


async def test_answering_a_staff_follow_up_adds_it_to_the_case() -> None:
    chat = Chat()
    await chat.onboard("en")
    turn = await chat.press("ans:MINE-0001")
    assert "MINE-0001" in turn.replies[0].text
    await chat.text("It happened on the night shift.")
    assert chat.casework.messages == [("MINE-0001", "It happened on the night shift.")]


async def test_retaliation_yes_opens_a_new_case_and_shows_its_code_once() -> None:
    chat = Chat()
    await chat.onboard("en")
    turn = await chat.press("ret:MINE-0001:yes")
    receipt = turn.replies[0]
    assert receipt.protect_content
    assert "NEWC-0002" in receipt.text
    code = chat.casework.answers[0][1].removeprefix("retaliation:")
    assert code in receipt.text
    assert chat.state is not None
    assert chat.state.step == "validation.comment"
    again = await chat.press("ret:MINE-0001:yes")
    assert code not in " ".join(r.text for r in again.replies)
    no = await chat.press("ret:MINE-0001:no")
    assert "/report" in no.replies[0].text


async def test_a_site_question_is_answered_by_token_without_any_reference() -> None:
    chat = Chat()
    await chat.onboard("en")
    turn = await chat.press("site:TOKEN:partly")
    assert "Thank you for your answer" in turn.replies[0].text
    assert chat.casework.answers == [("site:TOKEN", "partly")]
    stale = await chat.press("site:OLD:yes")
    assert "not linked" in stale.replies[0].text


async def test_a_voice_note_can_answer_staff() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.press("ans:MINE-0001")

    async def voice() -> bytes:
        return b"ogg"

    turn = await chat.send(Inbound.media_of("voice", mime="audio/ogg", fetch=voice))
    assert "added to your report" in turn.replies[0].text
    assert chat.casework.messages == [("MINE-0001", "voice:ogg")]


async def test_forget_warns_first_when_staff_wait_for_the_workers_answer() -> None:
    chat = Chat()
    await chat.onboard("en")
    chat.casework.awaiting = ("MINE-0001",)
    warned = await chat.command("forget")
    assert "staff will not be able to ask you whether it was fixed" in warned.replies[-1].text
    assert "MINE-0001" in warned.replies[-1].text
    again = await chat.text("what?")  # a re-prompt repeats the warning
    assert "MINE-0001" in again.replies[-1].text
    chat.casework.awaiting = ("MINE-0001", "MINE-0002")
    both = await chat.command("forget")
    assert "MINE-0001, MINE-0002" in both.replies[-1].text
    assert "whether they were fixed" in both.replies[-1].text


async def test_status_of_a_case_whose_reporter_used_forget_does_not_promise_to_ask() -> None:
    from conversations.status import describe
    from conversations.turn import TurnContext

    now = datetime(2026, 11, 21, tzinfo=UTC)
    view = CaseStatusView("MINE-0001", CaseStatus.AWAITING_VALIDATION, now, now, now, True, ())
    ctx = TurnContext(WORKER, ConversationState(language="en"), Chat().engine.services)
    assert "We will ask you" in describe(ctx, view)
    unlinked = describe(ctx, replace(view, reporter_linked=False))
    assert "We will ask you" not in unlinked
    assert "/forget" in unlinked


async def test_starting_a_new_report_over_an_unfinished_one_asks_first() -> None:
    """Starting a new report deletes the unfinished one: asked once more, keeping it first."""
    chat = Chat()
    await chat.onboard("en")
    await chat.command("report")
    await chat.press("cat:hours")
    await chat.command("report")  # the unfinished report: continue it, or start a new one
    confirm = await chat.press("resume:new")
    assert payloads(confirm) == ["cancel:no", "cancel:yes"]
    await chat.press("cancel:no")
    assert chat.state is not None
    assert chat.state.step == "report.resume", "back to the choice, nothing deleted"
    assert chat.state.data["report"]["categories"] == ["hours"]
    await chat.press("resume:new")
    fresh = await chat.press("cancel:yes")
    assert chat.state.step == "report.categories"
    assert not [c for c in fresh.replies[-1].choices if c.label.startswith("✅")]
    assert "report_after_delete" not in chat.state.data
    # Cancel typed at the resume screen deletes the report and goes to the menu, as anywhere.
    await chat.press("cat:hours")
    await chat.command("report")
    await chat.press("resume:new")
    await chat.press("nav:back")  # changed their mind: back at the resume screen
    await chat.text("Cancel")
    await chat.press("cancel:yes")
    assert chat.state.step == "menu"
