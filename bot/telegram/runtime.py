"""The Telegram runtime: aiogram's dispatcher wired to the conversation gateway.

Only private chats are served. Messages from groups and channels are ignored without a reply:
answering in a group would show everyone there that a member is talking to a grievance service.
"""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ChatType
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.methods import GetUpdates, Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    CallbackQuery,
    Message,
    TelegramObject,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.gateway import ConversationGateway
from bot.telegram.rendering import bold_entities, keyboard, split_text
from bot.telegram.staff_commands import StaffCommands
from bot.telegram.updates import (
    MediaFile,
    inbound_from_callback,
    inbound_from_message,
    language_hint,
)
from conversations.commands import WORKER_COMMANDS
from conversations.messages import Effects, FetchMedia, Inbound, InboundKind, Outbound
from conversations.ports import MediaTooLarge, MediaUnavailable
from locales import LANGUAGES, SOURCE_LANGUAGE, translator
from storage.conversation_state import ConversationBusyError
from storage.recent_ids import ChatHistory, MemoryChatHistory, MemoryUpdateLog, UpdateLog

log = logging.getLogger(__name__)

CHANNEL = "telegram"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
MAX_RETRY_AFTER_ATTEMPTS = 5
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # what the Bot API lets a bot download


class RetryAfterMiddleware(BaseRequestMiddleware):
    """Wait out a 429 for the ``retry_after`` Telegram names, then try again."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        attempt = 0
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                attempt += 1
                if attempt >= MAX_RETRY_AFTER_ATTEMPTS or isinstance(method, GetUpdates):
                    raise
                log.warning(
                    "Telegram rate limit on %s: waiting %d s (attempt %d)",
                    type(method).__name__,
                    error.retry_after,
                    attempt,
                )
                await asyncio.sleep(error.retry_after)


def build_bot(token: str, api_base: str) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_base))
    session.middleware(RetryAfterMiddleware())
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=None))


class TelegramChannel:
    def __init__(
        self,
        bot: Bot,
        gateway: ConversationGateway,
        history: ChatHistory | None = None,
        updates: UpdateLog | None = None,
        staff_commands: StaffCommands | None = None,
    ) -> None:
        self.bot = bot
        self.gateway = gateway
        self.history: ChatHistory = history or MemoryChatHistory()
        self.updates: UpdateLog = updates or MemoryUpdateLog()
        self.dispatcher = Dispatcher()
        self.dispatcher.update.outer_middleware(self._first_delivery_only)
        if staff_commands is not None:  # before the workers' router, which answers everything
            self.dispatcher.include_router(staff_commands.router())
        self.dispatcher.include_router(self._router())
        self.username: str | None = None

    def _router(self) -> Router:
        router = Router(name="worker")
        private = F.chat.type == ChatType.PRIVATE
        router.message.register(self.on_message, private)
        router.edited_message.register(self.on_message, private)
        router.callback_query.register(self.on_callback, F.message.chat.type == ChatType.PRIVATE)
        router.message.register(self.on_ignored)
        router.edited_message.register(self.on_ignored)
        router.callback_query.register(self.on_ignored)
        router.channel_post.register(self.on_ignored)
        return router

    async def _first_delivery_only(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        update: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(update, Update)
        if not await self.updates.first_time(update.update_id):
            log.info("update delivered again; ignored")
            return None
        return await handler(update, data)

    async def on_message(self, message: Message) -> None:
        if message.from_user is None:
            return
        if message.edit_date is not None:  # an edited message: ask for a new one instead
            inbound = Inbound(InboundKind.UNSUPPORTED, language_hint=language_hint(message))
        else:
            inbound = inbound_from_message(message, self.username, self._fetcher)
        await self._handle(message.from_user.id, message.chat.id, inbound, message.message_id)

    async def on_callback(self, query: CallbackQuery) -> None:
        try:
            await query.answer()  # stop the button's spinner whatever happens next
        except TelegramAPIError as error:
            log.warning("could not answer a button press: %s", type(error).__name__)
        if query.message is None:
            return
        await self._handle(
            query.from_user.id,
            query.message.chat.id,
            inbound_from_callback(query),
            None,
            pressed_message_id=query.message.message_id,
        )

    async def on_ignored(self, event: object) -> None:
        log.info("ignored %s outside a private chat", type(event).__name__)

    def _fetcher(self, media: MediaFile) -> FetchMedia:
        async def fetch() -> bytes:
            if media.size is not None and media.size > MAX_DOWNLOAD_BYTES:
                raise MediaTooLarge
            buffer = io.BytesIO()
            try:
                await self.bot.download(media.file_id, destination=buffer)
            except TelegramBadRequest as error:
                if "too big" in error.message:
                    raise MediaTooLarge from None
                raise MediaUnavailable(type(error).__name__) from None
            except (TelegramAPIError, aiohttp.ClientError, TimeoutError) as error:
                raise MediaUnavailable(type(error).__name__) from None
            return buffer.getvalue()

        return fetch

    async def _handle(
        self,
        user_id: int,
        chat_id: int,
        inbound: Inbound,
        inbound_message_id: int | None,
        *,
        pressed_message_id: int | None = None,
    ) -> None:
        worker = self.gateway.worker(CHANNEL, user_id, chat_id)
        if inbound_message_id is not None:
            await self.history.add(worker.pseudonym, [inbound_message_id])

        async def deliver(replies: Sequence[Outbound], effects: Effects) -> None:
            if effects.erase_chat:
                await self.erase(chat_id, await self.history.recent(worker.pseudonym))
                await self.history.clear(worker.pseudonym)
            elif effects.erase_inbound and inbound_message_id is not None:
                await self.erase(chat_id, [inbound_message_id])
            sent = await self.send(chat_id, replies, pressed_message_id=pressed_message_id)
            if not effects.erase_chat:
                await self.history.add(worker.pseudonym, sent)

        try:
            await self.gateway.handle(worker, inbound, deliver)
        except ConversationBusyError:
            log.warning("conversation busy for too long; update dropped")
        except TelegramForbiddenError:
            log.info("worker has blocked the bot; reply not delivered")

    async def send(
        self,
        chat_id: int,
        replies: Sequence[Outbound],
        *,
        pressed_message_id: int | None = None,
    ) -> list[int]:
        """Send (or, for a toggled choice, update in place) the replies; return the new ids."""
        sent: list[int] = []
        for reply in replies:
            parts = split_text(reply.text)
            # Formatting only on a message sent whole: a split one goes out as plain parts.
            entities = bold_entities(reply.text, reply.bold) if len(parts) == 1 else None
            if reply.replace_previous and pressed_message_id is not None and len(parts) == 1:
                try:
                    await self.bot.edit_message_text(
                        text=reply.text,
                        chat_id=chat_id,
                        message_id=pressed_message_id,
                        reply_markup=keyboard(reply),
                        entities=entities,
                    )
                    continue
                except TelegramBadRequest:
                    pass  # too old, or not modified: send it as a new message instead
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                message = await self.bot.send_message(
                    chat_id=chat_id,
                    text=part,
                    reply_markup=keyboard(reply) if last else None,
                    protect_content=reply.protect_content,
                    entities=entities,
                )
                sent.append(message.message_id)
        return sent

    async def erase(self, chat_id: int, message_ids: Sequence[int]) -> None:
        """Delete what Telegram still allows; older messages simply stay (nothing to do)."""
        unique = sorted(set(message_ids))
        for start in range(0, len(unique), 100):
            try:
                await self.bot.delete_messages(chat_id, unique[start : start + 100])
            except TelegramAPIError as error:
                log.warning("could not delete messages: %s", type(error).__name__)

    async def send_text(self, chat_id: int, text: str, *, protect: bool = False) -> None:
        """Used by the outbox relay: a plain message, split if needed."""
        await self.send(chat_id, [Outbound(text, protect_content=protect)])

    async def register_commands(self) -> None:
        """The command menu, once per language, so each worker sees it in their own."""
        scope = BotCommandScopeAllPrivateChats()
        for language in LANGUAGES:
            t = translator(language)
            commands = [
                BotCommand(command=name, description=t.gettext(description)[:256])
                for name, description in WORKER_COMMANDS.items()
            ]
            code = None if language == SOURCE_LANGUAGE else language
            await self.bot.set_my_commands(commands, scope=scope, language_code=code)

    async def prepare(self) -> None:
        me = await self.bot.get_me()
        self.username = me.username
        await self.register_commands()
        log.info("Telegram channel ready")

    async def run_polling(self) -> None:
        await self.bot.delete_webhook(drop_pending_updates=False)
        await self.dispatcher.start_polling(
            self.bot,
            allowed_updates=ALLOWED_UPDATES,
            handle_signals=False,
            close_bot_session=False,
        )

    async def stop_polling(self) -> None:
        with suppress(RuntimeError):  # "Polling is not started": nothing to stop
            await self.dispatcher.stop_polling()


@dataclass
class WebhookServer:
    """Receives updates over HTTPS via a reverse proxy; rejects requests without the secret."""

    channel: TelegramChannel
    url: str
    secret: str
    host: str
    port: int
    runner: web.AppRunner | None = None

    @staticmethod
    def secret_or_random(configured: str | None) -> str:
        # We register the webhook ourselves at every start, so a random secret is as good as a
        # configured one when the operator gives none; an absent secret is never an option.
        return configured or secrets.token_urlsafe(32)

    async def start(self) -> None:
        path = urlsplit(self.url).path or "/"
        app = web.Application()
        handler = SimpleRequestHandler(
            dispatcher=self.channel.dispatcher, bot=self.channel.bot, secret_token=self.secret
        )
        handler.register(app, path=path)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, self.host, self.port).start()
        await self.channel.bot.set_webhook(
            self.url, secret_token=self.secret, allowed_updates=ALLOWED_UPDATES
        )
        log.info("webhook listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
