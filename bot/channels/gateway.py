"""Where every channel hands a worker's event to the conversation core.

Per conversation: take the lock, load the state, run the engine, save the state, deliver the
replies, release the lock. Saving before delivering means a crash can at worst lose a reply the
worker will ask for again, never replay a step twice; a step that is safe to replay (sending a
report) delivers first, so a crash cannot lose the receipt. When the database or Redis cannot be
reached, the worker is told to try again shortly.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import traceback
from collections.abc import Awaitable, Callable, Sequence

from conversations.engine import ConversationEngine
from conversations.messages import (
    LEAST_CAPABILITIES,
    ChannelCapabilities,
    Effects,
    Inbound,
    Outbound,
)
from conversations.ports import WorkerRef
from locales.zawgyi import to_unicode_burmese
from services.quotas import UpdateVerdict, WorkerQuotas
from storage.conversation_state import ConversationStore
from storage.crypto import Pseudonymizer
from storage.outage import storage_unreachable

log = logging.getLogger(__name__)

Deliver = Callable[[Sequence[Outbound], Effects], Awaitable[None]]
#: Moves a worker known under a previous pseudonym (an alias, or a previous key) to the current
#: one; returns the old pseudonym if it did (``WorkerProfileService.adopt_previous``).
Adopt = Callable[[WorkerRef], Awaitable[str | None]]


def _has_myanmar_script(text: str) -> bool:
    return any("\u1000" <= character <= "\u109f" for character in text)


def _valid_unicode(text: str) -> str:
    """``text`` with any lone UTF-16 surrogate (from a malformed update's JSON, or bytes a
    terminal could not decode) replaced by U+FFFD: such text can be neither stored nor sent."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _valid_inbound(inbound: Inbound) -> Inbound:
    hint = inbound.language_hint
    return dataclasses.replace(
        inbound,
        text=_valid_unicode(inbound.text),
        command=_valid_unicode(inbound.command),
        payload=_valid_unicode(inbound.payload),
        media=_valid_unicode(inbound.media),
        mime=_valid_unicode(inbound.mime),
        language_hint=None if hint is None else _valid_unicode(hint),
    )


class ConversationGateway:
    def __init__(
        self,
        engine: ConversationEngine,
        store: ConversationStore,
        pseudonymizer: Pseudonymizer,
        quotas: WorkerQuotas | None = None,
        *,
        adopt: Adopt | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.pseudonymizer = pseudonymizer
        self.quotas = quotas
        self.adopt = adopt

    def worker(
        self,
        channel: str,
        messenger_id: str | int,
        address: str | int,
        capabilities: ChannelCapabilities = LEAST_CAPABILITIES,
        *,
        aliases: Sequence[str | int] = (),
    ) -> WorkerRef:
        """Who the conversation is with, and what their ``channel`` declared it can do (the
        words of the core follow; a channel that declares nothing is taken at its least).

        ``aliases``: other ids of the same person on ``channel`` that they may be known under
        from before (a WhatsApp phone number beside the business-scoped user id,
        ``whatsapp/identity.py``). A worker known under one of those, or under a previous
        WVB_SECRET_KEY, is moved to the pseudonym of ``messenger_id`` when they write; the
        first in this order that is known is taken."""
        pseudonymizer = self.pseudonymizer
        pseudonym = pseudonymizer.pseudonym(channel, messenger_id)
        previous = [pseudonymizer.pseudonym(channel, alias) for alias in aliases]
        for known_as in (messenger_id, *aliases):
            previous += pseudonymizer.previous_pseudonyms(channel, known_as)
        return WorkerRef(
            pseudonym, channel, str(address),
            previous_pseudonyms=tuple(dict.fromkeys(p for p in previous if p != pseudonym)),
            capabilities=capabilities,
        )  # fmt: skip

    async def _adopt_previous(self, worker: WorkerRef) -> None:
        """A worker known under another of their ids, or under a previous WVB_SECRET_KEY, is
        moved to their current pseudonym, with their unfinished conversation."""
        if not worker.previous_pseudonyms or self.adopt is None:
            return
        old = await self.adopt(worker)
        if old is not None:
            async with self.store.lock(old):
                state = await self.store.load(old)
                await self.store.delete(old)
            if state is not None:
                await self.store.save(worker.pseudonym, state)

    async def handle(self, worker: WorkerRef, inbound: Inbound, deliver: Deliver) -> None:
        inbound = _valid_inbound(inbound)
        if self.quotas is not None:
            # Updates over the per-minute quota: the first is answered "slow down", the rest
            # are dropped here, before the lock, the state or the database are touched.
            try:
                verdict = await self.quotas.update(worker.pseudonym)
            except Exception as error:
                # Redis gone: the flood guard fails open rather than silence everyone; the turn
                # below then answers "try again shortly" if storage is still needed.
                if not storage_unreachable(error):
                    raise
                log.warning("update quota not checked: storage unreachable")
                verdict = UpdateVerdict.HANDLE
            if verdict is UpdateVerdict.DROP:
                return
            if verdict is UpdateVerdict.SLOW_DOWN:
                log.info("a worker is over the per-minute update quota; updates dropped")
                state = await self.store.load(worker.pseudonym)  # only for their language
                await deliver(
                    [self.engine.slow_down_reply(state, inbound.language_hint)], Effects()
                )
                return
        if inbound.text and _has_myanmar_script(inbound.text):
            # Many Burmese phones still type Zawgyi; everything after this point is Unicode.
            inbound = dataclasses.replace(inbound, text=to_unicode_burmese(inbound.text))
        # Log lines name a turn by a random id: nothing in the log links two turns of one
        # worker, or a turn to the worker's pseudonym.
        turn_id = secrets.token_hex(4)
        delivered = False

        async def deliver_once(replies: Sequence[Outbound], effects: Effects) -> None:
            nonlocal delivered
            delivered = True
            await deliver(replies, effects)

        try:
            async with self.store.lock(worker.pseudonym):
                await self._turn(turn_id, worker, inbound, deliver_once)
        except Exception as error:
            # Redis (locks, state) or the database gone while no reply was sent yet: the
            # worker hears "try again shortly" rather than nothing.
            if delivered or not storage_unreachable(error):
                raise
            log.warning("turn %s: storage unreachable (%s)", turn_id, type(error).__name__)
            await deliver([self.engine.unavailable_reply(None, inbound.language_hint)], Effects())

    async def _turn(
        self, turn_id: str, worker: WorkerRef, inbound: Inbound, deliver: Deliver
    ) -> None:
        await self._adopt_previous(worker)
        state = await self.store.load(worker.pseudonym)
        try:
            turn = await self.engine.handle(worker, inbound, state)
        except Exception as error:
            # The state is left as it was, so the worker can simply try again. The log gets
            # where it failed, never the exception's message: it may quote what they typed.
            if storage_unreachable(error):
                log.warning("turn %s: storage unreachable (%s)", turn_id, type(error).__name__)
                reply = self.engine.unavailable_reply(state, inbound.language_hint)
            else:
                frames = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
                log.error("turn %s failed: %s\n%s", turn_id, type(error).__name__, frames)
                reply = self.engine.failure_reply(state, inbound.language_hint)
            await deliver([reply], Effects())
            return
        language = turn.state.language or inbound.language_hint
        replies = [
            reply if reply.language else dataclasses.replace(reply, language=language)
            for reply in turn.replies
        ]
        if turn.deliver_first:
            await deliver(replies, turn.effects)
        if turn.forget_state:
            await self.store.delete(worker.pseudonym)
        else:
            await self.store.save(worker.pseudonym, turn.state)
        log.info(
            "turn %s: %s -> %s (%d replies)",
            turn_id,
            inbound.kind.value,
            "forgotten" if turn.forget_state else turn.state.step,
            len(turn.replies),
        )
        if not turn.deliver_first:
            await deliver(replies, turn.effects)
