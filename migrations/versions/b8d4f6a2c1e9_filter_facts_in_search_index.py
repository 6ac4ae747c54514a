"""The search index carries what the finder's filter counts need

Revision ID: b8d4f6a2c1e9
Revises: d2a4c6e8f0b1
Create Date: 2026-12-06 14:10:00

Beside each filter and language the finder shows how many clinics within the radius it
would leave. Counting them read every clinic of the circle with its practices,
clinicians and opening hours (about 10 µs a clinic: 40 ms at the median postcode, 230 ms
in Oslo, at 100,000 clinics). Now ``listed_clinic`` holds those facts, kept in step by the
same triggers as the rest of the row, and a second covering index lets the counts read a
circle from the index alone:

* ``language_bits``: per profession, the languages its listed clinicians here speak (bit
  21 * profession index + language index, the languages of ``INDEXED_LANGUAGES``);
* ``step_free``, ``closed_until`` and ``has_hours`` (the clinic gave opening hours);
* ``new_patients_<profession>_at``: the latest confirmation of a listed practice of that
  profession that takes new patients, so "taking new patients lately" is a comparison.

The triggers now also fire when a clinic's entrance or closure, a practice's answer on
new patients, a clinician's languages or a clinic's opening hours change.
"""

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "b8d4f6a2c1e9"
down_revision = "d2a4c6e8f0b1"
branch_labels = None
depends_on = None

# Must match INDEXED_LANGUAGES and PROFESSION_INDEX in clinic_finder/models.py.
INDEXED_LANGUAGES = (
    "nb", "nn", "en", "se", "sv", "da", "de", "fr", "es", "pl", "lt",
    "uk", "ru", "ar", "so", "ur", "fa", "ti", "tr", "vi", "zh",
)  # fmt: skip
PROFESSIONS = ("chiropractor", "physiotherapist", "manual_therapist")


def new_columns() -> list[sa.Column]:
    return [
        sa.Column("language_bits", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("step_free", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("has_hours", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("closed_until", sa.Date(), nullable=True),
        *(
            sa.Column(f"new_patients_{profession}_at", sa.DateTime(timezone=True), nullable=True)
            for profession in PROFESSIONS
        ),
    ]


FACTS_INDEX_COLUMNS = [
    "latitude_band",
    "longitude",
    "latitude",
    "professions",
    "agreement_professions",
    "language_bits",
    "step_free",
    "has_hours",
    "closed_until",
    *(f"new_patients_{profession}_at" for profession in PROFESSIONS),
    "clinic_id",
]


def _practices_migration():
    """The migration whose triggers these replace (and restore on downgrade)."""
    path = Path(__file__).with_name("e5f9a2b3c4d1_practices_and_licences.py")
    spec = importlib.util.spec_from_file_location("practices_and_licences", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


previous = _practices_migration()
LISTED_PRACTICE = previous.LISTED_PRACTICE
LISTED_PRACTICES_HERE = (
    "FROM practice JOIN clinician ON clinician.id = practice.clinician_id "
    f"WHERE practice.clinic_id = clinic.id AND {LISTED_PRACTICE}"
)


def _language_bits() -> str:
    """OR of the bits of every (profession, language) a listed clinician here has."""
    # One max() per bit, added up: an OR without DISTINCT, which SQLite would sort for in
    # a temporary table per aggregate. The profession test comes first, so each practice
    # tests each language once.
    terms = [
        f"max(CASE WHEN practice.profession = '{profession}' AND "
        f"CAST(clinician.languages AS TEXT) LIKE '%\"{code}\"%' THEN 1 ELSE 0 END)"
        f" * {1 << (len(INDEXED_LANGUAGES) * place + index)}"
        for place, profession in enumerate(PROFESSIONS)
        for index, code in enumerate(INDEXED_LANGUAGES)
    ]
    return f"(SELECT coalesce({' + '.join(terms)}, 0) {LISTED_PRACTICES_HERE})"


def _new_patients_at(profession: str) -> str:
    # The profession inside the aggregate, not in WHERE: there SQLite would read the
    # practices by profession (a third of them all) instead of by clinic.
    return (
        f"(SELECT max(CASE WHEN practice.profession = '{profession}' "
        "AND practice.accepts_new_patients THEN practice.accepts_new_patients_confirmed_at END) "
        f"{LISTED_PRACTICES_HERE})"
    )


HAS_HOURS = "EXISTS (SELECT 1 FROM opening_hours WHERE opening_hours.clinic_id = clinic.id)"


def insert_listed(dialect: str, clinic_condition: str) -> str:
    """INSERT the listed_clinic rows of the clinics matching a condition on ``clinic``."""
    # Built from this module's constants only, never from input.
    new_patients = [f"new_patients_{profession}_at" for profession in PROFESSIONS]
    return f"""
        INSERT INTO listed_clinic
            (clinic_id, professions, agreement_professions, latitude, longitude, latitude_band,
             language_bits, step_free, has_hours, closed_until, {", ".join(new_patients)})
        SELECT listed.id, listed.professions, listed.agreement_professions,
               listed.latitude, listed.longitude, {previous.LATITUDE_BAND[dialect]},
               listed.language_bits, listed.step_free, listed.has_hours, listed.closed_until,
               {", ".join(f"listed.{column}" for column in new_patients)}
        FROM (
            SELECT clinic.id, clinic.latitude, clinic.longitude,
                   {previous._bits()} AS professions,
                   {previous._bits(" AND practice.public_agreement")} AS agreement_professions,
                   {_language_bits()} AS language_bits,
                   coalesce(clinic.step_free_access, FALSE) AS step_free,
                   {HAS_HOURS} AS has_hours,
                   clinic.closed_until,
                   {", ".join(f"{_new_patients_at(p)} AS new_patients_{p}_at" for p in PROFESSIONS)}
            FROM clinic
            WHERE clinic.active AND {clinic_condition}
        ) AS listed
        WHERE listed.professions <> 0
    """


# Opening hours change only has_hours: set in place rather than rewriting the row, as an
# import writes several stretches a clinic, each firing its trigger on SQLite.
SET_HAS_HOURS = (
    "UPDATE listed_clinic SET has_hours = EXISTS "
    "(SELECT 1 FROM opening_hours WHERE opening_hours.clinic_id = listed_clinic.clinic_id) "
    "WHERE listed_clinic.clinic_id IN ({affected})"
)

SQLITE_TRIGGERS = {
    "listed_clinic_after_clinic_insert": ("AFTER INSERT ON clinic", "NEW.id"),
    "listed_clinic_after_clinic_update": (
        "AFTER UPDATE OF active, latitude, longitude, step_free_access, closed_until ON clinic",
        "OLD.id, NEW.id",
    ),
    "listed_clinic_after_clinic_delete": ("AFTER DELETE ON clinic", "OLD.id"),
    "listed_clinic_after_practice_insert": ("AFTER INSERT ON practice", "NEW.clinic_id"),
    "listed_clinic_after_practice_update": (
        "AFTER UPDATE OF active, profession, public_agreement, clinic_id, clinician_id, "
        "accepts_new_patients, accepts_new_patients_confirmed_at ON practice",
        "OLD.clinic_id, NEW.clinic_id",
    ),
    "listed_clinic_after_practice_delete": ("AFTER DELETE ON practice", "OLD.clinic_id"),
    "listed_clinic_after_licence_update": (
        "AFTER UPDATE OF licence_status, languages ON clinician",
        "SELECT practice.clinic_id FROM practice WHERE practice.clinician_id = NEW.id",
    ),
}
SQLITE_HOURS_TRIGGERS = {
    "listed_clinic_after_hours_insert": ("AFTER INSERT ON opening_hours", "NEW.clinic_id"),
    "listed_clinic_after_hours_update": (
        "AFTER UPDATE OF clinic_id ON opening_hours",
        "OLD.clinic_id, NEW.clinic_id",
    ),
    "listed_clinic_after_hours_delete": ("AFTER DELETE ON opening_hours", "OLD.clinic_id"),
}

POSTGRESQL_TRIGGERS = dict(previous.POSTGRESQL_TRIGGERS)
POSTGRESQL_TRIGGERS["listed_clinic_after_clinic_update"] = (
    "UPDATE",
    "clinic",
    "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "SELECT new_rows.id FROM old_rows JOIN new_rows ON new_rows.id = old_rows.id "
    "WHERE (old_rows.active, old_rows.latitude, old_rows.longitude, "
    "old_rows.step_free_access, old_rows.closed_until) "
    "IS DISTINCT FROM (new_rows.active, new_rows.latitude, new_rows.longitude, "
    "new_rows.step_free_access, new_rows.closed_until)",
)
POSTGRESQL_TRIGGERS["listed_clinic_after_practice_update"] = (
    "UPDATE",
    "practice",
    "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "SELECT changed.clinic_id FROM ("
    " SELECT old_rows.clinic_id AS old_clinic, new_rows.clinic_id AS new_clinic"
    " FROM old_rows JOIN new_rows ON new_rows.id = old_rows.id"
    " WHERE (old_rows.active, old_rows.profession, old_rows.public_agreement,"
    " old_rows.clinic_id, old_rows.clinician_id, old_rows.accepts_new_patients,"
    " old_rows.accepts_new_patients_confirmed_at)"
    " IS DISTINCT FROM (new_rows.active, new_rows.profession, new_rows.public_agreement,"
    " new_rows.clinic_id, new_rows.clinician_id, new_rows.accepts_new_patients,"
    " new_rows.accepts_new_patients_confirmed_at)"
    ") AS moved, LATERAL (VALUES (moved.old_clinic), (moved.new_clinic)) AS changed(clinic_id)",
)
POSTGRESQL_TRIGGERS["listed_clinic_after_licence_update"] = (
    "UPDATE",
    "clinician",
    "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "SELECT practice.clinic_id FROM old_rows JOIN new_rows ON new_rows.id = old_rows.id"
    " JOIN practice ON practice.clinician_id = new_rows.id"
    " WHERE (old_rows.licence_status, CAST(old_rows.languages AS TEXT))"
    " IS DISTINCT FROM (new_rows.licence_status, CAST(new_rows.languages AS TEXT))",
)
POSTGRESQL_HOURS_TRIGGERS = {
    "listed_clinic_after_hours_insert": (
        "INSERT",
        "opening_hours",
        "NEW TABLE AS new_rows",
        "SELECT clinic_id FROM new_rows",
    ),
    "listed_clinic_after_hours_update": (
        "UPDATE",
        "opening_hours",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "SELECT clinic_id FROM old_rows UNION SELECT clinic_id FROM new_rows",
    ),
    "listed_clinic_after_hours_delete": (
        "DELETE",
        "opening_hours",
        "OLD TABLE AS old_rows",
        "SELECT clinic_id FROM old_rows",
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
    for name, (event, affected) in SQLITE_HOURS_TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {event} BEGIN {SET_HAS_HOURS.format(affected=affected)}; END"
        )


def _postgresql_trigger(name: str, event: str, table: str, transitions: str, body: str) -> None:
    op.execute(
        f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {body};
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {transitions} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
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
        _postgresql_trigger(
            name,
            event,
            table,
            transitions,
            "PERFORM listed_clinic_refresh(ARRAY(SELECT DISTINCT ids.id FROM "
            f"({affected}) AS ids(id)))",
        )
    for name, (event, table, transitions, affected) in POSTGRESQL_HOURS_TRIGGERS.items():
        _postgresql_trigger(
            name, event, table, transitions, SET_HAS_HOURS.format(affected=affected)
        )


def drop_hours_triggers(dialect: str) -> None:
    for name, (_, table, _, _) in POSTGRESQL_HOURS_TRIGGERS.items():
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER {name} ON {table}")
            op.execute(f"DROP FUNCTION {name}()")
        else:
            op.execute(f"DROP TRIGGER {name}")


def rebuild_search_index(dialect: str, insert) -> None:
    op.execute("DELETE FROM listed_clinic")
    op.execute(insert(dialect, "1 = 1"))


def upgrade():
    dialect = op.get_bind().dialect.name
    previous.drop_triggers(dialect, previous.SQLITE_TRIGGERS, previous.POSTGRESQL_TRIGGERS)
    with op.batch_alter_table("listed_clinic", schema=None) as batch_op:
        for column in new_columns():
            batch_op.add_column(column)
    op.create_index("ix_listed_clinic_band_facts", "listed_clinic", FACTS_INDEX_COLUMNS)
    if dialect == "postgresql":
        create_postgresql_triggers()
    else:
        create_sqlite_triggers()
    rebuild_search_index(dialect, insert_listed)


def downgrade():
    dialect = op.get_bind().dialect.name
    drop_hours_triggers(dialect)
    previous.drop_triggers(dialect, SQLITE_TRIGGERS, POSTGRESQL_TRIGGERS)
    op.drop_index("ix_listed_clinic_band_facts", table_name="listed_clinic")
    with op.batch_alter_table("listed_clinic", schema=None) as batch_op:
        for column in reversed(new_columns()):
            batch_op.drop_column(column.name)
    if dialect == "postgresql":
        previous.create_postgresql_triggers()
    else:
        previous.create_sqlite_triggers()
    rebuild_search_index(dialect, previous.insert_listed)
