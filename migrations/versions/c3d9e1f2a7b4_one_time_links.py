"""One-time links from an admin: set up the authenticator app, or choose a new password

Revision ID: c3d9e1f2a7b4
Revises: b7e1c9d2a4f0
Create Date: 2026-12-06 04:48:38
"""

import sqlalchemy as sa
from alembic import op

revision = "c3d9e1f2a7b4"
down_revision = "b7e1c9d2a4f0"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "one_time_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum(
                "enrol",
                "reset_password",
                name="link_purpose",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["staff_user.id"], name=op.f("fk_one_time_link_user_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_one_time_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_one_time_link_token_hash")),
    )
    with op.batch_alter_table("one_time_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_one_time_link_user_id"), ["user_id"], unique=False)


def downgrade():
    with op.batch_alter_table("one_time_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_one_time_link_user_id"))
    op.drop_table("one_time_link")
