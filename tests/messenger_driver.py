"""A worker's conversation with the real bot, written once and run on every messenger.

The end-to-end suites drive `wvb run` (``serve``, in this process) through a fake messenger
server. This module is the one vocabulary they share:

- ``Messenger`` (the ``messenger`` fixture, one parameter per channel: Telegram on aiogram,
  Telegram on python-telegram-bot, WhatsApp) starts and stops the bot on a backend and keeps the
  record of what it sent, as ``Said`` (``text``, ``payloads``, ``labels``, ``protected``);
- its simulated workers (``messenger.user(number, language_code=...)``) act as a person does:
  ``command``, ``text``, ``press``, ``photo``, ``voice``, ``document``;
- the walks and waits (``ask``, ``press``, ``onboard``, ``report``, ``check_status``) are written
  once, over that interface.

What one messenger can do and another cannot stays with the tests about it: Telegram deletes
messages, protects content, has a command menu and a webhook mode (``messenger.telegram`` is its
fake server); the WhatsApp Cloud API can do none of the first three, and the core says so to the
worker (conversations/channel_words.py). ``messenger.protects`` and ``messenger.deletes`` say
which. The staff chat is a Telegram chat on every channel, as in production (WVB_STAFF_CHAT_ID),
so a WhatsApp messenger runs the bot with both channels, each on its fake server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from bot.channels.whatsapp.webhook import WEBHOOK_PATH
from bot.runner import serve
from bot.settings import Settings
from locales import LANGUAGES
from storage.database import Database
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer, SentMessage, SimulatedUser
from tests.fake_whatsapp_api import (
    FakeWhatsAppServer,
    SentWaMessage,
    SimulatedWaUser,
    WebhookDeliverer,
)
from tests.patterns import RECEIPT_CODE, REFERENCE
from tests.whatsapp_driver import VERIFY_TOKEN, whatsapp_settings

REPLY_TIMEOUT = 30.0

DETAILS_CHOICES = {"report:done", "nav:back", "nav:menu"}


@dataclass(frozen=True, eq=False)
class Said:
    """One message the bot sent, as the worker sees it on whichever messenger."""

    index: int  # its place in the fake server's record of everything the bot sent there
    to: str  # the address it went to: a Telegram chat id, a WhatsApp number
    text: str  # what the worker reads (WhatsApp's bold marks and escapes taken out)
    choices: tuple[tuple[str, str], ...] = ()  # (label, payload) of each choice, in order
    protected: bool = False  # the messenger keeps it from being forwarded or saved
    bold: tuple[str, ...] = ()  # the parts shown bold, in order
    raw: Any = field(default=None, repr=False)  # the fake server's own record of it

    @property
    def payloads(self) -> set[str]:
        return {payload for _, payload in self.choices}

    @property
    def payload_list(self) -> list[str]:
        return [payload for _, payload in self.choices]

    @property
    def labels(self) -> list[str]:
        return [label for label, _ in self.choices]

    def label_of(self, payload: str) -> str:
        return next(label for label, data in self.choices if data == payload)

    def describe(self) -> str:
        text = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        labels = f" choices={self.labels}" if self.choices else ""
        return f"#{self.index} to {self.to}: {text!r}{labels}"


@dataclass(frozen=True)
class Profile:
    """What a person's messenger account shows: their name, and on Telegram the language of
    their app (``language_code``); WhatsApp tells the bot no language."""

    name: str = "Worker"
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"


Predicate = Callable[[Said], bool]
Act = Callable[[], Awaitable[object]]


def has(*payloads: str) -> Predicate:
    return lambda m: all(p in m.payloads for p in payloads)


def ticked(payload: str) -> Predicate:
    """The message shows the choice ``payload`` as selected."""
    return lambda m: any(p == payload and label.startswith("✅") for label, p in m.choices)


def is_details(message: Said) -> bool:
    """The report's "what happened?" step: add more, or done."""
    return message.payloads == DETAILS_CHOICES


def is_receipt(message: Said) -> bool:
    return RECEIPT_CODE.search(message.text) is not None


# --- the bot ---------------------------------------------------------------------------------


@dataclass
class RunningBot:
    """`wvb run` running in this process; ``server`` is the fake Bot API it polls."""

    server: FakeTelegramServer
    settings: Settings
    task: asyncio.Task[None]
    stop: asyncio.Event


async def serve_in_process(
    server: FakeTelegramServer, settings: Settings, ready: Callable[[], Awaitable[bool]]
) -> RunningBot:
    """Upgrade the schema (as `wvb db upgrade` does), then `wvb run` with ``settings`` in this
    process; return once ``ready`` says it receives (fail if it never does, or stopped)."""
    database = Database(settings.database_url)
    await database.upgrade()
    await database.dispose()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop))
    deadline = time.monotonic() + 60  # generous: a loaded 2-core CI machine starts slowly
    while not await ready():
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            stop.set()
            await asyncio.wait_for(task, 30)
            raise AssertionError("the bot never started receiving")
        await asyncio.sleep(0.02)
    return RunningBot(server, settings, task, stop)


async def stop_bot(bot: RunningBot) -> None:
    bot.stop.set()
    await asyncio.wait_for(bot.task, 30)


# --- workers --------------------------------------------------------------------------------


class Worker(ABC):
    """A person on a messenger, talking to the bot. Each act sends one message (or press)."""

    def __init__(self, messenger: Messenger, address: str, identity: str) -> None:
        self.messenger = messenger
        self.address = address  # where the bot sends to them
        self.identity = identity  # the id their messenger knows them by (never to be stored)

    @property
    def language_hint(self) -> str | None:
        """The language the messenger tells the bot the worker uses, if it tells any."""
        return None

    @property
    def protects(self) -> bool:
        return self.messenger.protects

    def identifiers(self) -> list[str]:
        """What identifies this person on their messenger, in each form it could leak in:
        none may be found in a database dump, a Redis dump or a log line."""
        return [self.identity, hashlib.sha256(self.identity.encode()).hexdigest()]

    @abstractmethod
    async def text(self, text: str) -> None: ...

    async def command(self, name: str, args: str = "") -> None:
        """A command as the worker types it: ``/name`` (Telegram adds its command entity)."""
        await self.text(f"/{name} {args}".rstrip() if args else f"/{name}")

    @abstractmethod
    async def press(self, payload: str, on: Said | None = None) -> None:
        """Choose ``payload`` on ``on`` (default: the latest message that offers it) as the
        messenger lets a person: a button, a list row, or typing a listed choice's number."""

    @abstractmethod
    async def photo(self, data: bytes, caption: str | None = None) -> None: ...

    @abstractmethod
    async def voice(self, data: bytes) -> None: ...

    @abstractmethod
    async def document(
        self, data: bytes, name: str, mime_type: str = "application/pdf"
    ) -> None: ...

    def messages(self) -> list[Said]:
        """What the bot sent this worker, oldest first."""
        return self.messenger.messages_to(self.address)

    def last_message(self) -> Said:
        messages = self.messages()
        assert messages, f"the bot has not sent anything to {self.address}"
        return messages[-1]

    def carrier(self, payload: str) -> Said | None:
        """The latest message offering ``payload``."""
        return next((m for m in reversed(self.messages()) if payload in m.payloads), None)


class TelegramWorker(Worker):
    def __init__(self, messenger: Messenger, user: SimulatedUser) -> None:
        super().__init__(messenger, str(user.chat_id), str(user.id))
        self.user = user

    @property
    def language_hint(self) -> str | None:
        return self.user.language_code

    async def text(self, text: str) -> None:
        self.user.send_text(text)

    async def press(self, payload: str, on: Said | None = None) -> None:
        target = on or self.carrier(payload) or self.last_message()
        self.user.press(payload, target.raw)

    async def photo(self, data: bytes, caption: str | None = None) -> None:
        self.user.send_photo(caption, data=data)

    async def voice(self, data: bytes) -> None:
        self.user.send_voice(data=data)

    async def document(self, data: bytes, name: str, mime_type: str = "application/pdf") -> None:
        self.user.send_document(data=data, file_name=name, mime_type=mime_type)


# --- messengers -----------------------------------------------------------------------------


class Messenger(ABC):
    """One channel's fake server(s) and the bot running against them."""

    #: The core's name of the channel (pseudonyms and addresses are per channel name).
    name: str
    #: Whether the messenger protects content from forwarding, and can delete messages.
    protects: bool
    deletes: bool

    def __init__(self, channel: str, backend: Backend | None, telegram: FakeTelegramServer) -> None:
        self.channel = channel
        self.backend = backend
        self.telegram = telegram  # the staff chat's messenger, on every channel
        self.bot: RunningBot | None = None
        self._said: list[Said] = []

    # -- the bot --

    @property
    def settings(self) -> Settings:
        assert self.bot is not None, "the bot is not running"
        return self.bot.settings

    def environment(self) -> dict[str, str]:
        """The running bot's settings as WVB_ variables, for a `wvb` subprocess."""
        assert self.backend is not None
        return self.backend.environment(self.settings)

    def telegram_settings(self) -> dict[str, object]:
        """The settings that put the bot on the fake Bot API."""
        return {
            "telegram_token": self.telegram.token,
            "telegram_api_base": self.telegram.base_url,
            "telegram_runtime": "aiogram" if self.channel == "whatsapp" else self.channel,
        }

    def _settings(self, overrides: dict[str, object]) -> Settings:
        assert self.backend is not None
        return self.backend.settings(**(self.telegram_settings() | overrides))

    async def _ready(self) -> bool:
        return self.telegram.long_polling or self.telegram.webhook is not None

    async def start(self, *, staff_chat: int | None = None, **overrides: object) -> RunningBot:
        """`wvb run` in this process on this messenger (plus the Telegram staff chat
        ``staff_chat``, a private supergroup, if given); returns once it receives."""
        assert self.backend is not None
        assert self.bot is None, "the bot is already running"
        if staff_chat is not None:
            self.telegram.register_chat({"id": staff_chat, "type": "supergroup", "title": "Staff"})
            overrides["staff_chat_id"] = staff_chat
        self.bot = await serve_in_process(self.telegram, self._settings(overrides), self._ready)
        return self.bot

    async def stop(self) -> None:
        bot, self.bot = self.bot, None
        if bot is not None:
            await stop_bot(bot)

    @asynccontextmanager
    async def running(self, **overrides: Any) -> AsyncIterator[RunningBot]:
        """``start`` for the length of a ``with`` block, stopped afterwards."""
        bot = await self.start(**overrides)
        try:
            yield bot
        finally:
            await self.stop()

    async def close(self) -> None:
        await self.stop()

    # -- people --

    def user(
        self,
        number: int,
        *,
        language_code: str | None = "en",
        name: str = "Worker",
        last_name: str | None = None,
        username: str | None = None,
    ) -> Worker:
        """The worker ``number`` (the same one on every call). On Telegram ``number`` is their
        user id and ``language_code`` what Telegram tells the bot; on WhatsApp ``number`` makes
        their phone number, and WhatsApp tells the bot no language."""
        return self._person(number, Profile(name, last_name, username, language_code))

    @abstractmethod
    def _person(self, number: int, profile: Profile) -> Worker: ...

    def staff_member(self, telegram_id: int, *, language_code: str = "en") -> TelegramWorker:
        """A staff member in Telegram (staff commands and the staff chat are on Telegram)."""
        return TelegramWorker(
            TelegramMessenger(self.telegram),
            self.telegram.user(telegram_id, language_code=language_code),
        )

    @abstractmethod
    def block(self, worker: Worker) -> None:
        """The worker blocks the bot (or can no longer receive): sends to them fail."""

    @abstractmethod
    def unblock(self, worker: Worker) -> None: ...

    @abstractmethod
    def all_requests_ok(self) -> bool:
        """Every call the bot made to its messengers was accepted."""

    # -- what the bot said --

    @abstractmethod
    def _records(self) -> list[Any]:
        """The fake server's record of what the bot sent, oldest first."""

    @abstractmethod
    def _to_said(self, index: int, record: Any) -> Said:
        """The record as the worker sees it."""

    @abstractmethod
    async def _wait_for_more(self, seen: int, timeout: float) -> None:
        """Return once the record holds more than ``seen`` entries, or after ``timeout``."""

    def mark(self) -> int:
        """Where the record ends now: pass as ``start`` to see only what comes later."""
        return len(self._records())

    def sent(self, start: int = 0) -> list[Said]:
        records = self._records()
        while len(self._said) < len(records):
            self._said.append(self._to_said(len(self._said), records[len(self._said)]))
        return self._said[start:]

    def messages_to(self, address: str) -> list[Said]:
        return [said for said in self.sent() if said.to == address]

    async def wait_for(
        self, predicate: Predicate, *, count: int = 1, timeout: float = REPLY_TIMEOUT,
        start: int = 0,
    ) -> list[Said]:  # fmt: skip
        """Wait until ``count`` messages from ``start`` on match ``predicate``; return them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        position = start
        matches: list[Said] = []
        while True:
            for said in self.sent(position):
                if predicate(said):
                    matches.append(said)
                    if len(matches) >= count:
                        return matches
            position = max(position, len(self._said))
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(self._timeout_summary(predicate, len(matches), count, timeout))
            await self._wait_for_more(position, remaining)

    def _timeout_summary(self, predicate: Predicate, found: int, count: int, timeout: float) -> str:
        name = getattr(predicate, "__qualname__", repr(predicate))
        lines = [f"{self.channel}: wait_for({name}) timed out after {timeout}s: {found} of "
                 f"{count} matching messages. The last ones sent:"]  # fmt: skip
        lines += [f"  {said.describe()}" for said in self.sent()[-10:]] or ["  (none)"]
        return "\n".join(lines)


class TelegramMessenger(Messenger):
    """The bot on one Telegram runtime over the fake Bot API. Without a backend, only the
    reader of what the bot sent there (``bot_driver``'s tests, staff members in Telegram)."""

    name = "telegram"
    protects = True
    deletes = True

    def __init__(
        self, telegram: FakeTelegramServer, channel: str = "aiogram", backend: Backend | None = None
    ) -> None:
        super().__init__(channel, backend, telegram)

    def _person(self, number: int, profile: Profile) -> TelegramWorker:
        simulated = self.telegram.user(
            number, first_name=profile.name, last_name=profile.last_name,
            username=profile.username, language_code=profile.language_code,
        )  # fmt: skip
        return TelegramWorker(self, simulated)

    def block(self, worker: Worker) -> None:
        self.telegram.block(int(worker.address))

    def unblock(self, worker: Worker) -> None:
        self.telegram.unblock(int(worker.address))

    def all_requests_ok(self) -> bool:
        return all(request.status == 200 for request in self.telegram.requests)

    def _records(self) -> list[SentMessage]:
        return self.telegram.sent

    def _to_said(self, index: int, record: SentMessage) -> Said:
        return telegram_said(index, record)

    async def _wait_for_more(self, seen: int, timeout: float) -> None:
        # On timeout the caller's deadline has passed: it says what it waited for.
        with contextlib.suppress(AssertionError):
            await self.telegram.wait_for(lambda m: True, start=seen, timeout=timeout)


def telegram_said(index: int, message: SentMessage) -> Said:
    encoded = message.text.encode("utf-16-le")
    bold = []
    for entity in message.params.get("entities") or []:
        if entity.get("type") == "bold":
            start, length = 2 * int(entity["offset"]), 2 * int(entity["length"])
            bold.append(encoded[start : start + length].decode("utf-16-le"))
    return Said(
        index,
        str(message.chat_id),
        message.text,
        tuple((str(b.get("text", "")), str(b.get("callback_data", ""))) for b in message.buttons()),
        protected=message.protect_content,
        bold=tuple(bold),
        raw=message,
    )


# --- the walks a person takes, written once -------------------------------------------------


async def ask(worker: Worker, act: Act, predicate: Predicate) -> Said:
    """Do ``act`` as the worker and return the first later bot message to them matching
    ``predicate``."""
    since = worker.messenger.mark()
    await act()
    return await reply(worker, predicate, since)


async def reply(worker: Worker, predicate: Predicate, since: int = 0) -> Said:
    [message] = await worker.messenger.wait_for(
        lambda m: m.to == worker.address and predicate(m), start=since
    )
    return message


async def press(worker: Worker, payload: str, expect: Predicate) -> Said:
    """Choose ``payload`` on the latest message that offers it; await ``expect``."""
    carrier = worker.carrier(payload)
    if carrier is None:  # the message offering it may still be on its way
        carrier = await reply(worker, lambda m: payload in m.payloads)
    return await ask(worker, lambda: worker.press(payload, carrier), expect)


async def choose(worker: Worker, label: str, expect: Predicate) -> Said:
    """Choose, on the latest message with choices, the one whose label contains ``label``."""
    message = next(m for m in reversed(worker.messages()) if m.choices)
    found = [payload for text, payload in message.choices if label in text]
    assert found, f"no choice labelled {label!r} on {message.describe()}"
    return await ask(worker, lambda: worker.press(found[0], message), expect)


async def onboard(
    worker: Worker, language: str, *, subscribe: bool = False, workplace_id: int | None = None
) -> Said:
    """/start, choose ``language`` by its name, accept the privacy notice, answer the broadcast
    offer (and, subscribing, choose ``workplace_id`` or skip when workplaces are listed);
    return the menu."""
    picker = await ask(worker, lambda: worker.command("start"), has("lang:en"))
    assert picker.payload_list == [f"lang:{code}" for code in LANGUAGES], (
        "one order, whatever the messenger's language"
    )
    hint = worker.language_hint
    if hint in LANGUAGES:
        assert f"{LANGUAGES[hint]} ✓" in picker.labels, "the messenger's language is marked"
    privacy = await choose(worker, LANGUAGES[language], has("privacy:ok"))
    assert "/forget" in privacy.text
    await press(worker, "privacy:ok", has("sub:yes"))
    if not subscribe:
        return await press(worker, "sub:no", has("menu:report"))
    answer = await press(
        worker, "sub:yes", lambda m: bool(m.payloads & {"menu:report", "sub:wp-skip"})
    )
    if "menu:report" in answer.payloads:
        return answer
    choice = "sub:wp-skip" if workplace_id is None else f"sub:wp:{workplace_id}"
    return await press(worker, choice, has("menu:report"))


@dataclass
class Receipt:
    reference: str
    code: str
    message: Any  # a ``Said`` (``bot_driver`` hands on the Telegram record)


async def begin_report(
    worker: Worker,
    *,
    categories: tuple[str, ...] = ("wages",),
    workplace: str | None = None,
    agency: str | None = None,
) -> Said:
    """/report, the ``categories``, Done, the workplace (skipped, a listed one ``wp:ID``, or
    typed) and the agency (none, or typed): the bot now asks what happened."""
    await ask(worker, lambda: worker.command("report"), has("cat:wages"))
    for code in categories:
        await press(worker, f"cat:{code}", ticked(f"cat:{code}"))
    await press(worker, "report:done", has("wp:skip"))
    if workplace is None:
        await press(worker, "wp:skip", has("agency:none"))
    elif workplace.startswith("wp:"):
        await press(worker, workplace, has("agency:none"))
    else:
        await ask(worker, lambda: worker.text(workplace), has("agency:none"))
    if agency is None:
        return await press(worker, "agency:none", is_details)
    return await ask(worker, lambda: worker.text(agency), is_details)


async def report(
    worker: Worker,
    *,
    categories: tuple[str, ...] = ("wages",),
    workplace: str | None = None,
    agency: str | None = None,
    details: tuple[str, ...] = ("I was not paid for two months.",),
    photo: bytes | None = None,
    voice: bytes | None = None,
    when: str = "week",
    affected: str = "few",
    danger: str = "no",
    share: str = "confidential",
    send: bool = True,
) -> Receipt | None:
    """Walk an onboarded worker through /report by choosing, as a person would."""
    await begin_report(worker, categories=categories, workplace=workplace, agency=agency)
    for text in details:
        await ask(worker, lambda t=text: worker.text(t), is_details)  # type: ignore[misc]
    if photo is not None:
        await ask(worker, lambda: worker.photo(photo, "evidence"), is_details)
    if voice is not None:
        await ask(worker, lambda: worker.voice(voice), is_details)
    await press(worker, "report:done", has("when:ongoing"))
    await press(worker, f"when:{when}", has("who:me"))
    await press(worker, f"who:{affected}", has("danger:yes"))
    await press(worker, f"danger:{danger}", has("share:share"))
    review = await press(
        worker, f"share:{share}", lambda m: bool(m.payloads & {"review:send", "warn:share"})
    )
    if "warn:share" in review.payloads:
        await press(worker, "warn:share", has("review:send"))
    if not send:
        return None
    receipt = await press(worker, "review:send", is_receipt)
    assert receipt.protected is worker.protects, "protected wherever the messenger can"
    reference = REFERENCE.search(receipt.text)
    code = RECEIPT_CODE.search(receipt.text)
    assert reference is not None, receipt.text
    assert code is not None, receipt.text
    return Receipt(reference.group(1), code.group(1), receipt)


async def check_status(worker: Worker, reference: str, code: str) -> Said:
    """/status, then the reference, then the code: return the bot's answer."""
    await ask(worker, lambda: worker.command("status"), lambda m: "K7M3-9Q2X" in m.text)
    await ask(worker, lambda: worker.text(reference), lambda m: True)
    return await ask(worker, lambda: worker.text(code), lambda m: "menu:report" not in m.payloads)


# --- WhatsApp -------------------------------------------------------------------------------


#: The WhatsApp number of worker ``number``: a Thai mobile number, as digits (the wa_id).
def whatsapp_number(number: int) -> str:
    return f"66{number:09d}"


WHATSAPP_VERIFY_TOKEN = "wvb-e2e-verify"
_BOLD_MARK = re.compile(r"(?<!\u2060)\*(?!\u2060)")


def whatsapp_text(body: str) -> tuple[str, tuple[str, ...]]:
    """A WhatsApp body as the worker reads it, and its bold parts: a ``*`` that is not wrapped
    in WORD JOINERs is a bold mark (rendering.py escapes every other one)."""
    parts = _BOLD_MARK.split(body)
    bold = tuple(part.replace("\u2060", "") for part in parts[1::2])
    return "".join(parts).replace("\u2060", ""), bold


@dataclass(frozen=True)
class ListedChoices:
    """The choices behind a text list (more than ten choices: WhatsApp has no widget for so
    many). The worker reads only the labels; a typed number (or, where the bot asks for words,
    the typed label) chooses one."""

    choices: tuple[tuple[str, str], ...]
    numbered: bool


class ChoiceBook:
    """What the core asked the WhatsApp channel to show, for the messages whose choices do not
    travel over the wire (a text list): the driver must know that "3." is ``cat:fees`` to press
    it, as the worker knows it from its label. It watches the sender's ``render``, the pure
    function from the core's ``Outbound`` to Cloud API bodies, and changes nothing."""

    def __init__(self) -> None:
        self.lists: dict[str, ListedChoices] = {}
        self._original: Any = None

    def install(self) -> None:
        from bot.channels.whatsapp import rendering, sender

        original = self._original = sender.render

        def render(message: Any, language: str) -> list[dict[str, Any]]:
            payloads = original(message, language)
            if len(message.choices) > rendering.MAX_ROWS and payloads:
                choices = tuple((choice.label, choice.payload) for choice in message.choices)
                body = str(payloads[-1]["text"]["body"])
                self.lists[body] = ListedChoices(choices, message.numbered)
            return payloads

        sender.render = render  # type: ignore[assignment]

    def uninstall(self) -> None:
        if self._original is not None:
            from bot.channels.whatsapp import sender

            sender.render = self._original
            self._original = None


def whatsapp_said(index: int, message: SentWaMessage, book: ChoiceBook) -> Said:
    payload = message.payload
    choices: tuple[tuple[str, str], ...] = ()
    body = ""
    if message.type == "text":
        body = str(payload["text"]["body"])
        listed = book.lists.get(body)
        if listed is not None:
            choices = listed.choices
    elif message.type == "interactive":
        interactive = payload["interactive"]
        body = str(interactive["body"]["text"])
        action = interactive["action"]
        if "buttons" in action:
            choices = tuple((b["reply"]["title"], b["reply"]["id"]) for b in action["buttons"])
        else:  # a list: a shortened title carries the whole label as its description
            choices = tuple(
                (row.get("description") or row["title"], row["id"])
                for section in action["sections"]
                for row in section["rows"]
            )
    elif message.type == "template":
        components = payload["template"].get("components", [])
        choices = tuple(
            ("", str(parameter["payload"]))
            for component in components
            if component.get("type") == "button"
            for parameter in component.get("parameters", [])
            if parameter.get("type") == "payload"
        )
    elif message.type in ("image", "document"):
        body = str(payload[message.type].get("caption", ""))
    text, bold = whatsapp_text(body)
    return Said(index, message.recipient, text, choices, bold=bold, raw=message)


class WhatsAppWorker(Worker):
    def __init__(self, messenger: WhatsAppMessenger, user: SimulatedWaUser) -> None:
        assert user.wa_id is not None
        super().__init__(messenger, user.wa_id, user.wa_id)
        self.whatsapp = messenger
        self.user = user
        self.message_ids: list[str] = []  # the wamids of what they sent

    def identifiers(self) -> list[str]:
        """The number also as +digits, and every message id to or from them: a wamid holds the
        number (base64), as Meta's do."""
        sent_to = [m.wamid for m in self.whatsapp.whatsapp.messages_to(self.address)]
        return [*super().identifiers(), f"+{self.identity}", *self.message_ids, *sent_to]

    async def _send(self, value: dict[str, Any]) -> None:
        self.message_ids += [str(message["id"]) for message in value.get("messages", [])]
        statuses = await self.whatsapp.deliverer.deliver(value)
        assert statuses[-1] == 200, f"the webhook answered {statuses}"

    async def text(self, text: str) -> None:
        await self._send(self.user.text(text))

    async def press(self, payload: str, on: Said | None = None) -> None:
        target = on or self.carrier(payload)
        assert target is not None, f"nothing offers {payload!r} to {self.address}"
        sent: SentWaMessage = target.raw
        label = target.label_of(payload)
        if sent.type == "template":
            await self._send(self.user.template_button(payload, label))
        elif sent.type == "interactive" and sent.payload["interactive"]["type"] == "button":
            await self._send(self.user.button_reply(payload, label, context_id=sent.wamid))
        elif sent.type == "interactive":
            await self._send(self.user.list_reply(payload, label, context_id=sent.wamid))
        elif self.whatsapp.book.lists[sent.payload["text"]["body"]].numbered:
            await self.text(str(target.payload_list.index(payload) + 1))
        else:  # the bot asks for words: a number typed would be words, the label is a choice
            await self.text(label)

    async def photo(self, data: bytes, caption: str | None = None) -> None:
        media = self.whatsapp.whatsapp.add_media(data, "image/jpeg")
        await self._send(self.user.image(media, caption=caption))

    async def voice(self, data: bytes) -> None:
        media = self.whatsapp.whatsapp.add_media(data, "audio/ogg; codecs=opus")
        await self._send(self.user.voice(media))

    async def document(self, data: bytes, name: str, mime_type: str = "application/pdf") -> None:
        media = self.whatsapp.whatsapp.add_media(data, mime_type, filename=name)
        await self._send(self.user.document(media))


class WhatsAppMessenger(Messenger):
    """The bot on WhatsApp over the fake Cloud API (webhooks signed and POSTed to the bot's
    WVB_WHATSAPP_LISTEN), beside Telegram, where the staff chat is."""

    name = "whatsapp"
    protects = False
    deletes = False

    def __init__(
        self, backend: Backend | None, telegram: FakeTelegramServer, whatsapp: FakeWhatsAppServer
    ) -> None:
        super().__init__("whatsapp", backend, telegram)
        self.whatsapp = whatsapp
        self.deliverer = WebhookDeliverer("")  # its url: once the bot's settings are made
        self.book = ChoiceBook()
        self._users: dict[int, WhatsAppWorker] = {}

    def _settings(self, overrides: dict[str, object]) -> Settings:
        assert self.backend is not None
        telegram = self.telegram_settings()
        settings = whatsapp_settings(self.backend, self.whatsapp, **(telegram | overrides))
        host, port = settings.whatsapp_host_port
        self.deliverer.url = f"http://{host}:{port}{WEBHOOK_PATH}"
        return settings

    async def _ready(self) -> bool:
        if not await super()._ready():
            return False
        try:
            status, _ = await self.deliverer.verify(VERIFY_TOKEN, "1")
        except OSError:
            return False
        return status == 200

    async def start(self, *, staff_chat: int | None = None, **overrides: object) -> RunningBot:
        self.book.install()
        try:
            return await super().start(staff_chat=staff_chat, **overrides)
        except BaseException:
            self.book.uninstall()
            raise

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            self.book.uninstall()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            await self.deliverer.close()

    def _person(self, number: int, profile: Profile) -> WhatsAppWorker:
        if number not in self._users:
            names = (profile.name, profile.last_name)
            simulated = SimulatedWaUser(
                whatsapp_number(number), name=" ".join(n for n in names if n),
                username=profile.username,
                phone_number_id=self.whatsapp.phone_number_id,
                display_phone_number=self.whatsapp.display_phone_number,
            )  # fmt: skip
            self._users[number] = WhatsAppWorker(self, simulated)
        return self._users[number]

    def block(self, worker: Worker) -> None:
        # Meta answers 131026 (undeliverable) to a number that blocked the business.
        self.whatsapp.fail_next(131026, recipient=worker.address, times=10_000)

    def unblock(self, worker: Worker) -> None:
        self.whatsapp._recipient_failures.pop(worker.address, None)

    def all_requests_ok(self) -> bool:
        telegram = all(request.status == 200 for request in self.telegram.requests)
        return telegram and all(request.status == 200 for request in self.whatsapp.requests)

    def _records(self) -> list[SentWaMessage]:
        return self.whatsapp.sent

    def _to_said(self, index: int, record: SentWaMessage) -> Said:
        return whatsapp_said(index, record, self.book)

    async def _wait_for_more(self, seen: int, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.whatsapp.sent) <= seen and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)


@asynccontextmanager
async def open_messenger(
    channel: str, backend: Backend, telegram: FakeTelegramServer
) -> AsyncIterator[Messenger]:
    """The ``messenger`` fixture: ``channel`` (one of ``CHANNELS``) on ``backend``, with its
    fake servers. The test starts the bot; it is stopped here at the latest."""
    async with contextlib.AsyncExitStack() as stack:
        messenger: Messenger
        if channel == "whatsapp":
            whatsapp = await stack.enter_async_context(FakeWhatsAppServer())
            messenger = WhatsAppMessenger(backend, telegram, whatsapp)
        else:
            messenger = TelegramMessenger(telegram, channel, backend)
        stack.push_async_callback(messenger.close)
        yield messenger
