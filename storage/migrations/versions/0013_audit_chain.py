"""Chain the audit log: each row holds the SHA-256 of the previous row's hash and its own content
(``storage/audit_chain.py``), so `wvb audit verify` finds a row changed or removed behind the
triggers' back. Existing rows are chained in id order. PostgreSQL also refuses TRUNCATE, which
row triggers do not see.

Revision ID: 0013_audit_chain
Revises: 0012_retention
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.audit_chain import GENESIS, canonical, chain_hash
from storage.models import UTCDateTime

revision = "0013_audit_chain"
down_revision = "0012_retention"
branch_labels = None
depends_on = None

_SQLITE_NO_UPDATE = """
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END
"""
_POSTGRES_NO_TRUNCATE = """
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()
"""

_audit_log = sa.table(
    "audit_log",
    sa.column("id", sa.Integer()),
    sa.column("at", UTCDateTime()),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("subject", sa.String()),
    sa.column("details", sa.JSON()),
    sa.column("row_hash", sa.String()),
)


def _chain_existing_rows(connection: sa.Connection) -> None:
    rows = connection.execute(sa.select(_audit_log).order_by(_audit_log.c.id)).all()
    previous = GENESIS
    for row in rows:
        details = row.details if row.details is not None else {}
        previous = chain_hash(
            previous, canonical(row.at, row.actor, row.action, row.subject, details)
        )
        connection.execute(
            sa.update(_audit_log).where(_audit_log.c.id == row.id).values(row_hash=previous)
        )


def upgrade() -> None:
    connection = op.get_bind()
    postgres = connection.dialect.name == "postgresql"
    op.add_column("audit_log", sa.Column("row_hash", sa.String(64), nullable=True))
    # The rows are chained with the append-only trigger off for this one transaction.
    if postgres:
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    _chain_existing_rows(connection)
    if postgres:
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        op.execute(_POSTGRES_NO_TRUNCATE)
    else:
        op.execute(_SQLITE_NO_UPDATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("ALTER TABLE audit_log DROP COLUMN row_hash")
        return
    # SQLite: dropping a column rebuilds the table, which drops its triggers; put them back.
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("row_hash")
    for verb in ("update", "delete"):
        op.execute(
            f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{verb} BEFORE {verb.upper()} ON audit_log"
            " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )
