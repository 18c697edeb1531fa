"""Sending on WhatsApp: the core's messages rendered within WhatsApp's limits (``rendering.py``),
sent through the Graph client (``api.py``) at the business number's shared rate, with Graph's
refusals in the channel layer's words (``bot/channels/sending.py``):

=======================================  =============================================
Graph                                    our failure
=======================================  =============================================
130429, 4, 80007, 131048, 133016, 429    ``RetryAfter`` for every sender of the number
131056 (pair rate)                       ``RetryAfter(chat_only=True)``: only this worker
131047 (24-hour window closed)           ``WindowClosed``: held, the neutral template asks
131026, 131050                           ``Blocked``
auth (0, 190, 10, 200-299), 5xx, network ``ChannelDown``: waits, no attempt spent
anything else (131009, 100, 132xxx ...)  ``Rejected``
=======================================  =============================================

An address holds the worker's ids (``identity.format_address``): each message goes to the
business-scoped user id first, and to the phone number only if Meta answers 131062 (a BSUID
recipient not supported for this message).

The ids it hands back are never Graph's message ids (a wamid encodes the recipient's phone
number): they are the keyed tokens ``RedisKeyNames.token("wa_msg", wamid)``, which the relays may
store and a status callback can be matched against.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from bot.channels.pacing import paced
from bot.channels.sending import (
    Blocked,
    ChannelDown,
    Rejected,
    RetryAfter,
    SendFailure,
    WindowClosed,
)
from bot.channels.whatsapp.api import (
    GraphClient,
    WaAuthFailed,
    WaBadRequest,
    WaError,
    WaRateLimited,
    WaUnavailable,
    WaUnreachable,
    WaWindowClosed,
)
from bot.channels.whatsapp.identity import BSUID_RECIPIENT_NOT_SUPPORTED, recipients
from bot.channels.whatsapp.rendering import render
from conversations.messages import Outbound
from locales import SOURCE_LANGUAGE
from storage.redis_keys import RedisKeyNames
from storage.send_rate import Lane, SendRate

__all__ = [
    "CHANNEL",
    "MESSAGE_REF_KIND",
    "Template",
    "WhatsAppSender",
    "send_failure",
]

log = logging.getLogger(__name__)

CHANNEL: Final = "whatsapp"
#: The kind of keyed token a sent message's id is kept under (the webhook dedupes the worker's
#: messages under the same kind: a wamid is a wamid).
MESSAGE_REF_KIND: Final = "wa_msg"

#: Whether the worker's 24-hour window is open for free-form messages (their address).
WindowCheck = Callable[[str], Awaitable[bool]]


@dataclass(frozen=True)
class Template:
    """A pre-approved template: its name and the language code it was approved in."""

    name: str
    language: str


#: The neutral template to send in a worker's language (None: none configured).
TemplateLookup = Callable[[str], Awaitable[Template | None]]


def send_failure(error: WaError) -> SendFailure:
    """A Graph refusal in the channel layer's words (the table above). The message of what is
    returned names the code only: never a number, a wamid or text."""
    code = f"WhatsApp error {error.code}"
    if isinstance(error, WaRateLimited):
        return RetryAfter(error.retry_after, chat_only=error.scope == "chat")
    if isinstance(error, WaWindowClosed):
        return WindowClosed(code)
    if isinstance(error, WaUnreachable):
        return Blocked(code)
    if isinstance(error, WaAuthFailed):
        return ChannelDown(f"{code}: the Cloud API refused the token (WVB_WHATSAPP_TOKEN)")
    if isinstance(error, WaUnavailable):
        return ChannelDown(f"{code}: the Cloud API is unavailable")
    return Rejected(code)


def _retry_after_of(error: BaseException) -> float | None:
    """The wait a number-wide rate limit asks for (``pacing.paced`` pauses everyone for it)."""
    if isinstance(error, WaRateLimited) and error.scope != "chat":
        return error.retry_after
    return None


class WhatsAppSender:
    """The ``Sender`` of one Graph client: the conversation lane (paced, waiting out a
    number-wide rate limit), or the broadcast lane (unpaced: the broadcast relay takes its
    tokens itself). With ``window``, a worker whose 24-hour window is closed is not sent to
    (``WindowClosed``) before anything goes out; in a turn the worker has just written, so the
    runtime's own replies go without the check."""

    channel = CHANNEL
    #: The ids ``send`` returns are keyed refs: the relays store them for the status callbacks.
    ids_are_refs = True

    def __init__(
        self,
        graph: GraphClient,
        rate: SendRate,
        names: RedisKeyNames,
        *,
        lane: Lane = Lane.CONVERSATION,
        paced: bool = True,
        window: WindowCheck | None = None,
        templates: TemplateLookup | None = None,
        default_language: str = SOURCE_LANGUAGE,
    ) -> None:
        self.graph = graph
        self.rate = rate
        self.names = names
        self.lane = lane
        self.paced = paced
        self.window = window
        self.templates = templates
        self.default_language = default_language

    def _ref(self, message_id: str) -> str:
        return self.names.token(MESSAGE_REF_KIND, message_id)

    async def _post(self, payload: dict[str, object], address: str) -> str:
        async def attempt() -> str:
            # The worker's ids in order (``identity.recipients``): the BSUID, then the phone
            # number only where Meta refuses a BSUID recipient for this message (131062).
            *first, last = recipients(address) or ("",)
            for to in first:
                try:
                    return await self.graph.send_payload(payload, to=to)
                except WaBadRequest as error:
                    if error.code != BSUID_RECIPIENT_NOT_SUPPORTED:
                        raise
            return await self.graph.send_payload(payload, to=last)

        try:
            if self.paced:
                return await paced(
                    self.rate, attempt, _retry_after_of, lane=self.lane, what="whatsapp send"
                )
            return await attempt()
        except WaError as error:
            raise send_failure(error) from None

    async def send(self, address: str, message: Outbound) -> list[str]:
        """Send ``message`` to ``address`` (split and laid out as WhatsApp must); the keyed refs
        of the messages sent. Raises a ``SendFailure``."""
        if self.window is not None and not await self.window(address):
            raise WindowClosed("the worker's 24-hour window is closed")
        language = message.language or self.default_language
        refs = []
        for payload in render(message, language):
            refs.append(self._ref(await self._post(payload, address)))
        return refs

    async def send_window_opener(self, address: str, language: str) -> list[str]:
        """The neutral template ("You have a new message. Reply to see it.") in ``language``,
        or the fallback the templates name; ``Rejected`` when none is configured."""
        template = await self.templates(language) if self.templates is not None else None
        if template is None:
            raise Rejected("no WhatsApp template configured (wvb whatsapp templates set)")
        payload: dict[str, object] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "type": "template",
            "template": {"name": template.name, "language": {"code": template.language}},
        }
        return [self._ref(await self._post(payload, address))]
