"""Drive a worker's conversation through the fake Bot API: act, then wait for the bot's reply."""

from __future__ import annotations

from collections.abc import Callable

from locales import LANGUAGES
from tests.fake_telegram_api import FakeTelegramServer, SentMessage, SimulatedUser

REPLY_TIMEOUT = 30.0


def data_of(message: SentMessage) -> set[str]:
    return {button.get("callback_data", "") for button in message.buttons()}


async def reply(
    server: FakeTelegramServer,
    user: SimulatedUser,
    predicate: Callable[[SentMessage], bool],
    since: int,
) -> SentMessage:
    [message] = await server.wait_for(
        lambda m: m.chat_id == user.chat_id and predicate(m), start=since, timeout=REPLY_TIMEOUT
    )
    return message


async def ask(
    server: FakeTelegramServer,
    user: SimulatedUser,
    act: Callable[[], object],
    predicate: Callable[[SentMessage], bool],
) -> SentMessage:
    """Do ``act`` as the worker and return the first later bot message matching ``predicate``."""
    since = len(server.sent)
    act()
    return await reply(server, user, predicate, since)


async def onboard(server: FakeTelegramServer, user: SimulatedUser, language: str) -> SentMessage:
    """/start, pick ``language`` by its button, accept the privacy notice; return the menu."""
    picker = await ask(
        server, user, lambda: user.send_command("start"), lambda m: "lang:en" in data_of(m)
    )
    assert picker.buttons()[0]["callback_data"] == f"lang:{language}", "language_code preselects"
    privacy = await ask(
        server,
        user,
        lambda: user.press_button(LANGUAGES[language]),
        lambda m: "privacy:ok" in data_of(m),
    )
    assert "/forget" in privacy.text
    return await ask(
        server,
        user,
        lambda: user.press("privacy:ok", privacy),
        lambda m: "menu:report" in data_of(m),
    )
