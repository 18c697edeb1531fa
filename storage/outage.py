"""Whether an error means a storage server (the database or Redis) cannot be reached right now,
as opposed to a bug: the worker is then told to try again shortly, and nothing else changes."""

from __future__ import annotations

import logging

import asyncpg  # type: ignore[import-untyped]
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError

_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, no route: the server is down or restarting
    TimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.CannotConnectNowError,  # the server is starting or shutting down
    asyncpg.AdminShutdownError,  # the server was stopped under an open session
    asyncpg.ConnectionDoesNotExistError,
)


def storage_unreachable(error: BaseException) -> bool:
    """True when ``error``, or what caused it, says a storage server is down or unreachable."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _UNREACHABLE):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


class OutageLog:
    """A loop that retries while storage is down logs one line when the outage starts and one
    when it ends, instead of a traceback every pass; any other failure is logged in full."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._log = logger
        self._what = what
        self._down = False

    def failed(self, error: BaseException) -> None:
        if not storage_unreachable(error):
            self._log.exception("%s failed", self._what)
        elif not self._down:
            self._down = True
            self._log.warning(
                "%s: storage unreachable (%s); retrying", self._what, type(error).__name__
            )

    def succeeded(self) -> None:
        if self._down:
            self._down = False
            self._log.warning("%s: storage reachable again", self._what)
