"""Each broadcast delivery and outbox row names the channel it goes out on, so every process
relays only what its own channels can send (`wvb run` Telegram, `wvb chat` the console, later
WhatsApp), and one broadcast reaches workers on every channel.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "broadcast_deliveries",
        sa.Column("channel", sa.String(16), nullable=False, server_default="telegram"),
    )
    op.drop_index("ix_broadcast_deliveries_due", table_name="broadcast_deliveries")
    op.create_index(
        "ix_broadcast_deliveries_due",
        "broadcast_deliveries",
        ["status", "channel", "next_attempt_at", "id"],
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "channel", "next_attempt_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_index("ix_broadcast_deliveries_due", table_name="broadcast_deliveries")
    op.create_index(
        "ix_broadcast_deliveries_due",
        "broadcast_deliveries",
        ["status", "next_attempt_at", "id"],
    )
    with op.batch_alter_table("broadcast_deliveries") as batch:
        batch.drop_column("channel")
