"""listed_clinic: the search index of listed clinics, kept in step by triggers

Revision ID: 8c4f2a61d9b7
Revises: 5eb53e9adfc3
Create Date: 2026-11-26 09:00:00.000000

One row per clinic that patients can find (active, with at least one active clinician):
its coordinates, a band of latitude, and a bit per profession its active clinicians
practise. Triggers on ``clinic`` and ``clinician`` rewrite a clinic's row whenever
anything it depends on changes, so no code path (ORM, Core bulk insert, SQL by hand) can
leave it stale. The SQL is spelled out here rather than imported, so this migration
keeps meaning the same thing whatever the app's code becomes.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "8c4f2a61d9b7"
down_revision = "5eb53e9adfc3"
branch_labels = None
depends_on = None

# Must match PROFESSION_BITS and the latitude band constants in clinic_finder/models.py.
PROFESSION_BIT = (
    "CASE clinician.profession WHEN 'chiropractor' THEN 1 WHEN 'physiotherapist' THEN 2 "
    "WHEN 'manual_therapist' THEN 4 ELSE 0 END"
)
LATITUDE_BAND = {
    # Both are floor(latitude * 100 + 9000): the offset keeps the value positive, where
    # SQLite's CAST (which truncates) and PostgreSQL's floor agree.
    "sqlite": "CAST(listed.latitude * 100 + 9000 AS INTEGER)",
    "postgresql": "CAST(floor(listed.latitude * 100 + 9000) AS INTEGER)",
}

SQLITE_TRIGGERS = {
    "listed_clinic_after_clinic_insert": "AFTER INSERT ON clinic",
    "listed_clinic_after_clinic_update": "AFTER UPDATE OF active, latitude, longitude ON clinic",
    "listed_clinic_after_clinic_delete": "AFTER DELETE ON clinic",
    "listed_clinic_after_clinician_insert": "AFTER INSERT ON clinician",
    "listed_clinic_after_clinician_update": (
        "AFTER UPDATE OF active, profession, clinic_id ON clinician"
    ),
    "listed_clinic_after_clinician_delete": "AFTER DELETE ON clinician",
}
# Which clinics each SQLite trigger must rewrite.
SQLITE_AFFECTED = {
    "listed_clinic_after_clinic_insert": "NEW.id",
    "listed_clinic_after_clinic_update": "OLD.id, NEW.id",
    "listed_clinic_after_clinic_delete": "OLD.id",
    "listed_clinic_after_clinician_insert": "NEW.clinic_id",
    "listed_clinic_after_clinician_update": "OLD.clinic_id, NEW.clinic_id",
    "listed_clinic_after_clinician_delete": "OLD.clinic_id",
}


def insert_listed(dialect: str, clinic_condition: str) -> str:
    """INSERT the listed_clinic rows of the clinics matching a condition on ``clinic``."""
    # Built from this module's constants only, never from input.
    return f"""
        INSERT INTO listed_clinic (clinic_id, professions, latitude, longitude, latitude_band)
        SELECT listed.id, listed.professions, listed.latitude, listed.longitude,
               {LATITUDE_BAND[dialect]}
        FROM (
            SELECT clinic.id, clinic.latitude, clinic.longitude,
                   (SELECT coalesce(sum(DISTINCT {PROFESSION_BIT}), 0)
                    FROM clinician
                    WHERE clinician.clinic_id = clinic.id AND clinician.active) AS professions
            FROM clinic
            WHERE clinic.active AND {clinic_condition}
        ) AS listed
        WHERE listed.professions <> 0
    """


def create_table():
    op.create_table(
        "listed_clinic",
        sa.Column("clinic_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("professions", sa.Integer(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("latitude_band", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
            name=op.f("fk_listed_clinic_clinic_id_clinic"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("clinic_id", name=op.f("pk_listed_clinic")),
    )
    op.create_index(
        "ix_listed_clinic_band_longitude",
        "listed_clinic",
        ["latitude_band", "longitude", "latitude", "professions", "clinic_id"],
        unique=False,
    )


def create_sqlite_triggers():
    for name, event in SQLITE_TRIGGERS.items():
        affected = SQLITE_AFFECTED[name]
        op.execute(
            f"CREATE TRIGGER {name} {event} BEGIN "
            f"DELETE FROM listed_clinic WHERE clinic_id IN ({affected}); "
            f"{insert_listed('sqlite', f'clinic.id IN ({affected})')}; "
            "END"
        )


# Statement-level triggers on PostgreSQL: a bulk insert of a thousand clinicians (one
# multi-row INSERT) rewrites its clinics' rows once, not once per clinician.
POSTGRESQL_TRIGGERS = {
    # trigger name: (event, table, transition tables, the clinic ids it must rewrite)
    "listed_clinic_after_clinic_insert": (
        "INSERT",
        "clinic",
        "NEW TABLE AS new_rows",
        "SELECT id FROM new_rows",
    ),
    "listed_clinic_after_clinic_update": (
        "UPDATE",
        "clinic",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        # Only where something the index holds changed: most updates (a phone number,
        # a verification) need no work.
        "SELECT new_rows.id FROM old_rows JOIN new_rows ON new_rows.id = old_rows.id "
        "WHERE (old_rows.active, old_rows.latitude, old_rows.longitude) "
        "IS DISTINCT FROM (new_rows.active, new_rows.latitude, new_rows.longitude)",
    ),
    "listed_clinic_after_clinician_insert": (
        "INSERT",
        "clinician",
        "NEW TABLE AS new_rows",
        "SELECT clinic_id FROM new_rows",
    ),
    "listed_clinic_after_clinician_update": (
        "UPDATE",
        "clinician",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "SELECT changed.clinic_id FROM ("
        " SELECT old_rows.clinic_id AS old_clinic, new_rows.clinic_id AS new_clinic"
        " FROM old_rows JOIN new_rows ON new_rows.id = old_rows.id"
        " WHERE (old_rows.active, old_rows.profession, old_rows.clinic_id)"
        " IS DISTINCT FROM (new_rows.active, new_rows.profession, new_rows.clinic_id)"
        ") AS moved, LATERAL (VALUES (moved.old_clinic), (moved.new_clinic)) AS changed(clinic_id)",
    ),
    "listed_clinic_after_clinician_delete": (
        "DELETE",
        "clinician",
        "OLD TABLE AS old_rows",
        "SELECT clinic_id FROM old_rows",
    ),
    # A deleted clinic's row goes with it (ON DELETE CASCADE).
}


def create_postgresql_triggers():
    op.execute(
        f"""
        CREATE FUNCTION listed_clinic_refresh(clinic_ids integer[]) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            IF cardinality(clinic_ids) = 0 THEN
                RETURN;
            END IF;
            -- Two transactions changing one clinic's clinicians would each miss the
            -- other's rows; lock the clinics first (NO KEY UPDATE does not block
            -- foreign-key checks), and READ COMMITTED gives the statements below a
            -- snapshot that includes whatever the other committed meanwhile.
            PERFORM 1 FROM clinic WHERE clinic.id = ANY(clinic_ids) ORDER BY clinic.id
                FOR NO KEY UPDATE;
            DELETE FROM listed_clinic WHERE clinic_id = ANY(clinic_ids);
            {insert_listed("postgresql", "clinic.id = ANY(clinic_ids)")};
        END
        $$
        """
    )
    for name, (event, table, transitions, affected) in POSTGRESQL_TRIGGERS.items():
        op.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM listed_clinic_refresh(ARRAY(SELECT DISTINCT ids.id FROM ({affected}) AS ids(id)));
                RETURN NULL;
            END
            $$
            """
        )
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {transitions} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )


def drop_postgresql_triggers():
    for name, (_, table, _, _) in POSTGRESQL_TRIGGERS.items():
        op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute(f"DROP FUNCTION {name}()")
    op.execute("DROP FUNCTION listed_clinic_refresh(integer[])")


def upgrade():
    dialect = op.get_bind().dialect.name
    create_table()
    if dialect == "postgresql":
        create_postgresql_triggers()
    else:
        create_sqlite_triggers()
    # The clinics already in the directory.
    op.execute(insert_listed(dialect, "1 = 1"))


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        drop_postgresql_triggers()
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_listed_clinic_band_longitude", table_name="listed_clinic")
    op.drop_table("listed_clinic")
