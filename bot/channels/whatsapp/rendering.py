"""Render the core's ``Outbound`` messages as WhatsApp Cloud API ``/messages`` bodies.

Nothing here imports pywa or touches the network: these are pure functions from one ``Outbound``
to the JSON bodies the Graph API takes (docs/design/whatsapp.md, section 3), written once so the
sender only adds the recipient (``to`` or ``recipient``) and posts them. This is the one place
for WhatsApp's limits.

- 1-3 choices become reply buttons, 4-10 a list with one section, more than 10 a numbered text
  list the worker answers by typing the number (the engine matches typed numbers and labels).
- Text longer than a message allows is split at a paragraph, line, sentence or word break, and
  at worst between two grapheme clusters (Thai, Burmese and Khmer have no spaces between words),
  never inside one; the choices go with the last part, whose body is within 1024 characters.
- The text is never markup: WhatsApp has no escape character, so each ``* _ ~ ` `` in it is
  wrapped in WORD JOINERs (U+2060), which keeps it from opening or closing a format. Only the
  core's ``Outbound.bold`` spans become ``*…*``, and only where WhatsApp would show them bold.
- A label too long for a title is shortened by rule (a leading emoji dropped, then a cut at a
  word boundary, or a grapheme boundary in a script without spaces, with "…"); a list row then
  carries the whole label as its description. Labels that would become equal are numbered.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from conversations.messages import Choice, Outbound, utf16_length
from locales import LANGUAGES, N_, SOURCE_LANGUAGE, translator

#: One Graph ``/messages`` body, without the recipient (the sender adds ``to`` or ``recipient``).
WaPayload = dict[str, Any]

MAX_TEXT = 4096  # a text message's body
MAX_BODY = 1024  # an interactive message's body (and a caption)
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 256
MAX_ROWS = 10
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
MAX_ROW_ID = 200
MAX_LIST_BUTTON = 20

ELLIPSIS = "…"
#: The label of the button that opens a list. Not "Menu" (courier's choice): the list itself often
#: holds a "☰ Menu" row, and one word must not mean two things on one screen.
LIST_BUTTON = N_("Choose")

#: Characters WhatsApp reads as formatting: bold, italic, strikethrough, monospace / code.
MARKUP = frozenset("*_~`")
WORD_JOINER = "\u2060"
ZWJ = "\u200d"
#: Where a sentence ends; the Devanagari/Bengali danda, the Burmese and Khmer full stops need
#: no space after them.
SENTENCE_ENDS = frozenset(".!?。")
FULL_STOPS = frozenset("।॥။។")
#: A break may follow these: whitespace and the zero-width space Thai, Burmese and Khmer text
#: sometimes carries between words.
WORD_BREAKS = frozenset(" \t\u200b")


# --- Grapheme clusters ----------------------------------------------------------------------


def _is_extend(character: str) -> bool:
    """A character that belongs to the cluster before it (combining marks, joiners, modifiers)."""
    code = ord(character)
    return (
        unicodedata.category(character) in ("Mn", "Mc", "Me")
        or code in (0x200C, 0x200D, 0x0E33, 0x0EB3)  # ZWNJ, ZWJ, Thai and Lao SARA AM
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # emoji tag sequences (subdivision flags)
    )


def _is_regional_indicator(character: str) -> bool:
    return 0x1F1E6 <= ord(character) <= 0x1F1FF


def _hangul_kind(character: str) -> str:
    code = ord(character)
    if 0x1100 <= code <= 0x115F or 0xA960 <= code <= 0xA97F:
        return "L"
    if 0x1160 <= code <= 0x11A7 or 0xD7B0 <= code <= 0xD7C6:
        return "V"
    if 0x11A8 <= code <= 0x11FF or 0xD7CB <= code <= 0xD7FB:
        return "T"
    if 0xAC00 <= code <= 0xD7A3:
        return "LV" if (code - 0xAC00) % 28 == 0 else "LVT"
    return ""


def is_grapheme_boundary(text: str, index: int) -> bool:
    """Whether ``text`` may be cut before ``text[index]`` without breaking a grapheme cluster.

    UAX #29's rules that matter for our languages, kept on the cautious side: a stacked consonant
    after a virama or Khmer COENG stays with it (as UAX #29 does for Indic conjuncts), and so
    does a whole emoji ZWJ sequence, a flag and a Hangul syllable.
    """
    if index <= 0 or index >= len(text):
        return True
    before, after = text[index - 1], text[index]
    if before == "\r" and after == "\n":
        return False
    if before in "\r\n" or after in "\r\n":
        return True
    if _is_extend(after) or before == ZWJ:
        return False
    if unicodedata.combining(before) == 9 and before != "\u103a" and after.isalpha():
        return False  # virama / COENG + consonant (Myanmar ASAT is a visible killer: it ends)
    kinds = _hangul_kind(before), _hangul_kind(after)
    if kinds[0] == "L" and kinds[1] in ("L", "V", "LV", "LVT"):
        return False
    if kinds[0] in ("V", "LV") and kinds[1] in ("V", "T"):
        return False
    if kinds[0] in ("T", "LVT") and kinds[1] == "T":
        return False
    if _is_regional_indicator(before) and _is_regional_indicator(after):
        run = 0
        position = index - 1
        while position >= 0 and _is_regional_indicator(text[position]):
            run += 1
            position -= 1
        return run % 2 == 0
    return True


def graphemes(text: str) -> list[str]:
    """``text`` as its grapheme clusters (by ``is_grapheme_boundary``)."""
    clusters: list[str] = []
    start = 0
    for index in range(1, len(text) + 1):
        if is_grapheme_boundary(text, index):
            clusters.append(text[start:index])
            start = index
    return clusters


# --- Labels ---------------------------------------------------------------------------------


def _is_emoji(cluster: str) -> bool:
    code = ord(cluster[0])
    return (
        unicodedata.category(cluster[0]) == "So"
        or 0x1F000 <= code <= 0x1FAFF
        or 0x2600 <= code <= 0x27BF
        or _is_regional_indicator(cluster[0])
    )


def _spaceless(text: str) -> bool:
    """Whether ``text`` is in a script written without spaces between words (Thai, Lao,
    Burmese, Khmer)."""
    return any(
        0x0E00 <= ord(character) <= 0x0EFF
        or 0x1000 <= ord(character) <= 0x109F
        or 0x1780 <= ord(character) <= 0x17FF
        or 0xAA60 <= ord(character) <= 0xAA7F
        or 0x19E0 <= ord(character) <= 0x19FF
        for character in text
    )


def fit_label(label: str, limit: int) -> str:
    """``label`` within ``limit`` characters (UTF-16 units, as Meta counts), shortened by rule:
    as it is if it fits; else without a leading emoji; else cut at the last word boundary that
    fits (at the last grapheme boundary when the label has no space there) with "…"."""
    label = " ".join(label.split())
    if utf16_length(label) <= limit:
        return label
    clusters = graphemes(label)
    if len(clusters) > 1 and _is_emoji(clusters[0]):
        rest = "".join(clusters[1:]).strip()
        if rest:
            label = rest
            if utf16_length(label) <= limit:
                return label
            clusters = graphemes(label)
    budget = limit - utf16_length(ELLIPSIS)
    kept: list[str] = []
    used = 0
    for cluster in clusters:
        size = utf16_length(cluster)
        if used + size > budget:
            break
        kept.append(cluster)
        used += size
    prefix = "".join(kept)
    # A word boundary: the cut falls just before a space, or after the last space kept.
    if len(kept) < len(clusters) and clusters[len(kept)][0] in WORD_BREAKS:
        word_end = len(prefix)
    else:
        word_end = max(prefix.rfind(separator) for separator in WORD_BREAKS)
    # In a script without spaces between words a space far back is a phrase break: keeping
    # only the words before it would throw away most of the label, so cut between clusters.
    keeps_enough = word_end * 2 >= len(prefix) or not _spaceless(label)
    if word_end > 0 and prefix[:word_end].strip() and keeps_enough:
        prefix = prefix[:word_end]
    return prefix.rstrip(" \t\u200b,;:-–—、၊،") + ELLIPSIS


def fit_labels(labels: Sequence[str], limit: int) -> list[str]:
    """Each label by ``fit_label``; labels that would come out the same are numbered (their
    place in the message), so the worker can still tell them apart."""
    fitted = [fit_label(label, limit) for label in labels]
    for title in list(fitted):
        twins = [other for other, same in enumerate(fitted) if same == title]
        if len(twins) > 1:
            for twin in twins:
                prefix = f"{twin + 1}. "
                fitted[twin] = prefix + fit_label(labels[twin], limit - len(prefix))
    return fitted


# --- Text: escaping, bold, splitting --------------------------------------------------------


def escape(text: str) -> str:
    """``text`` with each WhatsApp formatting character wrapped in WORD JOINERs, so that
    nothing in it can open or close bold, italic, strikethrough or monospace."""
    return "".join(
        f"{WORD_JOINER}{character}{WORD_JOINER}" if character in MARKUP else character
        for character in text
    )


def _cost(character: str) -> int:
    """What ``character`` adds to the message once escaped, in UTF-16 units."""
    return (2 if ord(character) > 0xFFFF else 1) + (2 if character in MARKUP else 0)


def _at_edge(text: str, index: int) -> bool:
    """Whether a formatting mark at ``index`` sits next to a space, punctuation or the end."""
    if index < 0 or index >= len(text):
        return True
    character = text[index]
    if character in MARKUP:  # it is wrapped in WORD JOINERs, which WhatsApp may read as a letter
        return False
    return character.isspace() or unicodedata.category(character)[0] in "PZ"


def bold_segments(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The bold spans WhatsApp would show as bold, as (start, end): split at line ends (bold
    does not cross a line), trimmed of spaces, not starting or ending with a formatting
    character, not overlapping, and with a space or punctuation (or the edge) on either side.
    Others are dropped: the text shows plain rather than with stray asterisks."""
    segments: list[tuple[int, int]] = []
    for start, length in sorted(spans):
        if start < 0 or length <= 0 or start + length > len(text):
            continue
        line_start = start
        for line in text[start : start + length].split("\n"):
            begin = line_start + len(line) - len(line.lstrip())
            end = line_start + len(line.rstrip())
            line_start += len(line) + 1
            if begin >= end or text[begin] in MARKUP or text[end - 1] in MARKUP:
                continue
            if not (_at_edge(text, begin - 1) and _at_edge(text, end)):
                continue
            if segments and begin <= segments[-1][1]:
                continue
            segments.append((begin, end))
    return segments


def markup(text: str, start: int, end: int, bold: Sequence[tuple[int, int]]) -> str:
    """``text[start:end]`` escaped, with the ``bold`` segments that lie wholly inside it as
    ``*…*``."""
    pieces: list[str] = []
    position = start
    for begin, finish in bold:
        if begin < start or finish > end:
            continue
        pieces.append(escape(text[position:begin]))
        pieces.append(f"*{escape(text[begin:finish])}*")
        position = finish
    pieces.append(escape(text[position:end]))
    return "".join(pieces)


def _is_space(character: str) -> bool:
    return character.isspace() or character == "\u200b"


def _best_cut(text: str, start: int, hard: int) -> int:
    """Where to end a part that must end by ``hard``: a paragraph, line, sentence or word
    break in the last two thirds of the window, else any word break, else the last grapheme
    boundary; never before ``start + 1``."""
    floor = start + (hard - start) // 3
    for separator in ("\n\n", "\n"):
        position = text.rfind(separator, start, hard)
        if position > floor:
            return position + len(separator)
    for index in range(hard, floor, -1):
        if (text[index - 1] in SENTENCE_ENDS and index < len(text) and _is_space(text[index])) or (
            text[index - 1] in FULL_STOPS and is_grapheme_boundary(text, index)
        ):
            return index
    for index in range(hard, start, -1):
        if index < len(text) and text[index] in WORD_BREAKS:
            return index
        if text[index - 1] in WORD_BREAKS:
            return index
    for index in range(hard, start, -1):
        if is_grapheme_boundary(text, index):
            return index
    return hard  # one cluster longer than a whole message: nothing better exists


def split_spans(
    text: str, limit: int, start: int = 0, end: int | None = None
) -> list[tuple[int, int]]:
    """``text[start:end]`` in parts whose escaped text is within ``limit``, as (start, end)
    indices into ``text``; parts carry no leading or trailing whitespace."""
    stop = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    position = start
    while True:
        while position < stop and _is_space(text[position]):
            position += 1
        if position >= stop:
            return spans
        used = 0
        hard = position
        while hard < stop and used + _cost(text[hard]) <= limit:
            used += _cost(text[hard])
            hard += 1
        hard = max(hard, position + 1)  # a limit below one character: still make progress
        cut = stop if hard >= stop else _best_cut(text, position, hard)
        finish = cut
        while finish > position and _is_space(text[finish - 1]):
            finish -= 1
        if finish > position:
            spans.append((position, finish))
        position = cut


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Plain ``text`` in parts within ``limit`` once escaped (no bold)."""
    return [markup(text, start, end, ()) for start, end in split_spans(text, limit)]


# --- Messages -------------------------------------------------------------------------------


def _envelope(kind: str, content: dict[str, Any]) -> WaPayload:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": kind,
        kind: content,
    }


def _text_payload(body: str) -> WaPayload:
    return _envelope("text", {"body": body, "preview_url": False})


def list_button_label(language: str) -> str:
    """The translated label of the button that opens a list."""
    language = language if language in LANGUAGES else SOURCE_LANGUAGE
    return fit_label(translator(language).gettext(LIST_BUTTON), MAX_LIST_BUTTON)


def _buttons(body: str, choices: Sequence[Choice]) -> WaPayload:
    titles = fit_labels([choice.label for choice in choices], MAX_BUTTON_TITLE)
    buttons = [
        {"type": "reply", "reply": {"id": choice.payload, "title": title}}
        for choice, title in zip(choices, titles, strict=True)
    ]
    return _envelope(
        "interactive", {"type": "button", "body": {"text": body}, "action": {"buttons": buttons}}
    )


def _list(body: str, choices: Sequence[Choice], language: str) -> WaPayload:
    titles = fit_labels([choice.label for choice in choices], MAX_ROW_TITLE)
    rows: list[dict[str, str]] = []
    for choice, title in zip(choices, titles, strict=True):
        row = {"id": choice.payload, "title": title}
        if title != " ".join(choice.label.split()):
            row["description"] = fit_label(choice.label, MAX_ROW_DESCRIPTION)
        rows.append(row)
    action = {"button": list_button_label(language), "sections": [{"rows": rows}]}
    return _envelope("interactive", {"type": "list", "body": {"text": body}, "action": action})


def choice_lines(message: Outbound) -> str:
    """The choices as text lines: numbered (a typed number presses one), or as bullets where
    the bot asks for words and a typed number is words (a typed label presses one)."""
    if message.numbered:
        return "\n".join(
            f"{number}. {choice.label}" for number, choice in enumerate(message.choices, 1)
        )
    return "\n".join(f"• {choice.label}" for choice in message.choices)


def render(message: Outbound, language: str) -> list[WaPayload]:
    """The ``/messages`` bodies that show ``message`` on WhatsApp, in order (none for a message
    with neither text nor choices); ``language`` is the worker's (for the list button)."""
    text = message.text
    if len(message.choices) > MAX_ROWS:
        text = f"{text}\n\n{choice_lines(message)}" if text.strip() else choice_lines(message)
    bold = bold_segments(text, message.bold)
    if 2 * len(bold) > MAX_BODY // 4:
        bold = []  # the asterisks would crowd out the text: plain text instead
    reserve = 2 * len(bold)  # the asterisks
    interactive = 0 < len(message.choices) <= MAX_ROWS
    spans = split_spans(text, MAX_TEXT - reserve)
    if interactive:
        last = spans.pop() if spans else (0, 0)
        spans += split_spans(text, MAX_BODY - reserve, *last) or [last]
    bodies = [markup(text, start, end, bold) for start, end in spans]
    if not interactive:
        return [_text_payload(body) for body in bodies]
    last_body = bodies.pop() if bodies and bodies[-1].strip() else list_button_label(language)
    payloads = [_text_payload(body) for body in bodies if body]
    if len(message.choices) <= MAX_BUTTONS:
        payloads.append(_buttons(last_body, message.choices))
    else:
        payloads.append(_list(last_body, message.choices, language))
    return payloads
