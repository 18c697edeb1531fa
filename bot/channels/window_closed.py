"""What a relay does when a sender says ``WindowClosed`` (WhatsApp's 24-hour window).

The message is held (``services/window_hold.py``), and the worker is asked to write by the
neutral template, at most once per closed window however many messages wait for them
(``WhatsAppWindow.opener_due``, shared by every process). The outbox relay and the broadcast
relay both come here, so the rule is written once.
"""

from __future__ import annotations

import logging

from bot.channels.sending import Rejected, Sender, WindowOpener
from services.window_hold import HELD_REASON
from storage.whatsapp_window import WhatsAppWindow

log = logging.getLogger(__name__)


class WindowOpening:
    def __init__(self, window: WhatsAppWindow | None = None) -> None:
        """``window``: the store that knows when each worker wrote and whether the template
        went; without it (no window store in this process) every held message sends one."""
        self.window = window

    async def ask(self, sender: Sender, address: str, language: str) -> str:
        """The messenger refused a message to ``address`` for a closed window: send the
        neutral template if it is due, and return why the message waits (for its row). A
        failure to send the template that should be tried again (rate, channel down) is
        raised, and the message is not held; a template the messenger refuses (none
        configured, not approved) is logged and the message waits anyway."""
        if self.window is not None:
            # Whatever the store thought, the messenger says closed: the worker's next message
            # must count as opening it, so what is held now goes then.
            await self.window.closed(address)
        if not isinstance(sender, WindowOpener):
            return HELD_REASON
        if self.window is not None and not await self.window.opener_due(address):
            return HELD_REASON  # already asked since the window closed
        try:
            await sender.send_window_opener(address, language)
        except Rejected as refused:
            if self.window is not None:
                await self.window.opener_failed(address)
            log.error("the neutral template could not be sent: %s", refused)
            return f"{HELD_REASON}; the template asking them was refused: {refused}"[:200]
        except BaseException:
            if self.window is not None:
                await self.window.opener_failed(address)
            raise
        return HELD_REASON

    async def messenger_said_closed(self, address: str) -> None:
        """The messenger reported a message undelivered after accepting it, the window being
        closed (a status callback): what the store believes is wrong, forget it."""
        if self.window is not None:
            await self.window.closed(address)

    async def reopened(self, address: str) -> bool:
        """Whether the worker wrote while their message was being held (their release may
        have run before the hold was recorded): if so, the caller releases it at once."""
        return self.window is not None and await self.window.is_open(address)
