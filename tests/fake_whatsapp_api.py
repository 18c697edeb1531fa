"""An in-process fake of the WhatsApp Business Cloud API (Graph), for tests.

Why it exists: the WhatsApp channel (issue 12, not wired into ``wvb run`` yet) must be exercised
over real HTTP, with Meta's wire format and Meta's refusals, without the network or a real token.
It speaks the shapes recorded in ``docs/design/whatsapp.md`` section 3 (taken from pywa and courier
fixtures; recheck them against Meta's documentation before going live).

Send side (what the bot calls), served on 127.0.0.1 at a random port:

- ``POST /v{N}.0/{phone-number-id}/messages`` with ``Authorization: Bearer TOKEN``: text,
  interactive button / list, template (only names registered with ``register_template``) and
  image / document / audio by media id.  Every request is recorded in ``requests``; accepted
  messages also in ``sent``.  A limit exceeded gives 131009, a malformed request 100, a bad token
  190 (HTTP 401), each in Graph's error shape.
- ``POST /v{N}.0/{phone-number-id}/media`` (multipart upload), ``GET /v{N}.0/{media-id}``
  (metadata whose ``url`` points back here) and ``GET`` of that url with the bearer (the bytes).
- ``GET /v{N}.0/{phone-number-id}``: the business phone number, as ``start()`` checks would read it.
- ``fail_next(code, recipient=..., times=...)`` injects Meta's errors (131056, 130429, 131047,
  131026, ...) for one recipient or for every send, with Meta's HTTP status by default;
  ``fail_after_send`` accepts the send and queues a ``failed`` status instead (in
  ``pending_statuses``), the asynchronous way Meta also reports 131047 and 131026.

Receive side (what Meta calls): ``WebhookDeliverer`` POSTs signed deliveries
(``X-Hub-Signature-256``) in the real envelope, retries on non-2xx with short configurable delays,
can deliver a duplicate on purpose, and performs the GET verification handshake.
``SimulatedWaUser`` builds the ``value`` of each message kind a worker can send, for a phone
user (``wa_id``, optionally with a business-scoped ``user_id``) or a phone-less one (``user_id``
only).

Like Meta's, the wamids this fake returns contain the recipient's phone number (base64), so a test
that searches logs or dumps for the phone number also catches a leaked wamid.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import itertools
import json
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Self

from aiohttp import ClientError, ClientSession, ClientTimeout, web

__all__ = [
    "DEFAULT_APP_SECRET",
    "DEFAULT_PHONE_NUMBER_ID",
    "DEFAULT_TOKEN",
    "ERROR_STATUS",
    "FakeWhatsAppServer",
    "MediaFile",
    "RecordedRequest",
    "SentWaMessage",
    "SimulatedWaUser",
    "WebhookDeliverer",
    "envelope",
    "sign",
    "status_value",
]

JSONDict = dict[str, Any]

DEFAULT_TOKEN: Final = "EAAG-fake-whatsapp-token"
DEFAULT_PHONE_NUMBER_ID: Final = "106540352242922"
DEFAULT_DISPLAY_PHONE_NUMBER: Final = "15550783881"
DEFAULT_WABA_ID: Final = "102290129340398"
DEFAULT_APP_SECRET: Final = "fake-app-secret"

# Meta's limits (the same numbers as the design note's rendering limits).
MAX_TEXT: Final = 4096
MAX_BODY: Final = 1024
MAX_BUTTONS: Final = 3
MAX_BUTTON_TITLE: Final = 20
MAX_ROWS: Final = 10
MAX_ROW_TITLE: Final = 24
MAX_ROW_DESCRIPTION: Final = 72
MAX_LIST_BUTTON: Final = 20
MAX_HEADER_FOOTER: Final = 60

# HTTP status Meta answers with per Graph error code (design note section 3).
ERROR_STATUS: Final[dict[int, int]] = {
    0: 401,
    190: 401,
    4: 429,
    10: 403,
    100: 400,
    80007: 400,
    130429: 400,
    131008: 400,
    131009: 400,
    131026: 400,
    131047: 400,
    131048: 400,
    131049: 400,
    131051: 400,
    131053: 400,
    131056: 400,
    132000: 400,
    132001: 404,
    131000: 500,
    3: 500,
    131016: 503,
}

_ERROR_TEXT: Final[dict[int, tuple[str, str]]] = {
    # code: (title used in ``message``, ``error_data.details``)
    0: ("AuthException", "We were unable to authenticate the app user."),
    4: ("Application request limit reached", "The app has reached its API call rate limit."),
    100: ("Invalid parameter", "Invalid parameter."),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    131009: ("Parameter value is not valid", "Parameter value is not valid."),
    131026: (
        "Message Undeliverable",
        "Message failed to send because the recipient cannot receive it.",
    ),
    131047: (
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.",
    ),
    131051: ("Unsupported message type", "Message type is not currently supported."),
    131056: (
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from the sender phone number to the same recipient phone number "
        "in a short period of time.",
    ),
    132001: (
        "Template name does not exist in the translation",
        "template name does not exist in the translation",
    ),
    131000: ("Something went wrong", "Something went wrong."),
    131016: ("Service unavailable", "A service is temporarily unavailable."),
    190: ("Invalid OAuth access token - Cannot parse access token", ""),
}

_VERSION: Final = r"v{version:\d+\.0}"
_MEDIA_PATH: Final = "/whatsapp_business/attachments/"
_PHONE: Final = re.compile(r"\+?\d{6,15}")


def sign(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` header value Meta sends: ``sha256=<hex HMAC of body>``."""
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _fbtrace_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")[:23]


def error_body(code: int, details: str | None = None, message: str | None = None) -> JSONDict:
    """Graph's error JSON for ``code`` (``error_subcode`` is deprecated, so absent)."""
    title, default_details = _ERROR_TEXT.get(code, (f"Error {code}", f"Error {code}."))
    error: JSONDict = {
        "message": message if message is not None else f"(#{code}) {title}",
        "type": "OAuthException",
        "code": code,
    }
    if code != 190:
        error["error_data"] = {
            "messaging_product": "whatsapp",
            "details": details if details is not None else default_details,
        }
    error["fbtrace_id"] = _fbtrace_id()
    return {"error": error}


class GraphError(Exception):
    """A refusal in Graph's shape; raised inside handlers, answered as JSON."""

    def __init__(self, code: int, details: str | None = None, *, status: int | None = None):
        super().__init__(f"Graph error {code}")
        self.code = code
        self.details = details
        self.status = status if status is not None else ERROR_STATUS.get(code, 400)

    def response(self) -> web.Response:
        return web.json_response(error_body(self.code, self.details), status=self.status)


def _invalid(details: str) -> GraphError:
    return GraphError(131009, details)


def _malformed(details: str) -> GraphError:
    return GraphError(100, details)


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the fake received (the bearer token itself is never kept)."""

    method: str
    path: str
    authorized: bool
    body: JSONDict | None
    status: int
    error_code: int | None


@dataclass(frozen=True)
class SentWaMessage:
    """One message the fake accepted."""

    wamid: str
    recipient: str  # ``to`` (digits) or ``recipient`` (a BSUID)
    type: str
    payload: JSONDict  # the whole request body

    @property
    def text(self) -> str | None:
        """The text body, or the interactive body text, if any."""
        if self.type == "text":
            return str(self.payload["text"]["body"])
        if self.type == "interactive":
            return str(self.payload["interactive"]["body"]["text"])
        return None

    @property
    def choice_ids(self) -> list[str]:
        """Reply-button or list-row ids, in order."""
        if self.type != "interactive":
            return []
        action = self.payload["interactive"]["action"]
        if "buttons" in action:
            return [str(button["reply"]["id"]) for button in action["buttons"]]
        return [str(row["id"]) for section in action["sections"] for row in section["rows"]]


@dataclass
class MediaFile:
    """Media held by the fake: uploaded by the bot or "sent" by a simulated worker."""

    id: str
    data: bytes
    mime_type: str
    filename: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class _Injected:
    code: int
    status: int
    details: str | None


def _wamid(recipient: str, seq: int) -> str:
    """A wamid like Meta's: base64 of a header, the recipient's number and a message id."""
    raw = b"\x1c\x18" + bytes([len(recipient)]) + recipient.encode() + b"\x15\x02\x00\x11\x18\x12"
    raw += f"{seq:018X}".encode() + b"\x00"
    return "wamid." + base64.b64encode(raw).decode()


def _str_field(parent: Any, key: str, where: str) -> str:
    if not isinstance(parent, dict) or not isinstance(parent.get(key), str):
        raise _malformed(f"{where}.{key} is required and must be a string")
    return str(parent[key])


def _check_len(value: str, limit: int, what: str) -> None:
    if not value:
        raise _invalid(f"{what} is empty. Min length: 1, Max length: {limit}")
    if len(value) > limit:
        raise _invalid(f"{what} length invalid. Min length: 1, Max length: {limit}")


class FakeWhatsAppServer:
    """A Cloud API server on 127.0.0.1 that a real HTTP client (pywa, httpx) can talk to."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
        display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
        templates: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.display_phone_number = display_phone_number
        self.requests: list[RecordedRequest] = []
        self.sent: list[SentWaMessage] = []
        self.media: dict[str, MediaFile] = {}
        self.uploads: list[MediaFile] = []
        self.downloads: list[str] = []  # media ids served by the download url
        self.templates: set[tuple[str, str]] = set(templates)  # (name, language code)
        self._global_failures: deque[_Injected] = deque()
        self._recipient_failures: dict[str, deque[_Injected]] = {}
        self._async_failures: deque[_Injected] = deque()
        self._recipient_async_failures: dict[str, deque[_Injected]] = {}
        # ``failed`` status values for sends accepted under ``fail_after_send``, oldest first;
        # deliver them with ``WebhookDeliverer.deliver``.
        self.pending_statuses: list[JSONDict] = []
        self._seq = itertools.count(1)
        self._media_seq = itertools.count(1_000_000_000_000_001)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port and start serving."""
        if self._runner is not None:
            return
        app = web.Application(client_max_size=128 * 1024 * 1024)
        app.router.add_post(f"/{_VERSION}/{{pnid}}/messages", self._handle_messages)
        app.router.add_post(f"/{_VERSION}/{{pnid}}/media", self._handle_upload)
        app.router.add_get(f"/{_VERSION}/{{object_id}}", self._handle_get_object)
        app.router.add_get(_MEDIA_PATH, self._handle_download)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What ``WVB_WHATSAPP_API_BASE`` should be set to (no version, no trailing slash)."""
        if self._port is None:
            msg = "FakeWhatsAppServer is not started"
            raise RuntimeError(msg)
        return f"http://127.0.0.1:{self._port}"

    def messages_url(self, version: str = "v25.0") -> str:
        return f"{self.base_url}/{version}/{self.phone_number_id}/messages"

    # ---- test controls ----------------------------------------------------------------------

    def register_template(self, name: str, language: str) -> None:
        """Approve template ``name`` in ``language`` (a Meta code such as ``th`` or ``en_US``)."""
        self.templates.add((name, language))

    def fail_next(
        self,
        code: int,
        *,
        recipient: str | None = None,
        times: int = 1,
        status: int | None = None,
        details: str | None = None,
    ) -> None:
        """Refuse the next ``times`` message sends (to ``recipient`` only, if given) with ``code``.

        The HTTP status defaults to Meta's for that code (``ERROR_STATUS``); a failure queued for a
        recipient is used before a global one.  Auth and validation run first, as at Meta.
        """
        injected = _Injected(
            code, status if status is not None else ERROR_STATUS.get(code, 400), details
        )
        if recipient is None:
            queue = self._global_failures
        else:
            queue = self._recipient_failures.setdefault(recipient, deque())
        queue.extend(injected for _ in range(times))

    def fail_after_send(
        self,
        code: int,
        *,
        recipient: str | None = None,
        times: int = 1,
        details: str | None = None,
    ) -> None:
        """Accept the next ``times`` sends (200, a wamid) but queue a ``failed`` status for each.

        Meta reports 131047 and 131026 this way too, after the send was accepted; the status
        values collect in ``pending_statuses`` for a ``WebhookDeliverer`` to deliver.
        """
        injected = _Injected(code, 200, details)
        if recipient is None:
            queue = self._async_failures
        else:
            queue = self._recipient_async_failures.setdefault(recipient, deque())
        queue.extend(injected for _ in range(times))

    def add_media(self, data: bytes, mime_type: str, *, filename: str | None = None) -> MediaFile:
        """Store media a simulated worker "sent"; its id goes into a webhook message."""
        media = MediaFile(str(next(self._media_seq)), data, mime_type, filename)
        self.media[media.id] = media
        return media

    def messages_to(self, recipient: str) -> list[SentWaMessage]:
        return [message for message in self.sent if message.recipient == recipient]

    # ---- HTTP plumbing ----------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.token.encode()
        )

    def _record(
        self, request: web.Request, body: JSONDict | None, status: int, error_code: int | None
    ) -> None:
        self.requests.append(
            RecordedRequest(
                request.method,
                request.path,
                self._authorized(request),
                body,
                status,
                error_code,
            )
        )

    def _refuse(
        self, request: web.Request, body: JSONDict | None, error: GraphError
    ) -> web.Response:
        self._record(request, body, error.status, error.code)
        return error.response()

    def _auth_error(self) -> GraphError:
        return GraphError(190, status=401)

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        error = GraphError(100, "Unknown path components", status=400)
        return self._refuse(request, None, error)

    async def _handle_messages(self, request: web.Request) -> web.Response:
        body: JSONDict | None = None
        try:
            if not self._authorized(request):
                raise self._auth_error()
            if request.match_info["pnid"] != self.phone_number_id:
                raise GraphError(100, "Unsupported post request: unknown phone number id")
            try:
                parsed = json.loads(await request.read())
            except ValueError:
                raise _malformed("The request body is not valid JSON") from None
            if not isinstance(parsed, dict):
                raise _malformed("The request body must be a JSON object")
            body = parsed
            recipient, contact = self._check_recipient(body)
            kind = self._check_message(body)
            self._inject(recipient)
        except GraphError as error:
            return self._refuse(request, body, error)
        wamid = _wamid(recipient, next(self._seq))
        self.sent.append(SentWaMessage(wamid, recipient, kind, body))
        self._queue_async_failure(wamid, recipient, contact)
        self._record(request, body, 200, None)
        return web.json_response(
            {"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": wamid}]}
        )

    def _inject(self, recipient: str) -> None:
        queue = self._recipient_failures.get(recipient)
        if not queue:
            queue = self._global_failures
        if queue:
            injected = queue.popleft()
            raise GraphError(injected.code, injected.details, status=injected.status)

    def _queue_async_failure(self, wamid: str, recipient: str, contact: JSONDict) -> None:
        queue = self._recipient_async_failures.get(recipient)
        if not queue:
            queue = self._async_failures
        if queue:
            injected = queue.popleft()
            self.pending_statuses.append(
                status_value(
                    wamid,
                    "failed",
                    wa_id=contact.get("wa_id"),
                    user_id=contact.get("user_id"),
                    error_code=injected.code,
                    details=injected.details,
                    phone_number_id=self.phone_number_id,
                    display_phone_number=self.display_phone_number,
                )
            )

    @staticmethod
    def _check_recipient(body: JSONDict) -> tuple[str, JSONDict]:
        if body.get("messaging_product") != "whatsapp":
            raise _malformed("messaging_product is required and must be 'whatsapp'")
        if body.get("recipient_type", "individual") != "individual":
            raise _invalid("recipient_type must be 'individual'")
        to, user_id = body.get("to"), body.get("recipient")
        if isinstance(to, str) and to:
            if not _PHONE.fullmatch(to):
                raise GraphError(131009, "Invalid 'to' parameter")
            wa_id = to.lstrip("+")
            return wa_id, {"input": to, "wa_id": wa_id}
        if isinstance(user_id, str) and user_id:
            return user_id, {"input": user_id, "user_id": user_id}
        raise _malformed("The parameter to is required.")

    def _check_message(self, body: JSONDict) -> str:
        kind = body.get("type", "text")
        if not isinstance(kind, str):
            raise _malformed("type must be a string")
        if "context" in body:
            _str_field(body["context"], "message_id", "context")
        if kind == "text":
            text = body.get("text")
            _check_len(_str_field(text, "body", "text"), MAX_TEXT, "text.body")
            if isinstance(text, dict) and not isinstance(text.get("preview_url", False), bool):
                raise _malformed("text.preview_url must be a boolean")
        elif kind == "interactive":
            self._check_interactive(body.get("interactive"))
        elif kind == "template":
            self._check_template(body.get("template"))
        elif kind in {"image", "document", "audio", "video", "sticker"}:
            self._check_media_message(kind, body.get(kind))
        else:
            raise GraphError(131051, f"Unsupported message type: {kind}"[:80])
        return kind

    @staticmethod
    def _check_interactive(interactive: Any) -> None:
        kind = _str_field(interactive, "type", "interactive")
        body = interactive.get("body")
        _check_len(_str_field(body, "text", "interactive.body"), MAX_BODY, "Body text")
        for part in ("header", "footer"):
            if part in interactive:
                value = interactive[part]
                key = "text"
                if part == "header" and isinstance(value, dict) and value.get("type") != "text":
                    continue  # media headers: not used by the bot, accepted as they are
                _check_len(_str_field(value, key, f"interactive.{part}"), MAX_HEADER_FOOTER, part)
        action = interactive.get("action")
        if not isinstance(action, dict):
            raise _malformed("interactive.action is required")
        if kind == "button":
            buttons = action.get("buttons")
            if not isinstance(buttons, list) or not buttons:
                raise _malformed("interactive.action.buttons is required")
            if len(buttons) > MAX_BUTTONS:
                raise _invalid(f"Number of buttons invalid. Min: 1, Max: {MAX_BUTTONS}")
            ids: set[str] = set()
            titles: set[str] = set()
            for button in buttons:
                if not isinstance(button, dict) or button.get("type") != "reply":
                    raise _malformed("each button must have type 'reply'")
                reply = button.get("reply")
                button_id = _str_field(reply, "id", "button.reply")
                title = _str_field(reply, "title", "button.reply")
                _check_len(button_id, 256, "Button id")
                _check_len(title, MAX_BUTTON_TITLE, "Button title")
                if button_id in ids or title in titles:
                    raise _invalid("Button title or id is not unique")
                ids.add(button_id)
                titles.add(title)
        elif kind == "list":
            _check_len(_str_field(action, "button", "action"), MAX_LIST_BUTTON, "Button label")
            sections = action.get("sections")
            if not isinstance(sections, list) or not sections:
                raise _malformed("interactive.action.sections is required")
            if len(sections) > MAX_ROWS:
                raise _invalid(f"Number of sections invalid. Min: 1, Max: {MAX_ROWS}")
            row_ids: set[str] = set()
            for section in sections:
                rows = section.get("rows") if isinstance(section, dict) else None
                if not isinstance(rows, list) or not rows:
                    raise _malformed("each section must have rows")
                if len(sections) > 1:
                    _check_len(
                        _str_field(section, "title", "section"), MAX_ROW_TITLE, "Section title"
                    )
                for row in rows:
                    row_id = _str_field(row, "id", "row")
                    _check_len(row_id, 200, "Row id")
                    _check_len(_str_field(row, "title", "row"), MAX_ROW_TITLE, "Row title")
                    if "description" in row:
                        description = _str_field(row, "description", "row")
                        if len(description) > MAX_ROW_DESCRIPTION:
                            raise _invalid(
                                "Row description length invalid. "
                                f"Min length: 0, Max length: {MAX_ROW_DESCRIPTION}"
                            )
                    if row_id in row_ids:
                        raise _invalid("Row id is not unique")
                    row_ids.add(row_id)
            if len(row_ids) > MAX_ROWS:
                raise _invalid(f"Total row count exceed max allowed count: {MAX_ROWS}")
        else:
            raise _malformed(f"Unsupported interactive type: {kind}"[:80])

    def _check_template(self, template: Any) -> None:
        name = _str_field(template, "name", "template")
        language = _str_field(template.get("language"), "code", "template.language")
        policy = template["language"].get("policy", "deterministic")
        if policy != "deterministic":
            raise _invalid("template.language.policy must be 'deterministic'")
        components = template.get("components", [])
        if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
            raise _malformed("template.components must be a list of objects")
        if (name, language) not in self.templates:
            raise GraphError(132001, f"template name ({name}) does not exist in {language}"[:120])

    def _check_media_message(self, kind: str, media: Any) -> None:
        if not isinstance(media, dict):
            raise _malformed(f"{kind} object is required")
        if "link" in media:
            _str_field(media, "link", kind)
            return
        media_id = _str_field(media, "id", kind)
        if media_id not in self.media:
            raise _invalid(f"{kind}.id is not a valid media id")
        if "caption" in media:
            if kind == "audio":
                raise _invalid("audio messages cannot have a caption")
            _check_len(_str_field(media, "caption", kind), MAX_BODY, "Caption")

    async def _handle_upload(self, request: web.Request) -> web.Response:
        try:
            if not self._authorized(request):
                raise self._auth_error()
            if request.match_info["pnid"] != self.phone_number_id:
                raise GraphError(100, "Unsupported post request: unknown phone number id")
            if not request.content_type.startswith("multipart/"):
                raise _malformed("Media upload must be multipart/form-data")
            form = await request.post()
            upload = form.get("file")
            if not isinstance(upload, web.FileField):
                raise _malformed("The parameter file is required.")
            if form.get("messaging_product") != "whatsapp":
                raise _malformed("messaging_product is required and must be 'whatsapp'")
            mime = form.get("type")
            mime_type = mime if isinstance(mime, str) and mime else upload.content_type
            data = upload.file.read()
            if not data:
                raise _invalid("The uploaded file is empty")
        except GraphError as error:
            return self._refuse(request, None, error)
        media = self.add_media(data, mime_type, filename=upload.filename)
        self.uploads.append(media)
        self._record(request, {"type": mime_type, "file_size": len(data)}, 200, None)
        return web.json_response({"id": media.id})

    async def _handle_get_object(self, request: web.Request) -> web.Response:
        object_id = request.match_info["object_id"]
        try:
            if not self._authorized(request):
                raise self._auth_error()
            if object_id == self.phone_number_id:
                payload: JSONDict = {
                    "verified_name": "Worker Voice",
                    "display_phone_number": self.display_phone_number,
                    "id": self.phone_number_id,
                    "quality_rating": "GREEN",
                }
            else:
                media = self.media.get(object_id)
                if media is None:
                    raise GraphError(
                        100,
                        "Unsupported get request. Object does not exist, cannot be loaded due "
                        "to missing permissions, or does not support this operation.",
                    )
                payload = {
                    "messaging_product": "whatsapp",
                    "url": self.media_url(media),
                    "mime_type": media.mime_type,
                    "sha256": media.sha256,
                    "file_size": len(media.data),
                    "id": media.id,
                }
        except GraphError as error:
            return self._refuse(request, None, error)
        self._record(request, None, 200, None)
        return web.json_response(payload)

    def media_url(self, media: MediaFile) -> str:
        ext = media.mime_type.split("/")[-1].split(";")[0]
        digest = hashlib.sha256(f"{media.id}:{self.token}".encode()).hexdigest()[:16]
        return f"{self.base_url}{_MEDIA_PATH}?mid={media.id}&ext={ext}&hash={digest}"

    async def _handle_download(self, request: web.Request) -> web.Response:
        media = self.media.get(request.query.get("mid", ""))
        try:
            if not self._authorized(request):
                raise self._auth_error()
            if (
                media is None
                or request.query.get("hash") != self.media_url(media).rsplit("=", 1)[1]
            ):
                raise GraphError(100, "Unsupported get request.", status=404)
        except GraphError as error:
            return self._refuse(request, None, error)
        self.downloads.append(media.id)
        self._record(request, None, 200, None)
        return web.Response(body=media.data, headers={"Content-Type": media.mime_type})


def message_body(kind: str, content: JSONDict, *, to: str) -> JSONDict:
    """A ``/messages`` request body as a client sends it: ``kind`` and its content, to ``to``."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": kind,
        "to": to,
        kind: content,
    }


# ---- webhook side -------------------------------------------------------------------------


@dataclass
class SimulatedWaUser:
    """A worker on WhatsApp; builds the webhook ``value`` for each kind of message they send.

    ``wa_id`` is the phone number as digits; ``user_id`` the business-scoped user id
    (``"TH.1234567"``).  With ``wa_id=None`` the user is phone-less (``from_user_id`` only).
    """

    wa_id: str | None
    user_id: str | None = None
    name: str = "Worker"
    username: str | None = None
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER
    clock: Callable[[], float] = time.time
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        if self.wa_id is None and self.user_id is None:
            msg = "a simulated user needs a wa_id or a user_id"
            raise ValueError(msg)

    def contact(self) -> JSONDict:
        profile: JSONDict = {"name": self.name}
        if self.username is not None:
            profile["username"] = self.username
        contact: JSONDict = {"profile": profile}
        if self.wa_id is not None:
            contact["wa_id"] = self.wa_id
        if self.user_id is not None:
            contact["user_id"] = self.user_id
        return contact

    def metadata(self) -> JSONDict:
        return {
            "display_phone_number": self.display_phone_number,
            "phone_number_id": self.phone_number_id,
        }

    def _message(self, kind: str, content: JSONDict, *, context_id: str | None = None) -> JSONDict:
        message: JSONDict = {}
        if context_id is not None:
            message["context"] = {"from": self.display_phone_number, "id": context_id}
        if self.wa_id is not None:
            message["from"] = self.wa_id
        if self.user_id is not None:
            message["from_user_id"] = self.user_id
        number = self.wa_id or "0"
        message["id"] = _wamid(number, 10**12 + next(self._seq))
        message["timestamp"] = str(int(self.clock()))
        message["type"] = kind
        message.update(content)
        return message

    def _value(self, *messages: JSONDict) -> JSONDict:
        return {
            "messaging_product": "whatsapp",
            "metadata": self.metadata(),
            "contacts": [self.contact()],
            "messages": list(messages),
        }

    def text(self, body: str) -> JSONDict:
        return self._value(self._message("text", {"text": {"body": body}}))

    def button_reply(
        self, button_id: str, title: str, *, context_id: str | None = None
    ) -> JSONDict:
        interactive = {"type": "button_reply", "button_reply": {"id": button_id, "title": title}}
        return self._value(
            self._message("interactive", {"interactive": interactive}, context_id=context_id)
        )

    def list_reply(
        self,
        row_id: str,
        title: str,
        description: str | None = None,
        *,
        context_id: str | None = None,
    ) -> JSONDict:
        reply: JSONDict = {"id": row_id, "title": title}
        if description is not None:
            reply["description"] = description
        interactive = {"type": "list_reply", "list_reply": reply}
        return self._value(
            self._message("interactive", {"interactive": interactive}, context_id=context_id)
        )

    def template_button(self, payload: str, text: str) -> JSONDict:
        return self._value(self._message("button", {"button": {"payload": payload, "text": text}}))

    def image(self, media: MediaFile, *, caption: str | None = None) -> JSONDict:
        image: JSONDict = {"mime_type": media.mime_type, "sha256": media.sha256, "id": media.id}
        if caption is not None:
            image["caption"] = caption
        return self._value(self._message("image", {"image": image}))

    def document(self, media: MediaFile, *, caption: str | None = None) -> JSONDict:
        document: JSONDict = {
            "filename": media.filename or "document",
            "mime_type": media.mime_type,
            "sha256": media.sha256,
            "id": media.id,
        }
        if caption is not None:
            document["caption"] = caption
        return self._value(self._message("document", {"document": document}))

    def voice(self, media: MediaFile) -> JSONDict:
        audio = {
            "mime_type": media.mime_type,
            "sha256": media.sha256,
            "id": media.id,
            "voice": True,
        }
        return self._value(self._message("audio", {"audio": audio}))

    def status(
        self,
        wamid: str,
        status: str,
        *,
        error_code: int | None = None,
        details: str | None = None,
    ) -> JSONDict:
        """A status callback about a message the bot sent this user (sent/delivered/read/failed).

        ``recipient_user_id`` for a BSUID user is an assumption: no fixture in the design note
        shows a status for a phone-less user.
        """
        return status_value(
            wamid,
            status,
            wa_id=self.wa_id,
            user_id=self.user_id,
            timestamp=int(self.clock()),
            error_code=error_code,
            details=details,
            phone_number_id=self.phone_number_id,
            display_phone_number=self.display_phone_number,
        )


def status_value(
    wamid: str,
    status: str,
    *,
    wa_id: str | None = None,
    user_id: str | None = None,
    timestamp: int | None = None,
    error_code: int | None = None,
    details: str | None = None,
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
) -> JSONDict:
    """The webhook ``value`` of one status (sent/delivered/read/failed) of message ``wamid``."""
    if status not in {"sent", "delivered", "read", "failed"}:
        msg = f"unknown status {status!r}"
        raise ValueError(msg)
    when = timestamp if timestamp is not None else int(time.time())
    entry: JSONDict = {"id": wamid, "status": status, "timestamp": str(when)}
    if wa_id is not None:
        entry["recipient_id"] = wa_id
    if user_id is not None:
        entry["recipient_user_id"] = user_id
    if status != "failed":
        entry["conversation"] = {"id": secrets.token_hex(16), "origin": {"type": "service"}}
        entry["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "service"}
    else:
        code = error_code if error_code is not None else 131047
        title, default_details = _ERROR_TEXT.get(code, (f"Error {code}", f"Error {code}."))
        entry["errors"] = [
            {
                "code": code,
                "title": title,
                "message": title,
                "error_data": {"details": details if details is not None else default_details},
            }
        ]
    return {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": display_phone_number,
            "phone_number_id": phone_number_id,
        },
        "statuses": [entry],
    }


def envelope(values: Sequence[JSONDict], *, waba_id: str = DEFAULT_WABA_ID) -> JSONDict:
    """Meta's webhook envelope around one or more ``value`` objects (one change each)."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "changes": [{"field": "messages", "value": value} for value in values],
            }
        ],
    }


@dataclass(frozen=True)
class Attempt:
    """One webhook POST: the exact bytes sent, and the status (0: no HTTP answer)."""

    body: bytes
    status: int


class WebhookDeliverer:
    """Meta's side of the webhook: signed POSTs with retries, and the GET handshake.

    ``retry_delays`` are the pauses before each retry (Meta backs off over up to 7 days; tests
    use milliseconds).  After the last retry the delivery is given up.
    """

    def __init__(
        self,
        url: str,
        app_secret: str = DEFAULT_APP_SECRET,
        *,
        retry_delays: Sequence[float] = (0.01, 0.02, 0.04),
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.app_secret = app_secret
        self.retry_delays = tuple(retry_delays)
        self.attempts: list[Attempt] = []
        self._timeout = ClientTimeout(total=timeout)
        self._client: ClientSession | None = None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _session(self) -> ClientSession:
        if self._client is None or self._client.closed:
            self._client = ClientSession(timeout=self._timeout)
        return self._client

    @staticmethod
    def encode(payload: JSONDict) -> bytes:
        """Meta's bytes: compact JSON with non-ASCII escaped as ``\\uXXXX``."""
        return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode()

    async def post_once(self, body: bytes, *, signature: str | None = None) -> int:
        """One POST of ``body``; ``signature`` overrides the header (``""`` omits it)."""
        header = sign(body, self.app_secret) if signature is None else signature
        headers = {"Content-Type": "application/json"}
        if header:
            headers["X-Hub-Signature-256"] = header
        # aiohttp warns that a large bytes body may block the loop; a stream does not.
        data: bytes | io.BytesIO = io.BytesIO(body) if len(body) > 512 * 1024 else body
        try:
            async with self._session().post(self.url, data=data, headers=headers) as response:
                await response.read()
                status = response.status
        except (ClientError, TimeoutError):
            status = 0
        self.attempts.append(Attempt(body, status))
        return status

    async def deliver(self, payload: JSONDict | bytes, *, duplicate: bool = False) -> list[int]:
        """POST ``payload`` (a ``value``, an envelope, or raw bytes) until a 2xx answer.

        A bare ``value`` (no ``object`` key) is wrapped in ``envelope``.  Returns the status of
        every attempt.  With ``duplicate=True`` the same bytes are delivered again after the
        first success, as Meta sometimes does.
        """
        if isinstance(payload, bytes):
            body = payload
        else:
            body = self.encode(payload if "object" in payload else envelope([payload]))
        statuses = await self._with_retries(body)
        if duplicate and 200 <= statuses[-1] < 300:
            statuses += await self._with_retries(body)
        return statuses

    async def _with_retries(self, body: bytes) -> list[int]:
        statuses = [await self.post_once(body)]
        for delay in self.retry_delays:
            if 200 <= statuses[-1] < 300:
                break
            await asyncio.sleep(delay)
            statuses.append(await self.post_once(body))
        return statuses

    async def verify(
        self, verify_token: str, challenge: str, *, mode: str = "subscribe"
    ) -> tuple[int, str]:
        """Meta's subscription handshake: GET with the ``hub.*`` parameters; (status, body)."""
        params = {"hub.mode": mode, "hub.verify_token": verify_token, "hub.challenge": challenge}
        async with self._session().get(self.url, params=params) as response:
            return response.status, await response.text()
