"""Contact requests: the patient's language, and the staff member who owns the request

Revision ID: b8d2f4a6c1e3
Revises: a7c3e9f1b2d6
Create Date: 2026-12-06 14:05:00

Existing requests get no language (unknown: they were written before it was kept) and no
owner.
"""

import sqlalchemy as sa
from alembic import op

revision = "b8d2f4a6c1e3"
down_revision = "a7c3e9f1b2d6"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("contact_request") as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_contact_request_owner_id_staff_user"),
            "staff_user",
            ["owner_id"],
            ["id"],
        )
        batch_op.create_index(
            batch_op.f("ix_contact_request_owner_id"), ["owner_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("contact_request") as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_request_owner_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_contact_request_owner_id_staff_user"), type_="foreignkey"
        )
        batch_op.drop_column("owner_id")
        batch_op.drop_column("language")
