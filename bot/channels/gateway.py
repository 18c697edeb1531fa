"""Where every channel hands a worker's event to the conversation core.

Per conversation: take the lock, load the state, run the engine, save the state, deliver the
replies, release the lock. Saving before delivering means a crash can at worst lose a reply the
worker will ask for again, never replay a step twice.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence

from bot.logging_setup import short_ref
from conversations.engine import ConversationEngine
from conversations.messages import Effects, Inbound, Outbound
from conversations.ports import WorkerRef
from locales.zawgyi import to_unicode_burmese
from storage.conversation_state import ConversationStore
from storage.crypto import Pseudonymizer

log = logging.getLogger(__name__)

Deliver = Callable[[Sequence[Outbound], Effects], Awaitable[None]]


def _has_myanmar_script(text: str) -> bool:
    return any("\u1000" <= character <= "\u109f" for character in text)


class ConversationGateway:
    def __init__(
        self,
        engine: ConversationEngine,
        store: ConversationStore,
        pseudonymizer: Pseudonymizer,
    ) -> None:
        self.engine = engine
        self.store = store
        self.pseudonymizer = pseudonymizer

    def worker(self, channel: str, messenger_id: str | int, address: str | int) -> WorkerRef:
        pseudonym = self.pseudonymizer.pseudonym(channel, messenger_id)
        return WorkerRef(pseudonym=pseudonym, channel=channel, address=str(address))

    async def handle(self, worker: WorkerRef, inbound: Inbound, deliver: Deliver) -> None:
        if inbound.text and _has_myanmar_script(inbound.text):
            # Many Burmese phones still type Zawgyi; everything after this point is Unicode.
            inbound = dataclasses.replace(inbound, text=to_unicode_burmese(inbound.text))
        async with self.store.lock(worker.pseudonym):
            state = await self.store.load(worker.pseudonym)
            try:
                turn = await self.engine.handle(worker, inbound, state)
            except Exception:
                # The state is left as it was, so the worker can simply try again.
                log.exception("conversation %s: turn failed", short_ref(worker.pseudonym))
                reply = self.engine.failure_reply(state, inbound.language_hint)
                await deliver([reply], Effects())
                return
            if turn.forget_state:
                await self.store.delete(worker.pseudonym)
            else:
                await self.store.save(worker.pseudonym, turn.state)
            log.info(
                "conversation %s: %s -> %s (%d replies)",
                short_ref(worker.pseudonym),
                inbound.kind.value,
                "forgotten" if turn.forget_state else turn.state.step,
                len(turn.replies),
            )
            await deliver(turn.replies, turn.effects)
