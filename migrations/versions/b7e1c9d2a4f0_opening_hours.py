"""Opening hours per clinic and weekday

Revision ID: b7e1c9d2a4f0
Revises: 8c4f2a61d9b7
Create Date: 2026-11-25 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "b7e1c9d2a4f0"
down_revision = "8c4f2a61d9b7"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "opening_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("opens", sa.Time(), nullable=False),
        sa.Column("closes", sa.Time(), nullable=False),
        sa.CheckConstraint(
            "weekday BETWEEN 0 AND 6", name=op.f("ck_opening_hours_weekday_is_a_day")
        ),
        sa.CheckConstraint("opens < closes", name=op.f("ck_opening_hours_opens_before_it_closes")),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_opening_hours_clinic_id_clinic")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opening_hours")),
    )
    with op.batch_alter_table("opening_hours", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_opening_hours_clinic_id"), ["clinic_id"], unique=False)


def downgrade():
    with op.batch_alter_table("opening_hours", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_opening_hours_clinic_id"))
    op.drop_table("opening_hours")
