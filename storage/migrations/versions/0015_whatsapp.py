"""WhatsApp: the neutral templates per language, the 24-hour window hold, and delivery receipts.

- ``whatsapp_templates``: the pre-approved template sent when a message cannot go because the
  worker's 24-hour window is closed ("You have a new message. Reply to see it."), by language.
- ``outbox.held_for_window``: a message waiting for the worker to write, after the template.
- ``external_ref`` on ``outbox`` and ``broadcast_deliveries``: the keyed token of the message id
  the messenger gave (never the id itself: a WhatsApp message id encodes the phone number), so a
  status callback finds its row; ``receipt`` is the last status it reported (sent, delivered,
  read, failed).

Revision ID: 0015_whatsapp
Revises: 0014_key_canary
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0015_whatsapp"
down_revision = "0014_key_canary"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "whatsapp_templates",
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("template_language", sa.String(16), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("language", name=op.f("pk_whatsapp_templates")),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("held_for_window", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("external_ref", sa.String(64), nullable=True))
        batch.add_column(sa.Column("receipt", sa.String(16), nullable=True))
        batch.create_index(batch.f("ix_outbox_external_ref"), ["external_ref"])
    with op.batch_alter_table("broadcast_deliveries") as batch:
        batch.add_column(sa.Column("external_ref", sa.String(64), nullable=True))
        batch.add_column(sa.Column("receipt", sa.String(16), nullable=True))
        batch.create_index(batch.f("ix_broadcast_deliveries_external_ref"), ["external_ref"])


def downgrade() -> None:
    with op.batch_alter_table("broadcast_deliveries") as batch:
        batch.drop_index(batch.f("ix_broadcast_deliveries_external_ref"))
        batch.drop_column("receipt")
        batch.drop_column("external_ref")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index(batch.f("ix_outbox_external_ref"))
        batch.drop_column("receipt")
        batch.drop_column("external_ref")
        batch.drop_column("held_for_window")
    op.drop_table("whatsapp_templates")
