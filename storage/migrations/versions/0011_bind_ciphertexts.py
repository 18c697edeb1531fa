"""Ciphertexts bound to the columns that decide who receives them, sealed receipt hashes and staff
rows, and a blinded reporter.

A migration holds no key, so it cannot re-encrypt anything. It adds the new columns and records
the pending data upgrade in ``pending_upgrades``; the first process that opens the application
with its keys (`wvb run`, any `wvb` staff command, `wvb keys rotate`) re-encrypts every format-1
ciphertext under its new associated data, seals the receipt hashes, moves ``cases.reporter_id``
into ``reporter_tag`` / ``reporter_ciphertext`` and clears it, seals the staff rows (``seal``),
then deletes the row
(``services/key_rotation.py``). Until then nothing reads the old rows.

``cases.reporter_id`` stays as a column, always NULL after the upgrade; a later release drops it.

Revision ID: 0011_bind_ciphertexts
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_bind_ciphertexts"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = "bind_ciphertexts"
#: Tables holding what the upgrade rewrites; an empty database has nothing to upgrade.
HOLDERS = (
    "worker_addresses",
    "cases",
    "case_entries",
    "case_events",
    "draft_attachments",
    "outbox",
)


def upgrade() -> None:
    pending = op.create_table(
        "pending_upgrades",
        sa.Column("name", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_pending_upgrades")),
    )
    bind = op.get_bind()
    for table in HOLDERS:
        if bind.execute(sa.select(sa.literal(1)).select_from(sa.table(table)).limit(1)).first():
            op.bulk_insert(pending, [{"name": UPGRADE}])
            break
    op.add_column("cases", sa.Column("reporter_tag", sa.String(32), nullable=True))
    op.add_column("cases", sa.Column("reporter_ciphertext", sa.LargeBinary(), nullable=True))
    op.create_index(op.f("ix_cases_reporter_tag"), "cases", ["reporter_tag"])
    op.add_column("staff", sa.Column("seal", sa.String(32), nullable=True))


def downgrade() -> None:
    # Format-2 ciphertexts cannot be turned back without keys: downgrading loses access to
    # everything written since. Only the schema goes back.
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("seal")
    op.drop_index(op.f("ix_cases_reporter_tag"), table_name="cases")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("reporter_ciphertext")
        batch.drop_column("reporter_tag")
    op.drop_table("pending_upgrades")
