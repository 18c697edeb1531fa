"""The WhatsApp webhook and its parser (bot/channels/whatsapp/), over real HTTP on 127.0.0.1.

Malformed JSON under a valid signature is answered 200 and handed on as nothing: Meta retries any
other answer for days, and the retry would be just as unreadable.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.channels.whatsapp.identity import identify, parse_address
from bot.channels.whatsapp.updates import (
    MessageKind,
    StatusKind,
    WaMessage,
    WebhookUpdates,
    parse_body,
    parse_document,
    to_inbound,
)
from bot.channels.whatsapp.webhook import (
    SIGNATURE_HEADER,
    WEBHOOK_PATH,
    WhatsAppWebhook,
    start_webhook,
)
from conversations.messages import InboundKind
from storage.redis_keys import RedisKeyNames
from storage.seen_messages import MemorySeenMessages, RedisSeenMessages, SeenMessages
from tests.conftest import REDIS_URL

SECRET = "app-secret-for-tests"
VERIFY = "verify-token-for-tests"
PHONE = "66811111111"
BSUID = "TH.1234567"
# Meta's sample wamid: base64 of bytes holding the phone number 16503879439.
WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI4Qzc5QkNGNTc5NTMyMDU5QzEA"
TEXT = "my boss keeps my passport"


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(*values: dict[str, Any], entries: int = 1) -> dict[str, Any]:
    """A webhook body: the values spread over ``entries`` entries, one change each."""
    changes = [{"field": "messages", "value": value} for value in values]
    per_entry = max(1, -(-len(changes) // entries))
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "WABA", "changes": changes[i : i + per_entry]}
            for i in range(0, len(changes), per_entry)
        ],
    }


def text_value(*ids: str, body: str = TEXT, phone: str = PHONE) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": "1122"},
        "contacts": [{"profile": {"name": "N"}, "wa_id": phone, "user_id": BSUID}],
        "messages": [
            {
                "from": phone,
                "id": mid,
                "timestamp": "1700000000",
                "type": "text",
                "text": {"body": body},
            }
            for mid in ids
        ],
    }


def message_value(message: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"from": PHONE, "id": WAMID, "timestamp": "1700000000", **message}]}


def one(value: dict[str, Any]) -> WaMessage:
    updates = parse_document(envelope(value))
    assert len(updates.messages) == 1, updates
    return updates.messages[0]


# --- the parser -------------------------------------------------------------------------------


def test_text_keeps_both_ids_of_its_sender() -> None:
    message = one(text_value(WAMID))
    assert (message.wa_id, message.user_id) == (PHONE, BSUID), "the BSUID from the contact card"
    assert (message.message_id, message.timestamp) == (WAMID, 1700000000)
    assert (message.kind, message.text) == (MessageKind.TEXT, TEXT)
    assert message.sender == BSUID, "known by the BSUID (identity.py says why)"


def test_an_id_the_payload_lacks_is_empty_and_the_other_is_kept() -> None:
    value = text_value(WAMID)
    value["contacts"] = [{"profile": {"name": "N"}, "wa_id": PHONE}]
    phone_only = one(value)
    assert (phone_only.wa_id, phone_only.user_id, phone_only.sender) == (PHONE, "", PHONE)
    username_user = {
        "contacts": [{"profile": {"name": "N", "username": "k"}, "user_id": "US.1234"}],
        "messages": [
            {
                "from_user_id": "US.1234",
                "id": WAMID,
                "timestamp": "1",
                "type": "text",
                "text": {"body": "Hi"},
            }
        ],
    }
    phone_less = one(username_user)
    assert (phone_less.wa_id, phone_less.user_id, phone_less.sender) == ("", "US.1234", "US.1234")


def test_the_ids_are_completed_from_the_contact_card_and_told_apart_by_their_shape() -> None:
    by_user_id = {
        "contacts": [{"wa_id": "1", "user_id": "TH.9"}, {"wa_id": PHONE, "user_id": BSUID}],
        "messages": [{"from_user_id": BSUID, "id": WAMID, "type": "text", "text": {"body": "x"}}],
    }
    message = one(by_user_id)
    assert (message.wa_id, message.user_id) == (PHONE, BSUID), "the card of this sender only"
    # A phone-less user's ``from`` holding the BSUID (as some providers describe it).
    bsuid_from = {"messages": [{"from": BSUID, "id": WAMID, "type": "text", "text": {"body": "x"}}]}
    message = one(bsuid_from)
    assert (message.wa_id, message.user_id) == ("", BSUID)
    # Ids of no known shape are no ids: a separator, a space, non-ASCII digits, a huge number.
    for bad in ("TH.1|66811111111", "TH 1", "٦٦٨١١١", "6" * 40, "", 66811111111):
        value = {"messages": [{"from": bad, "id": WAMID, "type": "text", "text": {"body": "x"}}]}
        assert parse_document(envelope(value)).ignored == 1, bad
    mixed = {
        "contacts": [{"wa_id": PHONE, "user_id": "TH.1|2"}],
        "messages": [{"from": PHONE, "id": WAMID, "type": "text", "text": {"body": "x"}}],
    }
    message = one(mixed)
    assert (message.wa_id, message.user_id) == (PHONE, ""), "a malformed card id is dropped"


def test_system_messages_about_a_changed_number_are_not_handed_on() -> None:
    """Meta writes them, not the worker: answering one would write to the old number."""
    system = {
        "messages": [
            {
                "from": PHONE,
                "id": WAMID,
                "timestamp": "1",
                "type": "system",
                "system": {"body": "User N changed from … to …", "type": "user_changed_number"},
            }
        ]
    }
    assert parse_document(envelope(system)) == WebhookUpdates(ignored=1)


def test_replies_media_and_others() -> None:
    button = one(
        message_value(
            {
                "type": "interactive",
                "interactive": {
                    "type": "button_reply",
                    "button_reply": {"id": "val:AB:yes", "title": "Yes"},
                },
            }
        )
    )
    assert (button.kind, button.payload) == (MessageKind.CHOICE, "val:AB:yes")
    # A list reply without ``context`` (pywa raises KeyError on it).
    row = one(
        message_value(
            {
                "type": "interactive",
                "interactive": {"type": "list_reply", "list_reply": {"id": "r1", "title": "Row 1"}},
            }
        )
    )
    assert (row.kind, row.payload) == (MessageKind.CHOICE, "r1")
    quick = one(message_value({"type": "button", "button": {"payload": "wa:open", "text": "Show"}}))
    assert (quick.kind, quick.payload) == (MessageKind.TEMPLATE_REPLY, "wa:open")
    image = one(
        message_value(
            {"type": "image", "image": {"mime_type": "image/jpeg", "id": "654", "caption": "c"}}
        )
    )
    assert image.kind is MessageKind.IMAGE
    assert image.media is not None
    assert (image.media.media_id, image.media.mime, image.media.caption) == (
        "654",
        "image/jpeg",
        "c",
    )
    doc = one(
        message_value(
            {
                "type": "document",
                "document": {"filename": "a.pdf", "mime_type": "application/pdf", "id": "9"},
            }
        )
    )
    assert doc.kind is MessageKind.DOCUMENT
    assert doc.media is not None
    assert doc.media.filename == "a.pdf"
    voice = one(
        message_value(
            {
                "type": "audio",
                "audio": {"mime_type": "audio/ogg; codecs=opus", "id": "777", "voice": True},
            }
        )
    )
    assert voice.kind is MessageKind.VOICE
    assert voice.media is not None
    assert voice.media.media_id == "777"
    voice2 = one(message_value({"type": "voice", "voice": {"mime_type": "audio/ogg", "id": "778"}}))
    assert voice2.kind is MessageKind.VOICE
    audio = one(message_value({"type": "audio", "audio": {"mime_type": "audio/mpeg", "id": "779"}}))
    assert audio.kind is MessageKind.AUDIO
    for other in (
        {"type": "reaction", "reaction": {"message_id": "x", "emoji": "👍"}},
        {"type": "location", "location": {"latitude": 1, "longitude": 2}},
        {"type": "sticker", "sticker": {"id": "5", "mime_type": "image/webp"}},
        {"type": "unsupported", "errors": [{"code": 131051}]},
        {"type": "image", "image": {"caption": "no id"}},
        {"type": "text", "text": {"body": 5}},
    ):
        assert one(message_value(other)).kind is MessageKind.UNSUPPORTED, other


def test_group_messages_and_messages_without_sender_or_id_are_counted_not_kept() -> None:
    value = {
        "messages": [
            {"from": PHONE, "id": "a", "type": "text", "text": {"body": "x"}, "group_id": "G"},
            {"id": "b", "type": "text", "text": {"body": "x"}},
            {"from": PHONE, "type": "text", "text": {"body": "x"}},
            "not a message",
        ]
    }
    updates = parse_document(envelope(value))
    assert (updates.messages, updates.ignored) == ((), 4)


def test_statuses_with_error_codes() -> None:
    value = {
        "statuses": [
            {
                "id": "wamid.OUT1",
                "status": "delivered",
                "timestamp": "1700000001",
                "recipient_id": PHONE,
            },
            {
                "id": "wamid.OUT2",
                "status": "failed",
                "timestamp": "1700000002",
                "recipient_id": PHONE,
                "errors": [
                    {"code": 131047, "title": "Re-engagement message"},
                    {"code": "x"},
                    {"code": True},
                ],
            },
            {"id": "wamid.OUT3", "status": "deleted"},
        ]
    }
    statuses = parse_document(envelope(value)).statuses
    assert [(s.message_id, s.status, s.error_codes) for s in statuses] == [
        ("wamid.OUT1", StatusKind.DELIVERED, ()),
        ("wamid.OUT2", StatusKind.FAILED, (131047,)),
        ("wamid.OUT3", StatusKind.UNKNOWN, ()),
    ]
    assert statuses[1].timestamp == 1700000002


def test_every_entry_change_and_message_of_a_batch_is_kept_in_order() -> None:
    values = [text_value(f"m{i}a", f"m{i}b", f"m{i}c") for i in range(10)]
    updates = parse_document(envelope(*values, entries=4))
    assert [m.message_id for m in updates.messages] == [
        f"m{i}{x}" for i in range(10) for x in "abc"
    ]


def test_records_do_not_show_ids_or_text_in_their_repr() -> None:
    message = one(text_value(WAMID))
    shown = repr(message) + repr(
        one(message_value({"type": "image", "image": {"id": "654", "caption": TEXT}}))
    )
    for secret in (PHONE, BSUID, WAMID, TEXT, "654"):
        assert secret not in shown


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "entry",
                    "changes",
                    "field",
                    "value",
                    "messages",
                    "statuses",
                    "contacts",
                    "id",
                    "from",
                    "from_user_id",
                    "type",
                    "text",
                    "body",
                    "interactive",
                    "button_reply",
                    "list_reply",
                    "button",
                    "payload",
                    "image",
                    "audio",
                    "voice",
                    "document",
                    "timestamp",
                    "status",
                    "errors",
                    "code",
                    "wa_id",
                    "user_id",
                    "system",
                    "group_id",
                    "caption",
                    "mime_type",
                ]
            )
            | st.text(max_size=5),
            children,
            max_size=6,
        )
    ),
    max_leaves=40,
)


@given(JSON)
def test_the_parser_never_raises_on_any_json(document: object) -> None:
    updates = parse_document(document)
    assert isinstance(updates, WebhookUpdates)
    assert parse_body(json.dumps(document)) == updates
    for message in updates.messages:
        to_inbound(message, _no_download)
        identity = identify(message)  # every message handed on has a usable id
        assert parse_address(identity.address) == (message.wa_id or None, message.user_id or None)


@given(st.binary(max_size=300))
def test_the_parser_never_raises_on_any_bytes(raw: bytes) -> None:
    assert isinstance(parse_body(raw), WebhookUpdates)


def test_the_parser_survives_deep_nesting_huge_numbers_and_non_objects() -> None:
    assert parse_body(b"[" * 100_000) == WebhookUpdates(ignored=1)
    documents: list[object] = [{}, [], "x", 1, None, {"entry": {}}, {"entry": [{"changes": "x"}]}]
    for document in documents:
        assert not parse_document(document)
    value = text_value("a")
    value["messages"][0]["timestamp"] = "9" * 10_000
    assert one(value).timestamp == 0


MESSAGE_KINDS = st.sampled_from(["text", "button", "interactive", "image", "sticker"])


@given(st.lists(st.lists(st.lists(MESSAGE_KINDS, max_size=5), max_size=4), max_size=4))
def test_a_batch_of_any_shape_keeps_every_message(shape: list[list[list[str]]]) -> None:
    bodies: dict[str, dict[str, Any]] = {
        "text": {"text": {"body": "t"}},
        "button": {"button": {"payload": "p"}},
        "interactive": {"interactive": {"type": "button_reply", "button_reply": {"id": "p"}}},
        "image": {"image": {"id": "1"}},
        "sticker": {"sticker": {"id": "1"}},
    }
    document: dict[str, Any] = {
        "entry": [
            {
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messages": [
                                {"from": PHONE, "id": f"{e}.{c}.{m}", "type": kind, **bodies[kind]}
                                for m, kind in enumerate(change)
                            ]
                        },
                    }
                    for c, change in enumerate(entry)
                ]
            }
            for e, entry in enumerate(shape)
        ]
    }
    ids = [m.message_id for m in parse_document(document).messages]
    expected = [
        f"{e}.{c}.{m}"
        for e, entry in enumerate(shape)
        for c, change in enumerate(entry)
        for m, _ in enumerate(change)
    ]
    assert ids == expected


# --- mapping to Inbound -----------------------------------------------------------------------


async def _no_download(media_id: str) -> bytes:
    raise AssertionError("nothing is downloaded before the core asks")


async def test_the_language_hint_comes_from_the_bsuid_country_never_from_the_phone() -> None:
    assert to_inbound(one(text_value(WAMID)), _no_download).language_hint == "th"
    burmese = text_value(WAMID, body="/start")
    burmese["contacts"][0]["user_id"] = "MM.77"
    command = to_inbound(one(burmese), _no_download)
    assert (command.command, command.language_hint) == ("start", "my")
    phone_only = text_value(WAMID, phone="95911111111")  # a Myanmar number, +95
    phone_only["contacts"] = [{"wa_id": "95911111111"}]
    assert to_inbound(one(phone_only), _no_download).language_hint is None
    sticker = message_value({"type": "sticker", "sticker": {"id": "5"}})
    sticker["messages"][0]["from_user_id"] = "KH.5"
    assert to_inbound(one(sticker), _no_download).language_hint == "km", "every kind has it"


async def test_mapping_to_inbound() -> None:
    downloaded: list[str] = []

    async def download(media_id: str) -> bytes:
        downloaded.append(media_id)
        return b"bytes of " + media_id.encode()

    text = to_inbound(one(text_value(WAMID)), download)
    assert (text.kind, text.text) == (InboundKind.TEXT, TEXT)
    command = to_inbound(one(text_value(WAMID, body="/Menu please")), download)
    assert (command.kind, command.command) == (InboundKind.COMMAND, "menu")
    assert to_inbound(one(text_value(WAMID, body="/ x")), download).kind is InboundKind.TEXT
    button = to_inbound(
        one(
            message_value(
                {
                    "type": "interactive",
                    "interactive": {"type": "button_reply", "button_reply": {"id": "val:AB:yes"}},
                }
            )
        ),
        download,
    )
    assert (button.kind, button.payload) == (InboundKind.CHOICE, "val:AB:yes")
    row = to_inbound(
        one(
            message_value(
                {
                    "type": "interactive",
                    "interactive": {"type": "list_reply", "list_reply": {"id": "r1"}},
                }
            )
        ),
        download,
    )
    assert (row.kind, row.payload) == (InboundKind.CHOICE, "r1")
    image = to_inbound(
        one(
            message_value(
                {"type": "image", "image": {"mime_type": "image/jpeg", "id": "654", "caption": "c"}}
            )
        ),
        download,
    )
    assert (image.kind, image.media, image.mime, image.text) == (
        InboundKind.MEDIA,
        "photo",
        "image/jpeg",
        "c",
    )
    voice = to_inbound(
        one(
            message_value(
                {"type": "audio", "audio": {"mime_type": "audio/ogg", "id": "777", "voice": True}}
            )
        ),
        download,
    )
    assert (voice.kind, voice.media, voice.mime) == (InboundKind.MEDIA, "voice", "audio/ogg")
    assert downloaded == []
    assert image.fetch is not None
    assert voice.fetch is not None
    assert await voice.fetch() == b"bytes of 777"
    assert await image.fetch() == b"bytes of 654"
    assert downloaded == ["777", "654"]
    other = to_inbound(one(message_value({"type": "location", "location": {}})), download)
    assert other.kind is InboundKind.UNSUPPORTED


# --- the webhook over HTTP --------------------------------------------------------------------


@dataclass
class Served:
    url: str
    handed: asyncio.Queue[WebhookUpdates]
    webhook: WhatsAppWebhook
    runner: object
    client: aiohttp.ClientSession
    calls: list[WebhookUpdates] = field(default_factory=list)

    async def post(self, body: bytes, signature: str | None = None) -> int:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        async with self.client.post(self.url, data=body, headers=headers) as response:
            return response.status

    async def post_signed(self, document: object) -> int:
        body = json.dumps(document).encode()
        return await self.post(body, sign(body))

    async def settle(self) -> None:
        await self.webhook.drain()

    def drained(self) -> list[WebhookUpdates]:
        items = []
        while not self.handed.empty():
            items.append(self.handed.get_nowait())
        return items


async def serve(seen: SeenMessages, max_body_bytes: int = 64 * 1024) -> AsyncIterator[Served]:
    handed: asyncio.Queue[WebhookUpdates] = asyncio.Queue()

    async def on_updates(updates: WebhookUpdates) -> None:
        await handed.put(updates)

    webhook = WhatsAppWebhook(
        verify_token=VERIFY,
        app_secret=SECRET,
        on_updates=on_updates,
        seen=seen,
        names=RedisKeyNames(b"k" * 32, "wvb"),
        max_body_bytes=max_body_bytes,
    )
    runner = await start_webhook(webhook.application(), "127.0.0.1", 0)
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as client:
        try:
            yield Served(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", handed, webhook, runner, client)
        finally:
            await runner.cleanup()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async for item in serve(MemorySeenMessages()):
        yield item


async def handshake(served: Served, **params: str) -> tuple[int, str, str]:
    async with served.client.get(served.url, params=params) as response:
        return response.status, response.content_type, await response.text()


async def test_handshake(served: Served) -> None:
    ok = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}
    assert await handshake(served, **ok) == (200, "text/plain", "1158201444")
    assert (await handshake(served, **{**ok, "hub.verify_token": "wrong"}))[0] == 403
    assert (await handshake(served, **{**ok, "hub.verify_token": ""}))[0] == 403
    assert (await handshake(served, **{**ok, "hub.mode": "unsubscribe"}))[0] == 403
    assert (await handshake(served, **{k: v for k, v in ok.items() if k != "hub.mode"}))[0] == 403
    assert (await handshake(served, **{**ok, "hub.challenge": "<script>"}))[0] == 403


async def test_signature_is_checked_before_anything_is_handed_on(served: Served) -> None:
    body = json.dumps(envelope(text_value("a"))).encode()
    assert await served.post(body) == 401
    assert await served.post(body, "sha256=nothex") == 401
    assert await served.post(body, sign(body)[7:]) == 401  # no "sha256=" prefix
    assert await served.post(body, sign(body, "another secret")) == 403
    assert await served.post(body + b" ", sign(body)) == 403
    await served.settle()
    assert served.drained() == []
    assert await served.post(body, sign(body).upper().replace("SHA256=", "sha256=")) == 200
    await served.settle()
    assert [m.message_id for u in served.drained() for m in u.messages] == ["a"]


async def test_a_body_over_the_limit_is_refused() -> None:
    async for served in serve(MemorySeenMessages(), max_body_bytes=4096):
        small = json.dumps(envelope(text_value("a"))).encode()
        big = json.dumps(envelope(text_value("b", body="x" * 5000))).encode()
        assert await served.post(big, sign(big)) == 413
        assert await served.post(small, sign(small)) == 200
        await served.settle()
        assert [m.message_id for u in served.drained() for m in u.messages] == ["a"]


async def test_a_batch_is_handed_on_whole(served: Served) -> None:
    document = envelope(text_value("a", "b"), text_value("c"), entries=2)
    assert len(document["entry"]) == 2
    assert await served.post_signed(document) == 200
    await served.settle()
    [updates] = served.drained()
    assert [(m.message_id, m.sender, m.text) for m in updates.messages] == [
        ("a", BSUID, TEXT),
        ("b", BSUID, TEXT),
        ("c", BSUID, TEXT),
    ]


async def assert_duplicates_handed_on_once(store: SeenMessages) -> None:
    async for served in serve(store):
        document = envelope(text_value(WAMID, "m2", WAMID))
        assert await served.post_signed(document) == 200
        assert await served.post_signed(document) == 200  # Meta's retry
        await served.settle()
        assert [m.message_id for u in served.drained() for m in u.messages] == [WAMID, "m2"]


async def test_a_duplicate_is_handed_on_once_memory() -> None:
    await assert_duplicates_handed_on_once(MemorySeenMessages())


async def test_a_duplicate_is_handed_on_once_redis(redis_prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        await assert_duplicates_handed_on_once(RedisSeenMessages(client, redis_prefix))
    finally:
        await client.aclose()


async def test_the_redis_store_keeps_no_message_id(redis_prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        async for served in serve(RedisSeenMessages(client, redis_prefix)):
            assert await served.post_signed(envelope(text_value(WAMID))) == 200
            await served.settle()
        keys = [key.decode() async for key in client.scan_iter(match=f"{redis_prefix}:*")]
        assert len(keys) == 1
        assert WAMID not in keys[0]
        assert "MTY1MDM4Nzk0Mzk" not in keys[0]
        assert 47 * 3600 < await client.ttl(keys[0]) <= 48 * 3600
    finally:
        await client.aclose()


async def test_statuses_are_handed_on(served: Served) -> None:
    value = {
        "statuses": [
            {
                "id": WAMID,
                "status": "failed",
                "timestamp": "5",
                "recipient_id": PHONE,
                "errors": [{"code": 131047}],
            }
        ]
    }
    assert await served.post_signed(envelope(value)) == 200
    await served.settle()
    [updates] = served.drained()
    assert [(s.message_id, s.status, s.error_codes) for s in updates.statuses] == [
        (WAMID, StatusKind.FAILED, (131047,))
    ]


async def test_signed_malformed_bodies_are_answered_200_and_not_handed_on(served: Served) -> None:
    for body in (b"{not json", b"", b"[]", b"{}", b'"x"', b"\xff\xfe", b"[" * 50_000):
        assert await served.post(body, sign(body)) == 200, body[:10]
    await served.settle()
    assert served.drained() == []


async def test_a_clean_stop_waits_for_updates_in_flight() -> None:
    finished: list[int] = []

    async def slow(updates: WebhookUpdates) -> None:
        await asyncio.sleep(0.3)
        finished.append(len(updates.messages))

    webhook = WhatsAppWebhook(
        verify_token=VERIFY,
        app_secret=SECRET,
        on_updates=slow,
        seen=MemorySeenMessages(),
        names=RedisKeyNames(b"k" * 32, "wvb"),
    )
    runner = await start_webhook(webhook.application(), "127.0.0.1", 0)
    body = json.dumps(envelope(text_value("a", "b"))).encode()
    async with aiohttp.ClientSession() as client:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}{WEBHOOK_PATH}"
        async with client.post(url, data=body, headers={SIGNATURE_HEADER: sign(body)}) as response:
            assert response.status == 200
    assert finished == []  # answered before the callback finished
    await runner.cleanup()
    assert finished == [2]


async def test_a_failing_callback_is_logged_without_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails(updates: WebhookUpdates) -> None:
        raise RuntimeError(f"could not handle {updates.messages[0].text}")

    webhook = WhatsAppWebhook(
        verify_token=VERIFY,
        app_secret=SECRET,
        on_updates=fails,
        seen=MemorySeenMessages(),
        names=RedisKeyNames(b"k" * 32, "wvb"),
    )
    runner = await start_webhook(webhook.application(), "127.0.0.1", 0)
    body = json.dumps(envelope(text_value(WAMID))).encode()
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as client:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}{WEBHOOK_PATH}"
        async with client.post(url, data=body, headers={SIGNATURE_HEADER: sign(body)}) as response:
            assert response.status == 200
    await runner.cleanup()
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)
    assert not any(TEXT in r.getMessage() or r.exc_info for r in caplog.records)


async def test_no_log_record_holds_a_number_an_id_or_text(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await handshake(
        served, **{"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "77"}
    )
    await handshake(
        served, **{"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "77"}
    )
    media = {
        "type": "image",
        "image": {"id": "65463453", "mime_type": "image/jpeg", "caption": TEXT},
    }
    value = text_value(WAMID, "wamid.SECOND")
    value["messages"].append({"from": PHONE, "id": "wamid.THIRD", "timestamp": "1", **media})
    status = {"statuses": [{"id": "wamid.OUT", "status": "read", "recipient_id": PHONE}]}
    document = envelope(value, status)
    body = json.dumps(document).encode()
    assert await served.post_signed(document) == 200
    assert await served.post_signed(document) == 200
    assert await served.post(body, sign(body, "wrong")) == 403
    assert await served.post(body) == 401
    await served.settle()
    assert len(served.drained()) == 2  # the retry still carries the status
    logged = [r for r in caplog.records if r.name.startswith(("bot", "aiohttp", "storage"))]
    assert any("new messages" in r.getMessage() for r in logged)  # something was logged
    forbidden = (PHONE, BSUID, WAMID, "wamid", TEXT, "65463453", VERIFY, "HBgL")
    for record in caplog.records:
        shown = record.getMessage() + repr(record.args)
        assert not any(secret in shown for secret in forbidden), shown


def test_construction_needs_both_secrets() -> None:
    for token, secret in (("", SECRET), (VERIFY, "")):
        with pytest.raises(ValueError, match="verify token and an app secret"):
            WhatsAppWebhook(
                verify_token=token,
                app_secret=secret,
                on_updates=_ignore,
                seen=MemorySeenMessages(),
                names=RedisKeyNames(b"k" * 32, "wvb"),
            )


async def _ignore(updates: WebhookUpdates) -> None:
    return None


def test_memory_store_forgets_after_its_span() -> None:
    async def run() -> list[bool]:
        store = MemorySeenMessages(seconds=0.05)
        first = [await store.first_time("t"), await store.first_time("t")]
        await asyncio.sleep(0.1)
        return [*first, await store.first_time("t")]

    assert asyncio.run(run()) == [True, False, True]


class _DownStore:
    async def first_time(self, token: str) -> bool:
        raise RedisConnectionError("Redis is down")


async def test_messages_are_handed_on_when_the_seen_store_is_down() -> None:
    async for served in serve(_DownStore()):
        assert await served.post_signed(envelope(text_value("a", "b"))) == 200
        await served.settle()
        assert [m.message_id for u in served.drained() for m in u.messages] == ["a", "b"]
