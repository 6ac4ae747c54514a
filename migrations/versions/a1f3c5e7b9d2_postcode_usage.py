"""Postcodes: what each is used for (street addresses, P.O. boxes, …), from the register

Revision ID: a1f3c5e7b9d2
Revises: e5f9a2b3c4d1
Create Date: 2026-12-06 11:00:00

A place's point (a post town, a municipality) is taken from its street-address postcodes:
P.O.-box postcodes sit at the post office, not where people live. Existing rows get no
usage (treated as unknown, so as usable) until `flask postcodes load` runs again.
"""

import sqlalchemy as sa
from alembic import op

revision = "a1f3c5e7b9d2"
down_revision = "e5f9a2b3c4d1"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("postal_code") as batch_op:
        batch_op.add_column(sa.Column("usage", sa.String(length=60), nullable=True))


def downgrade():
    with op.batch_alter_table("postal_code") as batch_op:
        batch_op.drop_column("usage")
