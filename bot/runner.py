"""`wvb run`: every configured channel plus the scheduler, in one process, until told to stop."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from datetime import timedelta
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramUnauthorizedError,
)

from bot.app import App, broadcast_policy, build_app, build_send_rate
from bot.errors import ChannelStartError
from bot.settings import Settings, SettingsError
from bot.telegram.broadcast import broadcast_sender, build_broadcast_bot
from bot.telegram.runtime import CHANNEL, TelegramChannel, WebhookServer, build_bot
from bot.telegram.staff_commands import StaffCommands
from scheduler.broadcast_relay import BroadcastRelay, lesson_button
from scheduler.case_clock import CaseClock
from scheduler.jobs import build_scheduler
from scheduler.outbox_relay import Blocked, OutboxRelay, SendToStaff, SendToWorker, Unreachable
from services.broadcasts import BroadcastService
from services.outbox import OutboxPayload
from services.staff import StaffService

log = logging.getLogger(__name__)


def worker_sender(channel: TelegramChannel) -> SendToWorker:
    async def send(channel_name: str, address: str, payload: OutboxPayload) -> None:
        if channel_name != CHANNEL:
            raise Unreachable(f"no {channel_name} channel is running")
        try:
            await channel.send(int(address), [payload.outbound()])
        except TelegramForbiddenError:
            raise Blocked("the worker blocked the bot") from None

    return send


def staff_sender(channel: TelegramChannel, staff_chat_id: int | None) -> SendToStaff | None:
    if staff_chat_id is None:
        return None

    async def send(payload: OutboxPayload) -> None:
        await channel.send_text(staff_chat_id, payload.text, protect=payload.protect_content)

    return send


def broadcast_relay(app: App, token: str) -> tuple[BroadcastRelay, Bot]:
    settings = app.settings
    bot = build_broadcast_bot(token, settings.telegram_api_base)
    relay = BroadcastRelay(
        app.database,
        app.keyring,
        broadcast_sender(bot),
        build_send_rate(settings, app.redis),
        policy=broadcast_policy(settings),
        lesson_button=lesson_button,
        channel=CHANNEL,
        chat_interval=settings.broadcast_chat_interval,
        history=app.chat_history,
    )
    return relay, bot


async def relay_broadcasts(settings: Settings, stop: asyncio.Event) -> None:
    """`wvb broadcast relay`: only the broadcast relay, for extra sending capacity."""
    if settings.telegram_token is None:
        raise SettingsError("WVB_TELEGRAM_TOKEN: not set, so there is nowhere to send")
    app = await build_app(settings)
    relay, bot = broadcast_relay(app, settings.telegram_token.get_secret_value())
    try:
        log.info("broadcast relay running at up to %s messages/s", settings.broadcast_rate)
        await relay.run(stop)
    finally:
        await bot.session.close()
        await app.close()
    log.info("broadcast relay stopped cleanly")


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set, then shut everything down in order."""
    if settings.telegram_token is None:
        raise SettingsError(
            "WVB_TELEGRAM_TOKEN: not set, so no channel can run; set it, or try `wvb chat`"
        )
    app = await build_app(settings)
    token = settings.telegram_token.get_secret_value()
    bot = build_bot(token, settings.telegram_api_base)
    staff_commands = StaffCommands(
        app.staff_accounts,
        StaffService(app.database, app.keyring),
        app.casework,
        BroadcastService(app.database, broadcast_policy(settings)),
    )
    channel = TelegramChannel(
        bot,
        app.gateway,
        history=app.chat_history,
        updates=app.update_log(token.split(":")[0]),
        staff_commands=staff_commands,
    )
    scheduler = build_scheduler(
        app.database,
        draft_ttl=timedelta(hours=settings.draft_ttl_hours),
        clock=CaseClock(app.database, app.outbox),
    )
    relay = OutboxRelay(
        app.database,
        app.keyring,
        staff_sender(channel, settings.staff_chat_id),
        wake=app.outbox_wake,
        send_to_worker=worker_sender(channel),
    )
    broadcasts, broadcast_bot = broadcast_relay(app, token)
    relay_stop = asyncio.Event()
    relaying: asyncio.Task[None] | None = None
    broadcasting: asyncio.Task[None] | None = None
    webhook: WebhookServer | None = None
    polling: asyncio.Task[None] | None = None
    try:
        try:
            await channel.prepare()
        except TelegramUnauthorizedError:
            raise ChannelStartError("WVB_TELEGRAM_TOKEN: Telegram rejected the token") from None
        except TelegramNetworkError as error:
            raise ChannelStartError(
                f"WVB_TELEGRAM_API_BASE: cannot reach the Bot API ({type(error).__name__})"
            ) from None
        scheduler.start()
        relaying = asyncio.create_task(relay.run(relay_stop), name="outbox-relay")
        broadcasting = asyncio.create_task(broadcasts.run(relay_stop), name="broadcast-relay")
        if settings.webhook_url:
            host, port = settings.webhook_host_port
            secret = WebhookServer.secret_or_random(
                settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
            )
            webhook = WebhookServer(channel, settings.webhook_url, secret, host, port)
            await webhook.start()
        else:
            polling = asyncio.create_task(channel.run_polling(), name="telegram-polling")
        log.info("bot running; stop with SIGINT or SIGTERM")
        stopping = asyncio.create_task(stop.wait())
        waiting: set[asyncio.Task[Any]] = {stopping}
        if polling is not None:
            waiting.add(polling)
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        log.info("shutting down")
    finally:
        if polling is not None:
            await channel.stop_polling()
            if not polling.done():
                polling.cancel()
            with suppress(asyncio.CancelledError):
                await polling
        if webhook is not None:
            await webhook.stop()
        relay_stop.set()
        if relaying is not None:
            await relaying
        if broadcasting is not None:
            await broadcasting
        if scheduler.running:
            scheduler.shutdown(wait=False)
        await bot.session.close()
        await broadcast_bot.session.close()
        await app.close()
    log.info("stopped cleanly")
