"""Broadcasts and WhatsApp's 24-hour window: what staff chose for WhatsApp workers outside it.

- ``broadcasts.outside_window``: ``skip`` (the default) or ``template`` (the neutral template
  asks the worker to write, and the broadcast goes when they do).
- ``broadcast_deliveries.status`` may be ``skipped``: the worker's window was closed and the
  broadcast skips such workers (`wvb broadcast status` counts them).
- ``broadcast_deliveries.held_for_window``: a delivery waiting for the worker to write, after
  the template; its ``next_attempt_at`` is when it is given up if they never do.

Revision ID: 0016_broadcast_window
Revises: 0015_whatsapp
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_broadcast_window"
down_revision = "0015_whatsapp"
branch_labels = None
depends_on = None

_CHECK = "ck_broadcast_deliveries_status_known"


def _statuses(*statuses: str) -> str:
    return "status IN (" + ", ".join(f"'{status}'" for status in statuses) + ")"


def upgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(
            sa.Column("outside_window", sa.String(16), nullable=False, server_default="skip")
        )
    with op.batch_alter_table("broadcast_deliveries") as batch:
        batch.add_column(
            sa.Column("held_for_window", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.drop_constraint(op.f(_CHECK), type_="check")
        batch.create_check_constraint(
            "status_known", _statuses("pending", "sent", "failed", "blocked", "skipped")
        )


def downgrade() -> None:
    # A skipped delivery was not sent: before 0016 that was a failure.
    op.execute(
        "UPDATE broadcast_deliveries SET status = 'failed', last_error = 'skipped: outside "
        "the WhatsApp 24-hour window' WHERE status = 'skipped'"
    )
    with op.batch_alter_table("broadcast_deliveries") as batch:
        batch.drop_constraint(op.f(_CHECK), type_="check")
        batch.create_check_constraint(
            "status_known", _statuses("pending", "sent", "failed", "blocked")
        )
        batch.drop_column("held_for_window")
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("outside_window")
