"""WhatsApp status callbacks as delivery receipts (``services/delivery_receipts.py``).

A status names the wamid of a message we sent; the relays stored only its keyed token (the
sender hands back ``RedisKeyNames.token("wa_msg", wamid)``, never the wamid, which encodes the
phone number). So the same token is made here, and the wamid goes no further than this function.
What Graph's error codes mean is said once, in ``api.error_for``; a failed status is read the same
way as a refused send.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.channels.whatsapp.api import WaUnreachable, WaWindowClosed, error_for
from bot.channels.whatsapp.sender import MESSAGE_REF_KIND
from bot.channels.whatsapp.updates import WaStatus
from services.delivery_receipts import DeliveryReceipts, Receipt, Undelivered
from storage.redis_keys import RedisKeyNames


def failure_of(code: int) -> Undelivered:
    """What a failed status's Graph error code means (the same codes as a refused send)."""
    error = error_for(code)
    if isinstance(error, WaUnreachable):  # 131026, 131050
        return Undelivered.BLOCKED
    if isinstance(error, WaWindowClosed):  # 131047
        return Undelivered.WINDOW_CLOSED
    return Undelivered.OTHER


class StatusRecorder:
    """Records the status callbacks of one webhook POST as receipts, in one transaction (the
    runtime's ``on_statuses``)."""

    def __init__(self, receipts: DeliveryReceipts, names: RedisKeyNames) -> None:
        self.receipts = receipts
        self.names = names

    async def __call__(self, statuses: Sequence[WaStatus]) -> None:
        await self.receipts.record(
            [
                Receipt(
                    self.names.token(MESSAGE_REF_KIND, status.message_id),
                    status.status.value,  # "unknown" (e.g. "deleted"): counted, ignored
                    status.error_codes,
                )
                for status in statuses
            ]
        )
