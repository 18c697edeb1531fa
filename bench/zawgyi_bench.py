"""How fast a long Zawgyi message becomes Unicode Burmese (``locales/zawgyi.py``): the gateway
converts every Burmese text a worker sends, so a long message must not hold up the turn.

    python -m bench.zawgyi_bench

Converts texts of 1,000 to 100,000 characters made of the test suite's Zawgyi sentences, best of
five runs each, and prints one JSON document: characters, seconds, and microseconds per
character (flat when the conversion is linear). Moved here from a timed test, which failed on a
loaded CI machine (60 ms against a 50 ms bound) without anything being wrong.
"""

from __future__ import annotations

import json
import time

from locales.zawgyi import to_unicode_burmese
from tests.test_burmese import UNICODE_SENTENCES, ZAWGYI_SENTENCES


def text_of(length: int) -> tuple[str, str]:
    zawgyi: list[str] = []
    unicode: list[str] = []
    while sum(len(line) + 1 for line in zawgyi) < length:
        zawgyi.extend(ZAWGYI_SENTENCES)
        unicode.extend(UNICODE_SENTENCES)
    return "\n".join(zawgyi), "\n".join(unicode)


def main() -> None:
    rows = []
    for length in (1_000, 10_000, 100_000):
        text, expected = text_of(length)
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            result = to_unicode_burmese(text)
            timings.append(time.perf_counter() - start)
        assert result == expected
        best = min(timings)
        rows.append(
            {
                "characters": len(text),
                "seconds": round(best, 4),
                "us_per_character": round(best / len(text) * 1e6, 3),
            }
        )
    print(json.dumps({"zawgyi_to_unicode": rows}, indent=2))


if __name__ == "__main__":
    main()
