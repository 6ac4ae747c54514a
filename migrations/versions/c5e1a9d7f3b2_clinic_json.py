"""clinic_json: each clinic's public JSON kept ready for the API, marked stale by triggers

Revision ID: c5e1a9d7f3b2
Revises: c9e3a5d7f1b4
Create Date: 2026-12-06 14:00:00

One row per clinic; ``body`` is its JSON as ``clinic_finder/public_json.py`` builds it,
NULL while stale. Triggers on ``clinic``, ``practice`` and ``clinician`` add a stale row
for a new clinic and make a clinic's row stale whenever anything in it may have changed,
from any code path; the app fills stale rows before each commit that wrote to the
directory (Python, since the JSON is the app's serializer). The rows start stale here:
``flask clinics refresh-json`` fills them after the upgrade (until then, and for any row
still stale, the API serializes those clinics per answer, as before). The SQL is spelled
out here so this migration keeps meaning the same whatever the app's code becomes.
"""

import sqlalchemy as sa
from alembic import op

revision = "c5e1a9d7f3b2"
down_revision = "c9e3a5d7f1b4"
branch_labels = None
depends_on = None


def mark_stale(condition: str) -> str:
    """SQL making the rows of the clinics matching a condition on ``clinic`` stale."""
    # Built from this module's constants only, never from input.
    return (
        "INSERT INTO clinic_json (clinic_id, body) "
        f"SELECT clinic.id, NULL FROM clinic WHERE {condition} "
        "ON CONFLICT (clinic_id) DO UPDATE SET body = NULL"
    )


# SQLite: row triggers, each naming the clinics the changed row belongs to.
SQLITE_TRIGGERS = {
    "clinic_json_after_clinic_insert": ("AFTER INSERT ON clinic", "NEW.id"),
    "clinic_json_after_clinic_update": ("AFTER UPDATE ON clinic", "NEW.id"),
    "clinic_json_after_practice_insert": ("AFTER INSERT ON practice", "NEW.clinic_id"),
    "clinic_json_after_practice_update": (
        "AFTER UPDATE ON practice",
        "OLD.clinic_id, NEW.clinic_id",
    ),
    "clinic_json_after_practice_delete": ("AFTER DELETE ON practice", "OLD.clinic_id"),
    "clinic_json_after_clinician_update": (
        "AFTER UPDATE ON clinician",
        "SELECT practice.clinic_id FROM practice WHERE practice.clinician_id = NEW.id",
    ),
}

# PostgreSQL: statement-level triggers, so a bulk write marks each clinic once.
POSTGRESQL_TRIGGERS = {
    # trigger name: (event, table, transition tables, the clinic ids it marks)
    "clinic_json_after_clinic_insert": (
        "INSERT",
        "clinic",
        "NEW TABLE AS new_rows",
        "SELECT id FROM new_rows",
    ),
    "clinic_json_after_clinic_update": (
        "UPDATE",
        "clinic",
        "NEW TABLE AS new_rows",
        "SELECT id FROM new_rows",
    ),
    "clinic_json_after_practice_insert": (
        "INSERT",
        "practice",
        "NEW TABLE AS new_rows",
        "SELECT clinic_id FROM new_rows",
    ),
    "clinic_json_after_practice_update": (
        "UPDATE",
        "practice",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "SELECT clinic_id FROM old_rows UNION SELECT clinic_id FROM new_rows",
    ),
    "clinic_json_after_practice_delete": (
        "DELETE",
        "practice",
        "OLD TABLE AS old_rows",
        "SELECT clinic_id FROM old_rows",
    ),
    "clinic_json_after_clinician_update": (
        "UPDATE",
        "clinician",
        "NEW TABLE AS new_rows",
        "SELECT practice.clinic_id FROM practice JOIN new_rows "
        "ON new_rows.id = practice.clinician_id",
    ),
    # A deleted clinic's row goes with it (ON DELETE CASCADE).
}


def create_table():
    op.create_table(
        "clinic_json",
        sa.Column("clinic_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
            name=op.f("fk_clinic_json_clinic_id_clinic"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("clinic_id", name=op.f("pk_clinic_json")),
    )
    op.create_index(
        "ix_clinic_json_stale",
        "clinic_json",
        ["clinic_id"],
        unique=False,
        sqlite_where=sa.text("body IS NULL"),
        postgresql_where=sa.text("body IS NULL"),
    )


def create_postgresql_triggers():
    op.execute(
        f"""
        CREATE FUNCTION clinic_json_mark(clinic_ids integer[]) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            IF cardinality(clinic_ids) = 0 THEN
                RETURN;
            END IF;
            -- In id order, so two transactions marking the same clinics wait in turn.
            {mark_stale("clinic.id = ANY(clinic_ids) ORDER BY clinic.id")};
        END
        $$
        """
    )
    for name, (event, table, transitions, affected) in POSTGRESQL_TRIGGERS.items():
        op.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM clinic_json_mark(ARRAY(SELECT DISTINCT ids.id FROM ({affected}) AS ids(id)));
                RETURN NULL;
            END
            $$
            """
        )
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {transitions} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )


def upgrade():
    create_table()
    if op.get_bind().dialect.name == "postgresql":
        create_postgresql_triggers()
    else:
        for name, (event, affected) in SQLITE_TRIGGERS.items():
            stale = mark_stale(f"clinic.id IN ({affected})")
            op.execute(f"CREATE TRIGGER {name} {event} BEGIN {stale}; END")
    # Every listed clinic's row, stale until the app fills it.
    op.execute("INSERT INTO clinic_json (clinic_id, body) SELECT clinic_id, NULL FROM listed_clinic")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name, (_, table, _, _) in POSTGRESQL_TRIGGERS.items():
            op.execute(f"DROP TRIGGER {name} ON {table}")
            op.execute(f"DROP FUNCTION {name}()")
        op.execute("DROP FUNCTION clinic_json_mark(integer[])")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_clinic_json_stale", table_name="clinic_json")
    op.drop_table("clinic_json")
