"""The key canary: a row that tells which keys the data was made with, so the application refuses
keys that do not match instead of showing every case as "[cannot be decrypted]" and greeting
every returning worker as a stranger (``services/key_canary.py``).

A migration holds no key, so it only makes the table: the first process that opens the
application with its keys writes the row, after checking that the stored ciphertexts were made
with one of them.

Revision ID: 0014_key_canary
Revises: 0013_audit_chain
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0014_key_canary"
down_revision = "0013_audit_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_canary",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_key_check", sa.String(64), nullable=False),
        sa.Column("encryption_check", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_key_canary_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_canary")),
    )


def downgrade() -> None:
    op.drop_table("key_canary")
