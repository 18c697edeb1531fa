"""Zawgyi detection and Zawgyi -> Unicode conversion for Burmese text.

Many Burmese speakers still type in the legacy Zawgyi font encoding, which reuses Myanmar-block
code points with different meanings (for example U+1039 is the visible virama/asat in Zawgyi but
the invisible stacking virama in Unicode). Everything we store must be standard Unicode Burmese,
so incoming text goes through :func:`to_unicode_burmese`.

Detection uses Google's ``myanmartools`` ``ZawgyiDetector`` (Apache-2.0), a Markov model over
code-point pairs. Text is converted only when the detector's Zawgyi probability is at least
:data:`ZAWGYI_THRESHOLD` (0.95). That is the value the myanmar-tools documentation recommends when
over-predicting Zawgyi is the costly error, i.e. when conversion happens automatically: fewer than
1% of Unicode strings score that high. Most of the Unicode strings that do are made only of
characters that are encoded the same way in both encodings (consonants plus ``ါ``/``ာ``, ``ိ``,
``ီ``, ``း`` ...), so converting them changes nothing. Short, ambiguous text stays as it is.

Conversion uses the ``paraencoder`` package (MIT, import name ``para``): an ordered regex rule
table derived from the Rabbit converter's zg2uni rules, with fixes. Before choosing it we compared
it with ICU's CLDR ``Zawgyi-my`` transform and with ``python-myanmar`` and ``mmfont`` on about
2,200 CLDR Burmese strings; it gave the most exact round trips. Its own heuristic detector is
bypassed (``force=True``), so ``myanmartools`` alone decides whether to convert.

Non-Burmese parts of a message are never handed to the converter: only maximal runs of
Myanmar-block code points (U+1000-U+109F, the only block Zawgyi uses) are converted, and
everything between them (Latin text, digits, spaces, newlines, U+200B, emoji) is copied through
unchanged. A run made only of Myanmar digits is also left alone, because the rules' "digit zero
used as the letter wa" heuristic would otherwise turn a lone ``၀`` (0) into ``ဝ``.
"""

from __future__ import annotations

import functools
import math
import re
import warnings

from myanmartools import ZawgyiDetector  # type: ignore[import-untyped]
from para.convert import zg_to_unicode  # type: ignore[import-untyped]

__all__ = ["ZAWGYI_THRESHOLD", "to_unicode_burmese", "zawgyi_probability"]

#: Minimum detector probability at which text is treated as Zawgyi and converted.
ZAWGYI_THRESHOLD = 0.95

# Any Myanmar script code point: the main block plus Extended-A and Extended-B.
_ANY_MYANMAR = re.compile("[\u1000-\u109f\ua9e0-\ua9ff\uaa60-\uaa7f]")
# A maximal run of main-block code points: the unit handed to the converter.
_MYANMAR_RUN = re.compile("[\u1000-\u109f]+")
_MYANMAR_DIGITS = re.compile("[\u1040-\u1049]+")

# Placed between runs (and around them) so that all runs of a message go through the rule table
# in a single pass. No rule deletes or moves a NUL. The digit-zero rules look at the characters
# on either side of a ``၀`` and can match one NUL (and write it back). A match that uses the NUL
# after one run must not leave the next run with nothing before it, so there are two NULs: the
# next run still has one before it, as it would have a space or a Latin letter in the original.
# If the NULs ever come back different, the runs are converted one at a time.
_SEP = "\x00\x00"


@functools.cache
def _detector() -> ZawgyiDetector:
    """Load the detector's model once per process."""
    # myanmartools 1.2.1 reads its model with importlib.resources.open_binary, which warns with a
    # DeprecationWarning on Python 3.11/3.12. Ignore exactly that warning while loading the model,
    # so that a run with warnings turned into errors still works.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"open_binary is deprecated",
            category=DeprecationWarning,
        )
        return ZawgyiDetector()


def zawgyi_probability(text: str) -> float:
    """Return the probability (0..1) that ``text`` is Zawgyi rather than Unicode Burmese.

    Text without any Myanmar code point returns 0.0. Only the Burmese characters carry evidence,
    and text whose characters are encoded the same way in both encodings can score anywhere from
    about 0.3 to above 0.95.
    """
    if not _ANY_MYANMAR.search(text):
        return 0.0
    probability: float = _detector().get_zawgyi_probability(text)
    if math.isnan(probability) or probability <= 0.0:  # -inf: no character the model knows
        return 0.0
    return min(probability, 1.0)


def to_unicode_burmese(text: str) -> str:
    """Return ``text`` with its Burmese converted from Zawgyi to Unicode, if it is Zawgyi.

    Text whose Zawgyi probability is below :data:`ZAWGYI_THRESHOLD` (Unicode Burmese, other
    languages, ambiguous short strings) is returned unchanged. When text is converted, only runs of
    Myanmar code points are rewritten, and every other character stays exactly as it was.
    """
    if zawgyi_probability(text) < ZAWGYI_THRESHOLD:
        return text
    runs = [m for m in _MYANMAR_RUN.finditer(text) if not _MYANMAR_DIGITS.fullmatch(m.group())]
    if not runs:
        return text
    converted = _convert_joined([m.group() for m in runs])
    pieces: list[str] = []
    position = 0
    for match, new_run in zip(runs, converted, strict=True):
        pieces.append(text[position : match.start()])
        pieces.append(new_run)
        position = match.end()
    pieces.append(text[position:])
    return "".join(pieces)


def _zawgyi_to_unicode(text: str) -> str:
    converted: str = zg_to_unicode(text, normalize=False, force=True)
    return converted


def _convert_joined(runs: list[str]) -> list[str]:
    """Convert every run in one pass of the rule table; fall back to one run at a time."""
    parts = _zawgyi_to_unicode(_SEP + _SEP.join(runs) + _SEP).split(_SEP)
    if len(parts) == len(runs) + 2 and not parts[0] and not parts[-1]:
        return parts[1:-1]
    return [_convert_one(run) for run in runs]


def _convert_one(run: str) -> str:
    converted = _zawgyi_to_unicode(_SEP + run + _SEP)
    if converted.startswith(_SEP) and converted.endswith(_SEP) and len(converted) > 2 * len(_SEP):
        return converted[len(_SEP) : -len(_SEP)]
    return run  # the separators did not survive: keep the run rather than risk damaging it
