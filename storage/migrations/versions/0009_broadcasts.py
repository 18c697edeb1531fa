"""Subscribers and broadcasts: a worker's chosen workplace, the blocked flag, staff tags, workplace
time zones, broadcasts with their per-language texts, and one delivery row per recipient.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added in place: recreating ``workers`` on SQLite (batch mode) would fire the ON DELETE
    # actions of every table that points at it.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE workers ADD COLUMN workplace_id INTEGER "
            "REFERENCES workplaces (id) ON DELETE SET NULL"
        )
    else:
        op.add_column("workers", sa.Column("workplace_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_workers_workplace_id_workplaces",
            "workers",
            "workplaces",
            ["workplace_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.add_column("workers", sa.Column("blocked_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("workplaces") as batch:
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=True))
    op.create_table(
        "worker_tags",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(40), nullable=False),
        sa.ForeignKeyConstraint(["worker_id"], ["workers.id"],
                                name=op.f("fk_worker_tags_worker_id_workers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_tags")),
        sa.UniqueConstraint("worker_id", "tag", name=op.f("uq_worker_tags_worker_id")),
    )  # fmt: skip
    op.create_index(op.f("ix_worker_tags_tag"), "worker_tags", ["tag"])
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("topic", sa.String(40), nullable=True),
        sa.Column("segment", sa.String(500), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("fallback", sa.String(16), nullable=False),
        sa.Column("scheduled_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.CheckConstraint("state IN ('scheduled', 'sending', 'done', 'cancelled')",
                           name=op.f("ck_broadcasts_state_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )  # fmt: skip
    op.create_table(
        "broadcast_texts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["broadcast_id"], ["broadcasts.id"],
                                name=op.f("fk_broadcast_texts_broadcast_id_broadcasts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_texts")),
        sa.UniqueConstraint("broadcast_id", "language",
                            name=op.f("uq_broadcast_texts_broadcast_id")),
    )  # fmt: skip
    op.create_table(
        "broadcast_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("claim", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("waiting_quiet", sa.Boolean(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed', 'blocked')",
                           name=op.f("ck_broadcast_deliveries_status_known")),
        sa.ForeignKeyConstraint(["broadcast_id"], ["broadcasts.id"],
                                name=op.f("fk_broadcast_deliveries_broadcast_id_broadcasts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["worker_id"], ["workers.id"],
                                name=op.f("fk_broadcast_deliveries_worker_id_workers"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_deliveries")),
        sa.UniqueConstraint("broadcast_id", "worker_id",
                            name=op.f("uq_broadcast_deliveries_broadcast_id")),
    )  # fmt: skip
    op.create_index(
        op.f("ix_broadcast_deliveries_broadcast_id"), "broadcast_deliveries", ["broadcast_id"]
    )
    op.create_index(
        "ix_broadcast_deliveries_due", "broadcast_deliveries", ["status", "next_attempt_at", "id"]
    )


def downgrade() -> None:
    op.drop_table("broadcast_deliveries")
    op.drop_table("broadcast_texts")
    op.drop_table("broadcasts")
    op.drop_index(op.f("ix_worker_tags_tag"), table_name="worker_tags")
    op.drop_table("worker_tags")
    with op.batch_alter_table("workplaces") as batch:
        batch.drop_column("timezone")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_workers_workplace_id_workplaces", "workers", type_="foreignkey")
    op.drop_column("workers", "blocked_at")
    op.drop_column("workers", "workplace_id")
