"""Practices: a clinician works at clinics, each with its own agreement; licence checks

Revision ID: e5f9a2b3c4d1
Revises: d4e8f0a1b2c5
Create Date: 2026-12-06 09:00:00

A clinician becomes the person (name, HPR number, languages, licence check); what they do
at one clinic moves to ``practice``: the profession, the services, the public agreement
(driftsavtale) and its municipality, and the answer on new patients. Today's data moves
without loss, with one correction: the clinic-wide agreement becomes each of that
clinic's clinicians' agreement, except for chiropractors, who never hold one in Norway
(the wrong fact patients were shown). The municipality of a moved agreement is the
clinic's municipality, where such agreements are made.

The search index gains the professions with an agreement, and its triggers now read
practices and licence statuses: a clinician whose licence check fails drops out of every
clinic's listing in the same statement. Stored import plans hold records of the old
shape, so batches not yet applied are planned again.
"""

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "e5f9a2b3c4d1"
down_revision = "d4e8f0a1b2c5"
branch_labels = None
depends_on = None

PROFESSION = sa.Enum(
    "chiropractor",
    "physiotherapist",
    "manual_therapist",
    name="profession",
    native_enum=False,
    create_constraint=True,
    length=20,
)
LICENCE_STATUS = sa.Enum(
    "valid",
    "not_found",
    "no_authorisation_for_profession",
    "suspended",
    "expired",
    "unchecked",
    name="licence_status",
    native_enum=False,
    create_constraint=True,
    length=40,
)
# Must match LISTED_LICENCE_STATUSES and PROFESSION_BITS in clinic_finder/models.py.
LISTED_PRACTICE = "practice.active AND clinician.licence_status IN ('valid', 'unchecked')"
PROFESSION_BIT = (
    "CASE practice.profession WHEN 'chiropractor' THEN 1 WHEN 'physiotherapist' THEN 2 "
    "WHEN 'manual_therapist' THEN 4 ELSE 0 END"
)
LATITUDE_BAND = {
    "sqlite": "CAST(listed.latitude * 100 + 9000 AS INTEGER)",
    "postgresql": "CAST(floor(listed.latitude * 100 + 9000) AS INTEGER)",
}


def _previous_index_migration():
    """The search index's first migration: its triggers are dropped here and restored on
    downgrade, spelled once, there."""
    path = Path(__file__).with_name("8c4f2a61d9b7_listed_clinic_search_index.py")
    spec = importlib.util.spec_from_file_location("listed_clinic_search_index", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bits(extra_condition: str = "") -> str:
    return (
        f"(SELECT coalesce(sum(DISTINCT {PROFESSION_BIT}), 0) "
        "FROM practice JOIN clinician ON clinician.id = practice.clinician_id "
        f"WHERE practice.clinic_id = clinic.id AND {LISTED_PRACTICE}{extra_condition})"
    )


def insert_listed(dialect: str, clinic_condition: str) -> str:
    """INSERT the listed_clinic rows of the clinics matching a condition on ``clinic``."""
    # Built from this module's constants only, never from input.
    return f"""
        INSERT INTO listed_clinic
            (clinic_id, professions, agreement_professions, latitude, longitude, latitude_band)
        SELECT listed.id, listed.professions, listed.agreement_professions,
               listed.latitude, listed.longitude, {LATITUDE_BAND[dialect]}
        FROM (
            SELECT clinic.id, clinic.latitude, clinic.longitude,
                   {_bits()} AS professions,
                   {_bits(" AND practice.public_agreement")} AS agreement_professions
            FROM clinic
            WHERE clinic.active AND {clinic_condition}
        ) AS listed
        WHERE listed.professions <> 0
    """


# SQLite: one trigger per event, each rewriting the rows of the clinics it touched.
SQLITE_TRIGGERS = {
    "listed_clinic_after_clinic_insert": ("AFTER INSERT ON clinic", "NEW.id"),
    "listed_clinic_after_clinic_update": (
        "AFTER UPDATE OF active, latitude, longitude ON clinic",
        "OLD.id, NEW.id",
    ),
    "listed_clinic_after_clinic_delete": ("AFTER DELETE ON clinic", "OLD.id"),
    "listed_clinic_after_practice_insert": ("AFTER INSERT ON practice", "NEW.clinic_id"),
    "listed_clinic_after_practice_update": (
        "AFTER UPDATE OF active, profession, public_agreement, clinic_id, clinician_id ON practice",
        "OLD.clinic_id, NEW.clinic_id",
    ),
    "listed_clinic_after_practice_delete": ("AFTER DELETE ON practice", "OLD.clinic_id"),
    "listed_clinic_after_licence_update": (
        "AFTER UPDATE OF licence_status ON clinician",
        "SELECT practice.clinic_id FROM practice WHERE practice.clinician_id = NEW.id",
    ),
}

# PostgreSQL: statement-level triggers, so a bulk write rewrites each clinic once.
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
        "SELECT new_rows.id FROM old_rows JOIN new_rows ON new_rows.id = old_rows.id "
        "WHERE (old_rows.active, old_rows.latitude, old_rows.longitude) "
        "IS DISTINCT FROM (new_rows.active, new_rows.latitude, new_rows.longitude)",
    ),
    "listed_clinic_after_practice_insert": (
        "INSERT",
        "practice",
        "NEW TABLE AS new_rows",
        "SELECT clinic_id FROM new_rows",
    ),
    "listed_clinic_after_practice_update": (
        "UPDATE",
        "practice",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "SELECT changed.clinic_id FROM ("
        " SELECT old_rows.clinic_id AS old_clinic, new_rows.clinic_id AS new_clinic"
        " FROM old_rows JOIN new_rows ON new_rows.id = old_rows.id"
        " WHERE (old_rows.active, old_rows.profession, old_rows.public_agreement,"
        " old_rows.clinic_id, old_rows.clinician_id)"
        " IS DISTINCT FROM (new_rows.active, new_rows.profession, new_rows.public_agreement,"
        " new_rows.clinic_id, new_rows.clinician_id)"
        ") AS moved, LATERAL (VALUES (moved.old_clinic), (moved.new_clinic)) AS changed(clinic_id)",
    ),
    "listed_clinic_after_practice_delete": (
        "DELETE",
        "practice",
        "OLD TABLE AS old_rows",
        "SELECT clinic_id FROM old_rows",
    ),
    "listed_clinic_after_licence_update": (
        "UPDATE",
        "clinician",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "SELECT practice.clinic_id FROM old_rows JOIN new_rows ON new_rows.id = old_rows.id"
        " JOIN practice ON practice.clinician_id = new_rows.id"
        " WHERE old_rows.licence_status IS DISTINCT FROM new_rows.licence_status",
    ),
}


def create_sqlite_triggers():
    for name, (event, affected) in SQLITE_TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {event} BEGIN "
            f"DELETE FROM listed_clinic WHERE clinic_id IN ({affected}); "
            f"{insert_listed('sqlite', f'clinic.id IN ({affected})')}; "
            "END"
        )


def create_postgresql_triggers():
    op.execute(
        f"""
        CREATE FUNCTION listed_clinic_refresh(clinic_ids integer[]) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            IF cardinality(clinic_ids) = 0 THEN
                RETURN;
            END IF;
            -- Lock the clinics first, so two transactions changing one clinic's
            -- practices each see the other's committed rows (see 8c4f2a61d9b7).
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


def drop_triggers(dialect: str, sqlite_names, postgresql_triggers):
    if dialect == "postgresql":
        for name, (_, table, _, _) in postgresql_triggers.items():
            op.execute(f"DROP TRIGGER {name} ON {table}")
            op.execute(f"DROP FUNCTION {name}()")
        op.execute("DROP FUNCTION listed_clinic_refresh(integer[])")
    else:
        for name in sqlite_names:
            op.execute(f"DROP TRIGGER {name}")


def create_practice_table():
    op.create_table(
        "practice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinician_id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("profession", PROFESSION, nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("public_agreement", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("agreement_municipality", sa.String(length=100), nullable=True),
        sa.Column("accepts_new_patients", sa.Boolean(), nullable=True),
        sa.Column("accepts_new_patients_confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "NOT (public_agreement AND profession = 'chiropractor')",
            name=op.f("ck_practice_no_chiropractor_agreement"),
        ),
        sa.CheckConstraint(
            "public_agreement OR agreement_municipality IS NULL",
            name=op.f("ck_practice_municipality_only_with_agreement"),
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_practice_clinic_id_clinic")
        ),
        sa.ForeignKeyConstraint(
            ["clinician_id"], ["clinician.id"], name=op.f("fk_practice_clinician_id_clinician")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practice")),
        sa.UniqueConstraint("clinician_id", "clinic_id", name=op.f("uq_practice_clinician_id")),
    )
    with op.batch_alter_table("practice", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_practice_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_practice_clinician_id"), ["clinician_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_practice_profession"), ["profession"], unique=False)


def move_clinicians_into_practices():
    op.execute(
        """
        INSERT INTO practice (clinician_id, clinic_id, profession, services, public_agreement,
                              agreement_municipality, accepts_new_patients,
                              accepts_new_patients_confirmed_at, active, created_at, updated_at)
        SELECT clinician.id, clinician.clinic_id, clinician.profession, clinician.services,
               clinic.helfo_agreement AND clinician.profession <> 'chiropractor',
               CASE WHEN clinic.helfo_agreement AND clinician.profession <> 'chiropractor'
                    THEN postal_code.municipality END,
               clinic.accepts_new_patients, clinic.accepts_new_patients_confirmed_at,
               clinician.active, clinician.created_at, clinician.updated_at
        FROM clinician
        JOIN clinic ON clinic.id = clinician.clinic_id
        JOIN postal_code ON postal_code.postcode = clinic.postcode
        """
    )


def rebuild_search_index(dialect: str, insert) -> None:
    op.execute("DELETE FROM listed_clinic")
    op.execute(insert(dialect, "1 = 1"))


def plan_unapplied_imports_again():
    op.execute(
        "DELETE FROM import_row WHERE batch_id IN (SELECT id FROM import_batch "
        "WHERE status IN ('planning', 'planned', 'apply_queued'))"
    )
    op.execute(
        "UPDATE import_batch SET status = 'queued', rows_done = 0, lease_token = NULL, "
        "lease_until = NULL, planned_at = NULL, apply_requested_by_id = NULL "
        "WHERE status IN ('planning', 'planned', 'apply_queued')"
    )


def upgrade():
    dialect = op.get_bind().dialect.name
    previous = _previous_index_migration()
    drop_triggers(dialect, previous.SQLITE_TRIGGERS, previous.POSTGRESQL_TRIGGERS)
    create_practice_table()
    move_clinicians_into_practices()

    with op.batch_alter_table("clinician", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clinician_clinic_id"))
        batch_op.drop_index(batch_op.f("ix_clinician_profession"))
        batch_op.drop_constraint(batch_op.f("fk_clinician_clinic_id_clinic"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("ck_clinician_profession"), type_="check")
        batch_op.drop_column("clinic_id")
        batch_op.drop_column("profession")
        batch_op.drop_column("services")
        batch_op.drop_column("active")
        batch_op.add_column(
            sa.Column("licence_status", LICENCE_STATUS, nullable=False, server_default="unchecked")
        )
        batch_op.add_column(
            sa.Column("licence_categories", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("licence_valid_from", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("licence_valid_to", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("licence_checked_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_clinician_licence_status"), ["licence_status"], unique=False
        )

    with op.batch_alter_table("clinic", schema=None) as batch_op:
        batch_op.drop_column("helfo_agreement")
        batch_op.drop_column("accepts_new_patients")
        batch_op.drop_column("accepts_new_patients_confirmed_at")
        batch_op.add_column(sa.Column("booking_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("step_free_access", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("accessible_toilet", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("parking", sa.Boolean(), nullable=True))

    op.drop_index("ix_listed_clinic_band_longitude", table_name="listed_clinic")
    with op.batch_alter_table("listed_clinic", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("agreement_professions", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index(
        "ix_listed_clinic_band_longitude",
        "listed_clinic",
        [
            "latitude_band",
            "longitude",
            "latitude",
            "professions",
            "agreement_professions",
            "clinic_id",
        ],
        unique=False,
    )
    if dialect == "postgresql":
        create_postgresql_triggers()
    else:
        create_sqlite_triggers()
    rebuild_search_index(dialect, insert_listed)

    with op.batch_alter_table("import_row", schema=None) as batch_op:
        batch_op.add_column(sa.Column("practice", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("warnings", sa.JSON(), nullable=False, server_default="[]"))
    plan_unapplied_imports_again()


def downgrade():
    """Back to one clinic per clinician: each keeps their first practice; a clinic has the
    agreement if any of its clinicians had one there, and the newest answer on new patients.
    Licence checks and the clinics' access facts are lost."""
    dialect = op.get_bind().dialect.name
    previous = _previous_index_migration()
    drop_triggers(dialect, SQLITE_TRIGGERS, POSTGRESQL_TRIGGERS)
    plan_unapplied_imports_again()
    with op.batch_alter_table("import_row", schema=None) as batch_op:
        batch_op.drop_column("warnings")
        batch_op.drop_column("practice")

    with op.batch_alter_table("clinic", schema=None) as batch_op:
        batch_op.drop_column("parking")
        batch_op.drop_column("accessible_toilet")
        batch_op.drop_column("step_free_access")
        batch_op.drop_column("booking_url")
        batch_op.add_column(
            sa.Column("helfo_agreement", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("accepts_new_patients", sa.Boolean(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "accepts_new_patients_confirmed_at", sa.DateTime(timezone=True), nullable=True
            )
        )
    op.execute(
        "UPDATE clinic SET helfo_agreement = EXISTS (SELECT 1 FROM practice "
        "WHERE practice.clinic_id = clinic.id AND practice.public_agreement)"
    )
    newest = (
        "(SELECT practice.{column} FROM practice WHERE practice.clinic_id = clinic.id "
        "AND practice.accepts_new_patients_confirmed_at IS NOT NULL "
        "ORDER BY practice.accepts_new_patients_confirmed_at DESC LIMIT 1)"
    )
    op.execute(
        f"UPDATE clinic SET accepts_new_patients = {newest.format(column='accepts_new_patients')}, "
        "accepts_new_patients_confirmed_at = "
        f"{newest.format(column='accepts_new_patients_confirmed_at')}"
    )

    # The old shape has no clinician without a clinic.
    op.execute(
        "DELETE FROM clinician WHERE NOT EXISTS "
        "(SELECT 1 FROM practice WHERE practice.clinician_id = clinician.id)"
    )
    with op.batch_alter_table("clinician", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clinician_licence_status"))
        batch_op.drop_constraint(batch_op.f("ck_clinician_licence_status"), type_="check")
        batch_op.drop_column("licence_checked_at")
        batch_op.drop_column("licence_valid_to")
        batch_op.drop_column("licence_valid_from")
        batch_op.drop_column("licence_categories")
        batch_op.drop_column("licence_status")
        batch_op.add_column(sa.Column("clinic_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("profession", PROFESSION, nullable=True))
        batch_op.add_column(sa.Column("services", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    first = (
        "(SELECT practice.{column} FROM practice WHERE practice.clinician_id = clinician.id "
        "ORDER BY practice.active DESC, practice.id LIMIT 1)"
    )
    op.execute(
        "UPDATE clinician SET "
        + ", ".join(
            f"{column} = {first.format(column=column)}"
            for column in ("clinic_id", "profession", "services", "active")
        )
    )
    with op.batch_alter_table("clinician", schema=None) as batch_op:
        batch_op.alter_column("clinic_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("profession", existing_type=PROFESSION, nullable=False)
        batch_op.alter_column("services", existing_type=sa.JSON(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_clinician_clinic_id_clinic"), "clinic", ["clinic_id"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_clinician_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_clinician_profession"), ["profession"], unique=False)
    op.drop_table("practice")

    op.drop_index("ix_listed_clinic_band_longitude", table_name="listed_clinic")
    with op.batch_alter_table("listed_clinic", schema=None) as batch_op:
        batch_op.drop_column("agreement_professions")
    op.create_index(
        "ix_listed_clinic_band_longitude",
        "listed_clinic",
        ["latitude_band", "longitude", "latitude", "professions", "clinic_id"],
        unique=False,
    )
    if dialect == "postgresql":
        previous.create_postgresql_triggers()
    else:
        previous.create_sqlite_triggers()
    rebuild_search_index(dialect, previous.insert_listed)
