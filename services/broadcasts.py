"""Broadcasts: staff send rights education to a segment of subscribed workers.

A broadcast is created with its text in every language it will go out in (a lesson topic brings
its own text in every shipped language; staff texts come per language). When it is due, one
delivery row is written per recipient in the same transaction that moves it to ``sending``; the
broadcast relay (``bot/channels/broadcast_relay.py``) sends those rows at the configured rate.
Workers who stopped broadcasts, blocked the bot or used /forget are never recipients.

WhatsApp workers whose 24-hour window is closed when their delivery goes get what the broadcast's
``outside_window`` says (staff choose per broadcast): ``skip`` (the default) leaves them out and
counts them (``skipped`` in the status); ``template`` sends them the neutral template and holds
their delivery until they write (``services/window_hold.py``), giving it up as skipped after
``BROADCAST_HOLD_DAYS``. Skip is the default because every template is charged by Meta and counts
against the number's daily limit of business-started conversations, which case replies and
validation prompts need more than news does; and /learn keeps the lessons within reach.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.messages import utf16_length
from domain.errors import NotFound, Refusal
from domain.statuses import BROADCAST_ENDED, BroadcastState, DeliveryStatus, OutsideWindow
from locales import LANGUAGES, translator
from services import audit
from services.access import ActorLike, require
from services.reporters import reporter_id
from services.window_hold import BROADCAST_HOLD_DAYS, HELD_REASON
from storage.crypto import Keyring
from storage.database import Database
from storage.models import (
    Broadcast,
    BroadcastDelivery,
    BroadcastText,
    Worker,
    WorkerAddress,
    WorkerTag,
    Workplace,
    iso_utc,
    utc_now,
)
from storage.repositories import CaseRepository

#: The channel whose 24-hour window a broadcast's ``outside_window`` is about.
WHATSAPP = "whatsapp"
#: Telegram's limit; the footer telling workers how to stop is added to every text.
MAX_TEXT_UNITS = 4096
FALLBACKS = ("skip", "default")


#: The name broadcast refusals had before every service shared one refusal type.
BroadcastError = Refusal
_SEGMENT_TERMS = "use language=CODE, workplace=ID-OR-NAME or tag=TAG"


@dataclass(frozen=True)
class Segment:
    """Who a broadcast is for. Terms of one kind are alternatives (language=th,language=my);
    kinds are combined (language=th,tag=night-shift: Thai speakers tagged night-shift)."""

    languages: frozenset[str] = frozenset()
    workplaces: frozenset[int] = frozenset()
    tags: frozenset[str] = frozenset()

    def describe(self) -> str:
        terms = [f"language={code}" for code in sorted(self.languages)]
        terms += [f"workplace={wid}" for wid in sorted(self.workplaces)]
        terms += [f"tag={tag}" for tag in sorted(self.tags)]
        return ",".join(terms) or "all"


@dataclass(frozen=True)
class BroadcastPolicy:
    """Quiet hours (minutes after midnight, local) and how a worker's time zone is found."""

    quiet_window: tuple[int, int] | None = (21 * 60, 7 * 60)
    default_timezone: str = "UTC"
    language_timezones: dict[str, str] = field(default_factory=dict)
    default_language: str = "en"

    def timezone_for(self, language: str, workplace_timezone: str | None) -> str:
        return workplace_timezone or self.language_timezones.get(language) or self.default_timezone

    def quiet_until(self, now: datetime, timezone: str) -> datetime | None:
        """When quiet hours end for someone in ``timezone``, if they are in them at ``now``."""
        if self.quiet_window is None:
            return None
        start, end = self.quiet_window
        if start == end:
            return None
        local = now.astimezone(_zone(timezone))
        minute = local.hour * 60 + local.minute
        quiet = start <= minute < end if start < end else (minute >= start or minute < end)
        if not quiet:
            return None
        day = local.date() if minute < end else local.date() + timedelta(days=1)
        ends = datetime(day.year, day.month, day.day, end // 60, end % 60, tzinfo=local.tzinfo)
        return ends.astimezone(now.tzinfo)


@dataclass(frozen=True)
class _Recipient:
    worker_id: int
    channel: str
    language: str  # the language of the text they get
    timezone: str


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def check_tag(tag: str) -> str:
    tag = tag.strip().lower()
    if not tag or len(tag) > 40 or not all(c.isalnum() or c in "-_." for c in tag):
        raise Refusal("tag", "a tag is 1-40 letters, digits, '-', '_' or '.', such as night-shift")
    return tag


def footer(language: str) -> str:
    return translator(language).gettext("To stop these messages, send /stop.")


class BroadcastService:
    def __init__(
        self,
        database: Database,
        policy: BroadcastPolicy | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        self.database = database
        self.policy = policy or BroadcastPolicy()
        self.keyring = keyring  # to find a case's reporter (tag_reporter)

    # -- segments --------------------------------------------------------------------------

    async def parse_segment(self, text: str | None) -> Segment:
        text = (text or "").strip()
        if text in ("", "all"):
            return Segment()
        languages: set[str] = set()
        workplace_specs: list[str] = []
        tags: set[str] = set()
        for term in filter(None, (part.strip() for part in text.split(","))):
            kind, sep, value = term.partition("=")
            kind, value = kind.strip().lower(), value.strip()
            if not sep or not value:
                raise Refusal("segment", f"term {term!r}: {_SEGMENT_TERMS}")
            if kind == "language":
                if value not in LANGUAGES:
                    raise Refusal(
                        "segment", f"unknown language {value!r}; one of {', '.join(LANGUAGES)}"
                    )
                languages.add(value)
            elif kind == "workplace":
                workplace_specs.append(value)
            elif kind == "tag":
                tags.add(check_tag(value))
            else:
                raise Refusal("segment", f"term {term!r}: {_SEGMENT_TERMS}")
        workplaces: set[int] = set()
        if workplace_specs:
            async with self.database.sessions() as session:
                for spec in workplace_specs:
                    condition = (
                        Workplace.id == int(spec) if spec.isdecimal() else Workplace.name == spec
                    )
                    found = await session.scalar(select(Workplace.id).where(condition))
                    if found is None:
                        raise Refusal("segment", f"no workplace {spec!r}")
                    workplaces.add(found)
        return Segment(frozenset(languages), frozenset(workplaces), frozenset(tags))

    def _recipients(self, segment: Segment) -> Any:
        """Subscribed, reachable workers of the segment, on every channel: (id, channel,
        language, workplace time zone). A worker has one address (a pseudonym is of one channel)."""
        query = (
            select(Worker.id, WorkerAddress.channel, Worker.language, Workplace.timezone)
            .join(WorkerAddress, WorkerAddress.worker_id == Worker.id)
            .outerjoin(Workplace, Workplace.id == Worker.workplace_id)
            .where(Worker.subscribed.is_(True), Worker.blocked_at.is_(None))
            .order_by(Worker.id)
        )
        if segment.languages:
            query = query.where(Worker.language.in_(sorted(segment.languages)))
        if segment.workplaces:
            query = query.where(Worker.workplace_id.in_(sorted(segment.workplaces)))
        if segment.tags:
            query = query.where(
                exists().where(WorkerTag.worker_id == Worker.id, WorkerTag.tag.in_(segment.tags))
            )
        return query

    async def _plan(
        self, session: AsyncSession, segment: Segment, languages: set[str], fallback: str
    ) -> tuple[list[_Recipient], int]:
        """The recipients of the segment with the language each gets (their own, or the default
        under fallback ``default``) and their time zone; and how many are skipped for want of a
        text in their language. Dry runs and starts both count from this, so they agree."""
        recipients = []
        skipped = 0
        for worker_id, channel, language, zone in await session.execute(self._recipients(segment)):
            if language in languages:
                chosen = language
            elif fallback == "default" and self.policy.default_language in languages:
                chosen = self.policy.default_language
            else:
                skipped += 1
                continue
            timezone = self.policy.timezone_for(language, zone)
            recipients.append(_Recipient(worker_id, channel, chosen, timezone))
        return recipients, skipped

    # -- create, dry run, status -------------------------------------------------------------

    def _check_texts(self, texts: dict[str, str]) -> dict[str, str]:
        if not texts:
            raise Refusal("texts", "none given: give a lesson topic or at least one text")
        checked = {}
        for language, text in texts.items():
            if language not in LANGUAGES:
                raise Refusal(
                    "texts", f"unknown language {language!r}; one of {', '.join(LANGUAGES)}"
                )
            text = text.strip()
            if not text:
                raise Refusal("texts", f"the {language} text is empty")
            if utf16_length(text + "\n\n" + footer(language)) > MAX_TEXT_UNITS:
                raise Refusal(
                    "texts",
                    f"the {language} text is too long for one message "
                    f"({utf16_length(text)} units; at most about 3,900)",
                )
            checked[language] = text
        return checked

    async def preview(
        self,
        actor: ActorLike,
        texts: dict[str, str],
        segment: Segment,
        fallback: str = "skip",
        outside_window: str = OutsideWindow.SKIP,
    ) -> dict[str, Any]:
        """What ``create`` would do now: recipients per language, skipped, in quiet hours."""
        await require(self.database, actor, "broadcasts", "broadcast.preview")
        texts = self._check_texts(texts)
        self._check_fallback(fallback)
        self._check_outside_window(outside_window)
        now = utc_now()
        async with self.database.sessions() as session:
            recipients, skipped = await self._plan(session, segment, set(texts), fallback)
        per_language = Counter(recipient.language for recipient in recipients)
        whatsapp = sum(1 for recipient in recipients if recipient.channel == WHATSAPP)
        quiet = sum(
            1 for recipient in recipients if self.policy.quiet_until(now, recipient.timezone)
        )
        return {
            "dry_run": True,
            "segment": segment.describe(),
            "total": sum(per_language.values()),
            "languages": dict(sorted(per_language.items())),
            "skipped_no_text": skipped,
            "in_quiet_hours_now": quiet,
            # Of these, on WhatsApp: those outside their 24-hour window when it goes get what
            # outside_window says (the window is known only then).
            "whatsapp": whatsapp,
            "outside_window": outside_window,
        }

    @staticmethod
    def _check_fallback(fallback: str) -> None:
        if fallback not in FALLBACKS:
            raise Refusal("fallback", f"must be {' or '.join(FALLBACKS)}")

    @staticmethod
    def _check_outside_window(outside_window: str) -> None:
        if outside_window not in tuple(OutsideWindow):
            raise Refusal("outside_window", f"must be {' or '.join(OutsideWindow)}")

    async def create(
        self,
        actor: ActorLike,
        texts: dict[str, str],
        segment: Segment,
        *,
        topic: str | None = None,
        at: datetime | None = None,
        urgent: bool = False,
        fallback: str = "skip",
        outside_window: str = OutsideWindow.SKIP,
    ) -> dict[str, Any]:
        actor = await require(self.database, actor, "broadcasts", "broadcast.create")
        texts = self._check_texts(texts)
        self._check_fallback(fallback)
        self._check_outside_window(outside_window)
        now = utc_now()
        if at is not None and at.tzinfo is None:
            raise Refusal("at", "needs a time zone, such as 2026-12-01T09:00+07:00")
        async with self.database.transaction() as session:
            broadcast = Broadcast(
                topic=topic,
                segment=segment.describe(),
                urgent=urgent,
                fallback=fallback,
                outside_window=outside_window,
                scheduled_at=max(at, now) if at else now,
                created_by=str(actor)[:64],
            )
            session.add(broadcast)
            await session.flush()
            for language, text in texts.items():
                session.add(BroadcastText(broadcast_id=broadcast.id, language=language, text=text))
            if broadcast.scheduled_at <= now:
                await self._start(session, broadcast, segment, set(texts), now)
            audit.record(
                session,
                actor,
                "broadcast.create",
                str(broadcast.id),
                topic=topic,
                segment=broadcast.segment,
                languages=sorted(texts),
                urgent=urgent,
                outside_window=outside_window,
                scheduled_at=broadcast.scheduled_at.isoformat(),
            )
            return {"id": broadcast.id, "state": broadcast.state, "total": broadcast.total}

    async def _start(
        self,
        session: AsyncSession,
        broadcast: Broadcast,
        segment: Segment,
        languages: set[str],
        now: datetime,
    ) -> None:
        """Write one delivery per recipient and move the broadcast to ``sending``."""
        recipients, skipped = await self._plan(session, segment, languages, broadcast.fallback)
        rows = []
        for recipient in recipients:
            wait = None if broadcast.urgent else self.policy.quiet_until(now, recipient.timezone)
            rows.append(
                {
                    "broadcast_id": broadcast.id,
                    "worker_id": recipient.worker_id,
                    "channel": recipient.channel,
                    "language": recipient.language,
                    "timezone": recipient.timezone,
                    "status": DeliveryStatus.PENDING,
                    "next_attempt_at": wait or now,
                    "waiting_quiet": wait is not None,
                    "attempts": 0,
                }
            )
        for start in range(0, len(rows), 5000):
            await session.execute(insert(BroadcastDelivery), rows[start : start + 5000])
        broadcast.state = BroadcastState.SENDING
        broadcast.started_at = now
        broadcast.total = len(rows)
        broadcast.skipped = skipped

    async def start_due(self, now: datetime | None = None) -> int:
        """Start scheduled broadcasts whose time has come; each is started by one process only
        (a compare-and-set on its state). Returns how many this call started."""
        now = now or utc_now()
        started = 0
        async with self.database.sessions() as session:
            due = list(
                await session.scalars(
                    select(Broadcast.id).where(
                        Broadcast.state == BroadcastState.SCHEDULED, Broadcast.scheduled_at <= now
                    )
                )
            )
        for broadcast_id in due:
            async with self.database.transaction() as session:
                won = await session.execute(
                    update(Broadcast)
                    .where(
                        Broadcast.id == broadcast_id, Broadcast.state == BroadcastState.SCHEDULED
                    )
                    .values(state=BroadcastState.SENDING)
                )
                if getattr(won, "rowcount", 0) != 1:
                    continue
                broadcast = await session.get(Broadcast, broadcast_id)
                assert broadcast is not None
                segment = await self.parse_segment(broadcast.segment)
                languages = set(
                    await session.scalars(
                        select(BroadcastText.language).where(
                            BroadcastText.broadcast_id == broadcast_id
                        )
                    )
                )
                await self._start(session, broadcast, segment, languages, now)
                started += 1
        return started

    async def give_up_held(self, now: datetime | None = None) -> int:
        """Held deliveries whose worker did not write in time (their ``next_attempt_at``) are
        skipped, so the broadcast can finish."""
        now = now or utc_now()
        overdue = (
            BroadcastDelivery.held_for_window.is_(True),
            BroadcastDelivery.status == DeliveryStatus.PENDING,
            BroadcastDelivery.next_attempt_at <= now,
        )
        async with self.database.sessions() as session:  # a read first: idle relays call this
            if not await session.scalar(select(func.count()).where(*overdue)):
                return 0
        async with self.database.transaction() as session:
            result = await session.execute(
                update(BroadcastDelivery)
                .where(*overdue)
                .values(
                    status=DeliveryStatus.SKIPPED,
                    held_for_window=False,
                    claim=None,
                    last_error=f"the worker did not write within {BROADCAST_HOLD_DAYS} days "
                    "of the template",
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def finish_done(self, now: datetime | None = None) -> int:
        """Mark sending broadcasts with nothing left pending as done."""
        pending = exists().where(
            BroadcastDelivery.broadcast_id == Broadcast.id,
            BroadcastDelivery.status == DeliveryStatus.PENDING,
        )
        async with self.database.sessions() as session:  # a read first: idle relays call this
            candidates = await session.scalar(
                select(func.count()).where(Broadcast.state == BroadcastState.SENDING, ~pending)
            )
        if not candidates:
            return 0
        async with self.database.transaction() as session:
            result = await session.execute(
                update(Broadcast)
                .where(Broadcast.state == BroadcastState.SENDING, ~pending)
                .values(state=BroadcastState.DONE, finished_at=now or utc_now())
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def cancel(self, actor: ActorLike, broadcast_id: int) -> dict[str, Any]:
        actor = await require(self.database, actor, "broadcasts", "broadcast.cancel")
        async with self.database.transaction() as session:
            broadcast = await session.get(Broadcast, broadcast_id)
            if broadcast is None:
                raise NotFound("broadcast_id", f"no broadcast {broadcast_id}")
            if broadcast.state in BROADCAST_ENDED:
                raise Refusal(None, f"broadcast {broadcast_id} is already {broadcast.state}")
            broadcast.state = BroadcastState.CANCELLED
            broadcast.finished_at = utc_now()
            await session.execute(
                update(BroadcastDelivery)
                .where(
                    BroadcastDelivery.broadcast_id == broadcast_id,
                    BroadcastDelivery.status == DeliveryStatus.PENDING,
                )
                .values(
                    status=DeliveryStatus.FAILED,
                    last_error="cancelled by staff",
                    claim=None,
                    held_for_window=False,
                )
            )
            audit.record(session, actor, "broadcast.cancel", str(broadcast_id))
        return await self.status(actor, broadcast_id, audited=False)

    async def status(
        self, actor: ActorLike, broadcast_id: int, *, audited: bool = True
    ) -> dict[str, Any]:
        actor = await require(self.database, actor, "broadcasts", "broadcast.status")
        now = utc_now()
        async with self.database.transaction() as session:
            broadcast = await session.get(Broadcast, broadcast_id)
            if broadcast is None:
                raise NotFound("broadcast_id", f"no broadcast {broadcast_id}")
            counts: Counter[str] = Counter()
            languages: Counter[str] = Counter()
            of_this = BroadcastDelivery.broadcast_id == broadcast_id
            for status, language, count in await session.execute(
                select(BroadcastDelivery.status, BroadcastDelivery.language, func.count())
                .where(of_this)
                .group_by(BroadcastDelivery.status, BroadcastDelivery.language)
            ):
                counts[status] += count
                languages[language] += count
            waiting = await session.scalar(
                select(func.count()).where(
                    of_this,
                    BroadcastDelivery.status == DeliveryStatus.PENDING,
                    BroadcastDelivery.waiting_quiet.is_(True),
                    BroadcastDelivery.next_attempt_at > now,
                )
            )
            waiting = int(waiting or 0)
            held = await session.scalar(
                select(func.count()).where(
                    of_this,
                    BroadcastDelivery.status == DeliveryStatus.PENDING,
                    BroadcastDelivery.held_for_window.is_(True),
                )
            )
            if audited:
                audit.record(session, actor, "broadcast.status", str(broadcast_id))
            return self._view(broadcast, counts, languages, waiting, int(held or 0))

    @staticmethod
    def _view(
        broadcast: Broadcast,
        counts: Counter[str],
        languages: Counter[str],
        waiting: int,
        held: int = 0,
    ) -> dict[str, Any]:
        state = broadcast.state
        if (
            state == BroadcastState.SENDING
            and waiting + held
            and waiting + held == counts[DeliveryStatus.PENDING]
        ):
            # Shown only: everything left waits for quiet hours to end or for workers to write.
            state = "waiting"
        view: dict[str, Any] = {
            "id": broadcast.id,
            "state": state,
            "total": broadcast.total,
            "sent": counts[DeliveryStatus.SENT],
            # Failed includes blocked: total = sent + failed + pending.
            "failed": counts[DeliveryStatus.FAILED] + counts[DeliveryStatus.BLOCKED],
            "pending": counts[DeliveryStatus.PENDING],
            "blocked": counts[DeliveryStatus.BLOCKED],
            "waiting_quiet_hours": waiting,
            "skipped_no_text": broadcast.skipped,
            # WhatsApp: outside the worker's 24-hour window. Skipped ones are counted in total
            # (total = sent + failed + pending + skipped); held ones are pending.
            "skipped": counts[DeliveryStatus.SKIPPED],
            "held_for_window": held,
            "outside_window": broadcast.outside_window,
            "languages": dict(sorted(languages.items())),
            "topic": broadcast.topic,
            "segment": broadcast.segment,
            "urgent": broadcast.urgent,
            "scheduled_at": iso_utc(broadcast.scheduled_at),
            "started_at": iso_utc(broadcast.started_at),
            "finished_at": iso_utc(broadcast.finished_at),
        }
        notes = []
        if waiting:
            notes.append(
                f"{waiting} recipient(s) are in quiet hours in their time zone; "
                "their messages wait until the quiet hours end"
            )
        if held:
            notes.append(
                f"{held} WhatsApp recipient(s) were sent the neutral template; the broadcast "
                f"goes to each when they write ({HELD_REASON}; given up after "
                f"{BROADCAST_HOLD_DAYS} days)"
            )
        if notes:
            view["note"] = "; ".join(notes)
        elif broadcast.state == BroadcastState.SCHEDULED:
            view["note"] = f"starts at {iso_utc(broadcast.scheduled_at)}"
        return view

    async def list(self, actor: ActorLike, limit: int = 50) -> list[dict[str, Any]]:
        await require(self.database, actor, "broadcasts", "broadcast.list")
        sent = (
            select(func.count())
            .where(
                BroadcastDelivery.broadcast_id == Broadcast.id,
                BroadcastDelivery.status == DeliveryStatus.SENT,
            )
            .scalar_subquery()
        )
        async with self.database.sessions() as session:
            rows = await session.execute(
                select(Broadcast, sent).order_by(Broadcast.id.desc()).limit(limit)
            )
            return [
                {
                    "id": b.id,
                    "state": b.state,
                    "topic": b.topic,
                    "segment": b.segment,
                    "total": b.total,
                    "sent": int(sent_count or 0),
                    "created_at": iso_utc(b.created_at),
                }
                for b, sent_count in rows
            ]

    # -- tags staff put on workers, through a case they reported -------------------------------

    async def tag_reporter(
        self, actor: ActorLike, reference: str, tag: str, *, remove: bool = False
    ) -> None:
        """Tag (or untag) the worker who reported a case, for segments; staff never see who."""
        actor = await require(self.database, actor, "broadcasts", "broadcast.tag")
        tag = check_tag(tag)
        async with self.database.transaction() as session:
            case = await CaseRepository(session).named(reference)
            assert self.keyring is not None, "tag_reporter needs the keyring"
            worker_id = await reporter_id(session, case, self.keyring)
            if worker_id is None:
                raise Refusal(
                    None, f"case {case.reference}: the reporter used /forget; they cannot be tagged"
                )
            existing = await session.scalar(
                select(WorkerTag).where(WorkerTag.worker_id == worker_id, WorkerTag.tag == tag)
            )
            if remove and existing is not None:
                await session.delete(existing)
            elif not remove and existing is None:
                session.add(WorkerTag(worker_id=worker_id, tag=tag))
            action = "subscriber.untag" if remove else "subscriber.tag"
            audit.record(session, actor, action, case.reference, tag=tag)

    async def tags(self) -> dict[str, int]:
        async with self.database.sessions() as session:
            rows = await session.execute(
                select(WorkerTag.tag, func.count()).group_by(WorkerTag.tag).order_by(WorkerTag.tag)
            )
            return {tag: count for tag, count in rows}


def settled(status: dict[str, Any]) -> bool:
    """Nothing more to watch in a ``status``: the broadcast ended, or everything left waits for
    WhatsApp workers to write (days, maybe)."""
    held_only = bool(status["pending"]) and status["pending"] == status["held_for_window"]
    return status["state"] in BROADCAST_ENDED or held_only


def topic_texts(topic: str) -> dict[str, str]:
    """A broadcast made from a lesson: its title and opening in every shipped language."""
    from locales.education import lesson_preview, topics

    if topic not in topics():
        raise Refusal("topic", f"unknown topic {topic!r}; one of {', '.join(topics())}")
    texts = {}
    for language in LANGUAGES:
        title, first_page = lesson_preview(topic, language)  # the page starts with the title
        blocks = [block.strip() for block in first_page.split("\n\n")[1:2]]
        texts[language] = "\n\n".join(["📖 " + title, *blocks])
    return texts
