"""Import round trip: the upload's encoding and language, address progress, row changes

Revision ID: d2a4c6e8f0b1
Revises: c5e1a9d7f3b2
Create Date: 2026-12-06 14:50:00

The rejected rows go back in the upload's own encoding (its separator and header are read
from the stored file again); batches uploaded before this revision have none and get
UTF-8 with a byte-order mark, as before. An updated row keeps what it changes, for the
preview's old → new. Planning counts the addresses it looks up, for a progress figure.

A clinic's visiting address may no longer be at a P.O.-box postcode, which the register's
usage says; a register loaded before usage was kept has none, so it is filled in here from
data/postnummer-koordinatar.tsv (where usage is unknown; `flask postcodes load` does the
same and more).
"""

import csv
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "d2a4c6e8f0b1"
down_revision = "c5e1a9d7f3b2"
branch_labels = None
depends_on = None

REGISTER = Path(__file__).resolve().parents[2] / "data" / "postnummer-koordinatar.tsv"

postal_code = sa.table(
    "postal_code",
    sa.column("postcode", sa.String),
    sa.column("usage", sa.String),
)


def _fill_in_postcode_usage():
    if not REGISTER.exists():
        return
    with REGISTER.open(encoding="utf-8-sig", newline="") as handle:
        usage = {
            row["POSTNR"].strip(): (row.get("BRUKSOMRÅDE") or "").strip()
            for row in csv.DictReader(handle, delimiter="\t")
        }
    connection = op.get_bind()
    unknown = connection.execute(
        sa.select(postal_code.c.postcode).where(postal_code.c.usage.is_(None))
    ).scalars()
    updates = [{"code": code, "value": usage[code]} for code in unknown if usage.get(code)]
    if updates:
        connection.execute(
            postal_code.update()
            .where(postal_code.c.postcode == sa.bindparam("code"))
            .values(usage=sa.bindparam("value")),
            updates,
        )


def upgrade():
    with op.batch_alter_table("import_batch", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("addresses_total", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("addresses_done", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("encoding", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("language", sa.String(length=5), nullable=True))
    with op.batch_alter_table("import_row", schema=None) as batch_op:
        batch_op.add_column(sa.Column("changes", sa.JSON(), nullable=False, server_default="[]"))
    _fill_in_postcode_usage()


def downgrade():
    with op.batch_alter_table("import_row", schema=None) as batch_op:
        batch_op.drop_column("changes")
    with op.batch_alter_table("import_batch", schema=None) as batch_op:
        batch_op.drop_column("language")
        batch_op.drop_column("encoding")
        batch_op.drop_column("addresses_done")
        batch_op.drop_column("addresses_total")
