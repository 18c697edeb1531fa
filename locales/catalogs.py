"""Catalog maintenance: ``python -m locales.catalogs extract|update|check``.

- ``extract`` writes ``locales/messages.pot`` from the code (pybabel extract with our keywords).
- ``update`` merges the template into every shipped catalog, keeping the CLDR plural headers.
- ``check`` lists untranslated, fuzzy and placeholder-mismatched messages (also run by the tests).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po, write_po

from locales import LANGUAGES, LOCALES_DIR, SOURCE_LANGUAGE
from locales.plural_forms import PLURAL_FORMS

ROOT = LOCALES_DIR.parent
TEMPLATE = LOCALES_DIR / "messages.pot"
SOURCES = ["bot", "cli", "conversations", "locales", "scheduler", "services", "storage", "web"]
PLACEHOLDER = re.compile(r"\{[a-z_]*\}")


def catalog_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / "messages.po"


def translated_languages() -> list[str]:
    return [code for code in LANGUAGES if code != SOURCE_LANGUAGE]


def read_catalog(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as po_file:
        return read_po(po_file, locale=language)


def extract() -> None:
    subprocess.run(  # noqa: S603 - fixed arguments, our own interpreter
        [
            sys.executable, "-m", "babel.messages.frontend", "extract",
            "-F", str(LOCALES_DIR / "babel.cfg"),
            "-k", "_", "-k", "N_", "-k", "ngettext:1,2",
            "--no-location", "--sort-output", "--project=Worker Voice Bot",
            "--copyright-holder=Worker Voice Bot contributors",
            "-o", str(TEMPLATE), *SOURCES,
        ],
        check=True,
        cwd=ROOT,
    )  # fmt: skip


def update() -> None:
    template = read_catalog(TEMPLATE)
    for language in translated_languages():
        path = catalog_path(language)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            catalog = read_catalog(path, language)
        else:
            catalog = Catalog(
                locale=language,
                project="Worker Voice Bot",
                copyright_holder="Worker Voice Bot contributors",
                fuzzy=False,
            )
        forms = PLURAL_FORMS[language]
        # Babel has no public setter; its own table is what we must not use (see plural_forms.py).
        setattr(catalog, "_num_plurals", int(forms.split(";")[0].split("=")[1]))  # noqa: B010
        setattr(catalog, "_plural_expr", forms.split("plural=")[1].rstrip(";"))  # noqa: B010
        catalog.update(template, no_fuzzy_matching=True)
        with path.open("wb") as po_file:
            write_po(po_file, catalog, width=100, ignore_obsolete=True)


def _strings(message: Message) -> list[str]:
    if isinstance(message.string, tuple | list):
        return list(message.string)
    return [message.string or ""]


def problems(language: str) -> list[str]:
    """Everything wrong with one shipped catalog, one line each."""
    template_ids = {message.id for message in read_catalog(TEMPLATE) if message.id}
    catalog = read_catalog(catalog_path(language), language)
    found = []
    if catalog.fuzzy:
        found.append(f"{language}: the header is marked fuzzy, so the catalog would be ignored")
    if catalog.plural_forms != PLURAL_FORMS[language]:
        found.append(f"{language}: Plural-Forms is not the CLDR one in locales/plural_forms.py")
    ids = set()
    for message in catalog:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple | list) else message.id
        ids.add(message.id)
        originals = list(message.id) if isinstance(message.id, tuple | list) else [message.id]
        expected = {p for original in originals for p in PLACEHOLDER.findall(original)}
        if message.fuzzy:
            found.append(f"{language}: fuzzy: {key!r}")
        strings = _strings(message)
        if len(strings) != catalog.num_plurals and isinstance(message.id, tuple | list):
            found.append(f"{language}: wrong number of plural forms: {key!r}")
        for string in strings:
            if not string.strip():
                found.append(f"{language}: untranslated: {key!r}")
                break
            if set(PLACEHOLDER.findall(string)) != expected:
                found.append(f"{language}: placeholders differ: {key!r}")
                break
            if "/" in key and _commands(key) != _commands(string):
                found.append(f"{language}: command names differ: {key!r}")
                break
    for missing in sorted(template_ids - ids, key=str):
        found.append(f"{language}: missing: {missing!r}")
    return found


def _commands(text: str | tuple[str, ...]) -> set[str]:
    return set(re.findall(r"/[a-z]+", str(text)))


def main(argv: list[str]) -> int:
    action = argv[1] if len(argv) > 1 else ""
    if action == "extract":
        extract()
    elif action == "update":
        update()
    elif action == "check":
        found = [line for language in translated_languages() for line in problems(language)]
        print("\n".join(found) or "all catalogs complete")
        return 1 if found else 0
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
