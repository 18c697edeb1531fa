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
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

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
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
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
from bot.channels.telegram.rendering import send_rendered
from bot.channels.telegram.sender import (
    AIOGRAM_ERRORS,
    TelegramSender,
    aiogram_api,
    build_unpaced_bot,
)
from bot.channels.telegram.shared import (
    ALLOWED_UPDATES,
    CAPABILITIES,
    CHANNEL,
    ChatTurns,
    WebhookServer,
    WebhookSettings,
    check_staff_chat,
    command_menus,
    counts_against_rate,
    first_delivery,
    start_failures_named,
    too_big,
    within_download_limit,
)
from bot.channels.telegram.updates import (
    MediaFile,
    inbound_from_callback,
    inbound_from_message,
    typed_text,
)
from conversations.messages import FetchMedia, Outbound
from conversations.ports import MediaTooLarge, MediaUnavailable
from storage.recent_ids import ChatHistory, MemoryChatHistory, MemoryUpdateLog, UpdateLog
from storage.send_rate import SendRate

__all__ = ["PacingMiddleware", "TelegramChannel", "WebhookSettings", "build_bot"]

log = logging.getLogger(__name__)


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
        if not counts_against_rate(name):
            return await make_request(bot, method)
        return await paced(
            self.rate, lambda: make_request(bot, method), AIOGRAM_ERRORS.retry_after, what=name
        )


def build_bot(token: str, api_base: str, rate: SendRate) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_base))
    session.middleware(PacingMiddleware(rate))
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=None))


class TelegramChannel:
    """The Telegram channel on aiogram: long polling or a webhook, and its senders."""

    name = CHANNEL
    capabilities = CAPABILITIES

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
        concurrent_updates: int = 256,
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
        self.api = aiogram_api(self.bot)
        self.turns = ChatTurns(gateway, self.history, self.api, AIOGRAM_ERRORS)
        self.username: str | None = None
        self._webhook: WebhookServer | None = None
        # aiogram handles each update in a task of its own and does not wait for them when
        # polling stops: these are awaited before run() returns, so no turn outlives the channel.
        self._turns_in_flight: set[asyncio.Task[Any]] = set()
        # aiogram starts a task per update with no bound of its own (PTB allows 256 at once):
        # at most this many are handled at once, the others wait for a slot. Polling also stops
        # fetching while every slot is taken (``tasks_concurrency_limit``); webhook updates wait
        # here.
        self.concurrent_updates = concurrent_updates
        self._slots = asyncio.Semaphore(concurrent_updates)

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
                    self.api, message.chat.id, Outbound(answer, protect_content=True)
                )

        # aiogram's Command also reads captions: typed_text keeps only typed, unforwarded text.
        router.message.register(
            on_staff_command,
            F.chat.type == ChatType.PRIVATE,
            F.func(lambda message: typed_text(message) is not None),
            Command(*staff_chat.names),
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
        task = asyncio.current_task()
        if task is not None:
            self._turns_in_flight.add(task)
            task.add_done_callback(self._turns_in_flight.discard)
        async with self._slots:
            if not await first_delivery(self.updates, update.update_id):
                return None
            return await handler(update, data)

    async def on_message(self, message: Message) -> None:
        if message.from_user is None:
            return
        inbound = inbound_from_message(message, self.username, self._fetcher)
        await self.turns.handle(message.from_user.id, message.chat.id, inbound, message.message_id)

    async def on_callback(self, query: CallbackQuery) -> None:
        try:
            await query.answer()  # stop the button's spinner whatever happens next
        except TelegramAPIError as error:
            log.warning("could not answer a button press: %s", type(error).__name__)
        if query.message is None:
            return
        await self.turns.handle(
            query.from_user.id,
            query.message.chat.id,
            inbound_from_callback(query),
            None,
            pressed_message_id=query.message.message_id,
        )

    async def on_ignored(self, event: object) -> None:
        log.info("ignored %s outside a private chat", type(event).__name__)

    def _fetcher(self, media: MediaFile) -> FetchMedia:
        return within_download_limit(media, self._download)

    async def _download(self, file_id: str) -> bytes:
        buffer = io.BytesIO()
        try:
            await self.bot.download(file_id, destination=buffer)
        except TelegramBadRequest as error:
            if too_big(error.message):
                raise MediaTooLarge from None
            raise MediaUnavailable(type(error).__name__) from None
        except (TelegramAPIError, aiohttp.ClientError, TimeoutError) as error:
            raise MediaUnavailable(type(error).__name__) from None
        return buffer.getvalue()

    async def register_commands(self) -> None:
        """The command menu, once per language, so each worker sees it in their own."""
        scope = BotCommandScopeAllPrivateChats()
        for code, menu in command_menus():
            commands = [BotCommand(command=name, description=text) for name, text in menu]
            await self.bot.set_my_commands(commands, scope=scope, language_code=code)

    async def start(self) -> None:
        """Check the token, register the command menus; a failure names the setting."""
        async with start_failures_named(AIOGRAM_ERRORS):
            me = await self.bot.get_me()
            self.username = me.username
            await self.register_commands()
        log.info("Telegram channel ready")

    async def staff_chat_problem(self, chat_id: int) -> str | None:
        """Why ``chat_id`` must not receive staff alerts (``shared.staff_chat_problem``)."""
        return await check_staff_chat(self.bot.get_chat, chat_id)

    async def run(self, stop: asyncio.Event) -> None:
        """Long polling, or the webhook when one is configured, until ``stop`` is set; then the
        updates already received are handled to the end."""
        try:
            await self._receive(stop)
        finally:
            while self._turns_in_flight:
                await asyncio.gather(*self._turns_in_flight, return_exceptions=True)

    async def _receive(self, stop: asyncio.Event) -> None:
        if self.webhook_settings is not None:
            self._webhook = self.webhook_server(self.webhook_settings)
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
            tasks_concurrency_limit=self.concurrent_updates,
        )

    async def stop_polling(self) -> None:
        with suppress(RuntimeError):  # "Polling is not started": nothing to stop
            await self.dispatcher.stop_polling()

    def webhook_server(self, settings: WebhookSettings) -> WebhookServer:
        """aiogram's own request handler (it checks the secret), on the shared listener."""

        def route(app: web.Application, path: str) -> None:
            handler = SimpleRequestHandler(
                dispatcher=self.dispatcher, bot=self.bot, secret_token=settings.secret
            )
            handler.register(app, path=path)

        async def register() -> None:
            await self.bot.set_webhook(
                settings.url, secret_token=settings.secret, allowed_updates=ALLOWED_UPDATES
            )

        return WebhookServer(settings, route, register)
