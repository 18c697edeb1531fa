"""The WhatsApp channel: the Cloud API webhook wired to the conversation gateway, and its senders.

Receiving: ``webhook.py`` serves ``/whatsapp/webhook`` on ``WVB_WHATSAPP_LISTEN`` (signature
checked before anything is parsed, each message handled once by its id), and hands the new
updates here. Messages of one worker are handled in order, one after the other; different
workers at once, at most ``concurrent_updates`` turns together. A worker's message opens their
24-hour window (``on_worker_wrote``); status callbacks go to ``on_statuses``.

Replying: the turn's replies go through the conversation-lane sender without the window check
(the worker has just written). Outside a turn, ``sender()`` and ``broadcast_sender()`` check the
window and raise ``WindowClosed`` when it is shut (``sender.py``).

WhatsApp can neither delete a message nor keep it from being forwarded or saved, and it keeps
chats in the phone's backups: the channel declares that (``CAPABILITIES``) and the core's words
follow (it asks the worker to delete a message with a code themselves).

Media: a worker's photo, document or voice note is fetched only when the step keeps it, through
the Graph media endpoints with the token, up to the same 20 MB the Telegram channel allows, and
cleaned in the sandbox like every other file.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from aiohttp import web

from bot.channels.gateway import ConversationGateway
from bot.channels.sending import RetryAfter, Sender
from bot.channels.whatsapp.api import GraphClient, WaError, WaMediaTooLarge
from bot.channels.whatsapp.identity import identify
from bot.channels.whatsapp.sender import (
    CHANNEL,
    TemplateLookup,
    WhatsAppSender,
    WindowCheck,
)
from bot.channels.whatsapp.updates import (
    MessageKind,
    WaMessage,
    WaStatus,
    WebhookUpdates,
    to_inbound,
)
from bot.channels.whatsapp.webhook import WhatsAppWebhook, start_webhook
from bot.errors import ChannelStartError
from conversations.messages import ChannelCapabilities, Effects, Outbound
from conversations.ports import MediaTooLarge, MediaUnavailable, WorkerRef
from storage.redis_keys import RedisKeyNames
from storage.seen_messages import SeenMessages
from storage.send_rate import Lane, SendRate

__all__ = ["CAPABILITIES", "CHANNEL", "MAX_MEDIA_BYTES", "WhatsAppChannel"]

log = logging.getLogger(__name__)

#: The Cloud API can neither delete a message nor protect it from being forwarded or saved.
CAPABILITIES: Final = ChannelCapabilities(can_delete_messages=False, can_protect_content=False)
#: The largest file a worker may send as evidence: the 20 MB the Telegram channel allows, so the
#: worker is told the same limit on every channel.
MAX_MEDIA_BYTES: Final = 20 * 1024 * 1024
#: A turn's reply refused by the pair rate (131056) is tried this many times more.
CHAT_RATE_RETRIES: Final = 3

#: Called with the worker and their message's time (Unix seconds) when they write; returns how
#: many messages held for their 24-hour window it released.
OnWorkerWrote = Callable[[WorkerRef, int], Awaitable[int]]
#: Called with the status callbacks of one webhook POST.
OnStatuses = Callable[[Sequence[WaStatus]], Awaitable[None]]


class WhatsAppChannel:
    """The WhatsApp channel on the Cloud API: a webhook, and its senders."""

    name = CHANNEL
    capabilities = CAPABILITIES

    def __init__(
        self,
        *,
        token: str,
        phone_number_id: str,
        app_secret: str,
        verify_token: str,
        api_base: str,
        listen: tuple[str, int],
        gateway: ConversationGateway,
        rate: SendRate,
        names: RedisKeyNames,
        seen: SeenMessages,
        window: WindowCheck | None = None,
        templates: TemplateLookup | None = None,
        on_worker_wrote: OnWorkerWrote | None = None,
        on_statuses: OnStatuses | None = None,
        default_language: str = "en",
        concurrent_updates: int = 256,
    ) -> None:
        self.rate = rate
        self.gateway = gateway
        self.names = names
        self.listen = listen
        self.window = window
        self.templates = templates
        self.on_worker_wrote = on_worker_wrote
        self.on_statuses = on_statuses
        self.default_language = default_language
        self.graph = GraphClient(api_base=api_base, token=token, phone_number_id=phone_number_id)
        self._broadcast_graph = GraphClient(
            api_base=api_base, token=token, phone_number_id=phone_number_id, max_connections=64
        )
        self._replies = WhatsAppSender(self.graph, rate, names, default_language=default_language)
        self.webhook = WhatsAppWebhook(
            verify_token=verify_token,
            app_secret=app_secret,
            on_updates=self.on_updates,
            seen=seen,
            names=names,
        )
        self._slots = asyncio.Semaphore(concurrent_updates)
        self._runner: web.AppRunner | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    # -- senders --------------------------------------------------------------------------------

    def sender(self) -> Sender:
        """Outbox messages: paced in the conversation lane, the 24-hour window checked."""
        return WhatsAppSender(
            self.graph, self.rate, self.names,
            window=self.window, templates=self.templates,
            default_language=self.default_language,
        )  # fmt: skip

    def broadcast_sender(self) -> Sender:
        """Broadcasts: unpaced (the broadcast relay takes the tokens), the window checked."""
        return WhatsAppSender(
            self._broadcast_graph, self.rate, self.names,
            lane=Lane.BROADCAST, paced=False,
            window=self.window, templates=self.templates,
            default_language=self.default_language,
        )  # fmt: skip

    # -- running --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the token and the number with the Cloud API (a failure names the setting),
        then listen for Meta's webhook deliveries on ``WVB_WHATSAPP_LISTEN``."""
        problem = await self.graph.phone_number_problem()
        if problem is not None:
            raise ChannelStartError(problem)
        host, port = self.listen
        try:
            self._runner = await start_webhook(self.webhook.application(), host, port)
        except OSError as error:
            raise ChannelStartError(
                f"WVB_WHATSAPP_LISTEN: cannot listen on {host}:{port} ({type(error).__name__})"
            ) from None
        log.info("WhatsApp channel ready: webhook on %s:%d/whatsapp/webhook", host, port)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve the webhook until ``stop`` is set; then the turns already received finish."""
        try:
            await stop.wait()
        finally:
            if self._runner is not None:
                await self._runner.cleanup()  # stops listening, drains the webhook's handlers
                self._runner = None
            while self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.graph.close()
        await self._broadcast_graph.close()

    # -- receiving ------------------------------------------------------------------------------

    async def on_updates(self, updates: WebhookUpdates) -> None:
        """One POST's new messages, in order per worker, and its status callbacks."""
        by_worker: dict[str, list[WaMessage]] = defaultdict(list)
        for message in updates.messages:
            by_worker[message.sender].append(message)
        for messages in by_worker.values():
            task = asyncio.create_task(self._worker_messages(messages))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        if updates.statuses and self.on_statuses is not None:
            try:
                await self.on_statuses(updates.statuses)
            except Exception as error:
                log.error("whatsapp statuses not recorded (%s)", type(error).__name__)

    async def _worker_messages(self, messages: list[WaMessage]) -> None:
        async with self._slots:
            for message in messages:
                try:
                    await self._turn(message)
                except Exception as error:  # the type only: the message may hold the text
                    log.error("whatsapp turn failed (%s)", type(error).__name__)

    def worker(self, message: WaMessage) -> WorkerRef:
        """Who wrote, by the rule of ``identity.py``: known by the BSUID, adopted from the phone
        number beside it, written back to at both."""
        identity = identify(message)
        return self.gateway.worker(
            CHANNEL, identity.messenger_id, identity.address, CAPABILITIES,
            aliases=identity.aliases,
        )  # fmt: skip

    async def _turn(self, message: WaMessage) -> None:
        worker = self.worker(message)
        released = 0
        if self.on_worker_wrote is not None:
            released = await self.on_worker_wrote(worker, message.timestamp)
        if message.kind is MessageKind.TEMPLATE_REPLY and released:
            # "Show message" on the neutral template: what was held is on its way; a turn would
            # only answer a button the conversation does not know.
            return
        inbound = to_inbound(message, self._download)

        async def deliver(replies: Sequence[Outbound], effects: Effects) -> None:
            # Erasing effects are not for WhatsApp (CAPABILITIES): the core told the worker so.
            del effects
            for reply in replies:
                await self._reply(worker.address, reply)

        await self.gateway.handle(worker, inbound, deliver)

    async def _reply(self, address: str, reply: Outbound) -> None:
        for attempt in range(CHAT_RATE_RETRIES + 1):
            try:
                await self._replies.send(address, reply)
                return
            except RetryAfter as limited:
                if not limited.chat_only or attempt == CHAT_RATE_RETRIES:
                    raise
                await asyncio.sleep(limited.seconds)

    async def _download(self, media_id: str) -> bytes:
        try:
            return await self.graph.download_media(media_id, MAX_MEDIA_BYTES)
        except WaMediaTooLarge:
            raise MediaTooLarge from None
        except WaError as error:
            raise MediaUnavailable(type(error).__name__) from None
