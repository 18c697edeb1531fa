"""The neutral WhatsApp templates: which one a worker gets (their language, the default language,
English), what Meta would refuse is refused when staff set it, every change audited; and
`wvb whatsapp templates` driven as a real command on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from pywa_async.types.templates import TemplateLanguage
from sqlalchemy import select

from bot.app import open_app
from domain.errors import NotFound, Refusal
from services.whatsapp_templates import (
    TEMPLATE_LANGUAGES,
    NeutralTemplate,
    WhatsAppTemplates,
)
from storage.database import Database
from storage.models import AuditEntry
from tests.bot_driver import run_wvb
from tests.conftest import Backend


def test_every_template_language_pywa_knows_is_accepted() -> None:
    """Meta's list grows; pywa mirrors it. An upgrade that adds a language fails here until the
    code is added to ours (ours also has codes Meta listed after pywa 4.5)."""
    known = {member.value for member in TemplateLanguage} - {"UNKNOWN", "None"}
    assert known <= TEMPLATE_LANGUAGES
    assert not {"my", "km", "ne"} & TEMPLATE_LANGUAGES, "Meta has no templates in these"


async def templates(backend: Backend, default_language: str = "en") -> WhatsAppTemplates:
    database = Database(backend.database_url)
    await database.upgrade()
    return WhatsAppTemplates(database, default_language)


async def test_a_worker_gets_their_language_then_the_default_then_english(
    backend: Backend,
) -> None:
    service = await templates(backend, default_language="th")
    try:
        assert await service.template_for("my") is None, "none configured: nothing to send"
        await service.set("cli:test", "en", "wvb_new_message")
        assert await service.template_for("my") == NeutralTemplate("wvb_new_message", "en")
        await service.set("cli:test", "th", "wvb_new_message_th")
        assert await service.template_for("my") == NeutralTemplate("wvb_new_message_th", "th")
        assert await service.template_for("id") == NeutralTemplate("wvb_new_message_th", "th")
        await service.set("cli:test", "my", "wvb_new_message", template_language="en_US")
        assert await service.template_for("my") == NeutralTemplate("wvb_new_message", "en_US")
        assert await service.template_for("en") == NeutralTemplate("wvb_new_message", "en")

        await service.remove("cli:test", "th")
        assert await service.template_for("id") == NeutralTemplate("wvb_new_message", "en")
        coverage = {each.language: each for each in await service.coverage()}
        assert coverage["my"].from_language == "my"
        assert coverage["id"].from_language == "en"
        assert coverage["th"].template is not None
        assert coverage["th"].template.name == "wvb_new_message"
    finally:
        await service.database.dispose()


#: (worker language, template name, template language, the field refused)
REFUSED = [
    ("xx", "wvb_new_message", None, "worker_language"),
    ("en", "Wvb-New-Message", None, "template_name"),
    ("en", "", None, "template_name"),
    ("en", "a" * 513, None, "template_name"),
    ("my", "wvb_new_message", None, "template_language"),  # Meta has no Burmese templates
    ("km", "wvb_new_message", None, "template_language"),
    ("ne", "wvb_new_message", None, "template_language"),
    ("en", "wvb_new_message", "en-US", "template_language"),
    ("en", "wvb_new_message", "EN", "template_language"),
    ("my", "wvb_new_message", "my", "template_language"),
]


async def test_what_meta_would_refuse_is_refused_when_staff_set_it(backend: Backend) -> None:
    service = await templates(backend)
    try:
        for language, name, template_language, field in REFUSED:
            with pytest.raises(Refusal) as refused:
                await service.set("cli:test", language, name, template_language)
            assert refused.value.field == field, (language, name, template_language)
        assert await service.list_templates() == []
        await service.set("cli:test", "en", "a" * 512)  # the longest name Meta allows
        with pytest.raises(NotFound):
            await service.remove("cli:test", "th")
    finally:
        await service.database.dispose()


async def test_wvb_whatsapp_templates_sets_lists_and_removes_audited(backend: Backend) -> None:
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True):
        pass
    env = backend.environment(settings)

    empty = await run_wvb(env, "whatsapp", "templates", "list", "--json")
    assert (empty.returncode, json.loads(empty.stdout)) == (0, []), empty.stderr

    made = await run_wvb(env, "whatsapp", "templates", "set", "en", "wvb_new_message", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["template_language"] == "en"
    burmese = await run_wvb(
        env, "whatsapp", "templates", "set", "my", "wvb_new_message",
        "--template-language", "en_US",
    )  # fmt: skip
    assert burmese.returncode == 0, burmese.stderr
    assert "wvb_new_message" in burmese.stdout

    listed = await run_wvb(env, "whatsapp", "templates", "list", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["language"], r["name"], r["template_language"]) for r in rows] == [
        ("en", "wvb_new_message", "en"),
        ("my", "wvb_new_message", "en_US"),
    ]
    for row in rows:
        assert set(row) == {"language", "name", "template_language", "updated_at"}
        assert row["updated_at"].endswith("Z")

    table = await run_wvb(env, "whatsapp", "templates", "list")
    assert table.returncode == 0, table.stderr
    lines = {line.split()[0]: line for line in table.stdout.splitlines()[1:] if line.strip()}
    assert "en_US" in lines["my"]
    assert "fallback" in lines["th"], "Thai workers get the English template"
    assert "fallback" not in lines["en"]

    # A value Meta would refuse: the action fails (1), naming the option and why.
    refused = await run_wvb(env, "whatsapp", "templates", "set", "km", "wvb_new_message")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: --template-language: WhatsApp has no templates")
    bad_name = await run_wvb(env, "whatsapp", "templates", "set", "th", "New Message")
    assert bad_name.returncode == 1
    assert "lowercase letters, digits and underscores" in bad_name.stderr
    # A command line that cannot be read: a usage mistake (2), nothing tried.
    missing = await run_wvb(env, "whatsapp", "templates", "set", "th")
    assert missing.returncode == 2
    nothing = await run_wvb(env, "whatsapp", "templates", "remove", "th")
    assert nothing.returncode == 1
    assert "no WhatsApp template is set for 'th'" in nothing.stderr

    removed = await run_wvb(env, "whatsapp", "templates", "remove", "my", "--json")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["name"] == "wvb_new_message"
    after = json.loads((await run_wvb(env, "whatsapp", "templates", "list", "--json")).stdout)
    assert [row["language"] for row in after] == ["en"]

    async with open_app(settings) as app, app.database.sessions() as session:
        audit = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.like("whatsapp_template.%"))
                .order_by(AuditEntry.id)
            )
        )
    assert [(entry.action, entry.subject) for entry in audit] == [
        ("whatsapp_template.set", "en"),
        ("whatsapp_template.set", "my"),
        ("whatsapp_template.remove", "my"),
    ]
    assert all(entry.actor.startswith("cli:") for entry in audit)
    assert audit[1].details["template_language"] == "en_US"
