"""Sentences that depend on what the worker's channel can do (``ChannelCapabilities``).

Each is chosen here, once, from the capabilities the channel declared: Telegram deletes the
message with a code and protects the receipt, and says so; the console cannot do either, so the
worker is told what to do instead (delete or clear it, keep the code private). The core never
claims an effect the channel cannot have.
"""

from __future__ import annotations

from conversations.turn import TurnContext


def code_message_erased(ctx: TurnContext) -> str:
    """After a status check: what became of the worker's message holding the receipt code."""
    if ctx.worker.capabilities.can_delete_messages:
        return ctx._("For your safety, I deleted your message with the code.")
    return ctx._(
        "I cannot delete your message with the code here. Please delete it or clear your "
        "screen yourself, and keep the code private."
    )


def chat_erasure(ctx: TurnContext) -> str:
    """Before /forget: what will become of the messages in this chat."""
    if ctx.worker.capabilities.can_delete_messages:
        return ctx._("I will also try to delete the messages in this chat from the last 2 days.")
    return ctx._(
        "I cannot delete the messages in this chat here. If someone else may see them, delete "
        "them or clear your screen yourself."
    )


def unprotected_code_advice(ctx: TurnContext) -> list[str]:
    """Under a message showing a receipt code: advice where the channel cannot protect it from
    being copied or forwarded (nothing where it can)."""
    if ctx.worker.capabilities.can_protect_content:
        return []
    return [
        "",
        ctx._(
            "This message is not protected here. When you have written the code down, delete "
            "this message or clear your screen."
        ),
    ]
