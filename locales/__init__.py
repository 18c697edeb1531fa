"""Gettext catalogs and locale-aware formatting for every shipped language.

Catalogs live in ``locales/<lang>/LC_MESSAGES/messages.po`` and are compiled to ``.mo`` by the build
hook (``hatch_build.py``). A source checkout whose ``.mo`` is missing or older than its ``.po`` is
compiled in memory instead, so an edited catalog is never silently ignored.
"""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LOCALES_DIR = Path(__file__).resolve().parent
DOMAIN = "messages"

#: Every shipped language: code -> its name in its own script (what the language picker shows).
LANGUAGES: dict[str, str] = {
    "en": "English",
    "th": "ไทย",
    "my": "မြန်မာ",
    "km": "ខ្មែរ",
    "ne": "नेपाली",
    "bn": "বাংলা",
    "id": "Bahasa Indonesia",
    "es": "Español",
}

SOURCE_LANGUAGE = "en"


def N_(message: str) -> str:
    """Mark a string for extraction without translating it yet."""
    return message


def guess_language(language_code: str | None, default: str = SOURCE_LANGUAGE) -> str:
    """Map a messenger's IETF language tag (``th``, ``my-MM``, ``es-419``) to a shipped language."""
    if not language_code:
        return default
    primary = language_code.replace("_", "-").split("-")[0].lower()
    return primary if primary in LANGUAGES else default


def _catalog_file(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def _translations(language: str) -> gettext.NullTranslations:
    if language == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    po_path = _catalog_file(language)
    mo_path = po_path.with_suffix(".mo")
    if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
        with mo_path.open("rb") as mo_file:
            return gettext.GNUTranslations(mo_file)
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@dataclass(frozen=True)
class Translator:
    """Everything a conversation needs to speak one language: messages, plurals, numbers, dates."""

    language: str
    _gettext: gettext.NullTranslations = field(repr=False, compare=False)
    _locale: Locale = field(repr=False, compare=False)

    def gettext(self, message: str) -> str:
        return self._gettext.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return self._gettext.ngettext(singular, plural, count)

    def number(self, value: int | float) -> str:
        return format_decimal(value, locale=self._locale)

    def date(self, value: date | datetime, style: str = "medium") -> str:
        if isinstance(value, datetime):
            return format_datetime(value, format=style, locale=self._locale)
        return format_date(value, format=style, locale=self._locale)


@cache
def translator(language: str) -> Translator:
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language code {language!r}")
    return Translator(language, _translations(language), Locale.parse(language))


#: The language of staff-facing text (the CLI, staff alerts): English until staff accounts carry
#: a language (docs/ARCHITECTURE.md, "Decisions").
STAFF_LANGUAGE = SOURCE_LANGUAGE


def staff_gettext(message: str) -> str:
    """``_`` for staff-facing text: marked for the catalogs, shown in ``STAFF_LANGUAGE``."""
    return translator(STAFF_LANGUAGE).gettext(message)
