"""What `wvb doctor` asks the Bot API, through the configured API base: does the token work
(getMe), and is the staff chat private (getChat, judged by ``shared.check_staff_chat`` exactly
as `wvb run` judges it before sending an alert). Nothing is sent.

The probe uses aiogram whatever ``WVB_TELEGRAM_RUNTIME`` says: it checks the token, the API
base and the chat, which are the same for both runtimes, and aiogram is always installed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError

from bot.channels.telegram.sender import AIOGRAM_ERRORS
from bot.channels.telegram.shared import check_staff_chat, start_failures_named
from bot.errors import ChannelStartError

#: The doctor waits this long for each Bot API call (a webhook-less bot waits much longer).
PROBE_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class BotApiProbe:
    username: str | None
    #: Why the staff chat must not receive alerts (None: it may, or none was asked about).
    staff_chat_problem: str | None


async def probe_bot_api(token: str, api_base: str, staff_chat_id: int | None) -> BotApiProbe:
    """getMe, then getChat of ``staff_chat_id``. A token Telegram rejects or an API base that
    does not answer raises ``ChannelStartError`` naming the setting (never the token)."""
    session = AiohttpSession(
        api=TelegramAPIServer.from_base(api_base), timeout=PROBE_TIMEOUT_SECONDS
    )
    bot = Bot(token, session=session, default=DefaultBotProperties(parse_mode=None))
    try:
        async with asyncio.timeout(3 * PROBE_TIMEOUT_SECONDS):
            try:
                async with start_failures_named(AIOGRAM_ERRORS):
                    me = await bot.get_me()
            except TelegramAPIError as error:  # an answer, but not a bot's description
                raise ChannelStartError(
                    f"WVB_TELEGRAM_API_BASE: the Bot API refused getMe ({type(error).__name__})"
                ) from None
            problem = None
            if staff_chat_id is not None:
                problem = await check_staff_chat(bot.get_chat, staff_chat_id)
    except TimeoutError:
        raise ChannelStartError(
            "WVB_TELEGRAM_API_BASE: the Bot API did not answer in time"
        ) from None
    finally:
        await session.close()
    return BotApiProbe(me.username, problem)
