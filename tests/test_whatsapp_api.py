"""The Graph client (bot/channels/whatsapp/api.py) over real HTTP against the fake Cloud API.

What it proves: each kind of send reaches the fake with the JSON it accepts and returns the wamid;
the bearer token is used; Graph's error codes become our exceptions (with the right rate-limit
scope); media round-trips and the download stops at the caller's size limit; and neither our
exceptions nor any log record (pywa's included, with the root logger at DEBUG) carries the phone
number or a wamid.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from bot.channels.whatsapp.api import (
    GRAPH_API_VERSION,
    PYWA_LOGGERS,
    GraphClient,
    ListRow,
    WaAuthFailed,
    WaBadRequest,
    WaError,
    WaMediaTooLarge,
    WaRateLimited,
    WaUnavailable,
    WaUnreachable,
    WaWindowClosed,
    error_for,
)
from tests.fake_whatsapp_api import (
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_TOKEN,
    FakeWhatsAppServer,
    message_body,
)

PHONE = "66811111111"
OTHER = "66822222222"
BSUID = "TH.1234567"
MESSAGES_PATH = f"/v{GRAPH_API_VERSION}.0/{DEFAULT_PHONE_NUMBER_ID}/messages"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeWhatsAppServer]:
    async with FakeWhatsAppServer(templates=[("wvb_new_message", "th")]) as server:
        yield server


@pytest_asyncio.fixture
async def client(fake: FakeWhatsAppServer) -> AsyncIterator[GraphClient]:
    async with GraphClient(
        api_base=fake.base_url, token=DEFAULT_TOKEN, phone_number_id=DEFAULT_PHONE_NUMBER_ID
    ) as graph:
        yield graph


def envelope(kind: str, content: dict[str, Any], to: str = PHONE) -> dict[str, Any]:
    return message_body(kind, content, to=to)


def last_accepted(fake: FakeWhatsAppServer) -> dict[str, Any]:
    request = fake.requests[-1]
    assert (request.method, request.path, request.status) == ("POST", MESSAGES_PATH, 200)
    assert request.authorized
    assert request.body is not None
    return request.body


# ---- each send kind --------------------------------------------------------------------------


def test_the_graph_version_is_ours() -> None:
    assert GRAPH_API_VERSION == 25


async def test_client_uses_the_configured_base_and_version(
    fake: FakeWhatsAppServer, client: GraphClient
) -> None:
    assert client.base_url == f"{fake.base_url}/v25.0"


async def test_text(fake: FakeWhatsAppServer, client: GraphClient) -> None:
    wamid = await client.send_text(PHONE, "hi *there*")
    assert last_accepted(fake) == envelope("text", {"body": "hi *there*", "preview_url": False})
    assert [message.wamid for message in fake.sent] == [wamid]


async def test_buttons(fake: FakeWhatsAppServer, client: GraphClient) -> None:
    wamid = await client.send_buttons(PHONE, "Pick", [("val:AB:yes", "Yes"), ("val:AB:no", "No")])
    assert last_accepted(fake) == envelope(
        "interactive",
        {
            "type": "button",
            "body": {"text": "Pick"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "val:AB:yes", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": "val:AB:no", "title": "No"}},
                ]
            },
        },
    )
    assert fake.sent[-1].wamid == wamid


async def test_list(fake: FakeWhatsAppServer, client: GraphClient) -> None:
    rows = [ListRow("r1", "Row 1", "d"), ListRow("r2", "Row 2")]
    wamid = await client.send_list(PHONE, "Pick one", "Choose", rows)
    assert last_accepted(fake) == envelope(
        "interactive",
        {
            "type": "list",
            "body": {"text": "Pick one"},
            "action": {
                "button": "Choose",
                "sections": [
                    {
                        "title": "-",
                        "rows": [
                            {"id": "r1", "title": "Row 1", "description": "d"},
                            {"id": "r2", "title": "Row 2"},
                        ],
                    }
                ],
            },
        },
    )
    assert fake.sent[-1].wamid == wamid


async def test_template_to_a_phone_and_to_a_bsuid(
    fake: FakeWhatsAppServer, client: GraphClient
) -> None:
    wamid = await client.send_template(PHONE, "wvb_new_message", "th")
    assert last_accepted(fake) == envelope(
        "template", {"name": "wvb_new_message", "language": {"code": "th"}}
    )
    assert fake.sent[-1].wamid == wamid
    quick_reply = {
        "type": "button",
        "sub_type": "quick_reply",
        "index": "0",
        "parameters": [{"type": "payload", "payload": "wa:open"}],
    }
    await client.send_template(BSUID, "wvb_new_message", "th", [quick_reply])
    body = last_accepted(fake)
    assert "to" not in body
    assert body["recipient"] == BSUID
    assert body["template"]["components"] == [quick_reply]


async def test_template_language_pywa_cannot_name_is_sent(
    fake: FakeWhatsAppServer, client: GraphClient
) -> None:
    """Burmese: pywa's TemplateLanguage enum has no ``my``; our low-level send does."""
    fake.register_template("wvb_new_message", "my")
    await client.send_template(PHONE, "wvb_new_message", "my")
    assert last_accepted(fake)["template"]["language"] == {"code": "my"}


async def test_media_sends_by_uploaded_id(fake: FakeWhatsAppServer, client: GraphClient) -> None:
    media_id = await client.upload_media(b"%PDF-1.4 x", "application/pdf", filename="a.pdf")
    wamid = await client.send_media(PHONE, "document", media_id, filename="a.pdf")
    assert last_accepted(fake) == envelope("document", {"id": media_id, "filename": "a.pdf"})
    assert fake.sent[-1].wamid == wamid
    await client.send_media(PHONE, "image", media_id, caption="c")
    assert last_accepted(fake) == envelope("image", {"id": media_id, "caption": "c"})
    await client.send_media(PHONE, "audio", media_id)
    assert last_accepted(fake) == envelope("audio", {"id": media_id})


async def test_ready_payload_is_posted_unchanged(
    fake: FakeWhatsAppServer, client: GraphClient
) -> None:
    payload = envelope(
        "interactive",
        {
            "type": "button",
            "header": {"type": "text", "text": "H"},
            "body": {"text": "Pick"},
            "footer": {"text": "F"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "x", "title": "X"}}]},
        },
    )
    wamid = await client.send_payload(payload)
    assert last_accepted(fake) == payload
    assert fake.sent[-1].wamid == wamid


async def test_a_payload_without_recipient_gets_the_one_given(
    fake: FakeWhatsAppServer, client: GraphClient
) -> None:
    """The renderer's bodies name no recipient; the sender passes it."""
    rendered = envelope("text", {"body": "hi", "preview_url": False})
    del rendered["to"]
    await client.send_payload(rendered, to=PHONE)
    assert last_accepted(fake) == envelope("text", {"body": "hi", "preview_url": False})
    await client.send_payload(rendered, to=BSUID)
    assert last_accepted(fake)["recipient"] == BSUID
    assert "to" not in last_accepted(fake)
    assert "to" not in rendered  # the caller's dict is left as it was
    with pytest.raises(WaBadRequest):
        await client.send_payload(rendered)
    assert len(fake.sent) == 2


async def test_refused_payload_raises_our_error(
    fake: FakeWhatsAppServer, client: GraphClient
) -> None:
    too_many = envelope(
        "interactive",
        {
            "type": "button",
            "body": {"text": "Pick"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": str(i), "title": str(i)}} for i in range(4)
                ]
            },
        },
    )
    with pytest.raises(WaBadRequest) as caught:
        await client.send_payload(too_many)
    assert (caught.value.code, caught.value.status) == (131009, 400)
    assert not fake.sent


@pytest.mark.parametrize("to", ["", "+66811111111", "group-1", "66 81 111"])
async def test_a_recipient_that_is_no_phone_or_bsuid_is_refused_before_sending(
    fake: FakeWhatsAppServer, client: GraphClient, to: str
) -> None:
    """pywa would send anything else as a *group* id."""
    with pytest.raises(WaBadRequest):
        await client.send_text(to, "hi")
    with pytest.raises(WaBadRequest):
        await client.send_payload(envelope("text", {"body": "hi"}, to=to))
    assert fake.requests == []


# ---- auth and errors ---------------------------------------------------------------------------


async def test_the_bearer_token_is_sent_and_a_wrong_one_fails(fake: FakeWhatsAppServer) -> None:
    async with GraphClient(
        api_base=fake.base_url, token="wrong-token", phone_number_id=DEFAULT_PHONE_NUMBER_ID
    ) as wrong:
        with pytest.raises(WaAuthFailed) as caught:
            await wrong.send_text(PHONE, "hi")
        with pytest.raises(WaAuthFailed):
            await wrong.upload_media(b"x", "image/jpeg")
    assert (caught.value.code, caught.value.status) == (190, 401)
    assert [request.authorized for request in fake.requests] == [False, False]
    assert not fake.sent


@pytest.mark.parametrize(
    ("code", "kind", "scope"),
    [
        (131056, WaRateLimited, "chat"),
        (130429, WaRateLimited, "number"),
        (4, WaRateLimited, "number"),
        (80007, WaRateLimited, "number"),
        (131047, WaWindowClosed, None),
        (131026, WaUnreachable, None),
        (100, WaBadRequest, None),
        (131009, WaBadRequest, None),
        (131051, WaBadRequest, None),
        (131016, WaUnavailable, None),
        (131000, WaUnavailable, None),
    ],
)
async def test_each_injected_code_maps_to_its_exception(
    fake: FakeWhatsAppServer,
    client: GraphClient,
    code: int,
    kind: type[WaError],
    scope: str | None,
) -> None:
    fake.fail_next(code, recipient=PHONE)
    with pytest.raises(WaError) as caught:
        await client.send_text(PHONE, "hi")
    error = caught.value
    assert type(error) is kind
    assert error.code == code
    assert error.fbtrace_id
    if scope is not None:
        assert isinstance(error, WaRateLimited)
        assert error.scope == scope
        assert error.retry_after > 0
    # The failure was for that recipient only: the next send goes through.
    assert await client.send_text(PHONE, "hi again")


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        (131050, 400, WaUnreachable),
        (10, 403, WaAuthFailed),
        (132015, 400, WaBadRequest),
        (999_999, 401, WaAuthFailed),
        (999_999, 429, WaRateLimited),
        (999_999, 503, WaUnavailable),
        (999_999, 400, WaError),
    ],
)
def test_codes_the_fake_does_not_inject_and_unknown_codes(
    code: int, status: int, kind: type[WaError]
) -> None:
    error = error_for(code, status)
    assert type(error) is kind
    assert (error.code, error.status) == (code, status)


async def test_pair_rate_is_mapped_by_code_not_by_http_status(
    fake: FakeWhatsAppServer, client: GraphClient
) -> None:
    """courier's tests send 131056 with HTTP 403: the code decides."""
    fake.fail_next(131056, status=403)
    with pytest.raises(WaRateLimited) as caught:
        await client.send_payload(envelope("text", {"body": "hi"}))
    assert (caught.value.scope, caught.value.status) == ("chat", 403)


async def test_pair_rate_for_one_recipient_leaves_the_others_sending(
    fake: FakeWhatsAppServer, client: GraphClient
) -> None:
    fake.fail_next(131056, recipient=PHONE, times=2)
    with pytest.raises(WaRateLimited):
        await client.send_text(PHONE, "hi")
    assert await client.send_text(OTHER, "hi")
    with pytest.raises(WaRateLimited):
        await client.send_text(PHONE, "hi")


async def test_a_template_error_is_a_bad_request(client: GraphClient) -> None:
    with pytest.raises(WaBadRequest) as caught:
        await client.send_template(PHONE, "no_such_template", "th")
    assert caught.value.code == 132001


async def test_server_down_is_unavailable() -> None:
    async with FakeWhatsAppServer() as fake:
        base = fake.base_url
    async with GraphClient(
        api_base=base, token=DEFAULT_TOKEN, phone_number_id=DEFAULT_PHONE_NUMBER_ID
    ) as graph:
        with pytest.raises(WaUnavailable):
            await graph.send_text(PHONE, "hi")
        with pytest.raises(WaUnavailable):
            await graph.send_payload(envelope("text", {"body": "hi"}))
        with pytest.raises(WaUnavailable):
            await graph.download_media("1", 10)


async def test_a_non_json_5xx_is_unavailable() -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>Bad gateway</html>")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with GraphClient(
            api_base=f"http://127.0.0.1:{port}",
            token=DEFAULT_TOKEN,
            phone_number_id=DEFAULT_PHONE_NUMBER_ID,
        ) as graph:
            with pytest.raises(WaUnavailable) as caught:
                await graph.send_text(PHONE, "hi")
    finally:
        await runner.cleanup()
    assert (caught.value.code, caught.value.status) == (502, 502)


# ---- media ------------------------------------------------------------------------------------


async def test_upload_then_download_round_trip(
    fake: FakeWhatsAppServer, client: GraphClient
) -> None:
    data = bytes(range(256)) * 40
    media_id = await client.upload_media(data, "image/jpeg", filename="p.jpg")
    assert fake.media[media_id].data == data
    assert await client.download_media(media_id, max_bytes=len(data)) == data
    assert fake.downloads == [media_id]


async def test_download_refuses_over_max_bytes(
    fake: FakeWhatsAppServer, client: GraphClient
) -> None:
    media = fake.add_media(b"x" * 5000, "image/jpeg")
    with pytest.raises(WaMediaTooLarge):
        await client.download_media(media.id, max_bytes=4999)
    assert await client.download_media(media.id, max_bytes=5000) == b"x" * 5000


class LyingFake(FakeWhatsAppServer):
    """Declares the true (small) size in the lookup, then streams 100 kB without a length."""

    async def _handle_download(  # type: ignore[override]  # a stream, not a Response
        self, request: web.Request
    ) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(100):
                await response.write(b"y" * 1000)
            await response.write_eof()
        except ConnectionError:
            pass  # the client hung up, as it should
        return response


async def test_download_stops_while_streaming_when_the_size_was_not_declared() -> None:
    async with (
        LyingFake() as fake,
        GraphClient(
            api_base=fake.base_url, token=DEFAULT_TOKEN, phone_number_id=DEFAULT_PHONE_NUMBER_ID
        ) as graph,
    ):
        media = fake.add_media(b"small", "image/jpeg")
        with pytest.raises(WaMediaTooLarge):
            await graph.download_media(media.id, max_bytes=10_000)


async def test_download_of_unknown_media_is_a_bad_request(client: GraphClient) -> None:
    with pytest.raises(WaBadRequest) as caught:
        await client.download_media("999", max_bytes=100)
    assert caught.value.code == 100


async def test_media_url_on_another_host_gets_no_token(
    fake: FakeWhatsAppServer, client: GraphClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str | None] = []

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.Response(body=b"data")

    app = web.Application()
    app.router.add_get("/{tail:.*}", elsewhere)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    other = f"http://127.0.0.1:{runner.addresses[0][1]}/whatsapp_business/attachments/?mid=1"
    monkeypatch.setattr(FakeWhatsAppServer, "media_url", lambda self, media: other)
    media = fake.add_media(b"data", "image/jpeg")
    try:
        with pytest.raises(WaBadRequest):
            await client.download_media(media.id, max_bytes=100)
    finally:
        await runner.cleanup()
    assert seen == []


# ---- privacy ----------------------------------------------------------------------------------


def _phone_in_wamid(wamid: str) -> bool:
    payload = wamid.removeprefix("wamid.")
    decoded = base64.b64decode(payload + "=" * (-len(payload) % 4))
    return PHONE.encode() in decoded


async def test_no_phone_or_wamid_in_any_log_record_or_exception(
    fake: FakeWhatsAppServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger at DEBUG: pywa's would print everything
    for name in ("httpx", "httpcore"):  # `configure_logging`, run by an earlier test in this
        caplog.set_level(logging.DEBUG, logger=name)  # process, quiets them: the canary below
    for name in PYWA_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)  # as a careless operator might
    async with GraphClient(
        api_base=fake.base_url, token=DEFAULT_TOKEN, phone_number_id=DEFAULT_PHONE_NUMBER_ID
    ) as graph:
        for name in PYWA_LOGGERS:
            assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING
        wamids = [
            await graph.send_text(PHONE, "secret words"),
            await graph.send_buttons(PHONE, "secret words", [("a", "A")]),
            await graph.send_list(PHONE, "secret words", "Choose", [ListRow("r", "R")]),
            await graph.send_template(PHONE, "wvb_new_message", "th"),
            await graph.send_payload(envelope("text", {"body": "secret words"})),
        ]
        assert all(_phone_in_wamid(wamid) for wamid in wamids)  # the fake's are like Meta's
        errors: list[BaseException] = []
        for code in (131056, 130429, 131047, 131026, 100, 131009, 190):
            fake.fail_next(code, recipient=PHONE, details=f"to {PHONE}: {wamids[0]}")
            with pytest.raises(WaError) as caught:
                await graph.send_text(PHONE, "secret words")
            errors.append(caught.value)
    assert caplog.records  # httpx/httpcore did log at DEBUG/INFO: the capture works
    assert not [
        record
        for record in caplog.records
        if record.name.split(".")[0] in PYWA_LOGGERS and record.levelno < logging.WARNING
    ]
    texts = [record.getMessage() for record in caplog.records]
    texts += [f"{error!s} {error!r} {vars(error)}" for error in errors]
    for error in errors:
        assert error.__cause__ is None
        assert error.__suppress_context__
    for text in texts:
        assert PHONE not in text
        assert "secret words" not in text
        assert not any(wamid in text for wamid in wamids)


async def test_a_stricter_pywa_level_is_kept() -> None:
    logger = logging.getLogger("pywa")
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        graph = GraphClient(api_base="http://127.0.0.1:9", token="t", phone_number_id="1")
        await graph.close()
        assert logger.level == logging.ERROR
    finally:
        logger.setLevel(before)
