"""Sending on Telegram with aiogram: the Bot API calls of this runtime (``aiogram_api``), which of
aiogram's errors mean what (``AIOGRAM_ERRORS``, mapped onto ``bot/channels/sending.py`` by
``shared.TelegramErrors``), and its ``Sender``."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods.base import Response
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity

from bot.channels.telegram import shared
from bot.channels.telegram.rendering import Entity, keyboard_rows
from bot.channels.telegram.shared import (
    BROADCAST_CONNECTIONS,
    CHANNEL,
    SEND_TIMEOUT_SECONDS,
    TelegramErrors,
)
from conversations.messages import Outbound

__all__ = ["AIOGRAM_ERRORS", "CHANNEL", "TelegramSender", "aiogram_api", "build_unpaced_bot"]

#: aiogram checks every reply as ``Response[Message]``; pydantic keeps parametrised generics only
#: while something refers to them, so without this reference the class is garbage-collected and
#: rebuilt every few dozen sends (profiled: a tenth of the relay's CPU at 1,000 messages a second).
_RESPONSE_OF_SEND_MESSAGE = Response[Message]


def _retry_after(error: BaseException) -> float | None:
    return float(error.retry_after) if isinstance(error, TelegramRetryAfter) else None


AIOGRAM_ERRORS = TelegramErrors(
    retry_after=_retry_after,
    blocked=(TelegramForbiddenError,),
    rejected=(TelegramBadRequest, TelegramNotFound),
    token_rejected=(TelegramUnauthorizedError,),
    unreachable=(TelegramNetworkError, TelegramServerError),
    any=(TelegramAPIError,),
)


def build_unpaced_bot(token: str, api_base: str) -> Bot:
    """A Bot for the broadcast relay: no waiting on 429 (the relay pauses the shared rate and
    puts the row back), a short timeout, many connections."""
    session = AiohttpSession(
        api=TelegramAPIServer.from_base(api_base),
        limit=BROADCAST_CONNECTIONS,
        timeout=SEND_TIMEOUT_SECONDS,
    )
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=None))


def keyboard(message: Outbound) -> InlineKeyboardMarkup | None:
    rows = keyboard_rows(message)
    if rows is None:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=choice.label, callback_data=choice.payload)
                for choice in row
            ]
            for row in rows
        ]
    )


def message_entities(entities: list[Entity]) -> list[MessageEntity]:
    return [MessageEntity(type=e.type, offset=e.offset, length=e.length) for e in entities]


def aiogram_api(bot: Bot) -> shared.BotApi:
    """``shared.ChatApi`` on an aiogram ``Bot``."""
    return shared.BotApi(
        bot, keyboard=keyboard, entities=message_entities, edit_refused=(TelegramBadRequest,)
    )


class TelegramSender(shared.TelegramSender):
    """The ``Sender`` of an aiogram ``Bot`` (paced or not, as the bot is)."""

    def __init__(self, bot: Bot) -> None:
        super().__init__(aiogram_api(bot), AIOGRAM_ERRORS)
        self.bot = bot
