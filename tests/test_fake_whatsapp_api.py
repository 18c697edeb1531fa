"""Tests of the fake WhatsApp Cloud API server itself, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession, FormData, web

from tests.fake_whatsapp_api import (
    DEFAULT_APP_SECRET,
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_TOKEN,
    FakeWhatsAppServer,
    SimulatedWaUser,
    WebhookDeliverer,
    envelope,
    message_body,
    sign,
)

JSONDict = dict[str, Any]
PHONE = "66811111111"
AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}


@pytest_asyncio.fixture
async def server() -> AsyncIterator[FakeWhatsAppServer]:
    async with FakeWhatsAppServer(templates=[("wvb_new_message", "th")]) as fake:
        yield fake


@pytest_asyncio.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session


async def post_message(
    http: ClientSession,
    server: FakeWhatsAppServer,
    body: JSONDict,
    *,
    headers: dict[str, str] | None = None,
) -> tuple[int, JSONDict]:
    async with http.post(
        server.messages_url(), json=body, headers=AUTH if headers is None else headers
    ) as response:
        payload = await response.json()
        assert isinstance(payload, dict)
        return response.status, payload


def message(kind: str, content: JSONDict, *, to: str = PHONE) -> JSONDict:
    return message_body(kind, content, to=to)


def buttons(*titles: str) -> JSONDict:
    return message(
        "interactive",
        {
            "type": "button",
            "body": {"text": "Pick"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": f"b{i}", "title": title}}
                    for i, title in enumerate(titles)
                ]
            },
        },
    )


def a_list(rows: list[JSONDict], *, label: str = "Choose", body: str = "Pick one") -> JSONDict:
    return message(
        "interactive",
        {
            "type": "list",
            "body": {"text": body},
            "action": {"button": label, "sections": [{"title": "S", "rows": rows}]},
        },
    )


def rows(count: int) -> list[JSONDict]:
    return [{"id": f"r{i}", "title": f"Row {i}", "description": "d"} for i in range(count)]


def assert_graph_error(payload: JSONDict, code: int) -> JSONDict:
    """The error shape Meta uses; returns the inner object."""
    error = payload["error"]
    assert isinstance(error, dict)
    assert set(error) == {"message", "type", "code", "error_data", "fbtrace_id"}
    assert error["code"] == code
    assert error["type"] == "OAuthException"
    assert error["message"].startswith(f"(#{code}) ")
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert isinstance(error["error_data"]["details"], str)
    assert error["error_data"]["details"]
    assert isinstance(error["fbtrace_id"], str)
    assert error["fbtrace_id"]
    return error


# ---- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": DEFAULT_TOKEN}],
    ids=["missing", "wrong", "no-scheme"],
)
async def test_send_without_the_right_bearer_is_401_code_190(
    server: FakeWhatsAppServer, http: ClientSession, headers: dict[str, str]
) -> None:
    status, payload = await post_message(
        http, server, message("text", {"body": "hi"}), headers=headers
    )
    assert status == 401
    assert payload["error"]["code"] == 190
    assert payload["error"]["type"] == "OAuthException"
    assert server.sent == []
    [recorded] = server.requests
    assert (recorded.status, recorded.error_code, recorded.authorized) == (401, 190, False)


async def test_unknown_phone_number_id_is_refused(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    url = f"{server.base_url}/v25.0/999/messages"
    async with http.post(url, json=message("text", {"body": "hi"}), headers=AUTH) as response:
        assert response.status == 400
        assert_graph_error(await response.json(), 100)
    assert server.sent == []


# ---- accepted messages ------------------------------------------------------------------------


async def test_text_is_accepted_recorded_and_answered_in_graph_shape(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    body = message("text", {"body": "hi *there*", "preview_url": False})
    status, payload = await post_message(http, server, body)
    assert status == 200
    assert payload["messaging_product"] == "whatsapp"
    assert payload["contacts"] == [{"input": PHONE, "wa_id": PHONE}]
    [sent] = server.sent
    assert payload["messages"] == [{"id": sent.wamid}]
    assert sent.wamid.startswith("wamid.")
    # Like Meta's, the wamid carries the phone number: privacy tests rely on this.
    assert PHONE.encode() in base64.b64decode(sent.wamid.removeprefix("wamid."))
    assert (sent.recipient, sent.type, sent.text, sent.payload) == (
        PHONE,
        "text",
        "hi *there*",
        body,
    )
    assert server.requests[-1].body == body
    assert server.requests[-1].status == 200
    assert server.requests[-1].authorized


async def test_each_send_gets_a_distinct_wamid(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    for _ in range(3):
        await post_message(http, server, message("text", {"body": "x"}))
    assert len({sent.wamid for sent in server.sent}) == 3


async def test_bsuid_recipient_is_answered_with_user_id(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    body = message("text", {"body": "hi"})
    del body["to"]
    body["recipient"] = "TH.1234567"
    status, payload = await post_message(http, server, body)
    assert status == 200
    assert payload["contacts"] == [{"input": "TH.1234567", "user_id": "TH.1234567"}]
    assert server.messages_to("TH.1234567")[0].text == "hi"


async def test_three_buttons_with_header_footer_and_context_are_accepted(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    body = buttons("Yes", "No", "x" * 20)
    body["interactive"]["header"] = {"type": "text", "text": "H"}
    body["interactive"]["footer"] = {"text": "F"}
    body["context"] = {"message_id": "wamid.PREV"}
    body["biz_opaque_callback_data"] = "opaque"
    status, _ = await post_message(http, server, body)
    assert status == 200
    assert server.sent[-1].choice_ids == ["b0", "b1", "b2"]
    assert server.sent[-1].text == "Pick"


async def test_list_with_ten_rows_over_sections_is_accepted(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    body = a_list(rows(5), label="x" * 20, body="y" * 1024)
    body["interactive"]["action"]["sections"].append(
        {
            "title": "T",
            "rows": [{"id": f"s{i}", "title": "z" * 24, "description": "w" * 72} for i in range(5)],
        }
    )
    status, _ = await post_message(http, server, body)
    assert status == 200
    assert len(server.sent[-1].choice_ids) == 10


async def test_registered_template_is_accepted_with_components_and_policy(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    template = {
        "name": "wvb_new_message",
        "language": {"code": "th", "policy": "deterministic"},
        "components": [
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": "0",
                "parameters": [{"type": "payload", "payload": "wa:open"}],
            }
        ],
    }
    status, _ = await post_message(http, server, message("template", template))
    assert status == 200
    assert server.sent[-1].type == "template"


async def test_unregistered_template_or_language_is_132001(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    for name, code in [("other", "th"), ("wvb_new_message", "my")]:
        template = {"name": name, "language": {"code": code}}
        status, payload = await post_message(http, server, message("template", template))
        assert status == 404
        assert_graph_error(payload, 132001)
    server.register_template("wvb_new_message", "my")
    status, _ = await post_message(
        http, server, message("template", {"name": "wvb_new_message", "language": {"code": "my"}})
    )
    assert status == 200
    assert len(server.sent) == 1


@pytest.mark.parametrize(
    ("kind", "extra"),
    [("image", {"caption": "c"}), ("document", {"filename": "a.pdf"}), ("audio", {})],
)
async def test_media_message_by_known_id_is_accepted_unknown_refused(
    server: FakeWhatsAppServer, http: ClientSession, kind: str, extra: JSONDict
) -> None:
    media = server.add_media(b"bytes", "application/pdf")
    status, _ = await post_message(http, server, message(kind, {"id": media.id, **extra}))
    assert status == 200
    assert server.sent[-1].type == kind
    status, payload = await post_message(http, server, message(kind, {"id": "404", **extra}))
    assert status == 400
    assert_graph_error(payload, 131009)
    assert len(server.sent) == 1


# ---- limits and malformed requests --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (message("text", {"body": "x" * 4097}), 131009),
        (message("text", {"body": ""}), 131009),
        (buttons("a", "b", "c", "d"), 131009),
        (buttons("x" * 21), 131009),
        (buttons("same", "same"), 131009),
        (a_list(rows(11)), 131009),
        (a_list([{"id": "r", "title": "x" * 25}]), 131009),
        (a_list([{"id": "r", "title": "t", "description": "x" * 73}]), 131009),
        (a_list(rows(1), label="x" * 21), 131009),
        (a_list(rows(1), body="x" * 1025), 131009),
        (a_list([{"id": "r", "title": "a"}, {"id": "r", "title": "b"}]), 131009),
        (message("text", {"body": "hi"}, to="not-a-number"), 131009),
        (message("text", {}), 100),
        (message("text", {"body": 5}), 100),
        ({"type": "text", "to": PHONE, "text": {"body": "hi"}}, 100),
        ({"messaging_product": "whatsapp", "type": "text", "text": {"body": "hi"}}, 100),
        (message("interactive", {"type": "button", "body": {"text": "b"}}), 100),
        (message("interactive", {"type": "carousel", "body": {"text": "b"}, "action": {}}), 100),
        (message("template", {"name": "wvb_new_message"}), 100),
        (message("location", {"latitude": 1}), 131051),
    ],
    ids=[
        "text-4097",
        "text-empty",
        "4-buttons",
        "button-title-21",
        "duplicate-buttons",
        "11-rows",
        "row-title-25",
        "row-description-73",
        "list-button-21",
        "body-1025",
        "duplicate-row-ids",
        "bad-to",
        "text-without-body",
        "text-body-not-string",
        "no-messaging-product",
        "no-recipient",
        "interactive-without-action",
        "unknown-interactive-type",
        "template-without-language",
        "unsupported-type",
    ],
)
async def test_violation_is_refused_with_metas_code_and_recorded(
    server: FakeWhatsAppServer, http: ClientSession, body: JSONDict, code: int
) -> None:
    status, payload = await post_message(http, server, body)
    assert status == 400
    assert_graph_error(payload, code)
    assert server.sent == []
    [recorded] = server.requests
    assert (recorded.status, recorded.error_code, recorded.body) == (400, code, body)


async def test_non_json_body_is_code_100(server: FakeWhatsAppServer, http: ClientSession) -> None:
    async with http.post(server.messages_url(), data=b"{not json", headers=AUTH) as response:
        assert response.status == 400
        assert_graph_error(await response.json(), 100)


async def test_limits_at_the_boundary_are_accepted(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    status, _ = await post_message(http, server, message("text", {"body": "x" * 4096}))
    assert status == 200
    status, _ = await post_message(http, server, a_list(rows(10)))
    assert status == 200


# ---- injected errors ------------------------------------------------------------------------


@pytest.mark.parametrize("code", [131056, 130429, 131047, 131026])
async def test_injected_error_for_one_recipient_has_metas_status_and_shape(
    server: FakeWhatsAppServer, http: ClientSession, code: int
) -> None:
    server.fail_next(code, recipient=PHONE)
    status, payload = await post_message(http, server, message("text", {"body": "hi"}))
    assert status == 400
    error = assert_graph_error(payload, code)
    assert PHONE not in json.dumps(error)
    # Another recipient is unaffected, and the failure was used up.
    other = "66822222222"
    status, _ = await post_message(http, server, message("text", {"body": "hi"}, to=other))
    assert status == 200
    status, _ = await post_message(http, server, message("text", {"body": "hi"}))
    assert status == 200
    assert [sent.recipient for sent in server.sent] == [other, PHONE]
    assert [r.error_code for r in server.requests] == [code, None, None]


async def test_global_injection_fails_the_next_n_sends_then_recovers(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    server.fail_next(130429, times=2)
    codes = []
    for to in ["66800000001", "66800000002", "66800000003"]:
        status, payload = await post_message(http, server, message("text", {"body": "x"}, to=to))
        codes.append(payload["error"]["code"] if status != 200 else 200)
    assert codes == [130429, 130429, 200]


async def test_injected_status_can_be_overridden_and_validation_runs_first(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    server.fail_next(131047, status=403, details="custom")
    status, payload = await post_message(http, server, message("text", {"body": "x" * 5000}))
    assert (status, payload["error"]["code"]) == (400, 131009)
    status, payload = await post_message(http, server, message("text", {"body": "x"}))
    assert status == 403
    assert assert_graph_error(payload, 131047)["error_data"]["details"] == "custom"


async def test_server_side_codes_use_5xx(server: FakeWhatsAppServer, http: ClientSession) -> None:
    server.fail_next(131000)
    server.fail_next(131016)
    first, _ = await post_message(http, server, message("text", {"body": "x"}))
    second, _ = await post_message(http, server, message("text", {"body": "x"}))
    assert (first, second) == (500, 503)


@pytest.mark.parametrize("code", [131047, 131026])
async def test_failure_after_send_answers_200_then_queues_a_failed_status(
    server: FakeWhatsAppServer,
    http: ClientSession,
    receiver: Receiver,
    deliverer: WebhookDeliverer,
    code: int,
) -> None:
    server.fail_after_send(code, recipient=PHONE)
    status, payload = await post_message(http, server, message("text", {"body": "x"}))
    assert status == 200
    wamid = payload["messages"][0]["id"]
    await post_message(http, server, message("text", {"body": "x"}))  # used up: no status
    [value] = server.pending_statuses
    [entry] = value["statuses"]
    assert (entry["id"], entry["status"], entry["recipient_id"]) == (wamid, "failed", PHONE)
    assert entry["errors"][0]["code"] == code
    assert await deliverer.deliver(value) == [200]
    delivered = json.loads(receiver.bodies[0])
    assert delivered["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["code"] == code


async def test_failure_after_send_for_a_bsuid_names_the_user_id(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    server.fail_after_send(131047)
    body = message("text", {"body": "x"})
    del body["to"]
    body["recipient"] = "TH.1234567"
    status, _ = await post_message(http, server, body)
    assert status == 200
    [entry] = server.pending_statuses[0]["statuses"]
    assert entry["recipient_user_id"] == "TH.1234567"
    assert "recipient_id" not in entry


# ---- media ----------------------------------------------------------------------------------


async def upload(
    http: ClientSession, server: FakeWhatsAppServer, data: bytes, *, headers: dict[str, str]
) -> tuple[int, JSONDict]:
    form = FormData()
    form.add_field("file", data, filename="a.ogg", content_type="audio/ogg")
    form.add_field("messaging_product", "whatsapp")
    form.add_field("type", "audio/ogg")
    url = f"{server.base_url}/v25.0/{server.phone_number_id}/media"
    async with http.post(url, data=form, headers=headers) as response:
        payload = await response.json()
        assert isinstance(payload, dict)
        return response.status, payload


async def test_media_upload_lookup_and_download_round_trip(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    data = b"OggS" + bytes(range(256)) * 4
    status, payload = await upload(http, server, data, headers=AUTH)
    assert status == 200
    assert set(payload) == {"id"}
    media_id = payload["id"]
    assert server.uploads[0].data == data

    async with http.get(f"{server.base_url}/v25.0/{media_id}", headers=AUTH) as response:
        assert response.status == 200
        info = await response.json()
    assert set(info) == {"url", "mime_type", "sha256", "file_size", "id", "messaging_product"}
    assert (info["mime_type"], info["file_size"], info["id"]) == ("audio/ogg", len(data), media_id)
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    assert info["url"].startswith(server.base_url + "/")

    async with http.get(info["url"], headers=AUTH) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "audio/ogg"
        assert await response.read() == data
    assert server.downloads == [media_id]

    async with http.get(info["url"]) as response:
        assert response.status == 401
        assert (await response.json())["error"]["code"] == 190
    async with http.get(info["url"], headers={"Authorization": "Bearer nope"}) as response:
        assert response.status == 401
    assert server.downloads == [media_id]


async def test_media_routes_refuse_without_token(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    status, payload = await upload(http, server, b"data", headers={})
    assert (status, payload["error"]["code"]) == (401, 190)
    assert server.uploads == []
    media = server.add_media(b"photo", "image/jpeg")
    async with http.get(f"{server.base_url}/v25.0/{media.id}") as response:
        assert response.status == 401


async def test_unknown_media_id_and_tampered_url_are_refused(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    async with http.get(f"{server.base_url}/v25.0/123", headers=AUTH) as response:
        assert response.status == 400
        assert_graph_error(await response.json(), 100)
    media = server.add_media(b"photo", "image/jpeg")
    url = server.media_url(media)
    async with http.get(url[:-1] + ("0" if url[-1] != "0" else "1"), headers=AUTH) as response:
        assert response.status == 404
    assert server.downloads == []


async def test_upload_without_file_is_code_100(
    server: FakeWhatsAppServer, http: ClientSession
) -> None:
    form = FormData()
    form.add_field("messaging_product", "whatsapp")
    form.add_field("type", "image/jpeg")
    form.add_field("dummy", b"x", filename="x")
    url = f"{server.base_url}/v25.0/{server.phone_number_id}/media"
    async with http.post(url, data=form, headers=AUTH) as response:
        assert response.status == 400
        assert_graph_error(await response.json(), 100)


async def test_phone_number_lookup(server: FakeWhatsAppServer, http: ClientSession) -> None:
    async with http.get(
        f"{server.base_url}/v25.0/{server.phone_number_id}", headers=AUTH
    ) as response:
        assert response.status == 200
        assert (await response.json())["id"] == server.phone_number_id


# ---- webhook deliverer ------------------------------------------------------------------------


class Receiver:
    """A tiny webhook endpoint that checks the signature and answers scripted statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.bodies: list[bytes] = []
        self.signature_ok: list[bool] = []
        self.verify_token = "verify-me"
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/whatsapp/webhook", self.post)
        app.router.add_get("/whatsapp/webhook", self.get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = int(self._runner.addresses[0][1])
        self.url = f"http://127.0.0.1:{port}/whatsapp/webhook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def post(self, request: web.Request) -> web.Response:
        raw = await request.read()
        header = request.headers.get("X-Hub-Signature-256", "")
        expected = (
            "sha256=" + hmac.new(DEFAULT_APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        )
        self.bodies.append(raw)
        self.signature_ok.append(hmac.compare_digest(header, expected))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def get(self, request: web.Request) -> web.Response:
        query = request.query
        if (
            query.get("hub.mode") == "subscribe"
            and query.get("hub.verify_token") == self.verify_token
        ):
            return web.Response(text=query.get("hub.challenge", ""))
        return web.Response(status=403)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    await hook.start()
    yield hook
    await hook.stop()


@pytest_asyncio.fixture
async def deliverer(receiver: Receiver) -> AsyncIterator[WebhookDeliverer]:
    async with WebhookDeliverer(receiver.url, DEFAULT_APP_SECRET, retry_delays=(0.01,) * 4) as d:
        yield d


async def test_delivery_is_signed_over_the_raw_bytes_in_the_real_envelope(
    receiver: Receiver, deliverer: WebhookDeliverer
) -> None:
    user = SimulatedWaUser(PHONE, user_id="TH.1234567", name="Somchai")
    assert await deliverer.deliver(user.text("สวัสดี")) == [200]
    [raw] = receiver.bodies
    assert receiver.signature_ok == [True]
    assert b"\\u0e2a" in raw  # non-ASCII escaped, as Meta sends it
    payload = json.loads(raw)
    assert payload["object"] == "whatsapp_business_account"
    [entry] = payload["entry"]
    [change] = entry["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"]["phone_number_id"] == DEFAULT_PHONE_NUMBER_ID
    assert value["contacts"] == [
        {"profile": {"name": "Somchai"}, "wa_id": PHONE, "user_id": "TH.1234567"}
    ]
    [msg] = value["messages"]
    assert (msg["from"], msg["from_user_id"], msg["type"]) == (PHONE, "TH.1234567", "text")
    assert msg["text"] == {"body": "สวัสดี"}
    assert msg["id"].startswith("wamid.")
    assert msg["timestamp"].isdigit()


async def test_wrong_secret_gives_a_signature_the_receiver_rejects(receiver: Receiver) -> None:
    async with WebhookDeliverer(receiver.url, "other-secret", retry_delays=()) as deliverer:
        await deliverer.deliver(SimulatedWaUser(PHONE).text("x"))
    assert receiver.signature_ok == [False]
    assert sign(receiver.bodies[0], DEFAULT_APP_SECRET) != sign(receiver.bodies[0], "other-secret")


async def test_retries_after_500_and_stops_after_200(
    receiver: Receiver, deliverer: WebhookDeliverer
) -> None:
    receiver.statuses = [500, 503]
    assert await deliverer.deliver(SimulatedWaUser(PHONE).text("x")) == [500, 503, 200]
    assert len(receiver.bodies) == 3
    assert len(set(receiver.bodies)) == 1
    assert all(receiver.signature_ok)


async def test_gives_up_after_the_configured_retries(receiver: Receiver) -> None:
    receiver.statuses = [500] * 10
    async with WebhookDeliverer(receiver.url, retry_delays=(0.01, 0.01)) as deliverer:
        assert await deliverer.deliver(SimulatedWaUser(PHONE).text("x")) == [500, 500, 500]
    assert len(receiver.bodies) == 3


async def test_unreachable_webhook_counts_as_status_0_and_is_retried() -> None:
    async with WebhookDeliverer("http://127.0.0.1:9/hook", retry_delays=(0.01,)) as deliverer:
        assert await deliverer.deliver(SimulatedWaUser(PHONE).text("x")) == [0, 0]


async def test_duplicate_is_delivered_when_asked(
    receiver: Receiver, deliverer: WebhookDeliverer
) -> None:
    assert await deliverer.deliver(SimulatedWaUser(PHONE).text("x"), duplicate=True) == [200, 200]
    assert len(receiver.bodies) == 2
    assert receiver.bodies[0] == receiver.bodies[1]
    assert await deliverer.deliver(SimulatedWaUser(PHONE).text("y")) == [200]
    assert len(receiver.bodies) == 3


async def test_signature_override_and_raw_bytes(
    receiver: Receiver, deliverer: WebhookDeliverer
) -> None:
    assert await deliverer.post_once(b"{}", signature="") == 200
    assert await deliverer.post_once(b"{}", signature="sha256=00") == 200
    assert await deliverer.deliver(b"[]") == [200]
    assert receiver.signature_ok == [False, False, True]


async def test_verification_handshake(receiver: Receiver, deliverer: WebhookDeliverer) -> None:
    assert await deliverer.verify("verify-me", "1158201444") == (200, "1158201444")
    status, _ = await deliverer.verify("wrong", "1158201444")
    assert status == 403
    status, _ = await deliverer.verify("verify-me", "1", mode="unsubscribe")
    assert status == 403


# ---- message builders -----------------------------------------------------------------------


async def test_builders_produce_each_message_kind(server: FakeWhatsAppServer) -> None:
    user = SimulatedWaUser(PHONE, name="N")
    photo = server.add_media(b"\xff\xd8jpeg", "image/jpeg")
    pdf = server.add_media(b"%PDF", "application/pdf", filename="a.pdf")
    voice = server.add_media(b"OggS", "audio/ogg; codecs=opus")

    [m] = user.button_reply("val:AB:yes", "Yes", context_id="wamid.OUT")["messages"]
    assert m["type"] == "interactive"
    assert m["interactive"] == {
        "type": "button_reply",
        "button_reply": {"id": "val:AB:yes", "title": "Yes"},
    }
    assert m["context"]["id"] == "wamid.OUT"

    [m] = user.list_reply("r1", "Row 1", "d")["messages"]
    assert m["interactive"]["list_reply"] == {"id": "r1", "title": "Row 1", "description": "d"}

    [m] = user.image(photo, caption="c")["messages"]
    assert m["image"] == {
        "mime_type": "image/jpeg",
        "sha256": hashlib.sha256(b"\xff\xd8jpeg").hexdigest(),
        "id": photo.id,
        "caption": "c",
    }
    [m] = user.document(pdf)["messages"]
    assert (m["type"], m["document"]["filename"], m["document"]["id"]) == (
        "document",
        "a.pdf",
        pdf.id,
    )
    [m] = user.voice(voice)["messages"]
    assert m["type"] == "audio"
    assert m["audio"]["voice"] is True
    assert m["audio"]["mime_type"] == "audio/ogg; codecs=opus"
    [m] = user.template_button("wa:open", "Show message")["messages"]
    assert m["button"] == {"payload": "wa:open", "text": "Show message"}

    ids = [user.text("a")["messages"][0]["id"], user.text("a")["messages"][0]["id"]]
    assert ids[0] != ids[1]


def test_phone_less_user_has_only_user_id() -> None:
    user = SimulatedWaUser(None, user_id="US.1234", name="N", username="k")
    value = user.text("Hi")
    assert value["contacts"] == [{"profile": {"name": "N", "username": "k"}, "user_id": "US.1234"}]
    [m] = value["messages"]
    assert "from" not in m
    assert m["from_user_id"] == "US.1234"
    with pytest.raises(ValueError, match="wa_id or a user_id"):
        SimulatedWaUser(None)


@pytest.mark.parametrize("status", ["sent", "delivered", "read"])
def test_status_builder(status: str) -> None:
    value = SimulatedWaUser(PHONE).status("wamid.OUT", status)
    [entry] = value["statuses"]
    assert (entry["id"], entry["status"], entry["recipient_id"]) == ("wamid.OUT", status, PHONE)
    assert "errors" not in entry
    assert entry["pricing"]["category"] == "service"


def test_failed_status_carries_the_error() -> None:
    value = SimulatedWaUser(PHONE).status("wamid.OUT", "failed", error_code=131026)
    [entry] = value["statuses"]
    [error] = entry["errors"]
    assert error["code"] == 131026
    assert error["title"] == "Message Undeliverable"
    assert error["error_data"]["details"]
    with pytest.raises(ValueError, match="unknown status"):
        SimulatedWaUser(PHONE).status("wamid.OUT", "seen")


async def test_envelope_batches_several_values(
    receiver: Receiver, deliverer: WebhookDeliverer
) -> None:
    a, b = SimulatedWaUser(PHONE), SimulatedWaUser("66822222222")
    await deliverer.deliver(envelope([a.text("1"), b.status("wamid.X", "read")]))
    payload = json.loads(receiver.bodies[0])
    values = [change["value"] for change in payload["entry"][0]["changes"]]
    assert [("messages" in v, "statuses" in v) for v in values] == [(True, False), (False, True)]
