"""The database schema. Change it only together with a migration in ``storage/migrations``.

No column holds a messenger id, name, phone number or message text in the clear: workers are
known by pseudonym, and how to reach them is a ciphertext in a table of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from domain.answers import VALIDATION_ANSWERS
from domain.parties import StaffRole
from domain.statuses import (
    BroadcastState,
    CaseStatus,
    DeliveryStatus,
    OutboxStatus,
    OutsideWindow,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime | None) -> str | None:
    """A stored timestamp as staff output shows it: ISO 8601 ending in Z."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_the_hour(moment: datetime) -> datetime:
    """A moment kept only to the hour: when a worker wrote is metadata that can point at them
    (a shift, a break), and no clock here needs more than the hour."""
    return moment.replace(minute=0, second=0, microsecond=0)


def utc_hour() -> datetime:
    return to_the_hour(utc_now())


class HourDateTime(UTCDateTime):
    """A UTC timestamp stored to the hour, whoever writes it (see ``to_the_hour``). Rows of
    these columns are ordered by id, never by time."""

    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        stored = super().process_bind_param(value, dialect)
        return to_the_hour(stored) if stored is not None else None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Worker(Base):
    """A worker who finished onboarding, known only by pseudonym."""

    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True)
    language: Mapped[str] = mapped_column(String(8))
    subscribed: Mapped[bool] = mapped_column(default=False)
    # The workplace the worker chose to hear about (broadcast segments, quiet-hours time zone).
    workplace_id: Mapped[int | None] = mapped_column(
        ForeignKey("workplaces.id", ondelete="SET NULL")
    )
    # Set when the messenger said the worker blocked the bot; cleared when they write again.
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)

    addresses: Mapped[list[WorkerAddress]] = relationship(
        back_populates="worker", cascade="all, delete-orphan", passive_deletes=True
    )


class WorkerAddress(Base):
    """How to reach a worker on one channel, encrypted; kept apart so it can be erased alone."""

    __tablename__ = "worker_addresses"
    __table_args__ = (UniqueConstraint("worker_id", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    address_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)

    worker: Mapped[Worker] = relationship(back_populates="addresses")


#: Every case status, in lifecycle order (migration 0002 writes its CHECK constraint from this).
CASE_STATUSES: tuple[str, ...] = tuple(CaseStatus)


class Workplace(Base):
    """A workplace staff configured, offered to workers in a list. Names are not personal data."""

    __tablename__ = "workplaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    country: Mapped[str | None] = mapped_column(String(2))
    timezone: Mapped[str | None] = mapped_column(String(64))  # IANA name, for quiet hours
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class EmergencyContact(Base):
    """What an urgent reporter sees at once, per country and language (``*`` matches any)."""

    __tablename__ = "emergency_contacts"
    __table_args__ = (UniqueConstraint("country", "language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    country: Mapped[str] = mapped_column(String(2))
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class Case(Base):
    """A grievance. Free text lives encrypted in ``case_entries``. The reporting worker is named
    only blindly (``services/reporters.py``): ``reporter_tag`` finds a worker's cases given
    their pseudonym, ``reporter_ciphertext`` holds the pseudonym to reach them; neither points
    at a ``workers`` row a database reader could follow. /forget clears both, after which the
    case is reachable only by receipt code."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in CASE_STATUSES) + ")",
            name="status_known",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(24), default=CaseStatus.RECEIVED)
    categories: Mapped[list[str]] = mapped_column(JSON)
    workplace_id: Mapped[int | None] = mapped_column(
        ForeignKey("workplaces.id", ondelete="SET NULL")
    )
    workplace_other_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    agency_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    occurred: Mapped[str] = mapped_column(String(16))
    affected: Mapped[str] = mapped_column(String(16))
    danger_now: Mapped[bool]
    confidentiality: Mapped[str] = mapped_column(String(16))
    urgent: Mapped[bool] = mapped_column(default=False)
    language: Mapped[str] = mapped_column(String(8))
    # Blind index of the reporter's pseudonym (an HMAC under a key derived from the encryption
    # key), and the pseudonym itself, encrypted and bound to the case reference. The column
    # ``reporter_id`` that migration 0002 made stays in the table, NULL since 0011.
    reporter_tag: Mapped[str | None] = mapped_column(String(32), index=True)
    reporter_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The draft's idempotency key: confirming twice, or one update delivered twice, makes one case.
    draft_key: Mapped[str] = mapped_column(String(36), unique=True)
    # Each recorded remediation starts a new round; only a "yes" in the current round closes.
    validation_round: Mapped[int] = mapped_column(default=0, server_default="0")
    assigned_to: Mapped[str | None] = mapped_column(String(64), default=None)
    # A retaliation case points at the case whose worker was punished for complaining.
    linked_case_id: Mapped[int | None] = mapped_column(default=None)
    receipt_hash: Mapped[str] = mapped_column(String(200))  # storage/codes.py: sealed scrypt
    created_at: Mapped[datetime] = mapped_column(HourDateTime, default=utc_hour)
    updated_at: Mapped[datetime] = mapped_column(HourDateTime, default=utc_hour, onupdate=utc_hour)
    acknowledge_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    response_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the case reached an end (closed, closed_unvalidated, withdrawn): the retention clock.
    ended_at: Mapped[datetime | None] = mapped_column(HourDateTime, default=None, index=True)
    # When its content was deleted (retention, `wvb cases purge`, or the worker's withdrawal).
    purged_at: Mapped[datetime | None] = mapped_column(HourDateTime, default=None)

    workplace: Mapped[Workplace | None] = relationship()
    entries: Mapped[list[CaseEntry]] = relationship(
        back_populates="case", order_by="CaseEntry.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", cascade="all, delete-orphan"
    )


class CaseEntry(Base):
    """One piece of the case file (text, photo, document, voice note), encrypted."""

    __tablename__ = "case_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(16))  # domain.parties.Side
    kind: Mapped[str] = mapped_column(String(16))  # text | photo | document | voice | audio | video
    mime_type: Mapped[str] = mapped_column(String(100), default="text/plain")
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(HourDateTime, default=utc_hour)

    case: Mapped[Case] = relationship(back_populates="entries")


class CaseEvent(Base):
    """The case history: every transition, with who, when and why."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(HourDateTime, default=utc_hour)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    note_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)

    case: Mapped[Case] = relationship(back_populates="events")


class Validation(Base):
    """A worker's answer to "was it really fixed?" for one remediation round."""

    __tablename__ = "validations"
    __table_args__ = (
        CheckConstraint(
            "answer IN (" + ", ".join(f"'{answer}'" for answer in VALIDATION_ANSWERS) + ")",
            name="answer_known",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    round: Mapped[int]
    respondent: Mapped[str] = mapped_column(String(16))  # domain.parties.Respondent
    answer: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(HourDateTime, default=utc_hour)


class CaseTask(Base):
    """Due casework (reminder, overdue flag, retaliation check-in). Rows, not scheduler jobs, so
    a restart loses nothing and work that fell due while the bot was down runs when it is back;
    ``key`` makes creating one twice harmless, ``done_at`` makes doing one twice impossible."""

    __tablename__ = "case_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # domain.history.TaskKind
    round: Mapped[int]
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(32))


class EscalationDay(Base):
    """One row per UTC day on which overdue cases were escalated: the primary key is the
    guarantee that two processes never send the daily escalation twice."""

    __tablename__ = "escalation_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    overdue: Mapped[int]


class RetentionDay(Base):
    """One row per UTC day on which staff were warned of content about to be deleted: the
    primary key keeps two processes from sending the daily retention summary twice."""

    __tablename__ = "retention_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    warned: Mapped[int]


class SitePanelMember(Base):
    """A worker who agreed to be asked, now and then, about their workplace."""

    __tablename__ = "site_panel"
    __table_args__ = (UniqueConstraint("worker_id", "workplace_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id", ondelete="CASCADE"))
    workplace_id: Mapped[int] = mapped_column(ForeignKey("workplaces.id", ondelete="CASCADE"))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class SiteQuestion(Base):
    """One site-validation question sent to one panel member. The worker's buttons carry only
    ``token``, so nothing they hold names the case or its reporter."""

    __tablename__ = "site_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(24), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    round: Mapped[int]
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


STAFF_ROLES: tuple[str, ...] = tuple(StaffRole)


class StaffMember(Base):
    """Someone of the monitoring organisation. Their Telegram account is known only by pseudonym."""

    __tablename__ = "staff"
    __table_args__ = (
        CheckConstraint(
            "role IN (" + ", ".join(f"'{role}'" for role in STAFF_ROLES) + ")", name="role_known"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    pseudonym: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # MAC of name, role, pseudonym and active under the data key (services/staff_accounts.py),
    # and of each of the fields below marked "sealed" once it is set.
    seal: Mapped[str | None] = mapped_column(String(32))
    # A case handler who sees and changes only the cases assigned to them (sealed).
    assigned_only: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The web console's login (services/staff_login.py): an argon2id hash (sealed) ...
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # ... and the TOTP secret, encrypted under the keyring for this staff name (its SHA-256 is
    # sealed), with the last time step a code was accepted in, so no code is accepted twice.
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # An enrolment invitation: a keyed hash of the link's token (sealed with its expiry; the
    # expiry is cleared once the link was used), and the TOTP secret it offers (encrypted).
    invite_hash: Mapped[str | None] = mapped_column(String(32), index=True)
    invite_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pending_totp: Mapped[bytes | None] = mapped_column(LargeBinary)


class StaffSession(Base):
    """A staff member logged in to the web console. The browser's cookie holds a random token;
    only its keyed hash is here, and ``seal`` binds the token to the staff row and the time it
    was made, so a database writer can neither plant a session nor move one to another member."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(32), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seal: Mapped[str] = mapped_column(String(32))


class LessonFeedback(Base):
    """Answers to "Was this helpful?" after a lesson: counters only, never who answered."""

    __tablename__ = "lesson_feedback"
    __table_args__ = (UniqueConstraint("topic", "language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8))
    helpful_count: Mapped[int] = mapped_column(default=0, server_default="0")
    unhelpful_count: Mapped[int] = mapped_column(default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class DraftAttachment(Base):
    """Evidence sent during a report that is not yet confirmed; moved into the case on confirm,
    deleted with the draft otherwise."""

    __tablename__ = "draft_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_key: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    mime_type: Mapped[str] = mapped_column(String(100))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class AuditEntry(Base):
    """Append-only record of staff actions and case views (the database refuses edits), each
    row chained to the one before by ``row_hash`` (``storage/audit_chain.py``)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    row_hash: Mapped[str | None] = mapped_column(String(64))  # set at flush; NULL only if tampered


class OutboxMessage(Base):
    """A message to send, written in the same transaction as the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "channel", "next_attempt_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(36), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(16))  # domain.parties.Side
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"))
    case_id: Mapped[int | None] = mapped_column(default=None)  # to tell staff of a failure
    payload_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200))
    # WhatsApp: waiting for the worker to write (their 24-hour window was closed; a neutral
    # template asked them to), and what the messenger reported of the sent message. The ref is
    # a keyed token of the messenger's message id, never the id (it can encode a phone number).
    held_for_window: Mapped[bool] = mapped_column(default=False, server_default=false())
    external_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    receipt: Mapped[str | None] = mapped_column(String(16))


class WhatsAppTemplate(Base):
    """The pre-approved, neutral template ("You have a new message. Reply to see it.") sent in
    a language when a message cannot go because the worker's 24-hour window is closed."""

    __tablename__ = "whatsapp_templates"

    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(512))
    template_language: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class WorkerTag(Base):
    """A label staff put on a worker for broadcast segments (e.g. ``night-shift``)."""

    __tablename__ = "worker_tags"
    __table_args__ = (UniqueConstraint("worker_id", "tag"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(40), index=True)


BROADCAST_STATES: tuple[str, ...] = tuple(BroadcastState)
DELIVERY_STATUSES: tuple[str, ...] = tuple(DeliveryStatus)


class Broadcast(Base):
    """A message staff send to a segment of subscribed workers, from a lesson or per-language
    texts (rights education, not personal data: kept in the clear)."""

    __tablename__ = "broadcasts"
    __table_args__ = (
        CheckConstraint(
            "state IN (" + ", ".join(f"'{state}'" for state in BROADCAST_STATES) + ")",
            name="state_known",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default=BroadcastState.SCHEDULED)
    topic: Mapped[str | None] = mapped_column(String(40))
    segment: Mapped[str] = mapped_column(String(500), default="all")
    urgent: Mapped[bool] = mapped_column(default=False)
    fallback: Mapped[str] = mapped_column(String(16), default="skip")
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    created_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    total: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)  # no text in their language, rule "skip"
    # WhatsApp workers whose 24-hour window is closed: domain.statuses.OutsideWindow.
    outside_window: Mapped[str] = mapped_column(
        String(16), default=OutsideWindow.SKIP, server_default=OutsideWindow.SKIP.value
    )


class BroadcastText(Base):
    __tablename__ = "broadcast_texts"
    __table_args__ = (UniqueConstraint("broadcast_id", "language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)


class BroadcastDelivery(Base):
    """One recipient of one broadcast. The relay claims due rows by a compare-and-set on
    ``next_attempt_at`` and records the outcome, so a restart resumes where it stopped."""

    __tablename__ = "broadcast_deliveries"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "worker_id"),
        Index("ix_broadcast_deliveries_due", "status", "channel", "next_attempt_at", "id"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in DELIVERY_STATUSES) + ")",
            name="status_known",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), index=True
    )
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16), server_default="telegram")
    language: Mapped[str] = mapped_column(String(8))
    timezone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    claim: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(default=0)
    waiting_quiet: Mapped[bool] = mapped_column(default=False)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200))
    external_ref: Mapped[str | None] = mapped_column(String(64), index=True)  # as on outbox
    receipt: Mapped[str | None] = mapped_column(String(16))
    # WhatsApp, rule "template": waiting for the worker to write; ``next_attempt_at`` is then when
    # the delivery is given up (skipped) if they never do.
    held_for_window: Mapped[bool] = mapped_column(default=False, server_default=false())


class PendingUpgrade(Base):
    """A data upgrade that needs the keys (which migrations never have), waiting for the first
    process that opens the application; see ``services/key_rotation.py``."""

    __tablename__ = "pending_upgrades"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)


class KeyCanary(Base):
    """One row: which keys the data was made with (``services/key_canary.py``). Opening the
    application with other keys is refused before anything is written."""

    __tablename__ = "key_canary"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # HMAC-SHA256 of a fixed label under WVB_SECRET_KEY (hex): a MAC, never a hash of the key.
    secret_key_check: Mapped[str] = mapped_column(String(64))
    # A fixed label sealed under the newest key of WVB_ENCRYPTION_KEYS (AES-GCM).
    encryption_check: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)
