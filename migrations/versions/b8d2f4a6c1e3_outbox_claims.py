"""An outbox message's claim, apart from its back-off

Revision ID: b8d2f4a6c1e3
Revises: a7c3e9f1b2d6
Create Date: 2026-12-07 10:00:00

A sender used to claim a message by pushing its next attempt ten minutes ahead, which
looks the same as a back-off. ``flask outbox send --retry-now`` ignores the back-off but
must never take a message another sender holds, so the claim gets a column of its own.
The column starts empty. It only adds, so older code keeps working during a rolling
deploy: a message an older sender holds keeps its pushed-ahead next attempt, and ordinary
senders leave it alone; only --retry-now, which older senders' claims do not show to,
waits until every sender runs the new code (docs/deploy.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "b8d2f4a6c1e3"
down_revision = "a7c3e9f1b2d6"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox_message") as batch_op:
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("outbox_message") as batch_op:
        batch_op.drop_column("claimed_until")
