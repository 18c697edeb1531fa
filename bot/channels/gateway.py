"""Where every channel hands a worker's event to the conversation core.

Per conversation: take the lock, load the state, run the engine, save the state, deliver the
replies, release the lock. Saving before delivering means a crash can at worst lose a reply the
worker will ask for again, never replay a step twice.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import traceback
from collections.abc import Awaitable, Callable, Sequence

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
    ) -> None:
        self.engine = engine
        self.store = store
        self.pseudonymizer = pseudonymizer

    def worker(self, channel: str, messenger_id: str | int, address: str | int) -> WorkerRef:
        pseudonym = self.pseudonymizer.pseudonym(channel, messenger_id)
        return WorkerRef(pseudonym=pseudonym, channel=channel, address=str(address))

    async def handle(self, worker: WorkerRef, inbound: Inbound, deliver: Deliver) -> None:
        inbound = _valid_inbound(inbound)
        if inbound.text and _has_myanmar_script(inbound.text):
            # Many Burmese phones still type Zawgyi; everything after this point is Unicode.
            inbound = dataclasses.replace(inbound, text=to_unicode_burmese(inbound.text))
        async with self.store.lock(worker.pseudonym):
            state = await self.store.load(worker.pseudonym)
            # Log lines name a turn by a random id: nothing in the log links two turns of one
            # worker, or a turn to the worker's pseudonym.
            turn_id = secrets.token_hex(4)
            try:
                turn = await self.engine.handle(worker, inbound, state)
            except Exception as error:
                # The state is left as it was, so the worker can simply try again. The log gets
                # where it failed, never the exception's message: it may quote what they typed.
                frames = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
                log.error("turn %s failed: %s\n%s", turn_id, type(error).__name__, frames)
                reply = self.engine.failure_reply(state, inbound.language_hint)
                await deliver([reply], Effects())
                return
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
            await deliver(turn.replies, turn.effects)
