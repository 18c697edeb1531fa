"""The messenger-agnostic conversation core.

An inbound event plus the conversation state go in; outbound messages (text and choices) come out,
with calls on service interfaces along the way. Nothing here imports a messenger library or a
database library, so every flow runs unchanged on Telegram, in the console and on later channels,
and is tested in microseconds.
"""
