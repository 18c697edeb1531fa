"""The Telegram channel on aiogram 3: translate updates into ``Inbound``, render ``Outbound``."""
