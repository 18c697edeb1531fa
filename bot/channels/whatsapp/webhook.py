"""The WhatsApp Cloud API webhook: an aiohttp application serving ``/whatsapp/webhook``.

- ``GET``: Meta's verification handshake. ``hub.mode`` must be ``subscribe`` and
  ``hub.verify_token`` the configured verify token (compared in constant time); the answer is
  ``hub.challenge`` as text/plain, and only a challenge of at most 64 digits is echoed (Meta
  sends a number; echoing anything else would let a caller put text on our origin). Else 403.
- ``POST``: the raw body is read up to a limit (413 beyond it), and ``X-Hub-Signature-256`` is
  checked as HMAC-SHA256 of those exact bytes under the app secret, in constant time, before
  anything is parsed: 401 when the header is missing or not ``sha256=<64 hex>``, 403 when it
  does not match. A signed body is then answered 200 at once, also when it is not JSON or holds
  nothing we read: Meta retries a non-200 for days, and a retry would not read any better. The
  parsed updates go to the injected callback in a background task; ``drain()`` (run when the
  application cleans up) waits for those in flight.

A message delivered again (Meta retries, or repeats a message in two POSTs) is dropped by its
id. The store never sees the id itself, which encodes the sender's phone number, only a keyed
HMAC of it (``RedisKeyNames.token("wa_msg", wamid)``). Statuses are not deduplicated: applying a
status twice changes nothing. Logs carry counts and kinds, never ids, numbers or text.

Not wired into ``wvb run`` yet (issue 12).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace

from aiohttp import web

from bot.channels.whatsapp.updates import WebhookUpdates, parse_body
from storage.outage import storage_unreachable
from storage.redis_keys import RedisKeyNames
from storage.seen_messages import SeenMessages

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/whatsapp/webhook"
SIGNATURE_HEADER = "X-Hub-Signature-256"
#: Meta documents webhook payloads of up to 3 MB (courier accepts 1 MiB): a batch refused with
#: 413 would be retried for days and never fit, so the limit is Meta's, not courier's.
MAX_BODY_BYTES = 3 * 1024 * 1024
#: The kind of token a message id is stored under (see ``RedisKeyNames``).
MESSAGE_TOKEN_KIND = "wa_msg"  # noqa: S105 (a label, not a secret)
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_CHALLENGE = re.compile(r"[0-9]{1,64}")

#: Receives the new updates of one POST (messages already seen are left out).
OnUpdates = Callable[[WebhookUpdates], Awaitable[None]]


class WhatsAppWebhook:
    def __init__(
        self,
        *,
        verify_token: str,
        app_secret: str,
        on_updates: OnUpdates,
        seen: SeenMessages,
        names: RedisKeyNames,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        if not verify_token or not app_secret:
            raise ValueError("the WhatsApp webhook needs a verify token and an app secret")
        self._verify_token = verify_token.encode()
        self._app_secret = app_secret.encode()
        self._on_updates = on_updates
        self._seen = seen
        self._names = names
        self._max_body_bytes = max_body_bytes
        self._tasks: set[asyncio.Task[None]] = set()

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get(WEBHOOK_PATH, self.verify)
        app.router.add_post(WEBHOOK_PATH, self.receive)
        app.on_cleanup.append(self._cleanup)
        return app

    async def verify(self, request: web.Request) -> web.Response:
        query = request.query
        token = query.get("hub.verify_token", "").encode()
        challenge = query.get("hub.challenge", "")
        token_ok = hmac.compare_digest(token, self._verify_token)
        if query.get("hub.mode") != "subscribe" or not token_ok:
            log.warning("whatsapp webhook: verification refused")
            return web.Response(status=403)
        if not _CHALLENGE.fullmatch(challenge):
            log.warning("whatsapp webhook: verification refused (challenge not a number)")
            return web.Response(status=403)
        log.info("whatsapp webhook: verified")
        return web.Response(text=challenge, content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        if (request.content_length or 0) > self._max_body_bytes:
            log.warning("whatsapp webhook: body over %d bytes refused", self._max_body_bytes)
            return web.Response(status=413)
        body = await self._read(request)
        if body is None:
            log.warning("whatsapp webhook: body over %d bytes refused", self._max_body_bytes)
            return web.Response(status=413)
        match = _SIGNATURE.fullmatch(request.headers.get(SIGNATURE_HEADER, ""))
        if match is None:
            log.warning("whatsapp webhook: signature missing or malformed")
            return web.Response(status=401)
        expected = hmac.new(self._app_secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, match.group(1).lower()):
            log.warning("whatsapp webhook: signature does not match")
            return web.Response(status=403)
        updates = parse_body(body)
        task = asyncio.create_task(self._hand_on(updates))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(status=200)

    async def _read(self, request: web.Request) -> bytes | None:
        """The body, or None when it is longer than the limit (read no further than that)."""
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.readany():
            size += len(chunk)
            if size > self._max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def _hand_on(self, updates: WebhookUpdates) -> None:
        try:
            fresh = []
            for message in updates.messages:
                if await self._first_time(message.message_id):
                    fresh.append(message)
            repeated = len(updates.messages) - len(fresh)
            new = replace(updates, messages=tuple(fresh))
            kinds = Counter(message.kind.value for message in new.messages)
            statuses = Counter(status.status.value for status in new.statuses)
            log.info(
                "whatsapp webhook: %d new messages %s, %d repeated, statuses %s, %d ignored",
                len(new.messages),
                dict(sorted(kinds.items())),
                repeated,
                dict(sorted(statuses.items())),
                new.ignored,
            )
            if new:
                await self._on_updates(new)
        except Exception as error:  # the type only: a message could hold the text or an id
            log.error("whatsapp webhook: handling updates failed (%s)", type(error).__name__)

    async def _first_time(self, message_id: str) -> bool:
        token = self._names.token(MESSAGE_TOKEN_KIND, message_id)
        try:
            return await self._seen.first_time(token)
        except Exception as error:
            if not storage_unreachable(error):
                raise
            # Redis is down: handling a message twice is better than dropping it unanswered.
            log.warning("whatsapp webhook: seen messages unreachable (%s)", type(error).__name__)
            return True

    async def drain(self) -> None:
        """Wait for the updates already answered 200 to be handed on."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _cleanup(self, _app: web.Application) -> None:
        await self.drain()


async def start_webhook(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on host:port; the runner's ``cleanup()`` stops it and drains the handlers.
    aiohttp's access log is off: a verification request's query holds the verify token."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def create_app(
    *,
    verify_token: str,
    app_secret: str,
    on_updates: OnUpdates,
    seen: SeenMessages,
    names: RedisKeyNames,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> web.Application:
    """The webhook application (``WhatsAppWebhook.application``)."""
    return WhatsAppWebhook(
        verify_token=verify_token,
        app_secret=app_secret,
        on_updates=on_updates,
        seen=seen,
        names=names,
        max_body_bytes=max_body_bytes,
    ).application()
