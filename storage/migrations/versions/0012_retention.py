"""Retention: when a case ended and when its content was deleted, the once-a-day marker of the
retention warning, case times kept only to the hour, and a close guard that checks the moment a
case closes (not every later update, so a closed case whose validations were deleted can still
be marked purged).

Revision ID: 0012_retention
Revises: 0011_bind_ciphertexts
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime, to_the_hour

revision = "0012_retention"
down_revision = "0011_bind_ciphertexts"
branch_labels = None
depends_on = None

_ENDED = ("closed", "closed_unvalidated", "withdrawn")
#: Columns whose times are kept to the hour from now on (storage.models.HourDateTime).
_HOUR_COLUMNS = (
    ("cases", "created_at"),
    ("cases", "updated_at"),
    ("case_entries", "created_at"),
    ("case_events", "at"),
    ("validations", "at"),
)
_CONDITION = (
    "SELECT 1 FROM validations WHERE case_id = NEW.id AND round = NEW.validation_round "
    "AND answer = 'yes' AND respondent = 'reporter'"
)
_MESSAGE = "a case closes only when a worker confirms the fix"
_SQLITE_INSERT_GUARD = """
CREATE TRIGGER cases_close_needs_worker_insert BEFORE INSERT ON cases
WHEN NEW.status = 'closed' AND NOT EXISTS ({condition})
BEGIN SELECT RAISE(ABORT, '{message}'); END
"""
_SQLITE_UPDATE_GUARD = """
CREATE TRIGGER cases_close_needs_worker_update BEFORE UPDATE ON cases
WHEN NEW.status = 'closed' {only_on_closing}AND NOT EXISTS ({condition})
BEGIN SELECT RAISE(ABORT, '{message}'); END
"""
_POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION cases_close_needs_worker() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'closed' {only_on_closing}AND NOT EXISTS ({condition}) THEN
        RAISE EXCEPTION '{message}';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql
"""


def _close_guard(only_on_closing: bool) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        closing = "AND (TG_OP = 'INSERT' OR OLD.status <> 'closed') " if only_on_closing else ""
        op.execute(
            _POSTGRES_FUNCTION.format(
                only_on_closing=closing, condition=_CONDITION, message=_MESSAGE
            )
        )
        return
    closing = "AND OLD.status <> 'closed' " if only_on_closing else ""
    for event in ("insert", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS cases_close_needs_worker_{event}")
    op.execute(_SQLITE_INSERT_GUARD.format(condition=_CONDITION, message=_MESSAGE))
    op.execute(
        _SQLITE_UPDATE_GUARD.format(only_on_closing=closing, condition=_CONDITION, message=_MESSAGE)
    )


def _truncate_to_the_hour() -> None:
    """Existing rows lose their minutes, seconds and microseconds, as new rows do."""
    bind = op.get_bind()
    for table_name, column_name in _HOUR_COLUMNS:
        table = sa.table(table_name, sa.column("id", sa.Integer()),
                         sa.column(column_name, UTCDateTime()))  # fmt: skip
        column = table.c[column_name]
        rows = bind.execute(sa.select(table.c.id, column).where(column.is_not(None))).all()
        for row_id, moment in rows:
            hour = to_the_hour(moment)
            if hour != moment:
                bind.execute(sa.update(table).where(table.c.id == row_id).values({column: hour}))


def upgrade() -> None:
    op.add_column("cases", sa.Column("ended_at", UTCDateTime(), nullable=True))
    op.add_column("cases", sa.Column("purged_at", UTCDateTime(), nullable=True))
    op.create_index(op.f("ix_cases_ended_at"), "cases", ["ended_at"])
    op.create_table(
        "retention_days",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("warned", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_retention_days")),
    )
    _close_guard(only_on_closing=True)
    _truncate_to_the_hour()
    # Cases that already ended start their retention clock at their last move to an end status
    # (or their last update, for a case whose history lacks that move).
    cases = sa.table("cases", sa.column("id"), sa.column("status"), sa.column("ended_at"),
                     sa.column("updated_at"))  # fmt: skip
    events = sa.table("case_events", sa.column("case_id"), sa.column("to_status"), sa.column("at"))
    last_end = (
        sa.select(sa.func.max(events.c.at))
        .where(events.c.case_id == cases.c.id, events.c.to_status.in_(_ENDED))
        .scalar_subquery()
    )
    op.execute(
        sa.update(cases)
        .where(cases.c.status.in_(_ENDED))
        .values(ended_at=sa.func.coalesce(last_end, cases.c.updated_at))
    )


def downgrade() -> None:
    op.drop_table("retention_days")
    op.drop_index(op.f("ix_cases_ended_at"), table_name="cases")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("purged_at")
        batch.drop_column("ended_at")
    _close_guard(only_on_closing=False)  # after the batch, which may rebuild the table
