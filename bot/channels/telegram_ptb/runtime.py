"""The Telegram channel on python-telegram-bot 22: a PTB ``Application`` wired to the
conversation gateway, with the same behaviour as the aiogram channel
(``bot/channels/telegram/runtime.py``): the policy both follow is in the library-free modules of
``bot/channels/telegram/`` (``rendering``, ``updates``, ``shared``).

Only private chats are served. Messages from groups and channels are ignored without a reply:
answering in a group would show everyone there that a member is talking to a grievance service.

PTB's ``Application`` and ``Updater`` are driven by hand (initialize, start, stop, shutdown):
``run_polling()`` and ``run_webhook()`` would install signal handlers and own the event loop,
which are ``wvb run``'s. The webhook listens on aiohttp like the aiogram channel's (no tornado)
and feeds ``Update.de_json`` into the application's queue.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from telegram import BotCommand, BotCommandScopeAllPrivateChats, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackContext,
    CallbackQueryHandler,
    ExtBot,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.channels.gateway import ConversationGateway
from bot.channels.sending import Sender
from bot.channels.staff_chat import StaffChat
from bot.channels.telegram.rendering import send_rendered
from bot.channels.telegram.shared import (
    ALLOWED_UPDATES,
    CAPABILITIES,
    CHANNEL,
    ChatTurns,
    WebhookServer,
    WebhookSettings,
    check_staff_chat,
    command_menus,
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
from bot.channels.telegram_ptb.sender import (
    PTB_ERRORS,
    PacedRateLimiter,
    PtbSender,
    bot_urls,
    build_unpaced_bot,
    ptb_api,
    unpaced_request,
)
from bot.channels.telegram_ptb.updates import staff_command
from bot.logging_setup import quiet_below_warning
from conversations.messages import FetchMedia, Outbound
from conversations.ports import MediaTooLarge, MediaUnavailable
from storage.recent_ids import ChatHistory, MemoryChatHistory, MemoryUpdateLog, UpdateLog
from storage.send_rate import SendRate

__all__ = ["PtbTelegramChannel", "WebhookSettings"]

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name, not a secret)
Context = CallbackContext[Any, Any, Any, Any]


class _StaffCommand(filters.MessageFilter):
    """A staff command (see ``staff_command``) from the point of view of PTB's filters."""

    def __init__(self, channel: PtbTelegramChannel, names: Sequence[str]) -> None:
        super().__init__(name="staff command")
        self.channel = channel
        self.names = names

    def filter(self, message: Message) -> bool:
        return self.channel.staff_command_of(message, self.names) is not None


class PtbTelegramChannel:
    """The Telegram channel on python-telegram-bot: long polling or a webhook, and its
    senders."""

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
        # PTB logs updates and request parameters at DEBUG, httpx the token in every URL at
        # INFO: never let them through, however the process configured its logging.
        quiet_below_warning("telegram", "httpx", "httpcore")
        self.rate = rate
        self.gateway = gateway
        self.history: ChatHistory = history or MemoryChatHistory()
        self.updates: UpdateLog = updates or MemoryUpdateLog()
        self.staff_chat = staff_chat
        self.webhook_settings = webhook
        # The HTTP clients are ours to close, also when the channel never started (`wvb
        # broadcast relay` only sends broadcasts).
        self._requests = [HTTPXRequest(), HTTPXRequest(connection_pool_size=1), unpaced_request()]
        base_url, base_file_url = bot_urls(api_base)
        self.bot = ExtBot(
            token,
            base_url=base_url,
            base_file_url=base_file_url,
            request=self._requests[0],
            get_updates_request=self._requests[1],
            rate_limiter=PacedRateLimiter(rate),
        )
        self._broadcast_bot = build_unpaced_bot(token, api_base, self._requests[2])
        # PTB bounds the updates it handles at once itself (``True`` meant 256).
        builder = (
            Application.builder()
            .bot(self.bot)
            .job_queue(None)
            .concurrent_updates(concurrent_updates)
        )
        if webhook is not None:  # updates come from our own listener, not PTB's Updater
            builder = builder.updater(None)
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self._add_handlers(staff_chat)
        self.api = ptb_api(self.bot)
        self.turns = ChatTurns(gateway, self.history, self.api, PTB_ERRORS)
        self.username: str | None = None
        self._webhook: WebhookServer | None = None

    def sender(self) -> Sender:
        """Outbox messages and staff alerts: paced in the conversation lane, 429s waited out."""
        return PtbSender(self.bot)

    def broadcast_sender(self) -> Sender:
        """Broadcasts: unpaced here, the broadcast relay takes the tokens itself."""
        return PtbSender(self._broadcast_bot)

    # -- receiving ------------------------------------------------------------------------------

    def _add_handlers(self, staff_chat: StaffChat | None) -> None:
        app = self.application
        app.add_handler(TypeHandler(Update, self._first_delivery_only), group=-1)
        private = filters.ChatType.PRIVATE
        if staff_chat is not None:  # before the workers' handler, which answers everything
            staff = _StaffCommand(self, staff_chat.names)
            app.add_handler(
                MessageHandler(private & filters.UpdateType.MESSAGE & staff, self.on_staff_command)
            )
        messages = filters.UpdateType.MESSAGE | filters.UpdateType.EDITED_MESSAGE
        app.add_handler(MessageHandler(private & messages, self.on_message))
        app.add_handler(CallbackQueryHandler(self.on_callback))
        app.add_handler(TypeHandler(Update, self.on_ignored))
        app.add_error_handler(self.on_error)

    async def _first_delivery_only(self, update: Update, context: Context) -> None:
        if not await first_delivery(self.updates, update.update_id):
            raise ApplicationHandlerStop

    def staff_command_of(self, message: Message, names: Sequence[str]) -> tuple[str, str] | None:
        return staff_command(typed_text(message), self.username, names)

    async def on_staff_command(self, update: Update, context: Context) -> None:
        message = update.message
        if message is None or message.from_user is None or self.staff_chat is None:
            return
        command = self.staff_command_of(message, self.staff_chat.names)
        if command is None:
            return
        answer = await self.staff_chat.answer(CHANNEL, message.from_user.id, *command)
        if answer is not None:
            await send_rendered(self.api, message.chat.id, Outbound(answer, protect_content=True))

    async def on_message(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None or message.from_user is None:
            return
        inbound = inbound_from_message(message, self.username, self._fetcher)
        await self.turns.handle(message.from_user.id, message.chat.id, inbound, message.message_id)

    async def on_callback(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        if query.message is None or query.message.chat.type != ChatType.PRIVATE:
            await self.on_ignored(update, context)
            return
        try:
            await query.answer()  # stop the button's spinner whatever happens next
        except TelegramError as error:
            log.warning("could not answer a button press: %s", type(error).__name__)
        await self.turns.handle(
            query.from_user.id,
            query.message.chat.id,
            inbound_from_callback(query),
            None,
            pressed_message_id=query.message.message_id,
        )

    async def on_ignored(self, update: Update, context: Context) -> None:
        event = update.callback_query or update.effective_message or update
        log.info("ignored %s outside a private chat", type(event).__name__)

    async def on_error(self, update: object, context: Context) -> None:
        # What PTB would log itself names the update (and so the chat and the text): only the
        # kind of failure, with its traceback.
        error = context.error
        log.error("update not handled: %s", type(error).__name__, exc_info=error)

    def _fetcher(self, media: MediaFile) -> FetchMedia:
        return within_download_limit(media, self._download)

    async def _download(self, file_id: str) -> bytes:
        try:
            file = await self.bot.get_file(file_id)
            return bytes(await file.download_as_bytearray())
        except BadRequest as error:
            if too_big(error.message):
                raise MediaTooLarge from None
            raise MediaUnavailable(type(error).__name__) from None
        except TelegramError as error:
            raise MediaUnavailable(type(error).__name__) from None

    async def register_commands(self) -> None:
        """The command menu, once per language, so each worker sees it in their own."""
        scope = BotCommandScopeAllPrivateChats()
        for code, menu in command_menus():
            commands = [BotCommand(name, text) for name, text in menu]
            await self.bot.set_my_commands(commands, scope=scope, language_code=code)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the token (PTB's initialize calls getMe), register the command menus; a
        failure names the setting."""
        async with start_failures_named(PTB_ERRORS):
            await self.application.initialize()
            self.username = self.bot.username
            await self.register_commands()
        log.info("Telegram channel ready")

    async def staff_chat_problem(self, chat_id: int) -> str | None:
        """Why ``chat_id`` must not receive staff alerts (``shared.staff_chat_problem``)."""
        return await check_staff_chat(self.bot.get_chat, chat_id)

    async def run(self, stop: asyncio.Event) -> None:
        """Long polling, or the webhook when one is configured, until ``stop`` is set."""
        await self.application.initialize()  # done by start(); nothing twice
        await self.application.start()
        try:
            if self.webhook_settings is not None:
                await self._run_webhook(self.webhook_settings, stop)
            else:
                await self._run_polling(stop)
        finally:
            await self.application.stop()  # handles what was received, then stops

    async def _run_polling(self, stop: asyncio.Event) -> None:
        updater = self.application.updater
        assert updater is not None
        # start_polling deletes any webhook first, as aiogram's channel does.
        await updater.start_polling(
            allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,
            error_callback=self._polling_failed,
        )
        try:
            await stop.wait()
        finally:
            if updater.running:
                await updater.stop()  # confirms the updates fetched so far

    @staticmethod
    def _polling_failed(error: TelegramError) -> None:
        log.error("failed to fetch updates: %s", type(error).__name__)

    async def _run_webhook(self, settings: WebhookSettings, stop: asyncio.Event) -> None:
        self._webhook = WebhookServer(settings, self._route_webhook, self._register_webhook)
        await self._webhook.start()
        try:
            await stop.wait()
        finally:
            await self._webhook.stop()

    def _route_webhook(self, app: web.Application, path: str) -> None:
        assert self.webhook_settings is not None
        secret = self.webhook_settings.secret.encode()

        async def receive(request: web.Request) -> web.Response:
            given = request.headers.get(SECRET_HEADER, "").encode()
            if not secrets.compare_digest(given, secret):
                return web.Response(status=401, text="Unauthorized")
            try:
                update = Update.de_json(await request.json(), self.bot)
            except (ValueError, TypeError, KeyError, AttributeError):
                return web.Response(status=400, text="Bad Request")
            await self.application.update_queue.put(update)
            return web.json_response({})

        app.router.add_post(path, receive)

    async def _register_webhook(self) -> None:
        assert self.webhook_settings is not None
        await self.bot.set_webhook(
            self.webhook_settings.url,
            secret_token=self.webhook_settings.secret,
            allowed_updates=ALLOWED_UPDATES,
        )

    async def close(self) -> None:
        await self.application.shutdown()  # nothing when it never initialized
        for request in self._requests:  # closed already, or never used by PTB itself
            await request.shutdown()
