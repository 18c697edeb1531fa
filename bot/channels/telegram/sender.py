"""Sending on Telegram with aiogram: the ``Sender`` of this runtime, and the mapping of aiogram's
errors onto the channel layer's send failures (``bot/channels/sending.py``)."""

from __future__ import annotations

from collections.abc import Sequence

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

from bot.channels.sending import Blocked, ChannelDown, Rejected, RetryAfter
from bot.channels.telegram.rendering import bold_entities, keyboard, split_text
from conversations.messages import Outbound

CHANNEL = "telegram"

#: One broadcast send may not take longer than this (the relay's claim margin is longer).
SEND_TIMEOUT_SECONDS = 10

#: aiogram checks every reply as ``Response[Message]``; pydantic keeps parametrised generics only
#: while something refers to them, so without this reference the class is garbage-collected and
#: rebuilt every few dozen sends (profiled: a tenth of the relay's CPU at 1,000 messages a second).
_RESPONSE_OF_SEND_MESSAGE = Response[Message]


def build_unpaced_bot(token: str, api_base: str) -> Bot:
    """A Bot for the broadcast relay: no waiting on 429 (the relay pauses the shared rate and
    puts the row back), a short timeout, many connections."""
    session = AiohttpSession(
        api=TelegramAPIServer.from_base(api_base), limit=100, timeout=SEND_TIMEOUT_SECONDS
    )
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=None))


async def send_rendered(
    bot: Bot, chat_id: int, reply: Outbound, *, pressed_message_id: int | None = None
) -> list[int]:
    """Send one ``Outbound`` as Telegram shows it (or, for a toggled choice, update the pressed
    message in place); return the ids of the new messages."""
    parts = split_text(reply.text)
    # Formatting only on a message sent whole: a split one goes out as plain parts.
    entities = bold_entities(reply.text, reply.bold) if len(parts) == 1 else None
    if reply.replace_previous and pressed_message_id is not None and len(parts) == 1:
        try:
            await bot.edit_message_text(
                text=reply.text,
                chat_id=chat_id,
                message_id=pressed_message_id,
                reply_markup=keyboard(reply),
                entities=entities,
            )
            return []
        except TelegramBadRequest:
            pass  # too old, or not modified: send it as a new message instead
    sent: list[int] = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        message = await bot.send_message(
            chat_id=chat_id,
            text=part,
            reply_markup=keyboard(reply) if last else None,
            protect_content=reply.protect_content,
            entities=entities,
        )
        sent.append(message.message_id)
    return sent


class TelegramSender:
    """Sends outside a turn (outbox, staff alerts, broadcasts) and names failures in the
    channel layer's words. Pacing is the bot's: its session paces conversation sends; the
    broadcast relay paces the unpaced bot itself."""

    channel = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, address: str, message: Outbound) -> list[str]:
        try:
            sent = await send_rendered(self.bot, int(address), message)
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
        return [str(message_id) for message_id in sent]


def as_ids(values: Sequence[str]) -> list[int]:
    """Telegram message ids back as numbers (for the chat history /forget erases)."""
    return [int(value) for value in values if value.lstrip("-").isdigit()]
