"""Failed logins counted per username (existing or not), revocable tokens, transfer times

login_failures holds the failure count and lockout of every username tried, whether a user of
that name exists or not, so a lockout looks the same for both (users.failed_logins and
users.locked_until are no longer used). users.token_generation is written into every token and
raised to revoke them all (log-out, password or role change, deactivation). calls.transferred_at
says when a call was handed on (to an agency), beside transferred_to. calls.changes is bumped
by every listener update, so the statistics rollups notice each one.

Revision ID: 0009_login_failures
Revises: 0013_audit_log
Create Date: 2026-12-01 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db

revision: str = "0009_login_failures"
down_revision: str | None = "0013_audit_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", callcenter.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_failed_at", callcenter.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_login_failures")),
    )
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("token_generation", sa.Integer(), nullable=False, server_default="0")
        )
    # A nullable column, and one with a constant default: PostgreSQL adds both without
    # rewriting the table (no long ACCESS EXCLUSIVE lock on calls).
    op.add_column("calls", sa.Column("transferred_at", callcenter.db.UTCDateTime(timezone=True)))
    op.add_column("calls", sa.Column("changes", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch_op:
        batch_op.drop_column("changes")
        batch_op.drop_column("transferred_at")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("token_generation")
    op.drop_table("login_failures")
