"""The fake Telegram Bot API in a process of its own, for benchmarks.

It registers ``--chats`` private chats starting at ``--first-chat``, enforces ``--rate`` messages
a second globally and one a second per chat with real 429 replies, keeps no message bodies, and
serves its counts as JSON at ``/_bench/stats``. It prints its base URL on the first line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from aiohttp import web

from tests.fake_telegram_api import FakeTelegramServer


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--chats", type=int, required=True)
    parser.add_argument("--first-chat", type=int, default=10_000_000)
    parser.add_argument("--stats-port", type=int, required=True)
    parser.add_argument("--token", required=True)
    arguments = parser.parse_args()

    server = FakeTelegramServer(
        arguments.token, global_rate_per_second=arguments.rate, per_chat_rate_per_second=1
    )
    server.record_requests = False
    server.keep_messages = False
    chats = range(arguments.first_chat, arguments.first_chat + arguments.chats)
    for chat_id in chats:
        server.register_chat({"id": chat_id, "type": "private", "first_name": "W"})
    await server.start()

    async def stats(_: web.Request) -> web.Response:
        counts = server.delivery_counts
        return web.json_response(
            {
                "delivered": sum(counts.values()),
                "chats_reached": len(counts),
                "duplicates": sum(count - 1 for count in counts.values() if count > 1),
                "too_many_requests": server.too_many_requests,
                "per_second": {str(k): v for k, v in sorted(server.deliveries_per_second.items())},
                "missing": [
                    chat_id
                    for chat_id in range(
                        arguments.first_chat, arguments.first_chat + arguments.chats
                    )
                    if chat_id not in counts
                ][:20],
                "missing_count": arguments.chats - len(counts),
            },
            dumps=json.dumps,
        )

    stats_app = web.Application()
    stats_app.router.add_get("/_bench/stats", stats)
    runner = web.AppRunner(stats_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", arguments.stats_port).start()
    print(server.base_url, flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    await stop.wait()
    await runner.cleanup()
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
