"""users.queue_member_interface: the phone (e.g. PJSIP/op1) an operator answers on

The console's screen pop opens a call on the operator whose queue member it rang: AMI names the
member by its name and its interface, and an interface is the surer of the two (a member name
is free text in queues.conf).

Revision ID: 0011_user_queue_interface
Revises: 0012_notifications
Create Date: 2026-12-01 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_user_queue_interface"
down_revision: str | None = "0012_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("queue_member_interface", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("queue_member_interface")
