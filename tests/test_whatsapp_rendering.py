"""WhatsApp rendering: every message shape, every limit, splitting without breaking a word or a
grapheme cluster, escaping, bold, and every screen of the real engine in every shipped language.

No network: ``render`` is pure. The Graph bodies' shapes are those of docs/design/whatsapp.md §3.
"""

from __future__ import annotations

import json
import unicodedata
from collections import deque
from typing import Any

import pytest

from bot.channels.whatsapp.rendering import (
    ELLIPSIS,
    MARKUP,
    MAX_BODY,
    MAX_BUTTON_ID,
    MAX_BUTTON_TITLE,
    MAX_BUTTONS,
    MAX_LIST_BUTTON,
    MAX_ROW_DESCRIPTION,
    MAX_ROW_ID,
    MAX_ROW_TITLE,
    MAX_ROWS,
    MAX_TEXT,
    WORD_JOINER,
    WaPayload,
    fit_label,
    fit_labels,
    graphemes,
    is_grapheme_boundary,
    render,
    split_text,
)
from conversations.commands import WORKER_COMMANDS
from conversations.engine import ConversationEngine
from conversations.messages import Choice, Inbound, Outbound, utf16_length
from conversations.ports import Services
from conversations.state import ConversationState
from locales import LANGUAGES, translator
from tests.test_conversation_core import (
    WORKER,
    CasesInMemory,
    CaseworkInMemory,
    LearningInMemory,
    ProfilesInMemory,
)

THAI = "การคุ้มครองแรงงานข้ามชาติที่ทำงานในโรงงานน้ำตาลและได้รับค่าจ้างต่ำกว่ากฎหมายกำหนด"
BURMESE = "အလုပ်သမားများ၏အခွင့်အရေးများကိုကာကွယ်ရန်ကျွန်ုပ်တို့သည်ဤဝန်ဆောင်မှုကိုပြုလုပ်ထားသည်"
KHMER = "ការការពារសិទ្ធិរបស់កម្មករចំណាកស្រុកដែលធ្វើការនៅក្នុងរោងចក្រស្ករស"


def choices(count: int, label: str = "Choice {n}") -> tuple[Choice, ...]:
    return tuple(Choice(label.format(n=n), f"pick:{n}") for n in range(1, count + 1))


def body_of(payload: WaPayload) -> str:
    if payload["type"] == "text":
        return str(payload["text"]["body"])
    return str(payload["interactive"]["body"]["text"])


def unescaped(text: str) -> str:
    return text.replace(WORD_JOINER, "")


def assert_within_limits(payloads: list[WaPayload]) -> None:
    """Every limit of the Cloud API, on every body; and a well-formed envelope."""
    assert payloads
    for payload in payloads:
        assert payload["messaging_product"] == "whatsapp"
        assert payload["recipient_type"] == "individual"
        assert "to" not in payload  # the sender adds the recipient
        json.dumps(payload)
        body = body_of(payload)
        assert body.strip()
        if payload["type"] == "text":
            assert utf16_length(body) <= MAX_TEXT
            assert payload["text"]["preview_url"] is False
            continue
        assert payload["type"] == "interactive"
        interactive = payload["interactive"]
        assert utf16_length(body) <= MAX_BODY
        if interactive["type"] == "button":
            buttons = interactive["action"]["buttons"]
            assert 1 <= len(buttons) <= MAX_BUTTONS
            for button in buttons:
                assert button["type"] == "reply"
                assert 0 < utf16_length(button["reply"]["title"]) <= MAX_BUTTON_TITLE
                assert 0 < len(button["reply"]["id"].encode()) <= MAX_BUTTON_ID
            assert len({b["reply"]["id"] for b in buttons}) == len(buttons)
            assert len({b["reply"]["title"] for b in buttons}) == len(buttons)
        else:
            assert interactive["type"] == "list"
            action = interactive["action"]
            assert 0 < utf16_length(action["button"]) <= MAX_LIST_BUTTON
            (section,) = action["sections"]
            rows = section["rows"]
            assert 1 <= len(rows) <= MAX_ROWS
            for row in rows:
                assert 0 < utf16_length(row["title"]) <= MAX_ROW_TITLE
                assert utf16_length(row.get("description", "")) <= MAX_ROW_DESCRIPTION
                assert 0 < len(row["id"].encode()) <= MAX_ROW_ID
            assert len({row["id"] for row in rows}) == len(rows)
            assert len({row["title"] for row in rows}) == len(rows)


def assert_cut_between_clusters(original: str, parts: list[str]) -> None:
    """The parts, re-joined, are the original but for whitespace at the cuts; each cut falls on
    a grapheme boundary, and no part starts with a combining mark."""
    position = 0
    for part in parts:
        plain = unescaped(part)
        assert plain
        while original[position].isspace():
            position += 1
        assert original.startswith(plain, position)
        assert is_grapheme_boundary(original, position)
        assert is_grapheme_boundary(original, position + len(plain))
        assert unicodedata.category(plain[0]) not in ("Mn", "Mc", "Me")
        position += len(plain)
    assert not original[position:].strip()


# --- Shapes ---------------------------------------------------------------------------------


def test_nothing_to_say_sends_nothing() -> None:
    assert render(Outbound(""), "en") == []
    (payload,) = render(Outbound("", choices(2)), "en")  # a body is required: the button label
    assert payload["interactive"]["body"] == {"text": "Choose"}


def test_no_choices_is_one_text_message_without_link_preview() -> None:
    (payload,) = render(Outbound("Hello there"), "en")
    assert payload == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": "text",
        "text": {"body": "Hello there", "preview_url": False},
    }


@pytest.mark.parametrize("count", [1, 3])
def test_one_to_three_choices_are_reply_buttons_whose_ids_are_the_payloads(count: int) -> None:
    (payload,) = render(Outbound("Pick", choices(count)), "en")
    assert payload["interactive"] == {
        "type": "button",
        "body": {"text": "Pick"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": f"pick:{n}", "title": f"Choice {n}"}}
                for n in range(1, count + 1)
            ]
        },
    }


@pytest.mark.parametrize("count", [4, 10])
def test_four_to_ten_choices_are_one_list_section_with_a_translated_button(count: int) -> None:
    (payload,) = render(Outbound("Pick", choices(count)), "th")
    interactive = payload["interactive"]
    assert interactive["type"] == "list"
    assert interactive["body"] == {"text": "Pick"}
    assert interactive["action"]["button"] == translator("th").gettext("Choose") == "เลือก"
    (section,) = interactive["action"]["sections"]
    assert section["rows"] == [
        {"id": f"pick:{n}", "title": f"Choice {n}"} for n in range(1, count + 1)
    ]


def test_more_than_ten_choices_are_a_numbered_text_list() -> None:
    (payload,) = render(Outbound("Pick", choices(11)), "en")
    assert payload["type"] == "text"
    lines = payload["text"]["body"].split("\n")
    assert lines[:2] == ["Pick", ""]
    assert lines[2:] == [f"{n}. Choice {n}" for n in range(1, 12)]


def test_more_than_ten_choices_where_words_are_asked_are_bullets_not_numbers() -> None:
    (payload,) = render(Outbound("Describe it", choices(11), numbered=False), "en")
    assert payload["text"]["body"].endswith("\n• Choice 11")
    assert "1. " not in payload["text"]["body"]


def test_the_list_button_label_is_translated_and_fits_in_every_language() -> None:
    for language in LANGUAGES:
        (payload,) = render(Outbound("x", choices(5)), language)
        label = payload["interactive"]["action"]["button"]
        assert label == translator(language).gettext("Choose")
        assert utf16_length(label) <= MAX_LIST_BUTTON
    (payload,) = render(Outbound("x", choices(5)), "xx")  # unknown: the source language
    assert payload["interactive"]["action"]["button"] == "Choose"


def test_the_longest_payload_the_core_allows_fits_both_id_limits() -> None:
    payload_id = "p" * 64
    for count in (1, 5):
        message = Outbound(
            "x", tuple(Choice(f"c{n}", f"{payload_id[:-2]}{n:02d}") for n in range(count))
        )
        assert_within_limits(render(message, "en"))
    assert min(MAX_BUTTON_ID, MAX_ROW_ID) > 64


# --- Labels ---------------------------------------------------------------------------------


def test_a_label_that_fits_is_kept_whole() -> None:
    assert fit_label("Report a problem", MAX_BUTTON_TITLE) == "Report a problem"
    assert fit_label("x" * 20, 20) == "x" * 20


def test_a_leading_emoji_goes_first() -> None:
    assert fit_label("📝 Report a problem now", MAX_BUTTON_TITLE) == "Report a problem now"
    assert fit_label("👨‍👩‍👧 Visa for my family", 18) == "Visa for my family"


def test_a_long_label_is_cut_at_a_word_boundary_with_an_ellipsis() -> None:
    assert fit_label("Report a problem at my workplace", 20) == "Report a problem at…"
    assert fit_label("Documents, passport and permits", 20) == "Documents, passport…"
    assert fit_label("Passport, documents and permits", 20) == "Passport, documents…"
    shortened = fit_label("Internationalisation", 10)
    assert shortened.endswith(ELLIPSIS)
    assert utf16_length(shortened) <= 10


@pytest.mark.parametrize("text", [THAI, BURMESE, KHMER])
def test_a_label_without_spaces_is_cut_between_grapheme_clusters(text: str) -> None:
    for limit in range(2, 40):
        shortened = fit_label(text, limit)
        assert utf16_length(shortened) <= limit
        assert shortened.endswith(ELLIPSIS)
        kept = shortened.removesuffix(ELLIPSIS)
        assert text.startswith(kept)
        assert is_grapheme_boundary(text, len(kept))


def test_in_a_script_without_spaces_an_early_phrase_break_does_not_throw_the_label_away() -> None:
    label = f"ส่ง {THAI}"  # "send", then one phrase with no space in it
    shortened = fit_label(label, MAX_BUTTON_TITLE)
    assert shortened.startswith("ส่ง การคุ้มครอง")
    assert utf16_length(shortened) >= MAX_BUTTON_TITLE - 2  # cut between clusters near the end
    assert is_grapheme_boundary(label, len(shortened) - 1)
    assert fit_label("Send everything that you have", 22) == "Send everything that…"


def test_labels_that_would_become_equal_are_numbered() -> None:
    labels = ["Problems with pay this month", "Problems with pay last month", "Other"]
    fitted = fit_labels(labels, MAX_BUTTON_TITLE)
    assert len(set(fitted)) == 3
    assert fitted[0].startswith("1. ")
    assert fitted[1].startswith("2. ")
    assert fitted[2] == "Other"
    assert all(utf16_length(title) <= MAX_BUTTON_TITLE for title in fitted)


def test_a_shortened_list_row_carries_the_whole_label_as_its_description() -> None:
    long = "Safety at work and protective equipment"
    message = Outbound("Topics", (Choice(long, "t:1"), *choices(4)))
    (payload,) = render(message, "en")
    rows = payload["interactive"]["action"]["sections"][0]["rows"]
    assert rows[0] == {"id": "t:1", "title": "Safety at work and…", "description": long}
    assert "description" not in rows[1]
    assert_within_limits([payload])


def test_a_shortened_button_title_stays_within_twenty() -> None:
    message = Outbound("x", (Choice("Yes, I want to send it now", "y"), Choice("No", "n")))
    (payload,) = render(message, "en")
    titles = [b["reply"]["title"] for b in payload["interactive"]["action"]["buttons"]]
    assert titles == ["Yes, I want to send…", "No"]


# --- Grapheme clusters ----------------------------------------------------------------------


def test_grapheme_clusters_of_our_scripts_and_of_emoji() -> None:
    assert graphemes("น้ำ") == ["น้ำ"]  # a tone mark and SARA AM stay with their consonant
    assert graphemes("ខ្មែរ") == ["ខ្មែ", "រ"]  # a COENG stacks the next consonant
    assert graphemes("မြန်မာ") == ["မြ", "န်", "မာ"]
    assert graphemes("क्षत्रिय") == ["क्ष", "त्रि", "य"]
    assert graphemes("👨‍👩‍👧🇹🇭🇲🇲👍🏽e\u0301\r\n") == [
        "👨‍👩‍👧",
        "🇹🇭",
        "🇲🇲",
        "👍🏽",
        "e\u0301",
        "\r\n",
    ]
    assert graphemes("한국") == ["한", "국"]
    assert graphemes("\u1112\u1161\u11ab") == ["\u1112\u1161\u11ab"]


# --- Splitting ------------------------------------------------------------------------------


def test_text_within_the_limit_is_one_part() -> None:
    text = "a" * MAX_TEXT
    assert split_text(text) == [text]
    assert len(split_text(text + "a")) == 2


def test_long_english_splits_at_paragraphs_then_sentences_then_words() -> None:
    paragraph = "Workers have rights. " * 100  # 2100 characters
    text = "\n\n".join([paragraph.strip()] * 3)
    parts = split_text(text)
    assert parts == [paragraph.strip()] * 3 or all(p.endswith(".") for p in parts)
    assert all(utf16_length(part) <= MAX_TEXT for part in parts)
    assert_cut_between_clusters(text, parts)

    sentences = "Pay is late again. " * 300
    parts = split_text(sentences)
    assert all(part.endswith(".") for part in parts)
    assert_cut_between_clusters(sentences, parts)

    words = "overtime " * 1000
    parts = split_text(words, 100)
    assert all(part.split() == ["overtime"] * len(part.split()) for part in parts)
    assert all(utf16_length(part) <= 100 for part in parts)
    assert_cut_between_clusters(words, parts)


@pytest.mark.parametrize("text", [THAI, BURMESE, KHMER, "👨‍👩‍👧🇹🇭👍🏽" * 5])
@pytest.mark.parametrize("limit", [8, 10, 13, 50, 1000])
def test_text_without_spaces_splits_between_grapheme_clusters(text: str, limit: int) -> None:
    long = text * (3 * limit // len(text) + 2)
    parts = split_text(long, limit)
    assert len(parts) > 1
    assert all(utf16_length(part) <= limit for part in parts)
    assert_cut_between_clusters(long, parts)
    assert [c for part in parts for c in graphemes(part)] == graphemes(long)


def test_a_long_thai_message_with_choices_splits_and_the_choices_go_on_the_last_part() -> None:
    text = (THAI + " ") * 200  # about 17,000 characters
    payloads = render(Outbound(text, choices(2)), "th")
    assert_within_limits(payloads)
    assert [p["type"] for p in payloads[:-1]] == ["text"] * (len(payloads) - 1)
    assert payloads[-1]["type"] == "interactive"
    assert_cut_between_clusters(text, [body_of(p) for p in payloads])
    assert utf16_length(body_of(payloads[-1])) <= MAX_BODY


@pytest.mark.parametrize("count", [0, 1, 3, 4, 10, 11, 40])
@pytest.mark.parametrize(
    "size", [MAX_BODY - 1, MAX_BODY, MAX_BODY + 1, MAX_TEXT, MAX_TEXT + 1, 9000]
)
def test_every_shape_at_every_length_stays_within_every_limit(count: int, size: int) -> None:
    text = ("Lorem ipsum dolor sit amet, consectetur. " * 300)[:size]
    payloads = render(Outbound(text, choices(count)), "en")
    assert_within_limits(payloads)
    if 0 < count <= MAX_ROWS:
        assert payloads[-1]["type"] == "interactive"
        assert all(p["type"] == "text" for p in payloads[:-1])
    if count > MAX_ROWS:
        assert body_of(payloads[-1]).endswith(f"{count}. Choice {count}")
    rejoined = " ".join(" ".join(unescaped(body_of(p)).split()) for p in payloads)
    expected = " ".join(text.split())
    assert rejoined.startswith(expected)


def test_a_message_of_exactly_1024_with_buttons_is_one_interactive_message() -> None:
    (payload,) = render(Outbound("x" * MAX_BODY, choices(2)), "en")
    assert body_of(payload) == "x" * MAX_BODY
    payloads = render(Outbound("x " * 600, choices(2)), "en")
    assert len(payloads) == 2
    assert payloads[0]["type"] == "text"


# --- Escaping and bold ----------------------------------------------------------------------


HOSTILE = "*free* _money_ ~gone~ ```code``` `x` *half _mixed~ ** __ ~~ ` *"


def formatted_spans(body: str) -> list[str]:
    """What a WhatsApp-style parser would format: a mark, then a non-space that is not a
    WORD JOINER, ..., a non-space that is not a WORD JOINER, then the same mark."""
    found: list[str] = []
    for mark in MARKUP:
        index = 0
        while (start := body.find(mark, index)) != -1:
            end = body.find(mark, start + 1)
            if end == -1:
                break
            inner = body[start + 1 : end]
            edges_ok = (
                inner and inner[0] not in f" {WORD_JOINER}" and inner[-1] not in f" {WORD_JOINER}"
            )
            if edges_ok and (end + 1 == len(body) or body[end + 1] != WORD_JOINER):
                found.append(mark + inner + mark)
            index = start + 1
    return found


def test_worker_text_cannot_format_the_message() -> None:
    (payload,) = render(Outbound(f"You wrote: {HOSTILE}"), "en")
    body = body_of(payload)
    assert unescaped(body) == f"You wrote: {HOSTILE}"
    assert formatted_spans(body) == []
    for mark in MARKUP:  # every mark is wrapped in WORD JOINERs
        assert body.count(mark) == body.count(f"{WORD_JOINER}{mark}{WORD_JOINER}")


def test_worker_text_in_labels_of_a_numbered_list_cannot_format_either() -> None:
    message = Outbound("Pick", tuple(Choice(f"*{n}* _x_", f"p:{n}") for n in range(12)))
    (payload,) = render(message, "en")
    assert formatted_spans(body_of(payload)) == []


def test_bold_spans_become_asterisks_and_only_they_format() -> None:
    text = f"Case ABC-123 is open. {HOSTILE}"
    (payload,) = render(Outbound(text, bold=((5, 7),)), "en")
    body = body_of(payload)
    assert body.startswith("Case *ABC-123* is open.")
    assert formatted_spans(body) == ["*ABC-123*"]


def test_bold_across_lines_is_bold_on_each_line() -> None:
    text = "Title line\nSecond line\nplain"
    (payload,) = render(Outbound(text, bold=((0, 22),)), "en")
    assert body_of(payload) == "*Title line*\n*Second line*\nplain"


def test_bold_that_whatsapp_would_not_show_is_left_plain_rather_than_with_stray_marks() -> None:
    for text, span in [
        ("inside a word", (1, 3)),  # "nsi"
        (" padded ", (0, 8)),  # trimmed to "padded": fine
        ("x*y*z", (1, 3)),  # starts and ends with a formatting character
        ("out of range", (5, 50)),
        ("ข้อความไทย", (3, 4)),  # inside Thai letters: not a word edge WhatsApp knows
    ]:
        (payload,) = render(Outbound(text, bold=(span,)), "en")
        body = body_of(payload)
        if text == " padded ":
            assert body == "*padded*"
        else:
            assert unescaped(body) == text
            assert formatted_spans(body) == []


def test_bold_is_kept_on_the_part_that_holds_it_when_a_message_is_split() -> None:
    text = "Intro. " * 700 + "Key point here."
    start = text.index("Key")
    payloads = render(Outbound(text, bold=((0, 5), (start, 9))), "en")
    assert len(payloads) == 2
    assert body_of(payloads[0]).startswith("*Intro*.")
    assert body_of(payloads[1]).endswith("*Key point* here.")
    assert_within_limits(payloads)


def test_escaping_and_bold_count_towards_the_limits() -> None:
    text = "*" * 2000  # 6000 characters once escaped
    payloads = render(Outbound(text, choices(2)), "en")
    assert_within_limits(payloads)
    assert "".join(unescaped(body_of(p)) for p in payloads) == text
    words = " ".join(["bold"] * 900)
    spans = tuple((index * 5, 4) for index in range(900))
    payloads = render(Outbound(words, choices(4), bold=spans), "en")
    assert_within_limits(payloads)
    assert len(payloads) == 2  # so many marks are dropped rather than crowd out the text
    assert "*" not in body_of(payloads[0])
    few = render(Outbound(words, choices(4), bold=spans[:100]), "en")
    assert_within_limits(few)
    assert body_of(few[0]).startswith("*bold* *bold*")


# --- Every screen of the real engine, in every shipped language -----------------------------


def new_engine() -> ConversationEngine:
    services = Services(
        profiles=ProfilesInMemory(),
        cases=CasesInMemory(),
        casework=CaseworkInMemory(),
        learning=LearningInMemory(),
    )
    return ConversationEngine(services)


async def every_screen(language: str, budget: int = 700) -> list[Outbound]:
    """Walk the engine breadth-first from /start in ``language``: press every button of every
    screen reached (of the language picker, only ``language``'s), type a sentence and a number
    at it, and every command at the menu; return every reply seen."""
    engine = new_engine()
    replies: list[Outbound] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    queue: deque[tuple[str | None, Inbound]] = deque(
        [(None, Inbound.command_of("start", language))]
    )
    while queue and budget > 0:
        raw, inbound = queue.popleft()
        budget -= 1
        state = None if raw is None else ConversationState.from_json(raw)
        turn = await engine.handle(WORKER, inbound, state)
        replies += turn.replies
        last = turn.replies[-1]
        screen = (turn.state.step, tuple(choice.payload for choice in last.choices))
        if screen in seen:
            continue
        seen.add(screen)
        after = turn.state.to_json()
        queue += [
            (after, Inbound.choice_of(choice.payload, language))
            for choice in last.choices
            if not choice.payload.startswith("lang:") or choice.payload == f"lang:{language}"
        ]
        queue.append((after, Inbound.text_of("The supervisor keeps our passports", language)))
        queue.append((after, Inbound.text_of("2", language)))
        if turn.state.onboarded and turn.state.step == "menu":
            queue += [(after, Inbound.command_of(name, language)) for name in WORKER_COMMANDS]
    return replies


@pytest.mark.parametrize("language", list(LANGUAGES))
async def test_every_screen_in_every_language_renders_within_the_limits(language: str) -> None:
    replies = await every_screen(language)
    with_choices = [reply for reply in replies if reply.choices]
    assert len({reply.choices for reply in with_choices}) >= 15  # the walk reached many screens
    for reply in replies:
        payloads = render(reply, language)
        assert_within_limits(payloads)  # including: no two titles of one screen alike
        for payload in payloads:
            assert formatted_spans(body_of(payload)) == [] or reply.bold
        for title, label in titles_and_labels(payloads, reply):
            assert_shortened_by_the_rule(title, label)


def titles_and_labels(payloads: list[WaPayload], reply: Outbound) -> list[tuple[str, str]]:
    last: dict[str, Any] = payloads[-1]
    if last["type"] != "interactive":
        return []
    action = last["interactive"]["action"]
    if "buttons" in action:
        titles = [button["reply"]["title"] for button in action["buttons"]]
    else:
        titles = [row["title"] for row in action["sections"][0]["rows"]]
    return list(zip(titles, [choice.label for choice in reply.choices], strict=True))


def assert_shortened_by_the_rule(title: str, label: str) -> None:
    """A title is the label, or the label without a leading emoji, or (numbered if needed) a
    prefix of either ending at a word boundary (a grapheme boundary in a script without
    spaces) followed by "…"."""
    label = " ".join(label.split())
    if title == label:
        return
    candidates = [label]
    clusters = graphemes(label)
    if len(clusters) > 1:
        candidates.append("".join(clusters[1:]).strip())
    if title in candidates:
        return
    number, dot, rest = title.partition(". ")
    shortened = rest if dot and number.isdigit() else title
    assert shortened.endswith(ELLIPSIS), (title, label)
    kept = shortened.removesuffix(ELLIPSIS)
    source = next((c for c in candidates if c.startswith(kept)), None)
    assert source is not None, (title, label)
    after = source[len(kept) :]
    spaceless = any(0x0E00 <= ord(c) <= 0x17FF for c in source)
    at_word = not after or after[0].isspace() or unicodedata.category(after[0])[0] == "P"
    no_word_fits = not any(c.isspace() for c in kept)  # one word longer than the title
    cut_between_clusters = is_grapheme_boundary(source, len(kept))
    assert at_word or ((spaceless or no_word_fits) and cut_between_clusters), (title, label)


def test_every_translated_short_message_fits_as_a_title_by_the_rule() -> None:
    """Beyond the screens the walk reaches: every short one-line translation in every catalog
    (the choice labels are among them) shortens by the rule within both title limits."""
    from babel.messages.pofile import read_po

    from locales import LOCALES_DIR

    for language in LANGUAGES:
        if language == "en":
            continue
        with open(LOCALES_DIR / language / "LC_MESSAGES" / "messages.po", "rb") as handle:
            catalog = read_po(handle)
        for message in catalog:
            if not message.id or not isinstance(message.string, str) or message.pluralizable:
                continue
            for label in (message.id, message.string):
                if not label or "\n" in label or "{" in label or len(label) > 60:
                    continue
                for limit in (MAX_BUTTON_TITLE, MAX_ROW_TITLE):
                    title = fit_label(label, limit)
                    assert 0 < utf16_length(title) <= limit, (language, label)
                    assert_shortened_by_the_rule(title, label)
