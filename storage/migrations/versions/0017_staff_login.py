"""Staff log in to the web console: password, TOTP second factor, enrolment links, sessions.

- ``staff.assigned_only``: a case handler limited to the cases assigned to them.
- ``staff.password_hash`` (argon2id) and ``password_set_at``; ``staff.totp_secret`` (encrypted
  under the keyring, bound to the staff name) and ``totp_last_step`` (the last time step a code
  was accepted in: an older or equal one is refused, so a code works once).
- ``staff.invite_hash`` and ``invite_expires_at``: an enrolment link, kept only as a keyed hash
  of its token; ``pending_totp`` the secret it offers until the newcomer confirms a code.
- ``staff_sessions``: one row per login, named by a keyed hash of the browser's token.

The staff row's seal now also covers the password hash, the TOTP ciphertext's hash,
``assigned_only`` and the invitation, each only once set: rows sealed before stay valid.

Revision ID: 0017_staff_login
Revises: 0016_broadcast_window
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0017_staff_login"
down_revision = "0016_broadcast_window"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.add_column(
            sa.Column("assigned_only", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("password_hash", sa.String(255), nullable=True))
        batch.add_column(sa.Column("password_set_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("totp_secret", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("invite_hash", sa.String(32), nullable=True))
        batch.add_column(sa.Column("invite_expires_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("pending_totp", sa.LargeBinary(), nullable=True))
        batch.create_index(batch.f("ix_staff_invite_hash"), ["invite_hash"])
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(32), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("seal", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
            name=op.f("fk_staff_sessions_staff_id_staff"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_sessions_token_hash")),
    )
    op.create_index(op.f("ix_staff_sessions_staff_id"), "staff_sessions", ["staff_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_staff_sessions_staff_id"), table_name="staff_sessions")
    op.drop_table("staff_sessions")
    with op.batch_alter_table("staff") as batch:
        batch.drop_index(batch.f("ix_staff_invite_hash"))
        for column in (
            "pending_totp", "invite_expires_at", "invite_hash", "totp_last_step", "totp_secret",
            "password_set_at", "password_hash", "assigned_only",
        ):  # fmt: skip
            batch.drop_column(column)
