"""Sending on Telegram with python-telegram-bot: the bots (paced and unpaced), the Bot API calls of
this runtime (``ptb_api``), which of PTB's errors mean what (``PTB_ERRORS``, mapped onto
``bot/channels/sending.py`` by ``shared.TelegramErrors`` as for aiogram), and its ``Sender``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import BaseRateLimiter
from telegram.request import HTTPXRequest

from bot.channels.pacing import paced
from bot.channels.telegram import shared
from bot.channels.telegram.rendering import Entity, keyboard_rows
from bot.channels.telegram.shared import (
    BROADCAST_CONNECTIONS,
    SEND_TIMEOUT_SECONDS,
    TelegramErrors,
    counts_against_rate,
)
from conversations.messages import Outbound
from storage.send_rate import SendRate

JSONResult = bool | dict[str, Any] | list[dict[str, Any]]


def bot_urls(api_base: str) -> tuple[str, str]:
    """PTB's two base URLs for one Bot API server: for methods, and for file downloads."""
    base = api_base.rstrip("/")
    return f"{base}/bot", f"{base}/file/bot"


def retry_after_seconds(error: RetryAfter) -> float:
    value = error.retry_after  # a timedelta here (PTB_TIMEDELTA, see __init__), else seconds
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _retry_after(error: BaseException) -> float | None:
    return retry_after_seconds(error) if isinstance(error, RetryAfter) else None


PTB_ERRORS = TelegramErrors(
    retry_after=_retry_after,
    blocked=(Forbidden,),
    rejected=(BadRequest,),  # checked before NetworkError: PTB makes it a subclass of that
    token_rejected=(InvalidToken,),  # PTB's word for 401 and 404
    unreachable=(NetworkError,),  # TimedOut too, and 5xx answers
    any=(TelegramError,),
)


class PacedRateLimiter(BaseRateLimiter[None]):
    """Every message this bot sends takes a token from the token's shared rate
    (conversation lane), and a 429 pauses every sender of the token, then is retried: what
    aiogram's ``PacingMiddleware`` does, as PTB's hook for it."""

    def __init__(self, rate: SendRate) -> None:
        self.rate = rate

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSONResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> JSONResult:
        if not counts_against_rate(endpoint):
            return await callback(*args, **kwargs)
        return await paced(
            self.rate, lambda: callback(*args, **kwargs), _retry_after, what=endpoint
        )


def unpaced_request() -> HTTPXRequest:
    """The broadcast bot's connections: many, and a short timeout (like aiogram's)."""
    return HTTPXRequest(
        connection_pool_size=BROADCAST_CONNECTIONS,
        read_timeout=SEND_TIMEOUT_SECONDS,
        write_timeout=SEND_TIMEOUT_SECONDS,
        connect_timeout=SEND_TIMEOUT_SECONDS,
        pool_timeout=SEND_TIMEOUT_SECONDS,
    )


def build_unpaced_bot(token: str, api_base: str, request: HTTPXRequest) -> Bot:
    """A Bot for the broadcast relay: no rate limiter, so no waiting on 429 (the relay pauses
    the shared rate and puts the row back). Its ``request`` (``unpaced_request()``) is the
    caller's to shut down: PTB closes only what it initialized."""
    base_url, base_file_url = bot_urls(api_base)
    return Bot(token, base_url=base_url, base_file_url=base_file_url, request=request)


def keyboard(message: Outbound) -> InlineKeyboardMarkup | None:
    rows = keyboard_rows(message)
    if rows is None:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(choice.label, callback_data=choice.payload) for choice in row]
         for row in rows]
    )  # fmt: skip


def message_entities(entities: list[Entity]) -> list[MessageEntity]:
    return [MessageEntity(e.type, e.offset, e.length) for e in entities]


def ptb_api(bot: Bot) -> shared.BotApi:
    """``shared.ChatApi`` on a PTB ``Bot``."""
    return shared.BotApi(
        bot, keyboard=keyboard, entities=message_entities, edit_refused=(BadRequest,)
    )


class PtbSender(shared.TelegramSender):
    """The ``Sender`` of a PTB ``Bot`` (paced or not, as the bot is)."""

    def __init__(self, bot: Bot) -> None:
        super().__init__(ptb_api(bot), PTB_ERRORS)
        self.bot = bot
