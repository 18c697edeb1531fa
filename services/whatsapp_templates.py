"""The neutral WhatsApp templates: which pre-approved template asks a worker to write, per language.

WhatsApp lets the bot message a worker freely only within 24 hours of the worker's last message.
Outside that window only a template Meta approved beforehand may go, so a staff reply, a
validation prompt or a reminder is held and one neutral template ("You have a new message.
Reply to see it.") asks the worker to write (``services/window_hold.py``). Staff register that
template with Meta, in each language they can, and name it here (`wvb whatsapp templates set`);
every change is audited like any staff action.

Which template a worker gets: the one of their own language, else the one of
``WVB_DEFAULT_LANGUAGE``, else the English one (``template_for``); with none at all the message
still waits for the worker, and the relay says why.

Template language codes are Meta's (``en``, ``en_US``, ``pt_BR``), and only those Meta lists as
template languages are accepted (``TEMPLATE_LANGUAGES``): a template can only be approved in one
of them, so anything else is a typo (``en-US``, ``EN``) that would fail only when a worker
needs it. Burmese, Khmer and Nepali are not on Meta's list: a template for those workers is
one approved in another language they read, named with its code (``--template-language en``),
or none, and the fallback above applies (docs/design/whatsapp.md, "Decisions (built)").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select

from domain.errors import NotFound, Refusal
from locales import LANGUAGES, SOURCE_LANGUAGE
from services import audit
from services.access import ActorLike, require
from storage.database import Database
from storage.models import WhatsAppTemplate, utc_now

#: Meta's template languages: the codes of pywa 4.5's ``TemplateLanguage`` (a mirror of Meta's
#: "Supported languages" page; a test fails when a pywa upgrade adds one missing here), and those
#: Meta listed since (its page as of May 2026).
TEMPLATE_LANGUAGES: Final = frozenset(
    {
        "af", "sq", "ar", "ar_EG", "ar_AE", "ar_LB", "ar_MA", "ar_QA", "ar_SA", "az", "be_BY",
        "bn", "bn_IN", "bg", "ca", "zh_CN", "zh_HK", "zh_TW", "hr", "cs", "da", "prs_AF", "nl",
        "nl_BE", "en", "en_GB", "en_US", "en_AE", "en_AU", "en_CA", "en_GH", "en_IN", "et", "fil",
        "fi", "fr", "fr_CA", "fr_BE", "ka", "de", "el", "gu", "ha", "he", "hi", "hu", "id", "ga",
        "it", "ja", "kn", "kk", "rw_RW", "ko", "ky_KG", "lo", "lv", "lt", "mk", "ms", "ml", "mr",
        "nb", "fa", "pl", "pt_BR", "pt_PT", "pa", "ro", "ru", "sr", "sk", "sl", "es", "es_AR",
        "es_ES", "es_MX", "es_CL", "es_CO", "es_PE", "es_VE", "sw", "sv", "ta", "te", "th", "tr",
        "uk", "ur", "uz", "vi", "zu",
    }
)  # fmt: skip
#: Meta's rule for a template's name: lowercase letters, digits and underscores, at most 512.
TEMPLATE_NAME: Final = re.compile(r"[a-z0-9_]{1,512}")


@dataclass(frozen=True)
class WhatsAppTemplateView:
    """A configured template as `wvb whatsapp templates list` shows it."""

    language: str  # the workers' language it is for (one of the shipped languages)
    name: str  # the template's name at Meta
    template_language: str  # the language code it was approved in at Meta
    updated_at: datetime


@dataclass(frozen=True)
class NeutralTemplate:
    """What the sender sends: the template's name and the Meta language code it was approved in."""

    name: str
    language: str


@dataclass(frozen=True)
class TemplateCoverage:
    """The template workers of one language get, and whose it is (None: no template at all)."""

    language: str
    template: WhatsAppTemplateView | None
    from_language: str | None


def _view(row: WhatsAppTemplate) -> WhatsAppTemplateView:
    return WhatsAppTemplateView(row.language, row.name, row.template_language, row.updated_at)


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise Refusal(
            "worker_language",
            f"unknown language {language!r}; one of {', '.join(LANGUAGES)}",
        )
    return language


def check_name(name: str) -> str:
    if not TEMPLATE_NAME.fullmatch(name):
        raise Refusal(
            "template_name",
            f"{name[:40]!r} is not a WhatsApp template name: lowercase letters, digits and "
            "underscores, at most 512, such as wvb_new_message",
        )
    return name


def check_template_language(code: str, language: str) -> str:
    if code in TEMPLATE_LANGUAGES:
        return code
    if code == language:
        reason = (
            f"WhatsApp has no templates in {LANGUAGES[language]} ({code!r} is not one of Meta's "
            "template languages): name the language code of a template approved in a language "
            "these workers read, such as en, or set none and they get the fallback"
        )
    else:
        reason = (
            f"{code[:20]!r} is not one of Meta's template language codes (such as en, en_US, "
            "th, pt_BR: an underscore, the region in capitals)"
        )
    raise Refusal("template_language", reason)


class WhatsAppTemplates:
    def __init__(self, database: Database, default_language: str = SOURCE_LANGUAGE) -> None:
        self.database = database
        self.default_language = default_language

    async def list_templates(self) -> list[WhatsAppTemplateView]:
        """The configured templates, by language."""
        async with self.database.sessions() as session:
            rows = await session.scalars(
                select(WhatsAppTemplate).order_by(WhatsAppTemplate.language)
            )
            return [_view(row) for row in rows]

    async def coverage(self) -> list[TemplateCoverage]:
        """What workers of each shipped language get: their own template, another language's
        (the fallback), or none."""
        configured = {view.language: view for view in await self.list_templates()}
        covered = []
        for language in LANGUAGES:
            source = next((c for c in self.fallback_chain(language) if c in configured), None)
            template = configured.get(source) if source is not None else None
            covered.append(TemplateCoverage(language, template, source))
        return covered

    async def set(
        self, actor: ActorLike, language: str, name: str, template_language: str | None = None
    ) -> WhatsAppTemplateView:
        """Name the template for workers of ``language`` (replacing any), approved at Meta in
        ``template_language`` (default: ``language`` itself). Audited."""
        actor = await require(self.database, actor, "staff.manage", "whatsapp.template.set")
        check_language(language)
        check_name(name)
        code = check_template_language(template_language or language, language)
        async with self.database.transaction() as session:
            row = await session.get(WhatsAppTemplate, language)
            previous = (
                None if row is None else {"name": row.name, "language": row.template_language}
            )
            if row is None:
                row = WhatsAppTemplate(language=language)
                session.add(row)
            row.name, row.template_language, row.updated_at = name, code, utc_now()
            audit.record(session, actor, "whatsapp_template.set", language,
                         name=name, template_language=code, previous=previous)  # fmt: skip
            return _view(row)

    async def remove(self, actor: ActorLike, language: str) -> WhatsAppTemplateView:
        """Stop sending a template of its own to workers of ``language`` (they get the
        fallback's). Audited; returns what was removed."""
        actor = await require(self.database, actor, "staff.manage", "whatsapp.template.remove")
        check_language(language)
        async with self.database.transaction() as session:
            row = await session.get(WhatsAppTemplate, language)
            if row is None:
                raise NotFound("worker_language", f"no WhatsApp template is set for {language!r}")
            gone = _view(row)
            await session.delete(row)
            audit.record(session, actor, "whatsapp_template.remove", language,
                         name=gone.name, template_language=gone.template_language)  # fmt: skip
            return gone

    def fallback_chain(self, language: str) -> list[str]:
        """Whose template a worker of ``language`` gets, in order of preference."""
        chain = [language, self.default_language, SOURCE_LANGUAGE]
        return list(dict.fromkeys(chain))

    async def template_for(self, language: str) -> NeutralTemplate | None:
        """The template to send a worker of ``language``: theirs, else the default language's,
        else English; None when none of those is configured."""
        chain = self.fallback_chain(language)
        async with self.database.sessions() as session:
            rows = {
                row.language: row
                for row in await session.scalars(
                    select(WhatsAppTemplate).where(WhatsAppTemplate.language.in_(chain))
                )
            }
        for candidate in chain:
            if candidate in rows:
                return NeutralTemplate(rows[candidate].name, rows[candidate].template_language)
        return None
