"""Site validation: workers who agreed to be asked about their workplace, the questions sent to
them (by an opaque token, never the case reference), and a guard that only the reporter's "yes"
can close a case.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_CONDITION = (
    "SELECT 1 FROM validations WHERE case_id = NEW.id AND round = NEW.validation_round "
    "AND answer = 'yes' AND respondent = 'reporter'"
)
_SQLITE_GUARD = """
CREATE TRIGGER cases_close_needs_worker_{event} BEFORE {event_upper} ON cases
WHEN NEW.status = 'closed' AND NOT EXISTS ({condition})
BEGIN SELECT RAISE(ABORT, 'a case closes only when a worker confirms the fix'); END
"""
_POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION cases_close_needs_worker() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'closed' AND NOT EXISTS ({condition}) THEN
        RAISE EXCEPTION 'a case closes only when a worker confirms the fix';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "site_panel",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("workplace_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["worker_id"], ["workers.id"],
                                name=op.f("fk_site_panel_worker_id_workers"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workplace_id"], ["workplaces.id"],
                                name=op.f("fk_site_panel_workplace_id_workplaces"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_panel")),
        sa.UniqueConstraint("worker_id", "workplace_id", name=op.f("uq_site_panel_worker_id")),
    )  # fmt: skip
    op.create_table(
        "site_questions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token", sa.String(24), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=True),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"],
                                name=op.f("fk_site_questions_case_id_cases"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["worker_id"], ["workers.id"],
                                name=op.f("fk_site_questions_worker_id_workers"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_questions")),
        sa.UniqueConstraint("token", name=op.f("uq_site_questions_token")),
    )  # fmt: skip
    condition = _CONDITION
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRES_FUNCTION.format(condition=condition))
    else:
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS cases_close_needs_worker_{event}")
            op.execute(_SQLITE_GUARD.format(event=event, event_upper=event.upper(),
                                            condition=condition))  # fmt: skip


def downgrade() -> None:
    op.drop_table("site_questions")
    op.drop_table("site_panel")
