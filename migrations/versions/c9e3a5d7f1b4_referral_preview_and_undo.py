"""Referrals that can be undone until sent, and the complaint a request came about

Revision ID: c9e3a5d7f1b4
Revises: b8d2f4a6c1e3
Create Date: 2026-12-06 15:00:00

A contact request keeps the complaint slug of the article it came from (None for older
requests and for requests without one). A referral can be cancelled until its emails are
sent: the referral records when and by whom; each outbox message names its referral, says
when it was cancelled, and when a sender claimed it (cleared when that attempt failed), so
a message that may be on its way is never reported as cancelled.
"""

import sqlalchemy as sa
from alembic import op

revision = "c9e3a5d7f1b4"
down_revision = "b8d2f4a6c1e3"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("contact_request") as batch_op:
        batch_op.add_column(sa.Column("complaint", sa.String(length=60), nullable=True))
    with op.batch_alter_table("referral") as batch_op:
        batch_op.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("cancelled_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_referral_cancelled_by_id_staff_user"),
            "staff_user",
            ["cancelled_by_id"],
            ["id"],
        )
    with op.batch_alter_table("outbox_message") as batch_op:
        batch_op.add_column(sa.Column("referral_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_message_referral_id_referral"),
            "referral",
            ["referral_id"],
            ["id"],
        )
        batch_op.create_index(
            batch_op.f("ix_outbox_message_referral_id"), ["referral_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("outbox_message") as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_message_referral_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_outbox_message_referral_id_referral"), type_="foreignkey"
        )
        batch_op.drop_column("cancelled_at")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("referral_id")
    with op.batch_alter_table("referral") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_referral_cancelled_by_id_staff_user"), type_="foreignkey"
        )
        batch_op.drop_column("cancelled_by_id")
        batch_op.drop_column("cancelled_at")
    with op.batch_alter_table("contact_request") as batch_op:
        batch_op.drop_column("complaint")
