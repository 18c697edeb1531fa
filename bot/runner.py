"""`wvb run`: every configured channel plus the scheduler, in one process, until told to stop;
and `wvb broadcast relay`: only the broadcast sender. Both open the one application object."""

from __future__ import annotations

import asyncio
import logging

from bot.app import open_app
from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set, then shut everything down in order."""
    if not settings.messenger_configured:
        raise SettingsError(
            "WVB_TELEGRAM_TOKEN, WVB_WHATSAPP_TOKEN: neither is set, so no channel can run; "
            "set one (README: Connecting Telegram, Connecting WhatsApp), or try `wvb chat`"
        )
    async with open_app(settings, channels=True) as app:
        problem = app.staff_destination.problem
        if problem is not None:
            # Queued alerts wait until a staff chat is set; workers are told so, not "alerted".
            # (`wvb chat` does not warn: a trial in the terminal, where the worker is told too.)
            log.warning(
                "urgent alerts have nowhere to go: %s. Workers who report danger are told "
                "staff cannot be alerted at once; set WVB_STAFF_CHAT_ID to a private staff chat",
                problem,
            )
        await app.serve(stop)


async def relay_broadcasts(settings: Settings, stop: asyncio.Event) -> None:
    """`wvb broadcast relay`: only the broadcast relay, for extra sending capacity."""
    if not settings.messenger_configured:
        raise SettingsError(
            "WVB_TELEGRAM_TOKEN, WVB_WHATSAPP_TOKEN: neither is set, so there is nowhere to send"
        )
    async with open_app(settings, channels=True) as app:
        log.info("broadcast relay running at up to %s messages/s", settings.broadcast_rate)
        await app.serve(stop, relays_only=True)
    log.info("broadcast relay stopped cleanly")
