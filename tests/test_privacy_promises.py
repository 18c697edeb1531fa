"""What the privacy notice and the privacy lesson promise, in every language, the software keeps.

Workers are known only by a keyed pseudonym and staff never receive their name or account. But
when a worker chooses "Share, without my name", staff may tell the employer what happened, and
nothing in the software can stop an employer from guessing who reported (the bot itself warns of
it). So the notice says what *we* do, "We never tell your employer who you are", and never that
the employer *cannot* know or see it.

The old over-promise is kept here as each language had translated it, so it cannot come back in
any catalog or lesson; and the notice and the lesson must make the new promise in the same words.
"""

from __future__ import annotations

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
