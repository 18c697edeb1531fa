"""Fuzzing (issue 10, point 13): random and malformed input, zero crashes, no worker text in logs.

Two fuzzers, both on the real parts:

* **Updates**: raw Bot API JSON updates, mostly of Telegram's shape with hostile values (text in
  many scripts, control characters, lone surrogates, huge strings, callback data up to 64 bytes,
  files with random metadata) and some malformed, go through the real aiogram parsing
  (``Update.model_validate``) and the real python-telegram-bot parsing (``Update.de_json``), then
  through our translation (``bot/channels/telegram/updates.py``, ``telegram_ptb/updates.py``) and
  the turn every runtime takes (``ChatTurns``: gateway, engine, rendering).
* **Conversations**: random sequences of ``Inbound`` events (random text, typed numbers in any
  script, real and malformed button payloads, random commands, files with random bytes and
  metadata, most often pressing a button the bot just showed so the fuzz reaches deep steps) go
  through the gateway and the engine with the real memory state store and the real services on
  a SQLite test database, exactly as ``bot/app.py`` composes them.

Every turn must be answered, no turn may raise, every rendered message must be one Telegram
accepts, and no log record (message, arguments, exception text; the bot's own logging set-up at
DEBUG) may contain a fragment (4 characters or more) of anything a worker sent.

``WVB_FUZZ_EXAMPLES`` sets the examples per fuzzer (default 50: about 15 s for the
conversations, 2 s for the updates);
``WVB_FUZZ_RANDOM=1`` explores new examples instead of the fixed, derandomized ones. The full run
of 10,000 and what it found are in docs/SECURITY.md ("Fuzzing").
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import tempfile
import types
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiogram
import pydantic
import pytest
import telegram
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from bot.app import App, open_app
from bot.channels import gateway as gateway_module
from bot.channels.telegram.rendering import MAX_MESSAGE_LENGTH, Entity
from bot.channels.telegram.shared import ChatTurns, TelegramErrors, within_download_limit
from bot.channels.telegram.updates import (
    MediaFile,
    inbound_from_callback,
    inbound_from_message,
)
from bot.channels.telegram_ptb.updates import staff_command
from bot.logging_setup import QUIET_BELOW_WARNING
from bot.settings import load_settings
from conversations.commands import WORKER_COMMANDS
from conversations.messages import (
    MAX_PAYLOAD_BYTES,
    FetchMedia,
    Inbound,
    InboundKind,
    Outbound,
    utf16_length,
)
from conversations.ports import MediaTooLarge, MediaUnavailable
from storage.recent_ids import MemoryChatHistory
from tests.conftest import fresh_keys

EXAMPLES = int(os.environ.get("WVB_FUZZ_EXAMPLES", "50"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a shared 2-core machine: time is measured in docs, never asserted
    database=None,  # no .hypothesis folder in the repository, in CI or anywhere
    derandomize=not os.environ.get("WVB_FUZZ_RANDOM"),  # the same examples every CI run
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one app (one database) for all examples: wanted
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
BOT_USERNAME = "fuzz_bot"
STAFF_COMMANDS = ("cases", "case", "ack", "assign", "note", "reply", "remediate", "close")
#: Shorter fragments of worker text than this are not looked for in the logs (too common).
FRAGMENT = 4

# -- what workers type ------------------------------------------------------------------------

SCRIPTS = (
    "0123456789",
    "๐๑๒๓๔๕๖๗๘๙",  # Thai digits
    "၀၁၂၃၄၅၆၇၈၉",  # Myanmar digits
    "០១២៣៤៥៦៧៨៩",  # Khmer digits
    "०१२३४५६७८९",  # Devanagari digits
    "০১২৩৪৫৬৭৮৯",  # Bengali digits
    "０１２３４５６７８９",  # full-width digits
    "٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹",  # Arabic-Indic digits
    "②⑨²³¹₂₉½Ⅻ⁴",  # digit-like characters that are no numbers
    "กขคงภาษาไทยเแโใไ",
    "မြန်မာကခဂငဆ",
    "ႀကၤၾၿ",  # Zawgyi-only code points
    "ខ្មែរកខគ",
    "नेपालीकखग",
    "বাংলাকখগ",
    "שלוםעברית",
    "مرحباعربي",
    "\u200f\u200e\u202e\u202d\u2066\u2067\u2068\u2069",  # direction marks and overrides
    "\u200b\u200c\u200d\u2060\ufeff",  # zero-width characters
    "\x00\x01\x07\x08\x1b\x7f\x85\u2028\u2029\r\n\t\x0b\x0c",  # control characters
    "😀👍🏽👨‍👩‍👧🇹🇭🧑🏿‍🏭",
    "\u0301\u0336\u0489",  # combining marks
    "<>&*_`[]()~|#/@:;-.,'\"\\ {}%$",
    "ABCxyzÉñßİıǅ",
    "\ue000\uffff\ufffe\U0010fffd\U0001d400",
)
CURATED = st.lists(st.sampled_from(SCRIPTS).flatmap(st.sampled_from), max_size=40).map("".join)
WORDS = st.sampled_from(
    [
        "1", "2", "9", "99", "0", "-1", "๒", "၂", "２", "②", "²", "2.", "１０", "1e3",
        "Back", "back", "CANCEL", "Menu", "menu", "ย้อนกลับ", "ယခင်", "yes", "No", "/",
        "English", "ไทย", "Español", "K7M3-9Q2X", "k7m3 9q2x", "K๗M๓ ๙Q๒X",
    ]
)  # fmt: skip
HUGE = st.builds(lambda piece, times: piece * times, CURATED.filter(bool), st.integers(200, 5000))
VALID_TEXT = st.one_of(
    st.text(), CURATED, WORDS, HUGE, st.builds("".join, st.lists(WORDS, max_size=6))
)
#: Lone UTF-16 surrogates: what a malformed update's JSON ("\ud800") or a terminal's
#: undecodable bytes (surrogateescape) put into a string.
BROKEN = st.builds(
    lambda text, at, lone: text[:at] + lone + text[at:],
    CURATED,
    st.integers(0, 40),
    st.sampled_from(["\ud800", "\udfff", "\udcff", "\udbff", "\ud83d"]),
)
TEXT = st.one_of(VALID_TEXT, BROKEN)

#: Button payloads the bot may send, whatever their values, and broken ones of at most 64 bytes.
PAYLOAD_SHAPES = st.sampled_from(
    [
        "lang:", "privacy:", "sub:", "menu:", "cat:", "val:", "ans:", "ret:", "site:", "learn:",
        "learn:open:", "learn:page:", "learn:page:pay:", "learn:rate:pay:", "learn:report:",
        "val:K7M3-9Q2X:", "ret:K7M3-9Q2X:", "site:TOKEN:", "wp:", "danger:", "conf:", "review:",
    ]
)  # fmt: skip


def _within_64_bytes(text: str) -> str:
    data = text.encode("utf-8", "surrogatepass")[:MAX_PAYLOAD_BYTES]
    return data.decode("utf-8", "ignore")


PAYLOAD = st.one_of(
    st.builds(lambda shape, tail: _within_64_bytes(shape + tail), PAYLOAD_SHAPES, TEXT),
    st.text(max_size=64).map(_within_64_bytes),
    st.binary(max_size=64).map(lambda data: data.decode("utf-8", "replace")).map(_within_64_bytes),
    st.sampled_from(["", ":", "::", "learn:page:pay:0", "learn:page:pay:1000", "learn:page:pay:๒"]),
)
COMMAND = st.one_of(st.sampled_from(list(WORKER_COMMANDS) + list(STAFF_COMMANDS)), TEXT)
MEDIA_KINDS = (
    "photo", "voice", "audio", "document", "video", "video_note", "animation", "sticker",
)  # fmt: skip
MIME = st.one_of(
    st.sampled_from(
        ["", "image/jpeg", "image/png", "application/pdf", "audio/ogg", "audio/mpeg",
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
         "image/svg+xml", "text/html", "application/octet-stream"]
    ),
    st.text(max_size=80),
)  # fmt: skip
MAGIC = st.sampled_from(
    [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"%PDF-1.7\n", b"PK\x03\x04", b"OggS",
     b"ID3\x04", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP", b"\x00\x00\x00\x18ftypheic"]
)  # fmt: skip


def _png_with_metadata(chunks: list[tuple[str, str]], width: int, height: int) -> bytes:
    """A real, tiny PNG whose text chunks carry what the worker may not know is there."""
    info = PngImagePlugin.PngInfo()
    for key, value in chunks:
        info.add_itxt(key, value)
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


#: Metadata keys that PNG text chunks accept (1-79 Latin-1 characters, no NUL).
PNG_KEY = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), min_size=1, max_size=20)
PNG_FILES = st.builds(
    _png_with_metadata,
    st.lists(st.tuples(PNG_KEY.map(str.strip).filter(bool), VALID_TEXT), max_size=3),
    st.integers(1, 4),
    st.integers(1, 4),
)
FILE_BYTES = st.one_of(st.builds(bytes.__add__, MAGIC, st.binary(max_size=300)), PNG_FILES)


@dataclass
class Sent:
    """What one example sent: every piece of worker text, to look for in the logs."""

    texts: list[str] = field(default_factory=list)

    def add(self, *values: object) -> None:
        self.texts.extend(value for value in values if isinstance(value, str))

    def add_file(self, data: bytes) -> None:
        # PNG text chunks as the file holds them (Latin-1 keys, UTF-8 values), and any bytes.
        self.add(data.decode("latin-1"), data.decode("utf-8", "ignore"))


# -- the log ----------------------------------------------------------------------------------

_SOURCE = "\n".join(
    path.read_text(encoding="utf-8")
    for folder in ("bot", "conversations", "domain", "locales", "media", "services", "storage")
    for path in Path(__file__).resolve().parent.parent.joinpath(folder).rglob("*.py")
)
TURN_ID = "\N{WHITE SQUARE}" * 8  # the gateway's random turn id, fixed so no hex can collide


class LogRecorder(logging.Handler):
    """Every record, as the bot's logging set-up lets it through at DEBUG."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        records, self.records = self.records, []
        return records


def _parts(record: logging.LogRecord) -> Iterator[str]:
    """What a record would write: its message, each argument and the exception text."""
    yield str(record.msg)
    arguments = record.args if isinstance(record.args, tuple) else (record.args,)
    for argument in arguments or ():
        yield str(argument)
    if record.exc_info:
        yield logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        yield record.exc_text
    if record.stack_info:
        yield record.stack_info


def _fragments(text: str) -> set[str]:
    return {text[start : start + FRAGMENT] for start in range(len(text) - FRAGMENT + 1)}


def leaks(records: Sequence[logging.LogRecord], sent: Sent) -> list[str]:
    """Fragments of what was sent that a log record holds. A fragment the bot's own source also
    holds (a step name, a word of a format string) is the code speaking, not the worker."""
    found = []
    typed = set().union(*map(_fragments, sent.texts)) if sent.texts else set()
    for record in records:
        for part in _parts(record):
            shared = {f for f in _fragments(part) & typed if f.strip() and f not in _SOURCE}
            if shared:
                found.append(f"{record.name} {record.levelname}: {sorted(shared)[:5]!r}")
    return found


@pytest.fixture
def recorded_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[LogRecorder]:
    """The root logger at DEBUG with the libraries quietened as ``configure_logging`` does."""
    recorder = LogRecorder()
    root = logging.getLogger()
    quiet = [logging.getLogger(name) for name in QUIET_BELOW_WARNING]
    levels = [root.level, *(logger.level for logger in quiet)]
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    monkeypatch.setattr(
        gateway_module, "secrets", types.SimpleNamespace(token_hex=lambda _n: TURN_ID)
    )
    try:
        yield recorder
    finally:
        root.removeHandler(recorder)
        for logger, level in zip([root, *quiet], levels, strict=True):
            logger.setLevel(level)


# -- the bot, as bot/app.py builds it, with a Telegram chat that records instead of sending ----


class RecordingChat:
    """The Bot API calls of a turn (``ChatApi``), checked against what Telegram accepts."""

    def __init__(self) -> None:
        self.sent: list[Outbound] = []
        self.calls = 0
        self.next_id = itertools.count(1000)

    def _check(self, text: str, reply: Outbound, entities: list[Entity] | None) -> None:
        assert text.strip(), "Telegram refuses an empty message"
        assert utf16_length(text) <= MAX_MESSAGE_LENGTH, "Telegram refuses a message this long"
        for entity in entities or ():
            assert entity.offset >= 0
            assert entity.length > 0
            assert entity.offset + entity.length <= utf16_length(text)
        for choice in reply.choices:
            assert choice.label.strip(), "Telegram refuses a button without a label"
            assert 0 < len(choice.payload.encode()) <= MAX_PAYLOAD_BYTES

    async def edit_text(
        self, chat_id: int, message_id: int, reply: Outbound, entities: list[Entity] | None
    ) -> bool:
        self._check(reply.text, reply, entities)
        self.calls += 1
        self.sent.append(reply)
        return True

    async def send_text(
        self,
        chat_id: int,
        text: str,
        reply: Outbound,
        *,
        with_buttons: bool,
        entities: list[Entity] | None,
    ) -> int:
        self._check(text, reply, entities)
        self.calls += 1
        if with_buttons:
            self.sent.append(reply)
        return next(self.next_id)

    async def delete_messages(self, chat_id: int, message_ids: list[int]) -> None:
        assert 0 < len(message_ids) <= 100

    def buttons(self) -> list[str]:
        """The payloads of the buttons the worker sees now."""
        for reply in reversed(self.sent):
            if reply.choices:
                return [choice.payload for choice in reply.choices]
        return []


NO_ERRORS = TelegramErrors(
    retry_after=lambda _error: None,
    blocked=(),
    rejected=(),
    token_rejected=(),
    unreachable=(),
    any=(),
)


@dataclass
class Bot:
    app: App
    chat: RecordingChat
    turns: ChatTurns
    failures: list[BaseException]
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(10_000_000))

    async def turn(self, inbound: Inbound, user_id: int | None = None) -> None:
        """One turn as a runtime takes it; every turn must be answered, none may fail."""
        self.failures.clear()
        calls = self.chat.calls
        user = user_id if user_id is not None else next(self.ids)
        await self.turns.handle(user, user, inbound, next(self.chat.next_id))
        assert not self.failures, _explain(self.failures)
        assert self.chat.calls > calls, "the bot must always answer"


@pytest.fixture
def database_folder(tmp_path: Path) -> Iterator[Path]:
    """In memory (tmpfs) where the system has it: the fuzz commits thousands of turns, and on a
    shared disk waiting for fsync would be most of its time. SQLite is the same either way."""
    if not Path("/dev/shm").is_dir():
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="wvb-fuzz-") as folder:
        yield Path(folder)


@pytest.fixture
async def bot(database_folder: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bot]:
    settings_ = load_settings(
        database_url=f"sqlite+aiosqlite:///{database_folder / 'fuzz.sqlite3'}",
        _env_file=None,
        **fresh_keys(),
    )
    async with open_app(settings_, upgrade_schema=True) as app:
        for name, country in (("Golden Fish Co.", "TH"), ("Sunrise Garments", "KH")):
            await app.staff.add_workplace("fuzz", name, country)
        failures: list[BaseException] = []
        handle = app.engine.handle

        async def recorded(*args: Any, **kwargs: Any) -> Any:
            try:
                return await handle(*args, **kwargs)
            except Exception as error:
                failures.append(error)
                raise

        monkeypatch.setattr(app.engine, "handle", recorded)
        chat = RecordingChat()
        turns = ChatTurns(app.gateway, MemoryChatHistory(), chat, NO_ERRORS)
        yield Bot(app, chat, turns, failures)


def _explain(failures: list[BaseException]) -> str:
    import traceback

    return "".join(traceback.format_exception(failures[0])) if failures else ""


# -- fuzzing the conversation -----------------------------------------------------------------


def _fetch(outcome: bytes | type[Exception]) -> FetchMedia:
    async def fetch() -> bytes:
        if isinstance(outcome, bytes):
            return outcome
        raise outcome()

    return fetch


@st.composite
def media_event(draw: st.DrawFn, sent: Sent, hint: str | None = None) -> Inbound:
    """A file with a random caption, declared type and content, or one the channel cannot
    hand over."""
    caption, mime = draw(TEXT), draw(MIME)
    outcome = draw(st.one_of(FILE_BYTES, st.sampled_from([MediaUnavailable, MediaTooLarge])))
    sent.add(caption, mime)
    if isinstance(outcome, bytes):
        sent.add_file(outcome)
    kind = draw(st.one_of(st.sampled_from(MEDIA_KINDS), st.text(max_size=10)))
    return Inbound.media_of(kind, caption, hint, mime=mime, fetch=_fetch(outcome))


@st.composite
def worker_event(draw: st.DrawFn, buttons: list[str], sent: Sent) -> Inbound:
    """One thing a worker does next; most often press (or type the number of) a button shown."""
    hint = draw(st.one_of(st.none(), st.sampled_from(["en", "th", "my", "km-KH", "zz"]), TEXT))
    sent.add(hint)
    action = draw(
        st.sampled_from(
            ["press"] * 12 + ["number"] * 2 + ["text"] * 4 + ["payload", "command", "media", "odd"]
        )
    )
    # Draws never depend on what the bot said (Hypothesis replays the same choices): an index
    # picks a button shown, or without buttons is typed as a number.
    index = draw(st.integers(0, 63))
    if action == "press" and buttons:
        return Inbound.choice_of(buttons[index % len(buttons)], hint)
    if action in ("press", "number"):
        number = str(index % len(buttons) + 1 if buttons else index)
        script = draw(st.sampled_from(SCRIPTS[:8]))
        return Inbound.text_of("".join(script[int(digit)] for digit in number), hint)
    if action == "payload":
        payload = draw(PAYLOAD)
        sent.add(payload)
        return Inbound.choice_of(payload, hint)
    if action == "command":
        name = draw(COMMAND)
        sent.add(name)
        return Inbound.command_of(name, hint)
    if action == "media":
        return draw(media_event(sent, hint))
    if action == "odd":
        return Inbound(InboundKind.UNSUPPORTED, language_hint=hint)
    text = draw(TEXT)
    sent.add(text)
    return Inbound.text_of(text, hint)


def _press(payload: str) -> st.SearchStrategy[Inbound]:
    return st.just(Inbound.choice_of(payload))


def _typed(text: st.SearchStrategy[str] = TEXT) -> st.SearchStrategy[Inbound]:
    return text.map(Inbound.text_of)


ONBOARDING = [
    st.just(Inbound.command_of("start")),
    st.sampled_from(["lang:en", "lang:th", "lang:my", "lang:km", "lang:ne", "lang:bn",
                     "lang:id", "lang:es"]).map(Inbound.choice_of),
    _press("privacy:ok"),
    _press("sub:no"),
]  # fmt: skip
#: Walks to where worker text is stored or looked up, with fuzzed values on the way, so the
#: random events that follow start deep in a flow as well as at its beginning.
ROUTES: dict[str, list[st.SearchStrategy[Inbound] | None]] = {
    "report": [
        *ONBOARDING,
        st.just(Inbound.command_of("report")),
        st.sampled_from(["cat:wages", "cat:forced", "cat:other"]).map(Inbound.choice_of),
        _press("report:done"),
        st.sampled_from(["wp:1", "wp:other", "wp:skip"]).map(Inbound.choice_of),
        _typed(),  # the workplace typed out, or the agency
        _typed(),  # the agency, or what happened
        _typed(),  # what happened
        None,  # a file (media_event)
        _press("report:done"),
        _press("when:ongoing"),
        _press("who:few"),
        st.sampled_from(["danger:no", "danger:yes"]).map(Inbound.choice_of),
        st.sampled_from(["share:confidential", "share:share"]).map(Inbound.choice_of),
        st.sampled_from(["review:send", "review:edit", "nav:back"]).map(Inbound.choice_of),
    ],
    "status": [*ONBOARDING, st.just(Inbound.command_of("status")), _typed(), _typed()],
    "forget": [st.just(Inbound.command_of("forget")), _press("forget:yes")],
    "none": [],
}


@FUZZ_SETTINGS
@given(data=st.data())
async def test_random_conversations_never_crash_and_never_log_what_was_typed(
    bot: Bot, recorded_log: LogRecorder, data: st.DataObject
) -> None:
    sent = Sent()
    user = next(bot.ids)
    route = data.draw(st.sampled_from(sorted(ROUTES)), label="route")
    for step in ROUTES[route]:
        event = data.draw(media_event(sent) if step is None else step)
        sent.add(event.text)
        await bot.turn(event, user)
    turns = data.draw(st.integers(1, 30), label="turns")
    for _ in range(turns):
        event = data.draw(worker_event(bot.chat.buttons(), sent))
        await bot.turn(event, user)
    records = recorded_log.take()
    assert not [r for r in records if r.levelno >= logging.ERROR or r.exc_info]
    assert not leaks(records, sent)


# -- fuzzing Telegram updates -----------------------------------------------------------------

BIG_INT = st.one_of(st.integers(-(2**31), 2**53), st.integers(-(2**70), 2**70))


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3)


JSON = st.recursive(
    st.none() | st.booleans() | BIG_INT | st.floats(allow_nan=False) | TEXT, _nested, max_leaves=6
)
RAW_TEXT = st.one_of(TEXT, st.sampled_from(["\ud800", "a\udfffb", "\udbff\udc00x"]))
USER = st.fixed_dictionaries(
    {"id": BIG_INT, "is_bot": st.booleans(), "first_name": RAW_TEXT},
    optional={
        "last_name": RAW_TEXT,
        "username": RAW_TEXT,
        "language_code": st.one_of(st.sampled_from(["en", "th", "my", "pt-br", ""]), RAW_TEXT),
    },
)
CHAT = st.fixed_dictionaries(
    # Mostly private chats: the only ones the runtimes hand on.
    {"id": BIG_INT, "type": st.sampled_from(["private"] * 5 + ["group", "supergroup", "channel"])},
    optional={"title": RAW_TEXT, "first_name": RAW_TEXT},
)
FILE_ID = st.fixed_dictionaries({"file_id": RAW_TEXT, "file_unique_id": RAW_TEXT})
FILE_EXTRA = {"file_size": BIG_INT, "mime_type": RAW_TEXT, "file_name": RAW_TEXT}
SIZES = {"width": BIG_INT, "height": BIG_INT}


def _file(required: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"file_id": RAW_TEXT, "file_unique_id": RAW_TEXT, **required}, optional=FILE_EXTRA
    )


MEDIA_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "photo": st.lists(_file(SIZES), max_size=3),
    "document": _file({}),
    "voice": _file({"duration": BIG_INT}),
    "audio": _file({"duration": BIG_INT}),
    "video": _file({**SIZES, "duration": BIG_INT}),
    "video_note": _file({"length": BIG_INT, "duration": BIG_INT}),
    "animation": _file({**SIZES, "duration": BIG_INT}),
    "sticker": _file(
        {
            **SIZES,
            "type": st.just("regular"),
            "is_animated": st.booleans(),
            "is_video": st.booleans(),
        }
    ),
}
ENTITY = st.fixed_dictionaries(
    {"type": st.sampled_from(["bot_command", "bold", "url", "mention"]) | RAW_TEXT,
     "offset": BIG_INT, "length": BIG_INT}
)  # fmt: skip
COMMAND_TEXT = st.builds(
    "/{}{}".format,
    COMMAND,
    st.sampled_from(["", "@fuzz_bot", "@FUZZ_BOT", "@other_bot", " args", "@fuzz_bot K7M3-9Q2X"]),
)
#: What a message carries: text (or a command), one kind of file with or without a caption, or
#: nothing the bot reads (a location, a poll ...).
CONTENT = st.one_of(
    st.fixed_dictionaries(
        {"text": st.one_of(RAW_TEXT, COMMAND_TEXT)},
        optional={"entities": st.lists(ENTITY, max_size=3)},
    ),
    st.sampled_from(sorted(MEDIA_FIELDS)).flatmap(
        lambda kind: st.fixed_dictionaries(
            {kind: MEDIA_FIELDS[kind]}, optional={"caption": st.one_of(RAW_TEXT, COMMAND_TEXT)}
        )
    ),
    st.fixed_dictionaries({}, optional={"caption": RAW_TEXT, "entities": st.just([])}),
)
EDITED = st.one_of(
    st.just({}), st.just({}), st.just({}), st.builds(dict, edit_date=st.integers(0, 2**32))
)
MESSAGE = st.builds(
    lambda base, content, edited: {**base, **content, **edited},
    st.fixed_dictionaries(
        {"message_id": BIG_INT, "date": st.integers(0, 2**32), "chat": CHAT, "from": USER}
    ),
    CONTENT,
    EDITED,
)
CALLBACK = st.fixed_dictionaries(
    {"id": RAW_TEXT, "from": USER, "chat_instance": RAW_TEXT, "message": MESSAGE},
    optional={"data": st.one_of(PAYLOAD, RAW_TEXT), "inline_message_id": TEXT},
)
UPDATE_KINDS = {
    "message": MESSAGE,
    "edited_message": MESSAGE,
    "channel_post": MESSAGE,
    "callback_query": CALLBACK,
}
WELL_FORMED = st.sampled_from(sorted(UPDATE_KINDS)).flatmap(
    lambda kind: st.fixed_dictionaries({"update_id": BIG_INT, kind: UPDATE_KINDS[kind]})
)


@st.composite
def malformed(draw: st.DrawFn, update: dict[str, Any]) -> dict[str, Any]:
    """``update`` with one of its fields (at any depth) replaced, removed or added at random."""
    update = json.loads(json.dumps(update))
    parents = []
    stack: list[Any] = [update]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            parents.append(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    parent = draw(st.sampled_from(parents))
    key = draw(st.one_of(st.sampled_from(sorted(parent) or ["x"]), TEXT))
    if draw(st.booleans()) and key in parent:
        del parent[key]
    else:
        parent[key] = draw(JSON)
    return update


RAW_UPDATE = st.one_of(WELL_FORMED, WELL_FORMED, WELL_FORMED.flatmap(malformed), JSON)


def _raw_texts(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _raw_texts(key)
            yield from _raw_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _raw_texts(item)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1000:
        yield str(value)  # messenger ids and the like


@dataclass
class Parsed:
    """What a runtime would hand on from one update: (user id, chat id, inbound)."""

    turns: list[tuple[int, int, Inbound]] = field(default_factory=list)
    staff: list[tuple[str, str]] = field(default_factory=list)


async def _downloaded(file_id: str) -> bytes:
    raise MediaUnavailable


def _fetcher(media: MediaFile) -> FetchMedia:
    return within_download_limit(media, _downloaded)


def _private(message: object) -> bool:
    """Whether a message is in a private chat. A chat Telegram always sends may be missing where
    python-telegram-bot's ``de_json`` accepts an update without it (PTB's own filters then fail
    inside PTB, whose error handler logs only the error: see the PTB runtime's ``on_error``)."""
    chat = getattr(message, "chat", None)
    return chat is not None and chat.type == "private"


def parse_with_aiogram(raw: object, bot: aiogram.Bot) -> Parsed | None:
    """The real aiogram parsing, then what the aiogram runtime's routers hand on (private
    chats only; ``bot/channels/telegram/runtime.py``)."""
    try:
        update = aiogram.types.Update.model_validate(raw, context={"bot": bot})
    except pydantic.ValidationError:
        return None  # aiogram refuses it; the runtime never sees it
    parsed = Parsed()
    for message in (update.message, update.edited_message):
        if message and _private(message) and message.from_user is not None:
            inbound = inbound_from_message(message, BOT_USERNAME, _fetcher)
            parsed.turns.append((message.from_user.id, message.chat.id, inbound))
    query = update.callback_query
    if query and query.message is not None and _private(query.message) and query.from_user:
        parsed.turns.append(
            (query.from_user.id, query.message.chat.id, inbound_from_callback(query))
        )
    return parsed


def parse_with_ptb(raw: object, bot: telegram.Bot) -> Parsed | None:
    """The real python-telegram-bot parsing, then what the PTB runtime's handlers hand on
    (``bot/channels/telegram_ptb/runtime.py``)."""
    if not isinstance(raw, dict):
        return None  # PTB's polling and webhook hand de_json only JSON objects
    try:
        update = telegram.Update.de_json(raw, bot)
    except Exception:  # de_json checks nothing itself: whatever fails in it (a TypeError, an
        return None  # OSError for a date out of range ...) is PTB refusing the update
    parsed = Parsed()
    message = update.effective_message if (update.message or update.edited_message) else None
    if message and _private(message) and message.from_user is not None:
        if update.message is not None:
            command = staff_command(message.text or message.caption, BOT_USERNAME, STAFF_COMMANDS)
            if command is not None:
                parsed.staff.append(command)
        inbound = inbound_from_message(message, BOT_USERNAME, _fetcher)
        parsed.turns.append((message.from_user.id, message.chat.id, inbound))
    query = update.callback_query
    if query and query.message is not None and _private(query.message) and query.from_user:
        parsed.turns.append(
            (query.from_user.id, query.message.chat.id, inbound_from_callback(query))
        )
    return parsed


@pytest.fixture
async def library_bots() -> AsyncIterator[tuple[aiogram.Bot, telegram.Bot]]:
    token = "123456:" + "A" * 35
    aiogram_bot = aiogram.Bot(token)
    try:
        yield aiogram_bot, telegram.Bot(token)
    finally:
        await aiogram_bot.session.close()


@FUZZ_SETTINGS
@given(raw=RAW_UPDATE)
async def test_random_telegram_updates_are_parsed_translated_and_answered_without_crashing(
    bot: Bot,
    recorded_log: LogRecorder,
    library_bots: tuple[aiogram.Bot, telegram.Bot],
    raw: object,
) -> None:
    sent = Sent()
    sent.add(*_raw_texts(raw))
    aiogram_bot, ptb_bot = library_bots
    for parsed in (parse_with_aiogram(raw, aiogram_bot), parse_with_ptb(raw, ptb_bot)):
        if parsed is None:
            continue  # the library refused it: the runtime never sees it
        for user_id, _chat_id, inbound in parsed.turns:
            await bot.turn(inbound, user_id)
    records = recorded_log.take()
    assert not [r for r in records if r.levelno >= logging.ERROR or r.exc_info]
    assert not leaks(records, sent)
