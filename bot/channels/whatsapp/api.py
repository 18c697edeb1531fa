"""The WhatsApp Cloud API (Graph) client for the send side: messages, templates and media.

Built on ``pywa_async.WhatsApp`` (docs/design/whatsapp.md, section 1) with an ``httpx.AsyncClient``
of our own: pywa hard-codes ``https://graph.facebook.com``, so the session's ``base_url`` is set to
``WVB_WHATSAPP_API_BASE/v25.0`` after pywa has set its own, and the Graph version is our constant,
not pywa's default, so that a pywa upgrade cannot move it. The receive side (webhook parsing,
signatures) is ours, in ``updates.py`` and ``webhook.py``: pywa's drops batched updates.

Graph refusals come out as the small exception types below, chosen by Graph's ``code`` (never by
class name or HTTP status, as Meta advises). They carry the code, the HTTP status and Meta's trace
id, and nothing else: no phone number, no wamid (which contains the phone number, design note
section 4), no message text, and not pywa's error either (its ``details`` can echo parameters), so
they are raised ``from None``.

Not wired into ``wvb run`` yet (issue 12): the sender and the channel runtime come later.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import httpx
from pywa_async.client import WhatsApp
from pywa_async.errors import WhatsAppError
from pywa_async.types.callback import Button, Section, SectionList, SectionRow

__all__ = [
    "GRAPH_API_VERSION",
    "PYWA_LOGGERS",
    "BusinessNumber",
    "GraphClient",
    "ListRow",
    "MediaKind",
    "WaAuthFailed",
    "WaBadRequest",
    "WaError",
    "WaMediaTooLarge",
    "WaRateLimited",
    "WaUnavailable",
    "WaUnreachable",
    "WaWindowClosed",
    "error_for",
    "phone_number_problem",
]

#: The Graph API version every request uses (courier uses v25.0 too; pywa's default moves).
GRAPH_API_VERSION: Final = 25

#: pywa's loggers. At DEBUG they print every request's JSON (``to``: the phone number, and the
#: text) and every response (``contacts[].wa_id``: the phone, ``messages[].id``: the wamid), and
#: ``pywa.helpers`` logs each recipient as it resolves it. ``GraphClient`` holds them at WARNING
#: or above whatever the operator's log level, as ``bot/logging_setup.py`` does for httpx.
PYWA_LOGGERS: Final = ("pywa", "pywa_async")

MediaKind = Literal["image", "document", "audio", "video", "sticker"]

#: A recipient the bot may address: a phone number's digits (``wa_id``), or a business-scoped user
#: id (``TH.1234567``). Anything else pywa would send as a *group* id, so it is refused here.
_WA_ID: Final = re.compile(r"\d{6,15}")
_BSUID: Final = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[0-9A-Za-z]+")
#: Hosts Meta serves media from; the download sends the bearer token, so only to these (or the
#: API base itself).
_MEDIA_HOST_SUFFIXES: Final = (".fbsbx.com", ".whatsapp.net")

# ---- errors -------------------------------------------------------------------------------


class WaError(Exception):
    """A refused or failed Graph call. ``code`` is Graph's error code (or the HTTP status for a
    non-JSON answer, 0 when no answer came); ``status`` the HTTP status, when there was one."""

    reason = "WhatsApp Cloud API error"

    def __init__(
        self, code: int, *, status: int | None = None, fbtrace_id: str | None = None
    ) -> None:
        self.code = code
        self.status = status
        self.fbtrace_id = fbtrace_id
        super().__init__(f"{self.reason} (Graph code {code}, HTTP {status})")


class WaRateLimited(WaError):
    """Too many messages. ``scope="chat"`` (131056, the pair rate): only this recipient waits;
    ``scope="number"`` (130429, 4, 80007, 133016): every send from the business number waits.
    Meta sends no Retry-After; ``retry_after`` is the first pause to try (the caller backs off)."""

    reason = "WhatsApp rate limit"

    def __init__(
        self,
        code: int,
        *,
        scope: Literal["chat", "number"],
        retry_after: float,
        status: int | None = None,
        fbtrace_id: str | None = None,
    ) -> None:
        self.scope = scope
        self.retry_after = retry_after
        super().__init__(code, status=status, fbtrace_id=fbtrace_id)


class WaWindowClosed(WaError):
    """131047: 24 hours have passed since the worker last wrote; only a template may go out."""

    reason = "WhatsApp customer service window closed"


class WaUnreachable(WaError):
    """131026 / 131050: the recipient cannot receive messages (not on WhatsApp, blocked us, ...)."""

    reason = "WhatsApp recipient unreachable"


class WaAuthFailed(WaError):
    """190, 0, 10, 200-299: the token is wrong, expired or lacks a permission."""

    reason = "WhatsApp authorization failed"


class WaBadRequest(WaError):
    """100, 131009, 131008, 131051, 132xxx, ...: the request itself was refused (a bug or a
    template that does not exist); sending it again will not help."""

    reason = "WhatsApp refused the request"


class WaMediaTooLarge(WaBadRequest):
    """The media is larger than the caller's limit; the download stopped there (code 413)."""

    reason = "WhatsApp media over the size limit"


class WaUnavailable(WaError):
    """A 5xx, 131000 / 131016, a network error or timeout, or an answer we cannot read: try
    later."""

    reason = "WhatsApp Cloud API unavailable"


_CHAT_RATE: Final = {131056: 6.0}  # one message per 6 s per recipient (design note, section 2)
_NUMBER_RATE: Final = {130429: 1.0, 4: 60.0, 80007: 60.0, 133016: 60.0, 131048: 60.0}
_WINDOW: Final = frozenset({131047})
_UNREACHABLE: Final = frozenset({131026, 131050})
_AUTH: Final = frozenset({0, 190, 10, *range(200, 300)})
_BAD_REQUEST: Final = frozenset({100, 131008, 131009, 131051, 131062, *range(132000, 132100)})
_UNAVAILABLE: Final = frozenset({131000, 131016, 3})


def error_for(
    code: int,
    status: int | None = None,
    fbtrace_id: str | None = None,
    retry_after: float | None = None,
) -> WaError:
    """Our exception for Graph error ``code`` (``status``: the HTTP status, if any). A code
    not listed here gives the base ``WaError`` (unless its status says 401, 429 or 5xx), so a
    caller that knows no better treats it as a refusal of this one message."""
    if code in _CHAT_RATE:
        delay = retry_after if retry_after is not None else _CHAT_RATE[code]
        return WaRateLimited(
            code, scope="chat", retry_after=delay, status=status, fbtrace_id=fbtrace_id
        )
    if code in _NUMBER_RATE or status == 429:
        delay = retry_after if retry_after is not None else _NUMBER_RATE.get(code, 60.0)
        return WaRateLimited(
            code, scope="number", retry_after=delay, status=status, fbtrace_id=fbtrace_id
        )
    kind: type[WaError]
    if code in _WINDOW:
        kind = WaWindowClosed
    elif code in _UNREACHABLE:
        kind = WaUnreachable
    elif code in _AUTH or status == 401:
        kind = WaAuthFailed
    elif code in _BAD_REQUEST:
        kind = WaBadRequest
    elif code in _UNAVAILABLE or (status is not None and status >= 500):
        kind = WaUnavailable
    else:
        kind = WaError
    return kind(code, status=status, fbtrace_id=fbtrace_id)


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _from_pywa(error: WhatsAppError) -> WaError:
    response = error.raw_response
    return error_for(
        error.code,
        response.status_code if response is not None else None,
        error.fbtrace_id,
        _retry_after(response),
    )


def _from_response(response: httpx.Response, body: bytes) -> WaError:
    """Our exception for an error answer read without pywa (the media download)."""
    code = response.status_code
    fbtrace_id = None
    try:
        error = json.loads(body)["error"]
        code, fbtrace_id = int(error["code"]), error.get("fbtrace_id")
    except (ValueError, KeyError, TypeError):
        pass
    return error_for(code, response.status_code, fbtrace_id, _retry_after(response))


def quiet_pywa_loggers() -> None:
    """Hold pywa's loggers at WARNING or above (see ``PYWA_LOGGERS``); a stricter level stays."""
    for name in PYWA_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


# ---- the client -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ListRow:
    """One row of a list message: ``row_id`` comes back in the worker's ``list_reply``."""

    row_id: str
    title: str
    description: str | None = None


@dataclass(frozen=True)
class BusinessNumber:
    """The business phone number as Graph describes it. Both show on workers' phones with every
    message and notification (README, "Connecting WhatsApp")."""

    display_phone_number: str
    verified_name: str | None


def phone_number_problem(error: WaError, api_base: str) -> str:
    """One line for a failed ``GET /{phone-number-id}``, naming the setting that is wrong: the
    token (refused, expired, or without access: Graph codes 0, 190, 10, 200-299), the phone
    number id (code 100: no such object for this token), or the API base (no answer, or not
    the Cloud API's). Never the token; Graph's trace id, which Meta's support asks for."""
    answer = f"HTTP {error.status}" if error.status is not None else "no answer"
    if error.code != error.status:
        answer += f", Graph code {error.code}"
    if error.fbtrace_id:
        answer += f", fbtrace_id {error.fbtrace_id}"
    if isinstance(error, WaAuthFailed):
        return (
            f"WVB_WHATSAPP_TOKEN: the Cloud API refused the token ({answer}): expired, "
            "revoked, or without access to this phone number"
        )
    if error.code == 100:
        return (
            "WVB_WHATSAPP_PHONE_NUMBER_ID: the Cloud API knows no phone number with this id "
            f"for this token ({answer})"
        )
    if error.status is None:
        return f"WVB_WHATSAPP_API_BASE: no answer from {api_base}"
    if isinstance(error, WaUnavailable):
        return f"WVB_WHATSAPP_API_BASE: the Cloud API at {api_base} is unavailable ({answer})"
    return f"WVB_WHATSAPP_API_BASE: {api_base} does not answer as the Cloud API ({answer})"


class GraphClient:
    """Sends through the Cloud API as business number ``phone_number_id``.

    One client per httpx session (pywa refuses to share one), so the conversation sender and the
    broadcast sender each build their own. ``close()`` (or ``async with``) closes the session.
    Every method returns Graph's id (a wamid for a message: treat it as the phone number, i.e.
    only ever store or log an HMAC of it) or raises a ``WaError``.
    """

    def __init__(
        self,
        *,
        api_base: str,
        token: str,
        phone_number_id: str,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        max_connections: int = 20,
    ) -> None:
        # Before pywa's first log call: its DEBUG records hold phone numbers and wamids.
        quiet_pywa_loggers()
        self.phone_number_id = phone_number_id
        self.api_base = api_base.rstrip("/")
        self._base = f"{self.api_base}/v{GRAPH_API_VERSION}.0"
        self._base_origin = _origin(self._base)
        self._session = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections),
        )
        self._wa = WhatsApp(
            phone_id=phone_number_id,
            token=token,
            session=self._session,
            api_version=f"{GRAPH_API_VERSION}.0",
        )
        # pywa has just set graph.facebook.com; ours (the fake server in tests) replaces it.
        self._session.base_url = httpx.URL(self._base)

    @property
    def base_url(self) -> str:
        return str(self._session.base_url).rstrip("/")

    async def close(self) -> None:
        await self._session.aclose()

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---- messages ---------------------------------------------------------------------------

    async def send_text(self, to: str, body: str) -> str:
        _check_recipient(to)
        return await self._sent(self._wa.send_message(to=to, text=body))

    async def send_buttons(self, to: str, body: str, buttons: Sequence[tuple[str, str]]) -> str:
        """Reply buttons: ``buttons`` are ``(id, title)`` pairs (at most 3, titles ≤20 chars;
        pywa does not check, the renderer does)."""
        _check_recipient(to)
        reply = [Button(title=title, callback_data=button_id) for button_id, title in buttons]
        return await self._sent(self._wa.send_message(to=to, text=body, buttons=reply))

    async def send_list(
        self,
        to: str,
        body: str,
        button_label: str,
        rows: Sequence[ListRow],
        *,
        section_title: str = "-",
    ) -> str:
        """A list message of one section (Graph insists on a section title; pywa always sends
        one, so it is short and neutral)."""
        _check_recipient(to)
        section = Section(
            title=section_title,
            rows=[
                SectionRow(title=row.title, callback_data=row.row_id, description=row.description)
                for row in rows
            ],
        )
        listing = SectionList(button_title=button_label, sections=[section])
        return await self._sent(self._wa.send_message(to=to, text=body, buttons=listing))

    async def send_template(
        self, to: str, name: str, language: str, components: Sequence[dict[str, Any]] = ()
    ) -> str:
        """An approved template. Sent through pywa's low-level API rather than
        ``WhatsApp.send_template``, whose ``TemplateLanguage`` enum refuses codes such as ``my``,
        ``km`` and ``ne`` (design note, section 1)."""
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if components:
            template["components"] = list(components)
        return await self.send_payload(
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                **_recipient(to),
                "type": "template",
                "template": template,
            }
        )

    async def send_media(
        self,
        to: str,
        kind: MediaKind,
        media_id: str,
        *,
        caption: str | None = None,
        filename: str | None = None,
    ) -> str:
        """A media message by uploaded id (``upload_media``). ``filename`` is for documents;
        audio takes no caption."""
        _check_recipient(to)
        if kind == "image":
            sending = self._wa.send_image(to=to, image=media_id, caption=caption)
        elif kind == "document":
            sending = self._wa.send_document(
                to=to, document=media_id, filename=filename, caption=caption
            )
        elif kind == "video":
            sending = self._wa.send_video(to=to, video=media_id, caption=caption)
        elif kind == "audio":
            sending = self._wa.send_audio(to=to, audio=media_id)
        elif kind == "sticker":
            sending = self._wa.send_sticker(to=to, sticker=media_id)
        else:
            raise WaBadRequest(100)
        return await self._sent(sending)

    async def send_payload(self, payload: dict[str, Any], *, to: str | None = None) -> str:
        """POST a ready ``/messages`` body through pywa's ``send_raw_request``, so that refusals
        go through the same typed errors. ``rendering.py``'s bodies carry no recipient: pass
        ``to`` (a wa_id or a business-scoped user id) and it is added as ``to`` or
        ``recipient``; without ``to`` the body is posted as it is and must name one itself."""
        if to is not None:
            payload = {**payload, **_recipient(to)}
        recipient = payload.get("to", payload.get("recipient"))
        if not isinstance(recipient, str):
            raise WaBadRequest(100)
        _check_recipient(recipient)
        try:
            answer = await self._wa.api.send_raw_request(
                method="POST", endpoint=f"/{self.phone_number_id}/messages", json=payload
            )
        except WhatsAppError as error:
            raise _from_pywa(error) from None
        except httpx.HTTPError:
            raise WaUnavailable(0) from None
        return _message_id(answer)

    # ---- media -------------------------------------------------------------------------------

    async def upload_media(self, data: bytes, mime_type: str, *, filename: str = "file") -> str:
        """Upload ``data``; returns the media id to send with ``send_media``."""
        try:
            answer = await self._wa.api.upload_media(
                phone_id=self.phone_number_id, media=data, mime_type=mime_type, filename=filename
            )
        except WhatsAppError as error:
            raise _from_pywa(error) from None
        except httpx.HTTPError:
            raise WaUnavailable(0) from None
        media_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(media_id, str) or not media_id:
            raise WaUnavailable(0)
        return media_id

    async def download_media(self, media_id: str, max_bytes: int) -> bytes:
        """The bytes of media ``media_id`` (a worker's upload): ``GET /{media-id}`` for its URL,
        then that URL with the bearer token, streamed and refused (``WaMediaTooLarge``) as soon as
        it exceeds ``max_bytes``. The token goes only to the API base or Meta's media hosts."""
        try:
            info = await self._wa.api.get_media_url(media_id=media_id)
        except WhatsAppError as error:
            raise _from_pywa(error) from None
        except httpx.HTTPError:
            raise WaUnavailable(0) from None
        url = info.get("url") if isinstance(info, dict) else None
        if not isinstance(url, str) or not self._media_host_allowed(url):
            raise WaBadRequest(100)
        declared = info.get("file_size")
        if isinstance(declared, int) and declared > max_bytes:
            raise WaMediaTooLarge(413)
        try:
            async with self._session.stream("GET", url, follow_redirects=False) as response:
                if response.status_code >= 400:
                    raise _from_response(response, await _read_capped(response, 64 * 1024))
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and int(length) > max_bytes:
                    raise WaMediaTooLarge(413, status=response.status_code)
                return await _read_capped(response, max_bytes)
        except httpx.HTTPError:
            raise WaUnavailable(0) from None

    # ---- the business number ------------------------------------------------------------------

    async def business_number(self) -> BusinessNumber:
        """``GET /{phone-number-id}``: the number workers see, and the name WhatsApp shows with
        it. Read-only (`wvb doctor` asks it); raises a ``WaError``. Asked with our session
        directly: pywa's call would print advice about httpx clients on stderr when the API base
        does not answer."""
        try:
            response = await self._session.get(
                f"/{self.phone_number_id}", params={"fields": "display_phone_number,verified_name"}
            )
        except httpx.HTTPError:
            raise WaUnavailable(0) from None
        if response.status_code >= 400:
            raise _from_response(response, response.content)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        number = answer.get("display_phone_number") if isinstance(answer, dict) else None
        if not isinstance(number, str) or not number:
            raise WaError(0, status=response.status_code)  # an answer, but not a number's
        name = answer.get("verified_name") if isinstance(answer, dict) else None
        return BusinessNumber(number, name if isinstance(name, str) and name else None)

    async def phone_number_problem(self) -> str | None:
        """None when the token works and the Cloud API knows the number; otherwise what is
        wrong, in one line naming the setting to fix (``phone_number_problem``)."""
        try:
            await self.business_number()
        except WaError as error:
            return phone_number_problem(error, self.api_base)
        return None

    def _media_host_allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if _origin(url) == self._base_origin:
            return True
        host = (parts.hostname or "").lower()
        return parts.scheme == "https" and host.endswith(_MEDIA_HOST_SUFFIXES)

    # ---- plumbing ---------------------------------------------------------------------------

    @staticmethod
    async def _sent(sending: Any) -> str:
        """Await a pywa send; its wamid, or our error."""
        try:
            sent = await sending
        except WhatsAppError as error:
            raise _from_pywa(error) from None
        except httpx.HTTPError:
            raise WaUnavailable(0) from None
        except (KeyError, TypeError, ValueError):
            # pywa could not read the answer (SentMessage needs contacts[] and messages[]).
            raise WaUnavailable(0) from None
        message_id = getattr(sent, "id", None)
        if not isinstance(message_id, str) or not message_id:
            raise WaUnavailable(0)
        return message_id


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise WaMediaTooLarge(413, status=response.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _check_recipient(to: str) -> None:
    if not (_WA_ID.fullmatch(to) or _BSUID.fullmatch(to)):
        raise WaBadRequest(100)


def _recipient(to: str) -> dict[str, str]:
    _check_recipient(to)
    return {"to": to} if _WA_ID.fullmatch(to) else {"recipient": to}


def _message_id(answer: Any) -> str:
    try:
        message_id = answer["messages"][0]["id"]
    except (KeyError, IndexError, TypeError):
        raise WaUnavailable(0) from None
    if not isinstance(message_id, str) or not message_id:
        raise WaUnavailable(0)
    return message_id
