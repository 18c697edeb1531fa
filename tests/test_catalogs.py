"""Every shipped catalog is complete, correct and in step with the code."""

from __future__ import annotations

import gettext
import shutil
from datetime import date
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.pofile import read_po, write_po

import locales
from locales import LANGUAGES, translator
from locales.catalogs import catalog_path, problems, translated_languages
from locales.plural_forms import PLURAL_FORMS

CLDR_CATEGORY_ORDER = ("zero", "one", "two", "few", "many", "other")


@pytest.mark.parametrize("language", translated_languages())
def test_catalog_is_complete_with_no_fuzzy_or_placeholder_mismatch(language: str) -> None:
    assert problems(language) == []


def test_template_matches_the_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A string added to the code but not extracted (and so never translated) fails here."""
    import locales.catalogs as catalogs

    fresh = tmp_path / "messages.pot"
    monkeypatch.setattr(catalogs, "TEMPLATE", fresh)
    catalogs.extract()
    with fresh.open("rb") as new, catalogs.LOCALES_DIR.joinpath("messages.pot").open("rb") as old:
        assert {m.id for m in read_po(new)} == {m.id for m in read_po(old)}, (
            "run `python -m locales.catalogs extract` and `update`, then translate"
        )


def test_the_check_fails_when_one_translation_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proves the completeness test can fail: blank one string, the check names it."""
    import locales.catalogs as catalogs

    copy = tmp_path / "locales"
    shutil.copytree(catalogs.LOCALES_DIR, copy, ignore=shutil.ignore_patterns("*.py", "*.mo"))
    monkeypatch.setattr(catalogs, "LOCALES_DIR", copy)
    monkeypatch.setattr(catalogs, "TEMPLATE", copy / "messages.pot")
    path = catalog_path("th")
    with path.open("rb") as po_file:
        catalog = read_po(po_file, locale="th")
    catalog["Your privacy"].string = ""
    broken = next(m for m in catalog if m.id == "Language changed to {language}.")
    broken.string = "เปลี่ยนภาษาแล้ว"  # the placeholder went missing
    with path.open("wb") as po_file:
        write_po(po_file, catalog)
    found = problems("th")
    assert "th: untranslated: 'Your privacy'" in found
    assert "th: placeholders differ: 'Language changed to {language}.'" in found
    catalog["Your privacy"].string = "ความเป็นส่วนตัวของคุณ"
    catalog["Your privacy"].flags.add("fuzzy")
    catalog.delete("Back")
    with path.open("wb") as po_file:
        write_po(po_file, catalog)
    found = problems("th")
    assert "th: missing: 'Back'" in found
    assert "th: fuzzy: 'Your privacy'" in found


@pytest.mark.parametrize("language", [*translated_languages(), "en"])
def test_plural_header_agrees_with_cldr(language: str) -> None:
    """Babel's own table is wrong for my, id and bn; ours must match CLDR for every count."""
    header = PLURAL_FORMS[language]
    if language != "en":
        with catalog_path(language).open("rb") as po_file:
            assert read_po(po_file, locale=language).plural_forms == header
    nplurals = int(header.split(";")[0].split("=")[1])
    choose = gettext.c2py(header.split("plural=")[1].rstrip(";"))
    rule = Locale.parse(language).plural_form
    categories = [c for c in CLDR_CATEGORY_ORDER if c in rule.tags or c == "other"]
    assert len(categories) == nplurals
    for n in [*range(0, 1001), 10_000, 100_000, 1_000_000, 2_000_000, 1_500_000]:
        assert categories[choose(n)] == rule(n), f"{language}: n={n}"


@pytest.mark.parametrize("language", translated_languages())
def test_compiled_catalog_is_what_the_bot_reads(language: str) -> None:
    mo = catalog_path(language).with_suffix(".mo")
    assert mo.exists(), "the build hook compiles catalogs on install"
    assert translator(language).gettext("Your privacy") != "Your privacy"


def test_numbers_and_dates_follow_the_locale() -> None:
    assert translator("en").number(1234567) == "1,234,567"
    assert translator("es").number(1234567) == "1.234.567"
    assert translator("ne").number(1234567) == "12,34,567"  # South Asian grouping
    assert translator("bn").number(1234567) == "12,34,567"
    assert "2026" in translator("th").date(date(2026, 11, 21)) or "2569" in translator("th").date(
        date(2026, 11, 21)
    )
    assert translator("es").date(date(2026, 11, 21)) == "21 nov 2026"


def test_every_language_name_is_in_its_own_script() -> None:
    for code, name in LANGUAGES.items():
        display = Locale.parse(code).get_display_name(code) or ""
        assert name.casefold() == display.casefold() or name.split()[-1].casefold() in (
            display.casefold()
        ), (code, name, display)


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        locales.translator("xx")
