"""A job still running when the bot stops is ended before the database closes.

The bug was real: `wvb chat` with its input piped in stopped while the retention job (which runs
at start) was inside an aiosqlite call. The scheduler's shutdown only *asked* the job to cancel;
the app then closed the database under it, aiosqlite's worker thread was left waiting, and the
process never exited (CI killed it after 120 s).
"""

from __future__ import annotations

import asyncio

from bot.app import open_app
from tests.conftest import Backend


async def test_a_running_job_has_ended_when_serve_returns(backend: Backend) -> None:
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        started = asyncio.Event()
        ended: list[str] = []

        async def slow_retention_run() -> None:
            started.set()
            try:
                await asyncio.sleep(3600)
            finally:
                ended.append("ended")

        app.retention.run = slow_retention_run  # type: ignore[method-assign,assignment]
        stop = asyncio.Event()

        async def stop_once_the_job_runs() -> None:
            await started.wait()
            stop.set()

        stopper = asyncio.create_task(stop_once_the_job_runs())
        # Awaited in this task, not wrapped in another: the check below runs the moment serve
        # returns, before the event loop would deliver a cancellation that was only requested.
        async with asyncio.timeout(20):
            await app.serve(stop)
        await stopper
        assert ended == ["ended"], "serve returned while a scheduled job was still running"
