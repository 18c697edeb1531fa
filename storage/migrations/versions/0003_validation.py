"""Worker validations, remediation rounds, and the database guard on closing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_MESSAGE = "a case closes only when a worker confirms the fix"
_SQLITE_GUARD = """
CREATE TRIGGER cases_close_needs_worker_{event} BEFORE {event_upper} ON cases
WHEN NEW.status = 'closed' AND NOT EXISTS (
    SELECT 1 FROM validations
    WHERE case_id = NEW.id AND round = NEW.validation_round AND answer = 'yes'
)
BEGIN SELECT RAISE(ABORT, '{message}'); END
"""
_POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION cases_close_needs_worker() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'closed' AND NOT EXISTS (
        SELECT 1 FROM validations
        WHERE case_id = NEW.id AND round = NEW.validation_round AND answer = 'yes'
    ) THEN
        RAISE EXCEPTION 'a case closes only when a worker confirms the fix';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql
"""
_POSTGRES_TRIGGER = """
CREATE TRIGGER cases_close_needs_worker BEFORE INSERT OR UPDATE ON cases
FOR EACH ROW EXECUTE FUNCTION cases_close_needs_worker()
"""


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(
            sa.Column("validation_round", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "validations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("respondent", sa.String(16), nullable=False),
        sa.Column("answer", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "answer IN ('yes', 'partly', 'no', 'unsure')", name=op.f("ck_validations_answer_known")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_validations_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_validations")),
    )
    op.create_index(op.f("ix_validations_case_id"), "validations", ["case_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRES_FUNCTION)
        op.execute(_POSTGRES_TRIGGER)
    else:
        for event in ("insert", "update"):
            op.execute(
                _SQLITE_GUARD.format(event=event, event_upper=event.upper(), message=_MESSAGE)
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS cases_close_needs_worker ON cases")
        op.execute("DROP FUNCTION IF EXISTS cases_close_needs_worker()")
    else:
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS cases_close_needs_worker_{event}")
    op.drop_table("validations")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("validation_round")
