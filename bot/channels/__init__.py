"""The edges: every channel's adapter, the gateway they share, and the whole send side.

- ``gateway.py``: how a worker's event becomes a turn (lock, load, run, save, deliver).
- ``console.py``, ``telegram/`` (aiogram), ``telegram_ptb/`` (python-telegram-bot): adapters.
- ``sending.py``: the ``Sender`` protocol and the one vocabulary of send failures.
- ``pacing.py``: how every send of a bot token draws from one shared rate.
- ``outbox_relay.py``, ``broadcast_relay.py``: the relays that send outside a turn.
- ``staff_chat.py``: staff commands in a private chat, for any runtime.
"""
