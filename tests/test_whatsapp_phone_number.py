"""The Graph client's read-only look at the business number (``GET /{phone-number-id}``), which
`wvb doctor` uses: over real HTTP against the fake Cloud API, and against servers that are not it.

Each failure comes out as one line naming the setting to fix — the token, the phone number id or
the API base — and never carries the token."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp import web

from bot.channels.whatsapp.api import (
    GRAPH_API_VERSION,
    BusinessNumber,
    GraphClient,
    error_for,
    phone_number_problem,
)
from tests.fake_whatsapp_api import (
    DEFAULT_DISPLAY_PHONE_NUMBER,
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_TOKEN,
    FakeWhatsAppServer,
)

WRONG_TOKEN = "EAAG-WRONG-TOKEN-abcdefghijklmnop"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeWhatsAppServer]:
    async with FakeWhatsAppServer() as server:
        yield server


def graph(
    base: str, token: str = DEFAULT_TOKEN, number: str = DEFAULT_PHONE_NUMBER_ID
) -> GraphClient:
    return GraphClient(api_base=base, token=token, phone_number_id=number, timeout=5)


async def test_the_number_and_its_display_name_are_read_and_nothing_is_sent(
    fake: FakeWhatsAppServer,
) -> None:
    async with graph(fake.base_url) as client:
        number = await client.business_number()
        assert await client.phone_number_problem() is None

    assert number == BusinessNumber(DEFAULT_DISPLAY_PHONE_NUMBER, "Worker Voice")
    path = f"/v{GRAPH_API_VERSION}.0/{DEFAULT_PHONE_NUMBER_ID}"
    assert [(r.method, r.path, r.authorized) for r in fake.requests] == [("GET", path, True)] * 2
    assert fake.sent == []


async def test_a_token_meta_refuses_names_the_token_setting_and_not_the_token(
    fake: FakeWhatsAppServer,
) -> None:
    async with graph(fake.base_url, token=WRONG_TOKEN) as client:
        problem = await client.phone_number_problem()

    assert problem is not None
    assert problem.startswith("WVB_WHATSAPP_TOKEN: "), problem
    assert "Graph code 190" in problem
    assert "WRONG-TOKEN" not in problem
    assert [r.error_code for r in fake.requests] == [190]


async def test_a_number_meta_does_not_know_names_the_phone_number_id(
    fake: FakeWhatsAppServer,
) -> None:
    async with graph(fake.base_url, number="109999999999999") as client:
        problem = await client.phone_number_problem()

    assert problem is not None
    assert problem.startswith("WVB_WHATSAPP_PHONE_NUMBER_ID: "), problem
    assert "Graph code 100" in problem


def test_a_token_without_access_to_the_number_is_the_token_s_problem() -> None:
    # Graph's permission errors (10, 200-299) also say: this token may not touch this number.
    for code, status in ((200, 403), (10, 403), (0, 401)):
        problem = phone_number_problem(error_for(code, status), "https://graph.facebook.com")
        assert problem.startswith("WVB_WHATSAPP_TOKEN: "), (code, problem)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_api_base_that_does_not_answer_names_the_api_base() -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    async with graph(base) as client:
        problem = await client.phone_number_problem()

    assert problem == f"WVB_WHATSAPP_API_BASE: no answer from {base}"


async def serve(handler: web.RequestHandler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def test_an_api_base_that_is_not_the_cloud_api_or_is_down_names_the_api_base() -> None:
    async def web_page(request: web.Request) -> web.Response:  # a proxy's own 404 page
        return web.Response(status=404, text="<html>Not Found</html>", content_type="text/html")

    async def empty_object(request: web.Request) -> web.Response:  # 200, but not a number
        return web.json_response({})

    async def overloaded(request: web.Request) -> web.Response:  # Graph's 131016 with its 503
        error = {"message": "(#131016) Service unavailable", "code": 131016, "fbtrace_id": "Ab1"}
        return web.json_response({"error": error}, status=503)

    problems = []
    for handler in (web_page, empty_object, overloaded):
        runner, base = await serve(handler)
        try:
            async with graph(base) as client:
                problems.append((base, await client.phone_number_problem()))
        finally:
            await runner.cleanup()

    (page_base, page), (empty_base, empty), (down_base, down) = problems
    assert page == f"WVB_WHATSAPP_API_BASE: {page_base} does not answer as the Cloud API (HTTP 404)"
    assert empty == (
        f"WVB_WHATSAPP_API_BASE: {empty_base} does not answer as the Cloud API "
        "(HTTP 200, Graph code 0)"
    )
    assert down == (
        f"WVB_WHATSAPP_API_BASE: the Cloud API at {down_base} is unavailable "
        "(HTTP 503, Graph code 131016, fbtrace_id Ab1)"
    )
