"""Imports as background jobs: the batch's status, progress and lease, and its stored plan

Revision ID: d4e8f0a1b2c5
Revises: b7e1c9d2a4f0
Create Date: 2026-12-06 12:00:00

Batches uploaded before this revision were planned anew on every preview: an applied one
is marked applied; the others are queued, so a worker plans them once and their preview
links keep working.
"""

import sqlalchemy as sa
from alembic import op

revision = "d4e8f0a1b2c5"
down_revision = "c3d9e1f2a7b4"
branch_labels = None
depends_on = None

IMPORT_STATUS = sa.Enum(
    "queued",
    "planning",
    "planned",
    "apply_queued",
    "applying",
    "applied",
    "failed",
    name="import_status",
    native_enum=False,
    create_constraint=True,
    length=20,
)
ROW_STATUS = sa.Enum(
    "new",
    "updated",
    "unchanged",
    "rejected",
    name="import_row_status",
    native_enum=False,
    create_constraint=True,
    length=20,
)


def upgrade():
    op.create_table(
        "import_row",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("status", ROW_STATUS, nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("clinic", sa.JSON(), nullable=True),
        sa.Column("clinician", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["import_batch.id"], name=op.f("fk_import_row_batch_id_import_batch")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_row")),
        sa.UniqueConstraint("batch_id", "line", name=op.f("uq_import_row_batch_id")),
    )
    with op.batch_alter_table("import_row", schema=None) as batch_op:
        batch_op.create_index(
            "ix_import_row_batch_id_status_line", ["batch_id", "status", "line"], unique=False
        )

    # Server defaults fill the rows already there (and any an older host still inserts
    # during a rolling deploy); the code always sets these columns itself.
    with op.batch_alter_table("import_batch", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", IMPORT_STATUS, nullable=False, server_default="queued")
        )
        batch_op.add_column(
            sa.Column("rows_total", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("rows_done", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("unknown_columns", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("planned_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("apply_requested_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("error", sa.String(length=500), nullable=True))
        batch_op.create_index(batch_op.f("ix_import_batch_status"), ["status"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_import_batch_apply_requested_by_id_staff_user"),
            "staff_user",
            ["apply_requested_by_id"],
            ["id"],
        )
    op.execute("UPDATE import_batch SET status = 'applied' WHERE applied_at IS NOT NULL")


def downgrade():
    op.drop_index("ix_import_row_batch_id_status_line", table_name="import_row")
    op.drop_table("import_row")
    with op.batch_alter_table("import_batch", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_import_batch_apply_requested_by_id_staff_user"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_import_batch_status"))
        batch_op.drop_constraint(batch_op.f("ck_import_batch_import_status"), type_="check")
        batch_op.drop_column("error")
        batch_op.drop_column("apply_requested_by_id")
        batch_op.drop_column("planned_at")
        batch_op.drop_column("step_started_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_token")
        batch_op.drop_column("unknown_columns")
        batch_op.drop_column("rows_done")
        batch_op.drop_column("rows_total")
        batch_op.drop_column("status")
