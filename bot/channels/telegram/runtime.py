"""The Telegram channel on aiogram: the dispatcher wired to the conversation gateway.

Only private chats are served. Messages from groups and channels are ignored without a reply:
answering in a group would show everyone there that a member is talking to a grievance service.
``bot/channels/telegram_ptb/`` is the same channel on python-telegram-bot
(``WVB_TELEGRAM_RUNTIME``); both translate updates with the core's types and send through
``bot/channels/pacing.py``.
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
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandObject
from aiogram.methods import Response, TelegramMethod
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

from bot.channels.gateway import ConversationGateway
from bot.channels.pacing import paced
from bot.channels.sending import Sender
from bot.channels.staff_chat import StaffChat
from bot.channels.telegram.sender import (
    CHANNEL,
    TelegramSender,
    build_unpaced_bot,
    send_rendered,
)
from bot.channels.telegram.updates import (
    MediaFile,
    inbound_from_callback,
    inbound_from_message,
    language_hint,
)
from bot.errors import ChannelStartError
from conversations.commands import WORKER_COMMANDS
from conversations.messages import Effects, FetchMedia, Inbound, InboundKind, Outbound
from conversations.ports import MediaTooLarge, MediaUnavailable
from locales import LANGUAGES, SOURCE_LANGUAGE, translator
from storage.conversation_state import ConversationBusyError
from storage.recent_ids import ChatHistory, MemoryChatHistory, MemoryUpdateLog, UpdateLog
from storage.send_rate import SendRate

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # what the Bot API lets a bot download
#: The Bot API methods that count against the token's send rate (the rest are not messages).
PACED_METHOD_PREFIXES = ("Send", "Edit", "Copy", "Forward")


def _retry_after(error: BaseException) -> float | None:
    return float(error.retry_after) if isinstance(error, TelegramRetryAfter) else None


class PacingMiddleware(BaseRequestMiddleware):
    """Every message this bot sends takes a token from the token's shared rate
    (conversation lane), and a 429 pauses every sender of the token, then is retried."""

    def __init__(self, rate: SendRate) -> None:
        self.rate = rate

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        name = type(method).__name__
        if not name.startswith(PACED_METHOD_PREFIXES):
            return await make_request(bot, method)
        return await paced(self.rate, lambda: make_request(bot, method), _retry_after, what=name)


def build_bot(token: str, api_base: str, rate: SendRate) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_base))
    session.middleware(PacingMiddleware(rate))
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=None))


class TelegramChannel:
    """The Telegram channel on aiogram: long polling or a webhook, and its senders."""

    name = CHANNEL

    def __init__(
        self,
        token: str,
        api_base: str,
        gateway: ConversationGateway,
        rate: SendRate,
        *,
        history: ChatHistory | None = None,
        updates: UpdateLog | None = None,
        staff_chat: StaffChat | None = None,
        webhook: WebhookSettings | None = None,
    ) -> None:
        self.rate = rate
        self.bot = build_bot(token, api_base, rate)
        self._broadcast_bot = build_unpaced_bot(token, api_base)
        self.gateway = gateway
        self.history: ChatHistory = history or MemoryChatHistory()
        self.updates: UpdateLog = updates or MemoryUpdateLog()
        self.staff_chat = staff_chat
        self.webhook_settings = webhook
        self.dispatcher = Dispatcher()
        self.dispatcher.update.outer_middleware(self._first_delivery_only)
        if staff_chat is not None:  # before the workers' router, which answers everything
            self.dispatcher.include_router(self._staff_router(staff_chat))
        self.dispatcher.include_router(self._router())
        self.username: str | None = None
        self._webhook: WebhookServer | None = None

    def sender(self) -> Sender:
        """Outbox messages and staff alerts: paced in the conversation lane, 429s waited out."""
        return TelegramSender(self.bot)

    def broadcast_sender(self) -> Sender:
        """Broadcasts: unpaced here, the broadcast relay takes the tokens itself."""
        return TelegramSender(self._broadcast_bot)

    def _staff_router(self, staff_chat: StaffChat) -> Router:
        router = Router(name="staff")

        async def on_staff_command(message: Message, command: CommandObject) -> None:
            if message.from_user is None:
                return
            answer = await staff_chat.answer(
                CHANNEL, message.from_user.id, command.command, command.args or ""
            )
            if answer is not None:
                await send_rendered(
                    self.bot, message.chat.id, Outbound(answer, protect_content=True)
                )

        router.message.register(
            on_staff_command, F.chat.type == ChatType.PRIVATE, Command(*staff_chat.names)
        )
        return router

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
            sent += await send_rendered(
                self.bot, chat_id, reply, pressed_message_id=pressed_message_id
            )
        return sent

    async def erase(self, chat_id: int, message_ids: Sequence[int]) -> None:
        """Delete what Telegram still allows; older messages simply stay (nothing to do)."""
        unique = sorted(set(message_ids))
        for start in range(0, len(unique), 100):
            try:
                await self.bot.delete_messages(chat_id, unique[start : start + 100])
            except TelegramAPIError as error:
                log.warning("could not delete messages: %s", type(error).__name__)

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

    async def start(self) -> None:
        """Check the token, register the command menus; a failure names the setting."""
        try:
            me = await self.bot.get_me()
            self.username = me.username
            await self.register_commands()
        except TelegramUnauthorizedError:
            raise ChannelStartError("WVB_TELEGRAM_TOKEN: Telegram rejected the token") from None
        except TelegramNetworkError as error:
            raise ChannelStartError(
                f"WVB_TELEGRAM_API_BASE: cannot reach the Bot API ({type(error).__name__})"
            ) from None
        log.info("Telegram channel ready")

    async def run(self, stop: asyncio.Event) -> None:
        """Long polling, or the webhook when one is configured, until ``stop`` is set."""
        if self.webhook_settings is not None:
            self._webhook = WebhookServer(self, self.webhook_settings)
            await self._webhook.start()
            try:
                await stop.wait()
            finally:
                await self._webhook.stop()
            return
        polling = asyncio.create_task(self.run_polling(), name="telegram-polling")
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            await self.stop_polling()
            if not polling.done():
                polling.cancel()
            with suppress(asyncio.CancelledError):
                await polling

    async def close(self) -> None:
        await self.bot.session.close()
        await self._broadcast_bot.session.close()

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
    """Receives updates over HTTPS via a reverse proxy; rejects requests without the secret."""

    def __init__(self, channel: TelegramChannel, settings: WebhookSettings) -> None:
        self.channel = channel
        self.settings = settings
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        settings = self.settings
        path = urlsplit(settings.url).path or "/"
        app = web.Application()
        handler = SimpleRequestHandler(
            dispatcher=self.channel.dispatcher, bot=self.channel.bot, secret_token=settings.secret
        )
        handler.register(app, path=path)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, settings.host, settings.port).start()
        await self.channel.bot.set_webhook(
            settings.url, secret_token=settings.secret, allowed_updates=ALLOWED_UPDATES
        )
        log.info("webhook listening on %s:%d", settings.host, settings.port)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
