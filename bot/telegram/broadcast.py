"""Sending broadcast messages on Telegram, for ``scheduler/broadcast_relay.py``.

Broadcasts use a Bot of their own, without the conversation bot's wait-and-retry on 429: the
relay handles a 429 itself, pausing the shared rate for every process, instead of one coroutine
sleeping while the others keep hitting the limit.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods.base import Response
from aiogram.types import Message

from bot.telegram.rendering import keyboard
from scheduler.broadcast_relay import BroadcastSend, ChannelDown, Rejected, RetryAfter
from scheduler.outbox_relay import Blocked
from services.outbox import OutboxPayload

#: One send may not take longer than this (the relay's claim margin is longer).
SEND_TIMEOUT_SECONDS = 10

#: aiogram checks every reply as ``Response[Message]``; pydantic keeps parametrised generics only
#: while something refers to them, so without this reference the class is garbage-collected and
#: rebuilt every few dozen sends (profiled: a tenth of the relay's CPU at 1,000 messages a second).
_RESPONSE_OF_SEND_MESSAGE = Response[Message]


def build_broadcast_bot(token: str, api_base: str) -> Bot:
    session = AiohttpSession(
        api=TelegramAPIServer.from_base(api_base), limit=100, timeout=SEND_TIMEOUT_SECONDS
    )
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=None))


def broadcast_sender(bot: Bot) -> BroadcastSend:
    async def send(address: str, payload: OutboxPayload) -> int:
        try:
            message = await bot.send_message(
                chat_id=int(address), text=payload.text, reply_markup=keyboard(payload.outbound())
            )
        except TelegramRetryAfter as error:
            raise RetryAfter(float(error.retry_after)) from None
        except TelegramForbiddenError:
            raise Blocked("the worker blocked the bot") from None
        except (TelegramBadRequest, TelegramNotFound) as error:
            raise Rejected(type(error).__name__) from None
        except TelegramUnauthorizedError:
            raise ChannelDown("Telegram rejected the token (WVB_TELEGRAM_TOKEN)") from None
        except (TelegramNetworkError, TelegramServerError) as error:
            raise ChannelDown(f"Telegram unreachable ({type(error).__name__})") from None
        return message.message_id

    return send
