"""Cases, their encrypted entries and history, workplaces, emergency contacts, draft evidence,
the append-only audit log and the outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import CASE_STATUSES, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_APPEND_ONLY_SQLITE = """
CREATE TRIGGER audit_log_no_{verb} BEFORE {verb_upper} ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END
"""
_APPEND_ONLY_POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$ LANGUAGE plpgsql
"""
_APPEND_ONLY_POSTGRES_TRIGGER = """
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
"""


def upgrade() -> None:
    op.create_table(
        "workplaces",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workplaces")),
        sa.UniqueConstraint("name", name=op.f("uq_workplaces_name")),
    )
    op.create_table(
        "emergency_contacts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_contacts")),
        sa.UniqueConstraint("country", "language", name=op.f("uq_emergency_contacts_country")),
    )
    statuses = ", ".join(f"'{status}'" for status in CASE_STATUSES)
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("reference", sa.String(16), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("workplace_id", sa.Integer(), nullable=True),
        sa.Column("workplace_other_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("agency_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("occurred", sa.String(16), nullable=False),
        sa.Column("affected", sa.String(16), nullable=False),
        sa.Column("danger_now", sa.Boolean(), nullable=False),
        sa.Column("confidentiality", sa.String(16), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("reporter_id", sa.Integer(), nullable=True),
        sa.Column("draft_key", sa.String(36), nullable=False),
        sa.Column("receipt_hash", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("acknowledge_due_at", UTCDateTime(), nullable=False),
        sa.Column("response_due_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(f"status IN ({statuses})", name=op.f("ck_cases_status_known")),
        sa.ForeignKeyConstraint(
            ["workplace_id"],
            ["workplaces.id"],
            name=op.f("fk_cases_workplace_id_workplaces"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["reporter_id"],
            ["workers.id"],
            name=op.f("fk_cases_reporter_id_workers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("reference", name=op.f("uq_cases_reference")),
        sa.UniqueConstraint("draft_key", name=op.f("uq_cases_draft_key")),
    )
    op.create_index(op.f("ix_cases_reporter_id"), "cases", ["reporter_id"])
    op.create_table(
        "case_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mime_type", sa.String(100), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_entries_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_entries")),
    )
    op.create_index(op.f("ix_case_entries_case_id"), "case_entries", ["case_id"])
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("from_status", sa.String(24), nullable=True),
        sa.Column("to_status", sa.String(24), nullable=True),
        sa.Column("note_ciphertext", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_events_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
    )
    op.create_index(op.f("ix_case_events_case_id"), "case_events", ["case_id"])
    op.create_table(
        "draft_attachments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("draft_key", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mime_type", sa.String(100), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_draft_attachments")),
    )
    op.create_index(op.f("ix_draft_attachments_draft_key"), "draft_attachments", ["draft_key"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("subject", sa.String(64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(36), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(16), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=True),
        sa.Column("payload_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(
            ["worker_id"],
            ["workers.id"],
            name=op.f("fk_outbox_worker_id_workers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("key", name=op.f("uq_outbox_key")),
    )
    op.create_index(op.f("ix_outbox_status"), "outbox", ["status"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_APPEND_ONLY_POSTGRES_FUNCTION)
        op.execute(_APPEND_ONLY_POSTGRES_TRIGGER)
    else:
        for verb in ("update", "delete"):
            op.execute(_APPEND_ONLY_SQLITE.format(verb=verb, verb_upper=verb.upper()))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    for table in (
        "outbox",
        "audit_log",
        "draft_attachments",
        "case_events",
        "case_entries",
        "cases",
        "emergency_contacts",
        "workplaces",
    ):
        op.drop_table(table)
