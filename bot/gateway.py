"""Where every channel hands a worker's event to the conversation core.

Per conversation: take the lock, load the state, run the engine, save the state, deliver the
replies, release the lock. Saving before delivering means a crash can at worst lose a reply the
worker will ask for again, never replay a step twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from bot.logging_setup import short_ref
from conversations.engine import ConversationEngine
from conversations.messages import Inbound, Outbound
from conversations.ports import WorkerRef
from storage.conversation_state import ConversationStore
from storage.crypto import Pseudonymizer

log = logging.getLogger(__name__)

Deliver = Callable[[Sequence[Outbound]], Awaitable[None]]


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
        async with self.store.lock(worker.pseudonym):
            state = await self.store.load(worker.pseudonym)
            turn = await self.engine.handle(worker, inbound, state)
            await self.store.save(worker.pseudonym, turn.state)
            log.info(
                "conversation %s: %s -> %s (%d replies)",
                short_ref(worker.pseudonym),
                inbound.kind.value,
                turn.state.step,
                len(turn.replies),
            )
            await deliver(turn.replies)
