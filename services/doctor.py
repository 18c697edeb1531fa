"""The go-live checklist's vocabulary, and its checks of what staff configured in the database.

`wvb doctor` (``bot/doctor.py`` runs it, ``cli/doctor.py`` prints it) asks, line by line, whether
the bot is ready for workers. Each line is a ``Check``: OK, WARN (works, but something is lost
or risky) or FAIL (a worker or staff member would be let down), with the fix in one phrase. The
checks here read only what staff set up (workplaces, emergency contacts) and the outbox; they
take plain values, so the rules are tested without a bot around them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.statuses import OutboxStatus
from locales import SOURCE_LANGUAGE
from locales import staff_gettext as _
from services.cases import ANY
from services.views import WorkplaceView
from storage.models import EmergencyContact, OutboxMessage, WhatsAppTemplate, Workplace, utc_now

#: A pending message due longer ago than this is stuck: no relay is sending.
OUTBOX_OVERDUE = timedelta(minutes=10)
#: Quiet hours longer than this leave little of the day for broadcasts.
LONG_QUIET_HOURS = 14
#: How many names a line lists before "…".
NAMES_SHOWN = 3


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One line of the checklist. ``name`` is stable (scripts read it from ``--json``);
    ``detail`` says what was found, ``fix`` what to do (None when there is nothing to do)."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class Checklist:
    """Every line, and whether the bot is ready for workers: no line failed."""

    ready: bool
    checks: list[Check]

    @classmethod
    def of(cls, checks: list[Check]) -> Checklist:
        return cls(all(check.status != Status.FAIL for check in checks), checks)


@dataclass(frozen=True)
class StoredConfiguration:
    """What the checks need from the database: active workplaces, the countries emergency
    contacts are set for (``*``: any country), outbox messages stuck, and the languages that
    have a neutral WhatsApp template."""

    workplaces: list[WorkplaceView] = field(default_factory=list)
    contact_countries: set[str] = field(default_factory=set)
    failed_messages: int = 0
    overdue_messages: int = 0
    whatsapp_template_languages: set[str] = field(default_factory=set)


async def read_configuration(
    sessions: async_sessionmaker[AsyncSession],
) -> StoredConfiguration:
    """Read (and only read) what staff configured, and the outbox's stuck counts."""
    async with sessions() as session:
        workplaces = (
            await session.execute(
                select(Workplace).where(Workplace.active.is_(True)).order_by(Workplace.name)
            )
        ).scalars()
        views = [WorkplaceView(w.id, w.name, w.country, w.timezone) for w in workplaces]
        countries = set((await session.scalars(select(EmergencyContact.country))).all())
        failed = await session.scalar(
            select(func.count()).where(OutboxMessage.status == OutboxStatus.FAILED)
        )
        overdue = await session.scalar(
            select(func.count())
            .where(OutboxMessage.status == OutboxStatus.PENDING)
            # held for a WhatsApp worker to write (the 24-hour window): waiting is its purpose
            .where(OutboxMessage.held_for_window.is_(False))
            .where(OutboxMessage.next_attempt_at < utc_now() - OUTBOX_OVERDUE)
        )
        templates = set((await session.scalars(select(WhatsAppTemplate.language))).all())
    return StoredConfiguration(views, countries, failed or 0, overdue or 0, templates)


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (", …" if len(names) > NAMES_SHOWN else "")


def workplaces_check(config: StoredConfiguration) -> Check:
    if not config.workplaces:
        return Check(
            "workplaces",
            Status.FAIL,
            _("no workplace yet: workers cannot say where the problem is"),
            _("run `wvb workplaces add NAME --country CC --timezone ZONE`"),
        )
    return Check("workplaces", Status.OK, _("{count} active").format(count=len(config.workplaces)))


def contacts_check(config: StoredConfiguration) -> Check:
    """An urgent reporter at a workplace sees the contacts of its country, else those for any
    country (``*``); a workplace without a country, or a worker who names none, only the
    latter (``services/cases.py``, ``emergency_contacts``)."""
    countries = config.contact_countries
    any_country = ANY in countries
    workplace_countries = {w.country for w in config.workplaces if w.country}
    uncovered = [] if any_country else sorted(workplace_countries - countries)
    countryless = [w.name for w in config.workplaces if not w.country]
    if not countries:
        example = next((w.country for w in config.workplaces if w.country), "CC")
        return Check(
            "contacts",
            Status.FAIL,
            _("no emergency contacts: urgent reporters are shown no number to call"),
            _("run `wvb contacts set --country {country} --text TEXT`").format(country=example),
        )
    if uncovered:
        return Check(
            "contacts",
            Status.FAIL,
            _("no emergency contacts for workplaces in {countries}").format(
                countries=", ".join(uncovered)
            ),
            _("run `wvb contacts set --country {country} --text TEXT`").format(
                country=uncovered[0]
            ),
        )
    if countryless and not any_country:
        return Check(
            "contacts",
            Status.FAIL,
            _("no emergency contacts for workplaces without a country ({names})").format(
                names=_names(countryless)
            ),
            _("run `wvb contacts set --text TEXT` (for any country)"),
        )
    # Emergency numbers differ by country: contacts written for any country are a fallback,
    # not the labour hotline or police of the country a worker is in.
    fallback_only = sorted(workplace_countries - countries)
    if fallback_only:
        return Check(
            "contacts",
            Status.WARN,
            _("workplaces in {countries} get only the contacts for any country").format(
                countries=", ".join(fallback_only)
            ),
            _("run `wvb contacts set --country {country} --text TEXT`").format(
                country=fallback_only[0]
            ),
        )
    if not any_country:
        return Check(
            "contacts",
            Status.WARN,
            _("none for workers who name no workplace"),
            _("run `wvb contacts set --text TEXT` (for any country)"),
        )
    return Check("contacts", Status.OK, _("set for every workplace's country"))


def _known_zone(zone: str) -> bool:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def time_zones_check(
    config: StoredConfiguration, default_timezone: str, language_timezones: dict[str, str]
) -> Check:
    """Quiet hours are local: the workplace's zone, else the worker's language's, else
    WVB_TIMEZONE."""
    unknown = [w for w in config.workplaces if w.timezone and not _known_zone(w.timezone)]
    if unknown:
        return Check(
            "time_zones",
            Status.FAIL,
            _("unknown time zone {zone} for {name}").format(
                zone=unknown[0].timezone, name=unknown[0].name
            ),
            _('run `wvb workplaces add "{name}" --timezone ZONE`').format(name=unknown[0].name),
        )
    without = [w.name for w in config.workplaces if not w.timezone]
    if without:
        return Check(
            "time_zones",
            Status.WARN,
            _("no time zone for {names}: quiet hours there follow {zone}").format(
                names=_names(without), zone=default_timezone
            ),
            _('run `wvb workplaces add "{name}" --timezone ZONE`').format(name=without[0]),
        )
    if default_timezone == "UTC" and not language_timezones:
        return Check(
            "time_zones",
            Status.WARN,
            _("workers who name no workplace have quiet hours in UTC"),
            _("set WVB_TIMEZONE (or WVB_LANGUAGE_TIMEZONES), such as Asia/Bangkok"),
        )
    return Check(
        "time_zones",
        Status.OK,
        _("every workplace has one; otherwise {zone}").format(zone=default_timezone),
    )


def quiet_hours_check(quiet_hours: str, window: tuple[int, int] | None) -> Check:
    if window is None:
        return Check(
            "quiet_hours",
            Status.WARN,
            _("off: broadcasts may wake workers at night"),
            _("set WVB_QUIET_HOURS=21:00-07:00"),
        )
    start, end = window
    hours = ((end - start) % (24 * 60)) / 60
    if hours == 0:  # services/broadcasts.py reads an equal start and end as quiet all day
        return Check(
            "quiet_hours",
            Status.FAIL,
            _("{hours} starts and ends at the same time: every hour is quiet, "
              "broadcasts never go out").format(hours=quiet_hours),
            _("set WVB_QUIET_HOURS=21:00-07:00"),
        )  # fmt: skip
    if hours > LONG_QUIET_HOURS:
        return Check(
            "quiet_hours",
            Status.WARN,
            _("{hours}: broadcasts wait {count} hours a day").format(
                hours=quiet_hours, count=f"{hours:g}"
            ),
            _("set WVB_QUIET_HOURS=21:00-07:00"),
        )
    return Check("quiet_hours", Status.OK, _("{hours}, local time").format(hours=quiet_hours))


def outbox_check(config: StoredConfiguration) -> Check:
    if config.failed_messages:
        return Check(
            "outbox",
            Status.WARN,
            _("failed messages: {count}").format(count=config.failed_messages),
            _("see `wvb outbox list --status failed`, then `wvb outbox retry`"),
        )
    if config.overdue_messages:
        return Check(
            "outbox",
            Status.WARN,
            _("messages waiting too long: {count}").format(count=config.overdue_messages),
            _("make sure `wvb run` is running; see `wvb outbox list`"),
        )
    return Check("outbox", Status.OK, _("no message failed or waits too long"))


def stored_configuration_checks(
    config: StoredConfiguration,
    *,
    default_timezone: str,
    language_timezones: dict[str, str],
) -> list[Check]:
    return [
        workplaces_check(config),
        contacts_check(config),
        time_zones_check(config, default_timezone, language_timezones),
        outbox_check(config),
    ]


def whatsapp_templates_check(
    config: StoredConfiguration, languages: list[str], default_language: str
) -> Check:
    """Whether every shipped language has a neutral template, the only message WhatsApp lets
    the bot send a worker whose 24-hour window has closed. A language without its own gets, by
    the fallback chain, WVB_DEFAULT_LANGUAGE's and then English's: a notice the worker may not
    read (WARN). With neither, those workers are never told that a reply waits (FAIL)."""
    configured = config.whatsapp_template_languages
    if not configured:
        return Check(
            "wa_templates",
            Status.FAIL,
            _("no neutral template: WhatsApp workers silent for 24 hours are never told that "
              "a staff reply waits"),
            _("register one with Meta (README, Connecting WhatsApp), then run "
              "`wvb whatsapp templates set en NAME`"),
        )  # fmt: skip
    chain = list(dict.fromkeys((default_language, SOURCE_LANGUAGE)))  # the fallback chain
    fallback = next((language for language in chain if language in configured), None)
    missing = [language for language in languages if language not in configured]
    if missing and fallback is None:
        return Check(
            "wa_templates",
            Status.FAIL,
            _(
                "no neutral template for {languages}, nor for {fallbacks} to fall back on: "
                "those workers are never told that a staff reply waits"
            ).format(languages=_names(missing), fallbacks=" or ".join(chain)),
            _("run `wvb whatsapp templates set {language} NAME`").format(language=default_language),
        )
    if missing:
        return Check(
            "wa_templates",
            Status.WARN,
            _(
                "no neutral template of their own for {languages}: those workers get the "
                "{fallback} one"
            ).format(languages=_names(missing), fallback=fallback),
            _("run `wvb whatsapp templates set {language} NAME [--template-language CODE]`").format(
                language=missing[0]
            ),
        )
    return Check(
        "wa_templates",
        Status.OK,
        _("a neutral template for each of the {count} languages").format(count=len(languages)),
    )
