"""What the privacy notice and the privacy lesson promise, in every language, the software keeps.

Workers are known only by a keyed pseudonym and staff never receive their name or account. But
when a worker chooses "Share, without my name", staff may tell the employer what happened, and
nothing in the software can stop an employer from guessing who reported (the bot itself warns of
it). So the notice says what *we* do, "We never tell your employer who you are", and never that
the employer *cannot* know or see it.

The old over-promise is kept here as each language had translated it, so it cannot come back in
any catalog or lesson; and the notice and the lesson must make the new promise in the same words.

Two different codes must also keep two different names. The notice says we know a worker only by
"a secret code made from your account" (the pseudonym, which the worker never sees); the receipt
code is another secret, shown once after a report and typed into /status. Burmese called both
"လျှို့ဝှက်ကုဒ်" (secret code), so a worker could believe the receipt code is what identifies them,
or that the code we know them by is one they hold.
"""

from __future__ import annotations

import re
from functools import cache

import pytest
from babel.messages.pofile import read_po

from locales import LANGUAGES, LOCALES_DIR, SOURCE_LANGUAGE
from locales.catalogs import TEMPLATE, catalog_path
from locales.education import lesson_path

NOTICE = (
    "What you tell us is stored encrypted. Only trained staff of the monitoring organisation can "
    "read reports. We never tell your employer who you are."
)

#: The old claim, "Your employer cannot see who you are", as it was written in each language.
OVER_PROMISE = {
    "en": "Your employer cannot see who you are",
    "th": "นายจ้างของคุณจะไม่รู้ว่าคุณเป็นใคร",  # your employer will not know who you are
    "my": "သင့်အလုပ်ရှင်က သင် ဘယ်သူလဲဆိုတာ မသိနိုင်ပါဘူး",  # your employer cannot know who you are
    "km": "និយោជករបស់អ្នកមិនអាចដឹងថាអ្នកជានរណាទេ",  # your employer cannot know who you are
    "ne": "तपाईंको रोजगारदाताले तपाईं को हुनुहुन्छ भनेर देख्न सक्दैन",  # cannot see who you are
    "bn": "আপনার মালিকপক্ষ জানতে পারবে না আপনি কে",  # your employer will not be able to know
    "id": "Majikan atau perusahaan Anda tidak bisa tahu siapa Anda",  # cannot know who you are
    "es": "Tu empleador no puede saber quién eres",  # your employer cannot know who you are
}

#: "We never tell your employer who you are", as the notice and the lesson now say it.
PROMISE = {
    "en": "We never tell your employer who you are.",
    "th": "เราจะไม่บอกนายจ้างของคุณเด็ดขาดว่าคุณเป็นใคร",
    "my": "သင် ဘယ်သူလဲဆိုတာ သင့်အလုပ်ရှင်ကို ကျွန်ုပ်တို့ ဘယ်တော့မှ မပြောပြပါဘူး။",
    "km": "យើងមិនដែលប្រាប់និយោជករបស់អ្នកថា អ្នកជានរណាទេ។",
    "ne": "तपाईं को हुनुहुन्छ भनेर हामी तपाईंको रोजगारदातालाई कहिल्यै भन्दैनौँ।",
    "bn": "আপনি কে, তা আমরা কখনও আপনার মালিকপক্ষকে জানাই না।",
    "id": "Kami tidak pernah memberi tahu majikan atau perusahaan Anda siapa Anda.",
    "es": "Nunca le decimos a tu empleador quién eres.",
}


def _flat(text: str) -> str:
    """Catalogs wrap long strings; compare words, not line breaks."""
    return " ".join(text.split()).casefold()


@cache
def messages(language: str) -> dict[str, list[str]]:
    """msgid -> what a worker reads in ``language`` (every plural form; English: the msgid)."""
    source = TEMPLATE if language == SOURCE_LANGUAGE else catalog_path(language)
    with source.open("rb") as po_file:
        catalog = read_po(po_file, locale=language)
    found: dict[str, list[str]] = {}
    for message in catalog:
        if not message.id:
            continue
        ids = list(message.id) if isinstance(message.id, tuple | list) else [message.id]
        if language == SOURCE_LANGUAGE:
            strings = ids
        elif isinstance(message.string, tuple | list):
            strings = list(message.string)
        else:
            strings = [message.string or ""]
        found[ids[0]] = strings
    return found


@cache
def lessons(language: str) -> dict[str, str]:
    folder = LOCALES_DIR / language / "education"
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.md"))}


def test_every_language_is_covered() -> None:
    assert set(OVER_PROMISE) == set(PROMISE) == set(LANGUAGES)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_catalog_or_lesson_says_the_employer_cannot_know_who_you_are(language: str) -> None:
    forbidden = _flat(OVER_PROMISE[language])
    texts = {f"catalog: {msgid!r}": s for msgid, ss in messages(language).items() for s in ss}
    texts |= {f"lesson: {name}": text for name, text in lessons(language).items()}
    assert len(texts) > 100  # the catalog and the lessons were read
    saying_it = [where for where, text in texts.items() if forbidden in _flat(text)]
    assert saying_it == [], f"{language}: the employer 'cannot know' promise is back"


@pytest.mark.parametrize("language", LANGUAGES)
def test_notice_and_lesson_promise_only_that_we_never_tell_the_employer(language: str) -> None:
    promise = _flat(PROMISE[language])
    notice = messages(language)[NOTICE]
    assert len(notice) == 1
    assert promise in _flat(notice[0]), f"{language}: the privacy notice"
    lesson = lesson_path("privacy", language).read_text(encoding="utf-8")
    assert promise in _flat(lesson), f"{language}: the privacy lesson"


ACCOUNT_CODE_MSGID = (
    "We do not store your name, phone number or messenger account. We know you only by a secret "
    "code made from your account."
)
RECEIPT_LABEL_MSGID = "Secret receipt code: {code}"

#: The word that makes a receipt code a receipt code, in each language.
RECEIPT_WORD = {
    "en": "receipt",
    "th": "รับเรื่อง",  # (secret code for) receiving the case
    "my": "လက်ခံဖြတ်ပိုင်း",  # receipt slip, as in the lessons' ငွေလက်ခံဖြတ်ပိုင်း (money receipt)
    "km": "បង្កាន់ដៃ",  # receipt
    "ne": "रसिद",  # receipt
    "bn": "রসিদ",  # receipt
    "id": "bukti",  # proof
    "es": "comprobante",  # receipt, proof
}

#: What the privacy notice calls the code made from the worker's account.
ACCOUNT_CODE = {
    "en": "secret code",
    "th": "รหัสลับ",  # secret code
    "my": "လျှို့ဝှက် အမှတ်အသား",  # secret identifier (it was လျှို့ဝှက်ကုဒ်, the receipt code's name)
    "km": "លេខកូដសម្ងាត់",  # secret code
    "ne": "गोप्य कोड",  # secret code
    "bn": "গোপন কোড",  # secret code
    "id": "kode rahasia",  # secret code
    "es": "código secreto",  # secret code
}


def receipt_label(language: str) -> str:
    """The receipt code's name, as the report confirmation prints it before the code."""
    (label,) = messages(language)[RECEIPT_LABEL_MSGID]
    return re.sub(r"[\s:：\-–—៖]+$", "", label.replace("{code}", "")).strip()


def mentions_the_account_code(text: str, language: str) -> bool:
    """Names the account code, other than inside the receipt code's own name ("รหัสลับรับเรื่อง")."""
    return _flat(ACCOUNT_CODE[language]) in _flat(text).replace(_flat(receipt_label(language)), " ")


def code_msgids() -> list[str]:
    """Every English message that speaks of the receipt code, but the privacy notice's."""
    ids = [msgid for msgid in messages(SOURCE_LANGUAGE) if re.search(r"\bcode\b", msgid)]
    return [msgid for msgid in ids if msgid != ACCOUNT_CODE_MSGID]


def test_the_code_messages_are_the_ones_expected() -> None:
    assert set(RECEIPT_WORD) == set(ACCOUNT_CODE) == set(LANGUAGES)
    receipt = [msgid for msgid in code_msgids() if "receipt code" in msgid]
    assert RECEIPT_LABEL_MSGID in receipt
    assert "Now type your secret receipt code." in receipt
    assert len(receipt) >= 3
    assert "Check a case with its reference and code" in code_msgids()  # the /status command
    assert ACCOUNT_CODE_MSGID in messages(SOURCE_LANGUAGE)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_receipt_code_is_always_called_a_receipt_code(language: str) -> None:
    word = _flat(RECEIPT_WORD[language])
    assert word in _flat(receipt_label(language))
    for msgid in code_msgids():
        if "receipt code" in msgid:
            (text,) = messages(language)[msgid]
            assert word in _flat(text), f"{language}: {msgid!r} does not say 'receipt'"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_account_code_has_a_name_of_its_own(language: str) -> None:
    (notice,) = messages(language)[ACCOUNT_CODE_MSGID]
    label = receipt_label(language)
    assert _flat(ACCOUNT_CODE[language]) != _flat(label)
    assert mentions_the_account_code(notice, language)
    assert _flat(label) not in _flat(notice)
    assert _flat(RECEIPT_WORD[language]) not in _flat(notice)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_receipt_code_message_uses_the_account_codes_name(language: str) -> None:
    for msgid in code_msgids():
        (text,) = messages(language)[msgid]
        assert not mentions_the_account_code(text, language), f"{language}: {msgid!r}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_lessons_keep_the_two_codes_apart(language: str) -> None:
    texts = lessons(language)
    assert mentions_the_account_code(texts["privacy.md"], language)
    for name in ("privacy.md", "complaints.md"):
        assert _flat(receipt_label(language)) in _flat(texts[name]), f"{language}: {name}"
    word = _flat(RECEIPT_WORD[language])
    for name, text in texts.items():
        for line in text.splitlines():
            if mentions_the_account_code(line, language):
                assert word not in _flat(line), f"{language}: {name}: {line[:60]}…"
