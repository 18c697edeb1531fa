"""What the two Telegram runtimes (aiogram in this package, python-telegram-bot in
``bot/channels/telegram_ptb/``) share, so they behave the same: the updates they ask for, the
command menus, which calls count against the send rate, what their errors mean (at start and
when sending), a worker's turn with its chat history for /forget, the file size limit, and the
webhook listener.

Nothing here imports either library. Each runtime adds its Bot API calls (``ChatApi``) and says
which of its exceptions mean what (``TelegramErrors``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import web

from bot.channels.gateway import ConversationGateway
from bot.channels.sending import Blocked, ChannelDown, Rejected, RetryAfter, SendFailure
from bot.channels.telegram.rendering import Entity, MessageApi, send_rendered, send_replies
from bot.channels.telegram.updates import MediaFile
from bot.errors import ChannelStartError
from conversations.commands import WORKER_COMMANDS
from conversations.messages import (
    ChannelCapabilities,
    Effects,
    FetchMedia,
    Inbound,
    Outbound,
)
from conversations.ports import MediaTooLarge
from locales import LANGUAGES, SOURCE_LANGUAGE, translator
from storage.conversation_state import ConversationBusyError
from storage.outage import storage_unreachable
from storage.recent_ids import ChatHistory, UpdateLog

log = logging.getLogger(__name__)

CHANNEL = "telegram"
#: Telegram deletes the worker's messages (deleteMessages, within 48 hours) and sends messages
#: that cannot be forwarded or saved (protect_content); the words of the core say so.
CAPABILITIES = ChannelCapabilities(can_delete_messages=True, can_protect_content=True)
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # what the Bot API lets a bot download
MAX_DELETE_MESSAGES = 100  # deleteMessages takes at most this many ids a call
#: One broadcast send may not take longer than this (the relay's claim margin is longer).
SEND_TIMEOUT_SECONDS = 10
#: Connections the broadcast sender keeps open (the relay sends many messages at once).
BROADCAST_CONNECTIONS = 100
#: The Bot API methods that count against the token's send rate (the rest are not messages).
PACED_METHOD_PREFIXES = ("send", "edit", "copy", "forward")


def counts_against_rate(method: str) -> bool:
    """Whether the Bot API method ``method`` (``sendMessage``, aiogram's ``SendMessage``)
    sends or changes a message, and so takes a token from the shared rate."""
    return method.lower().startswith(PACED_METHOD_PREFIXES)


def command_menus() -> list[tuple[str | None, list[tuple[str, str]]]]:
    """The command menu once per language, so each worker sees it in their own: (language code,
    or None for the default menu in the source language; [(command, description)])."""
    menus: list[tuple[str | None, list[tuple[str, str]]]] = []
    for language in LANGUAGES:
        t = translator(language)
        commands = [
            (name, t.gettext(description)[:256]) for name, description in WORKER_COMMANDS.items()
        ]
        menus.append((None if language == SOURCE_LANGUAGE else language, commands))
    return menus


def deletion_batches(message_ids: Iterable[int]) -> list[list[int]]:
    """The ids to delete, each once, in deleteMessages calls of at most 100."""
    unique = sorted(set(message_ids))
    return [
        unique[start : start + MAX_DELETE_MESSAGES]
        for start in range(0, len(unique), MAX_DELETE_MESSAGES)
    ]


async def first_delivery(updates: UpdateLog, update_id: int) -> bool:
    """False for an update handled before (a webhook retry, a restart before the polling offset
    was confirmed): it is ignored."""
    try:
        if await updates.first_time(update_id):
            return True
    except Exception as error:
        if not storage_unreachable(error):
            raise
        # Redis is down: handling an update twice is better than dropping it unanswered.
        log.warning("update ids unreachable (%s); update handled", type(error).__name__)
        return True
    log.info("update delivered again; ignored")
    return False


def too_big(description: str) -> bool:
    """Whether a Bot API error says the file is over the download limit."""
    return "too big" in description.lower()


def within_download_limit(
    media: MediaFile, download: Callable[[str], Awaitable[bytes]]
) -> FetchMedia:
    """Fetch ``media`` with the runtime's ``download`` (which raises ``MediaUnavailable`` or
    ``MediaTooLarge``), refusing at once a file Telegram would not let the bot download."""

    async def fetch() -> bytes:
        if media.size is not None and media.size > MAX_DOWNLOAD_BYTES:
            raise MediaTooLarge
        return await download(media.file_id)

    return fetch


Errors = tuple[type[BaseException], ...]


@dataclass(frozen=True)
class TelegramErrors:
    """Which of a runtime's exceptions mean what, so both runtimes name a failure alike."""

    #: The seconds a 429 asks to wait; None for any other error (``pacing.paced`` takes it).
    retry_after: Callable[[BaseException], float | None]
    blocked: Errors  # the worker blocked the bot (403)
    rejected: Errors  # this request is refused for good (400 ...)
    token_rejected: Errors  # the token is wrong (401 ...)
    unreachable: Errors  # the Bot API cannot be reached, times out, or fails (5xx)
    any: Errors  # every error of the runtime's Bot API calls

    def send_failure(self, error: BaseException) -> SendFailure | None:
        """``error`` in the channel layer's words (``bot/channels/sending.py``); None when it
        is none of them. Checked in this order: a library may nest these classes (PTB's
        ``BadRequest`` is a ``NetworkError``)."""
        seconds = self.retry_after(error)
        if seconds is not None:
            return RetryAfter(seconds)
        if isinstance(error, self.blocked):
            return Blocked("the worker blocked the bot")
        if isinstance(error, self.rejected):
            return Rejected(type(error).__name__)
        if isinstance(error, self.token_rejected):
            return ChannelDown("Telegram rejected the token (WVB_TELEGRAM_TOKEN)")
        if isinstance(error, self.unreachable):
            return ChannelDown(f"Telegram unreachable ({type(error).__name__})")
        return None


@asynccontextmanager
async def start_failures_named(errors: TelegramErrors) -> AsyncIterator[None]:
    """A channel's start (getMe, command menus) failing as one line naming the setting."""
    try:
        yield
    except errors.token_rejected:  # never passed on: PTB's message quotes the token
        raise ChannelStartError("WVB_TELEGRAM_TOKEN: Telegram rejected the token") from None
    except errors.rejected:
        raise
    except errors.unreachable as error:
        raise ChannelStartError(
            f"WVB_TELEGRAM_API_BASE: cannot reach the Bot API ({type(error).__name__})"
        ) from None


class ChatApi(MessageApi, Protocol):
    """The Bot API calls of a worker's turn, in a runtime's own types."""

    async def delete_messages(self, chat_id: int, message_ids: list[int]) -> None: ...


class _Sent(Protocol):
    @property
    def message_id(self) -> int: ...


class LibraryBot(Protocol):
    """The three methods of a library's ``Bot`` a turn calls. aiogram and python-telegram-bot
    both name them, and their parameters, as the Bot API does."""

    async def send_message(
        self, *, chat_id: int, text: str, reply_markup: Any, protect_content: bool, entities: Any
    ) -> _Sent: ...

    async def edit_message_text(
        self, *, text: str, chat_id: int, message_id: int, reply_markup: Any, entities: Any
    ) -> object: ...

    async def delete_messages(self, chat_id: int, message_ids: list[int]) -> object: ...


class BotApi:
    """``ChatApi`` on a library's ``Bot``: the runtime gives its own types for buttons
    (``keyboard``) and entities, and the errors with which Telegram refuses an edit (too old,
    or not modified: the reply then goes as a new message)."""

    def __init__(
        self,
        bot: LibraryBot,
        *,
        keyboard: Callable[[Outbound], object | None],
        entities: Callable[[list[Entity]], list[Any]],
        edit_refused: Errors,
    ) -> None:
        self.bot = bot
        self._keyboard = keyboard
        self._entities = entities
        self._edit_refused = edit_refused

    def _entities_of(self, entities: list[Entity] | None) -> list[Any] | None:
        return None if entities is None else self._entities(entities)

    async def edit_text(
        self, chat_id: int, message_id: int, reply: Outbound, entities: list[Entity] | None
    ) -> bool:
        try:
            await self.bot.edit_message_text(
                text=reply.text,
                chat_id=chat_id,
                message_id=message_id,
                reply_markup=self._keyboard(reply),
                entities=self._entities_of(entities),
            )
        except self._edit_refused:
            return False
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
        message = await self.bot.send_message(
            chat_id=chat_id,
            text=text,
            reply_markup=self._keyboard(reply) if with_buttons else None,
            protect_content=reply.protect_content,
            entities=self._entities_of(entities),
        )
        return message.message_id

    async def delete_messages(self, chat_id: int, message_ids: list[int]) -> None:
        await self.bot.delete_messages(chat_id, message_ids)


class TelegramSender:
    """Sends outside a turn (outbox, staff alerts, broadcasts) and names failures in the
    channel layer's words. Pacing is the runtime's bot's: the conversation bot paces its sends,
    the broadcast relay paces the unpaced bot itself."""

    channel = CHANNEL

    def __init__(self, api: MessageApi, errors: TelegramErrors) -> None:
        self.api = api
        self.errors = errors

    async def send(self, address: str, message: Outbound) -> list[str]:
        try:
            sent = await send_rendered(self.api, int(address), message)
        except self.errors.any as error:
            failure = self.errors.send_failure(error)
            if failure is None:
                raise
            raise failure from None
        return [str(message_id) for message_id in sent]


class ChatTurns:
    """A worker's turn in a private chat, whichever runtime received it: the ids of the chat's
    messages are kept (never their content) so /forget can delete them, the gateway runs the
    turn, and the runtime's ``api`` sends the replies and deletes messages."""

    def __init__(
        self,
        gateway: ConversationGateway,
        history: ChatHistory,
        api: ChatApi,
        errors: TelegramErrors,
    ) -> None:
        self.gateway = gateway
        self.history = history
        self.api = api
        self.errors = errors

    async def handle(
        self,
        user_id: int,
        chat_id: int,
        inbound: Inbound,
        inbound_message_id: int | None,
        *,
        pressed_message_id: int | None = None,
    ) -> None:
        worker = self.gateway.worker(CHANNEL, user_id, chat_id, CAPABILITIES)
        if inbound_message_id is not None:
            await self._remember(worker.pseudonym, [inbound_message_id])

        async def deliver(replies: Sequence[Outbound], effects: Effects) -> None:
            if effects.erase_chat:
                await self.erase(chat_id, await self.history.recent(worker.pseudonym))
                await self.history.clear(worker.pseudonym)
            elif effects.erase_inbound and inbound_message_id is not None:
                await self.erase(chat_id, [inbound_message_id])
            sent = await send_replies(
                self.api, chat_id, replies, pressed_message_id=pressed_message_id
            )
            if not effects.erase_chat:
                await self._remember(worker.pseudonym, sent)

        try:
            await self.gateway.handle(worker, inbound, deliver)
        except ConversationBusyError:
            log.warning("conversation busy for too long; update dropped")
        except self.errors.blocked:
            log.info("worker has blocked the bot; reply not delivered")

    async def _remember(self, pseudonym: str, message_ids: list[int]) -> None:
        """Keep the ids for /forget; with Redis down the turn goes on without (those messages
        are then beyond /forget's reach)."""
        try:
            await self.history.add(pseudonym, message_ids)
        except Exception as error:
            if not storage_unreachable(error):
                raise
            log.warning("chat history unreachable (%s)", type(error).__name__)

    async def erase(self, chat_id: int, message_ids: Sequence[int]) -> None:
        """Delete what Telegram still allows; older messages simply stay (nothing to do)."""
        for batch in deletion_batches(message_ids):
            try:
                await self.api.delete_messages(chat_id, batch)
            except self.errors.any as error:
                log.warning("could not delete messages: %s", type(error).__name__)


def staff_chat_problem(chat_type: str, username: str | None) -> str | None:
    """Why a chat must not receive staff alerts, or None when it may: a private chat, or a
    group without a public username. A channel, or a group anyone can find and read by its
    @username, would publish every alert."""
    if chat_type == "private":
        return None
    if chat_type in ("group", "supergroup"):
        return "it is a public group (it has a @username)" if username else None
    return f"it is a {chat_type}, not a private chat or a private group"


async def check_staff_chat(get_chat: Callable[[int], Awaitable[Any]], chat_id: int) -> str | None:
    """``staff_chat_problem`` of the chat the runtime's ``get_chat`` (getChat) describes."""
    try:
        chat = await get_chat(chat_id)
    except Exception as error:  # whatever went wrong, no alert goes to an unchecked chat
        return f"Telegram cannot tell what chat it is ({type(error).__name__})"
    return staff_chat_problem(chat.type, chat.username)


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    secret: str
    host: str
    port: int

    @staticmethod
    def secret_or_random(configured: str | None) -> str:
        # We register the webhook ourselves at every start, so a random secret is as good as a
        # configured one when the operator gives none; an absent secret is never an option.
        return configured or secrets.token_urlsafe(32)


class WebhookServer:
    """Receives updates over HTTPS via a reverse proxy, on aiohttp. ``route`` adds the runtime's
    handler (which rejects requests without the secret) at the webhook's path; ``register``
    tells Telegram the URL and the secret once the listener is up."""

    def __init__(
        self,
        settings: WebhookSettings,
        route: Callable[[web.Application, str], None],
        register: Callable[[], Awaitable[object]],
    ) -> None:
        self.settings = settings
        self._route = route
        self._register = register
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        settings = self.settings
        app = web.Application()
        self._route(app, urlsplit(settings.url).path or "/")
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, settings.host, settings.port).start()
        await self._register()
        log.info("webhook listening on %s:%d", settings.host, settings.port)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
