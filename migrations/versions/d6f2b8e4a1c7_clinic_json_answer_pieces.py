"""clinic_json: bodies stored as the answer's pieces; every row stale until refreshed

Revision ID: d6f2b8e4a1c7
Revises: b8d4f6a2c1e9
Create Date: 2026-12-06 15:00:00

``clinic_json.body`` now holds a clinic's JSON as pieces of the API answer's text,
written as the answer writes them, so an answer puts its per-request values between
them instead of parsing and encoding each clinic (``clinic_finder/public_json.py``).
Bodies in the earlier form would be misread: every row is made stale here, and
``flask clinics refresh-json`` (run after ``flask db upgrade``) stores them again; until
then the API serializes those clinics per answer, as it does for any stale row.
"""

from alembic import op

revision = "d6f2b8e4a1c7"
down_revision = "b8d4f6a2c1e9"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("UPDATE clinic_json SET body = NULL")


def downgrade():
    # The earlier code reads only the earlier form: stale rows it serializes per answer.
    op.execute("UPDATE clinic_json SET body = NULL")
