"""Plural-Forms headers from CLDR, for every shipped language.

Babel's built-in table (used by ``pybabel init``) is wrong for several of our languages: it gives
Burmese and Indonesian two forms where CLDR has one, and Bengali ``n != 1`` where CLDR counts 0 as
"one". These headers are checked against CLDR by ``tests/test_catalogs.py``.
"""

from __future__ import annotations

PLURAL_FORMS: dict[str, str] = {
    "en": "nplurals=2; plural=(n != 1);",
    "th": "nplurals=1; plural=0;",
    "my": "nplurals=1; plural=0;",
    "km": "nplurals=1; plural=0;",
    "ne": "nplurals=2; plural=(n != 1);",
    "bn": "nplurals=2; plural=(n > 1);",
    "id": "nplurals=1; plural=0;",
    # CLDR's "many" (a million, a billion ...) comes before "other" in CLDR category order.
    "es": "nplurals=3; plural=(n == 1 ? 0 : n != 0 && n % 1000000 == 0 ? 1 : 2);",
}
