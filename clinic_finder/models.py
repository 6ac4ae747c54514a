"""The directory's tables: postcodes, clinics and the licensed clinicians who work there."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    and_,
    text,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates
from sqlalchemy.sql.expression import ColumnElement, false, true

from .extensions import db
from .hpr import LicenceStatus
from .textguard import without_bidi_controls

# The one timezone: clinics open, requests age and pages show times in Norway.
NORWAY = ZoneInfo("Europe/Oslo")


def now_utc() -> datetime:
    """Return the current time in UTC (a callable default, evaluated per row)."""
    return datetime.now(UTC)


def insert_on_conflict(session: Any) -> Any:
    """The session's database's own INSERT construct, the one that can say ON CONFLICT
    (SQLite's and PostgreSQL's both can; the generic one cannot)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert
    return sqlite_insert


def as_utc(moment: datetime) -> datetime:
    """A stored moment as an aware UTC datetime (SQLite hands back naive ones; all are UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def today() -> date:
    """Return today's date in Norway, where clinics open and close."""
    return datetime.now(NORWAY).date()


def N_(text: str) -> str:
    """Mark a text for translation where it is defined; it is translated where it is shown.

    ``make messages`` extracts ``N_("…")`` (see the Makefile), so the catalogue has it.
    """
    return text


class Profession(enum.Enum):
    """The three title-protected professions this directory lists, each with an HPR number."""

    CHIROPRACTOR = "chiropractor"
    PHYSIOTHERAPIST = "physiotherapist"
    MANUAL_THERAPIST = "manual_therapist"

    @property
    def terms(self) -> ProfessionTerms:
        """How this profession is named and registered (PROFESSION_TERMS)."""
        return PROFESSION_TERMS[self]


@dataclass(frozen=True)
class ProfessionTerms:
    """How a profession is named: in English (the msgid its pages translate), by its
    protected Norwegian title (as Helsedirektoratet and every sign write it), and by its
    category in the Health Personnel Register (code list 9060)."""

    english: str
    norwegian: str
    hpr_category: str


# The one vocabulary of professions: pages, forms, the importer and the licence check
# all take their names and codes from here.
PROFESSION_TERMS = {
    Profession.CHIROPRACTOR: ProfessionTerms(N_("Chiropractor"), "kiropraktor", "KI"),
    Profession.PHYSIOTHERAPIST: ProfessionTerms(N_("Physiotherapist"), "fysioterapeut", "FT"),
    Profession.MANUAL_THERAPIST: ProfessionTerms(N_("Manual therapist"), "manuellterapeut", "MT"),
}


class LocationSource(enum.Enum):
    """How a clinic's coordinates were found, from most to least precise."""

    GIVEN = "given"
    GEOCODED = "geocoded"
    POSTCODE = "postcode"


ACCEPTS_NEW_PATIENTS_VALID_FOR = timedelta(days=90)


def new_patients_answer(
    answer: bool | None, confirmed_at: datetime | None, now: datetime
) -> bool | None:
    """A clinician's answer on new patients at ``now``: None when unknown or confirmed
    more than ACCEPTS_NEW_PATIENTS_VALID_FOR ago."""
    if answer is None or confirmed_at is None:
        return None
    if now - as_utc(confirmed_at) > ACCEPTS_NEW_PATIENTS_VALID_FOR:
        return None
    return answer


def clinic_new_patients_answer(answers: list[bool | None]) -> bool | None:
    """A clinic's answer from its listed clinicians': True if any says yes, False if
    every one says no, else None (unknown)."""
    if any(answer is True for answer in answers):
        return True
    if answers and all(answer is False for answer in answers):
        return False
    return None


def closed_on(closed_until: date | None, day: date) -> bool:
    """Whether a clinic temporarily closed until ``closed_until`` is closed on ``day``
    (it reopens on that day)."""
    return closed_until is not None and day < closed_until


def _enum_values(enum_class: type[enum.Enum]) -> list[str]:
    return [member.value for member in enum_class]


def enum_type(enum_class: type[enum.Enum], name: str, length: int = 20) -> Enum:
    """Store an enum by its values as VARCHAR with a CHECK: the same on SQLite and PostgreSQL."""
    return Enum(
        enum_class,
        native_enum=False,
        length=length,
        values_callable=_enum_values,
        name=name,
        create_constraint=True,
    )


class PostalCode(db.Model):
    """One entry of Norway's postcode register, with the coordinates of its centre."""

    __tablename__ = "postal_code"

    postcode: Mapped[str] = mapped_column(String(4), primary_key=True)
    place: Mapped[str] = mapped_column(String(100))
    municipality: Mapped[str] = mapped_column(String(100))
    municipality_number: Mapped[str | None] = mapped_column(String(4))
    county: Mapped[str] = mapped_column(String(100))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    in_use: Mapped[bool] = mapped_column(Boolean, default=True)
    # The register's BRUKSOMRÅDE ("Gate-/veg-adresse", "Postboksar", …); None if not loaded.
    usage: Mapped[str | None] = mapped_column(String(60))

    def __repr__(self) -> str:
        return f"<PostalCode {self.postcode} {self.place}>"


class Clinic(db.Model):
    """A place where patients are seen; search finds clinics by their coordinates."""

    __tablename__ = "clinic"
    __table_args__ = (
        # The search's bounding-box prefilter reads this index.
        Index("ix_clinic_lat_lon", "latitude", "longitude"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    org_number: Mapped[str | None] = mapped_column(String(9), index=True)
    address: Mapped[str] = mapped_column(String(200), default="")
    postcode: Mapped[str] = mapped_column(ForeignKey("postal_code.postcode"))
    city: Mapped[str] = mapped_column(String(100), default="")
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    location_source: Mapped[LocationSource] = mapped_column(
        enum_type(LocationSource, "location_source"),
        default=LocationSource.GIVEN,
    )
    phone: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(254))
    website: Mapped[str | None] = mapped_column(String(500))
    # Where patients book a time themselves (https only: validation.clean_booking_url).
    booking_url: Mapped[str | None] = mapped_column(String(500))
    # What patients ask before they come; None means nobody has told us.
    step_free_access: Mapped[bool | None] = mapped_column(Boolean)
    accessible_toilet: Mapped[bool | None] = mapped_column(Boolean)
    parking: Mapped[bool | None] = mapped_column(Boolean)
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    # Temporarily closed until this date (it reopens then); None means open.
    closed_until: Mapped[date | None] = mapped_column(Date)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=now_utc, onupdate=now_utc
    )

    postal_code: Mapped[PostalCode] = relationship()
    practices: Mapped[list[Practice]] = relationship(back_populates="clinic")
    verified_by: Mapped[StaffUser | None] = relationship()
    opening_hours: Mapped[list[OpeningHours]] = relationship(
        back_populates="clinic",
        order_by="(OpeningHours.weekday, OpeningHours.opens)",
        cascade="all, delete-orphan",
    )

    @property
    def listed_practices(self) -> list[Practice]:
        """The practices patients see here: active, by a clinician whose licence holds."""
        listed = [practice for practice in self.practices if practice.is_listed]
        return sorted(listed, key=lambda practice: (practice.clinician.name, practice.id or 0))

    @property
    def professions(self) -> list[Profession]:
        """The professions practised here, in a fixed order."""
        present = {practice.profession for practice in self.listed_practices}
        return [profession for profession in Profession if profession in present]

    def has_public_agreement(self, professions: frozenset[Profession] = frozenset()) -> bool:
        """Whether a listed clinician here (of one of ``professions``; empty: any) has a
        public agreement: what the HELFO filter means."""
        return any(
            practice.public_agreement and (not professions or practice.profession in professions)
            for practice in self.listed_practices
        )

    def accepts_new_patients_as_of(self, now: datetime) -> bool | None:
        """Whether someone here takes new patients: True if any listed clinician says so
        (confirmed lately), False if every one has said no lately, else None (unknown)."""
        return clinic_new_patients_answer(
            [practice.accepts_new_patients_as_of(now) for practice in self.listed_practices]
        )

    def is_closed_on(self, day: date) -> bool:
        """Whether the clinic is temporarily closed on that day."""
        return closed_on(self.closed_until, day)

    @validates("name", "address", "city")
    def _drop_bidi_controls(self, _key: str, value: str | None) -> str | None:
        # However a name arrives (form, import, API, command line), it is stored without them.
        return without_bidi_controls(value)

    def __repr__(self) -> str:
        return f"<Clinic {self.id} {self.name!r}>"


class OpeningHours(db.Model):
    """One stretch of a weekday when a clinic is open (a day may have several: lunch).

    Times are Norwegian wall-clock times (Europe/Oslo). Public holidays are not modelled:
    the clinic page says so.
    """

    __tablename__ = "opening_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_is_a_day"),
        CheckConstraint("opens < closes", name="opens_before_it_closes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"), index=True)
    # 0 = Monday … 6 = Sunday, as date.weekday() counts.
    weekday: Mapped[int] = mapped_column(SmallInteger)
    opens: Mapped[time] = mapped_column(Time)
    closes: Mapped[time] = mapped_column(Time)

    clinic: Mapped[Clinic] = relationship(back_populates="opening_hours")


# A clinician whose licence check said one of these is shown; the others are hidden at
# once. "unchecked" is listed (the check may be off, or not yet run) but never shown as
# verified: pages say it has not been checked.
LISTED_LICENCE_STATUSES = frozenset({LicenceStatus.VALID, LicenceStatus.UNCHECKED})


class Clinician(db.Model):
    """A publicly licensed person, identified by their HPR number; works at one or more
    clinics (their practices)."""

    __tablename__ = "clinician"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # HPR: Helsepersonellregisteret, the national register of licensed health personnel.
    hpr_number: Mapped[str] = mapped_column(String(9), unique=True)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The last check against HPR (hpr.py, licences.py): its outcome, every category the
    # register holds for the person (code list 9060), and the authorisation's validity.
    licence_status: Mapped[LicenceStatus] = mapped_column(
        enum_type(LicenceStatus, "licence_status", length=40),
        default=LicenceStatus.UNCHECKED,
        server_default=LicenceStatus.UNCHECKED.value,
        index=True,
    )
    licence_categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    licence_valid_from: Mapped[date | None] = mapped_column(Date)
    licence_valid_to: Mapped[date | None] = mapped_column(Date)
    licence_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=now_utc, onupdate=now_utc
    )

    practices: Mapped[list[Practice]] = relationship(back_populates="clinician")

    @property
    def licence_is_listed(self) -> bool:
        """Whether the licence check lets patients see this clinician."""
        return self.licence_status in LISTED_LICENCE_STATUSES

    @property
    def active_practices(self) -> list[Practice]:
        """Where this clinician works now."""
        return [practice for practice in self.practices if practice.active]

    @validates("name")
    def _drop_bidi_controls(self, _key: str, value: str | None) -> str | None:
        return without_bidi_controls(value)

    def __repr__(self) -> str:
        return f"<Clinician {self.hpr_number} {self.name!r}>"


class Practice(db.Model):
    """One clinician working at one clinic (FHIR's PractitionerRole): the profession
    practised there, the services offered there, and the clinician's own public agreement
    and answer on new patients there."""

    __tablename__ = "practice"
    __table_args__ = (
        UniqueConstraint("clinician_id", "clinic_id"),
        # In Norway chiropractors never hold a public agreement (driftsavtale): their
        # patients pay in full. Forms and the importer refuse it with a message first.
        CheckConstraint(
            "NOT (public_agreement AND profession = 'chiropractor')",
            name="no_chiropractor_agreement",
        ),
        CheckConstraint(
            "public_agreement OR agreement_municipality IS NULL",
            name="municipality_only_with_agreement",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinician_id: Mapped[int] = mapped_column(ForeignKey("clinician.id"), index=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"), index=True)
    profession: Mapped[Profession] = mapped_column(enum_type(Profession, "profession"), index=True)
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Driftsavtale: this clinician's agreement with a municipality, for work at this
    # clinic; the patient then pays only the public share (egenandel).
    public_agreement: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    agreement_municipality: Mapped[str | None] = mapped_column(String(100))
    # None means nobody has told us.
    accepts_new_patients: Mapped[bool | None] = mapped_column(Boolean)
    # When staff (or an import) last confirmed accepts_new_patients; stale answers show as unknown.
    accepts_new_patients_confirmed_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True)
    )
    # A clinician who has left this clinic is kept (history, audit) but no longer shown.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=now_utc, onupdate=now_utc
    )

    clinician: Mapped[Clinician] = relationship(back_populates="practices")
    clinic: Mapped[Clinic] = relationship(back_populates="practices")

    @property
    def is_listed(self) -> bool:
        """Whether patients see this practice (the triggers' rule for listed_clinic too)."""
        return self.active and self.clinician.licence_is_listed

    @classmethod
    def is_listed_sql(cls) -> ColumnElement[bool]:
        """``is_listed`` in SQL, for a query that joins the practice to its clinician."""
        return and_(
            cls.active.is_(True), Clinician.licence_status.in_(sorted(LISTED_LICENCE_STATUSES))
        )

    def accepts_new_patients_as_of(self, now: datetime) -> bool | None:
        """The answer on new patients, or None when unknown or not confirmed lately."""
        return new_patients_answer(
            self.accepts_new_patients, self.accepts_new_patients_confirmed_at, now
        )

    @validates("agreement_municipality")
    def _drop_bidi_controls(self, _key: str, value: str | None) -> str | None:
        return without_bidi_controls(value)

    def __repr__(self) -> str:
        return f"<Practice {self.clinician_id}@{self.clinic_id} {self.profession.value}>"


# One bit per profession in ListedClinic.professions; the triggers that fill it (migration
# 8c4f2a61d9b7) spell the same values, so never renumber them.
PROFESSION_BITS = {
    Profession.CHIROPRACTOR: 1,
    Profession.PHYSIOTHERAPIST: 2,
    Profession.MANUAL_THERAPIST: 4,
}
# The languages patients most often look for in Norway (the finder's choice of languages,
# web.search_forms.LANGUAGE_CODES), which the search index keeps per profession
# (ListedClinic.language_bits), in bit order. Must match the migration b8d4f6a2c1e9; a
# language added here needs a migration that rebuilds the index.
INDEXED_LANGUAGES = (
    "nb", "nn", "en", "se", "sv", "da", "de", "fr", "es", "pl", "lt",
    "uk", "ru", "ar", "so", "ur", "fa", "ti", "tr", "vi", "zh",
)  # fmt: skip
LANGUAGE_BIT_SLOTS = len(INDEXED_LANGUAGES)
# A profession's place in language_bits (its bits start at LANGUAGE_BIT_SLOTS * index).
PROFESSION_INDEX = {profession: index for index, profession in enumerate(PROFESSION_BITS)}
# Rows of listed_clinic are grouped in bands of 1/100 degree of latitude (about 1.1 km), so
# one index on (band, longitude) finds a box with short range scans, one per band.
LATITUDE_BANDS_PER_DEGREE = 100
LATITUDE_BAND_OFFSET = 9000  # keeps bands positive, so truncation is floor on every backend


class ListedClinic(db.Model):
    """Where a clinic patients can find is, and which professions it lists: the search index.

    A row exists exactly while its clinic is active and has at least one listed practice
    (active, by a clinician whose licence status is listed). Database triggers keep it in
    step with ``clinic``, ``practice`` and ``clinician`` on every write, from any code path
    (ORM, bulk inserts, SQL by hand); no Python code writes it.
    """

    __tablename__ = "listed_clinic"
    __table_args__ = (
        # Covers the search: a box is read from the index alone, band by band.
        Index(
            "ix_listed_clinic_band_longitude",
            "latitude_band",
            "longitude",
            "latitude",
            "professions",
            "agreement_professions",
            "clinic_id",
        ),
        # Covers the finder's counts beside each filter and language: a circle's facts
        # are read from the index alone, without the clinic's rows, practices or clinicians.
        Index(
            "ix_listed_clinic_band_facts",
            "latitude_band",
            "longitude",
            "latitude",
            "professions",
            "agreement_professions",
            "language_bits",
            "step_free",
            "has_hours",
            "closed_until",
            "new_patients_chiropractor_at",
            "new_patients_physiotherapist_at",
            "new_patients_manual_therapist_at",
            "clinic_id",
        ),
    )

    clinic_id: Mapped[int] = mapped_column(
        ForeignKey("clinic.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    professions: Mapped[int] = mapped_column(Integer)  # PROFESSION_BITS of listed practices
    # PROFESSION_BITS of the listed practices with a public agreement: the HELFO filter.
    agreement_professions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    latitude_band: Mapped[int] = mapped_column(Integer)
    # What the filter counts need (finder page), as of the listed practices and clinicians:
    # bit LANGUAGE_BIT_SLOTS * PROFESSION_INDEX[p] + INDEXED_LANGUAGES.index(code) is set
    # when a listed clinician of profession p here speaks the language.
    language_bits: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    step_free: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    has_hours: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    closed_until: Mapped[date | None] = mapped_column(Date)
    # The latest confirmation of a listed practice of each profession that takes new
    # patients (None: none does): the new-patients filter at any moment.
    new_patients_chiropractor_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    new_patients_physiotherapist_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True)
    )
    new_patients_manual_therapist_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True)
    )


class StoredClinicJson(db.Model):
    """A clinic's public JSON, ready for API answers (public_json.py); NULL while stale.

    Triggers (migration c5e1a9d7f3b2) add a row for every new clinic and set ``body`` to
    NULL whenever the clinic, one of its practices or one of their clinicians changes;
    only ``public_json.refresh_stale`` fills it.
    """

    __tablename__ = "clinic_json"
    __table_args__ = (
        # The stale rows, which every directory write's commit looks up: usually none.
        Index(
            "ix_clinic_json_stale",
            "clinic_id",
            sqlite_where=text("body IS NULL"),
            postgresql_where=text("body IS NULL"),
        ),
    )

    clinic_id: Mapped[int] = mapped_column(
        ForeignKey("clinic.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    body: Mapped[str | None] = mapped_column(Text)


class StaffUser(UserMixin, db.Model):
    """A staff member who keeps the directory and answers patients; admins also manage staff."""

    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped on sign-out and deactivation: every session carrying an older value ends.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Second factor (TOTP). The secret exists from enrolment; it counts once confirmed.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last time step whose code was accepted: a code works once (no replay).
    totp_last_counter: Mapped[int | None] = mapped_column(Integer)

    recovery_codes: Mapped[list[RecoveryCode]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    @property
    def has_second_factor(self) -> bool:
        """Whether the account has a confirmed authenticator app."""
        return self.totp_secret is not None and self.totp_confirmed_at is not None

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def get_id(self) -> str:
        """Session identity: id and session version, so old sessions stop matching."""
        return f"{self.id}:{self.session_version}"

    def __repr__(self) -> str:
        return f"<StaffUser {self.id}>"


class SignInPause(db.Model):
    """Failed sign-ins to one account from one client, and until when that pair pauses.

    Counted per (account, client) in the database, so every worker sees the same count,
    and an attacker elsewhere cannot keep the real staff member out. The row whose
    ``client_key`` is ``"*"`` counts the account's failures from every client together,
    with a higher threshold (see auth.py), against guesses spread over many addresses.
    """

    __tablename__ = "sign_in_pause"
    __table_args__ = (UniqueConstraint("user_id", "client_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    # A keyed hash of the client's address: enough to tell clients apart, not to name them.
    client_key: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RecoveryCode(db.Model):
    """A one-time code for signing in without the authenticator app; stored hashed."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[StaffUser] = relationship(back_populates="recovery_codes")


class LinkPurpose(enum.Enum):
    """What a one-time link given by an admin lets a staff member do."""

    # Set up the authenticator app: a new account, or one whose second factor was reset.
    ENROL = "enrol"
    # Choose a new password after forgetting it (the second factor stays as it is).
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose's name, not a password


class OneTimeLink(db.Model):
    """A link an admin gives a staff member to enrol or to set a new password; works once.

    Only a hash of its random token is stored, so the database alone opens nothing; the
    link itself is shown once, to the admin who issued it.
    """

    __tablename__ = "one_time_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    purpose: Mapped[LinkPurpose] = mapped_column(enum_type(LinkPurpose, "link_purpose"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[StaffUser] = relationship()


class AuditEntry(db.Model):
    """Who changed what in the directory or the staff list, and when."""

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc, index=True)
    # None for changes made from the command line; actor_label says who then.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    actor_label: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(50))
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(String(500), default="")
    # {field: [old, new]} for updates; the new values for creations.
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    actor: Mapped[StaffUser | None] = relationship()


class GeocodeCacheEntry(db.Model):
    """One address as the geocoder answered it; every address is looked up only once."""

    __tablename__ = "geocode_cache"

    id: Mapped[int] = mapped_column(primary_key=True)
    query: Mapped[str] = mapped_column(String(500), unique=True)
    # Both None when the geocoder found nothing for the address.
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    provider: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)


class ImportStatus(enum.Enum):
    """Where an uploaded clinic list is: two background jobs, with staff confirming between.

    queued → planning → planned (staff read the preview) → apply_queued → applying →
    applied. Planning that fails ends in failed; applying that fails goes back to planned
    (nothing was written, so staff may try again).
    """

    QUEUED = "queued"
    PLANNING = "planning"
    PLANNED = "planned"
    APPLY_QUEUED = "apply_queued"
    APPLYING = "applying"
    APPLIED = "applied"
    FAILED = "failed"

    @property
    def is_working(self) -> bool:
        """Whether a job is waiting for or running on the batch (its page refreshes)."""
        return self in _WORKING_STATUSES


_WORKING_STATUSES = frozenset(
    {
        ImportStatus.QUEUED,
        ImportStatus.PLANNING,
        ImportStatus.APPLY_QUEUED,
        ImportStatus.APPLYING,
    }
)


class RowStatus(enum.Enum):
    """What importing a row does to the directory."""

    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"


class ImportBatch(db.Model):
    """An uploaded clinic list and its import job: kept from upload to applied, and after."""

    __tablename__ = "import_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    # Up to 5 MB: loaded only when read (planning), not with every progress page.
    content: Mapped[str] = mapped_column(Text, deferred=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The planned counts by RowStatus value ({"new": 3, …}); set when the plan is stored.
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[ImportStatus] = mapped_column(
        enum_type(ImportStatus, "import_status"), default=ImportStatus.QUEUED, index=True
    )
    # Progress of planning: rows of the file, and rows checked and stored so far; and the
    # addresses it may look up (importer.AddressProgress), and those done so far.
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    addresses_total: Mapped[int] = mapped_column(Integer, default=0)
    addresses_done: Mapped[int] = mapped_column(Integer, default=0)
    # The upload's encoding (importer.decode_upload_as; None for batches uploaded before it
    # was kept): the rejected rows go back in it, as the content's separator and header.
    encoding: Mapped[str | None] = mapped_column(String(16))
    # The uploader's language (nb, en): the rows are checked, and reported, in it.
    language: Mapped[str | None] = mapped_column(String(5))
    # Header names the import format does not know (reported, not fatal).
    unknown_columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    # A claimed job belongs to the worker holding lease_token until lease_until; after
    # that another worker may take it over (the first one died). attempts counts claims.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the running (or last) step started, for "writing …, started 14:02".
    step_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    planned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Who pressed Import: the audit log names them when the job applies the file.
    apply_requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    # Why the last step failed: the kind of error, or for an unreadable file our message
    # about it; never an exception's text, which may quote the data.
    error: Mapped[str | None] = mapped_column(String(500))

    uploaded_by: Mapped[StaffUser | None] = relationship(foreign_keys=[uploaded_by_id])
    apply_requested_by: Mapped[StaffUser | None] = relationship(
        foreign_keys=[apply_requested_by_id]
    )


class ImportRow(db.Model):
    """One row of an uploaded file as planned: stored once, paged by the preview, applied.

    ``clinic``, ``clinician`` and ``practice`` hold the validated records
    (importer.ClinicRecord, ClinicianRecord and PracticeRecord as JSON) of an accepted row;
    a rejected row has ``errors`` instead. ``warnings`` say what an accepted row did not
    change (a clinic detail that differs from an earlier row of the same clinic).
    """

    __tablename__ = "import_row"
    __table_args__ = (
        UniqueConstraint("batch_id", "line"),
        # The preview's status filter pages through one status in file order.
        Index("ix_import_row_batch_id_status_line", "batch_id", "status", "line"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id"))
    line: Mapped[int] = mapped_column(Integer)
    status: Mapped[RowStatus] = mapped_column(enum_type(RowStatus, "import_row_status"))
    errors: Mapped[list[str]] = mapped_column(JSON, default=list)
    # A rejected row's cells as read, by canonical column name (shown, and downloaded to be
    # fixed); empty for an accepted row, which is its records.
    raw: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    clinic: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    clinician: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    practice: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    # What an updated row changes: [column as the file names it, value now, value after].
    changes: Mapped[list[list[str]]] = mapped_column(JSON, default=list)


class RequestStatus(enum.Enum):
    """Where a contact request is in staff's work."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    REFERRED = "referred"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


class ContactRequest(db.Model):
    """A patient asking for help finding a clinician: health data (GDPR art. 9)."""

    __tablename__ = "contact_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Random, not sequential: a reference reveals nothing about other requests.
    reference: Mapped[str] = mapped_column(String(12), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=now_utc, index=True
    )
    source: Mapped[str] = mapped_column(String(10), default="form")
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(40), index=True)
    postcode: Mapped[str] = mapped_column(String(4))
    # None: "not sure — advise me".
    profession: Mapped[Profession | None] = mapped_column(
        enum_type(Profession, "request_profession")
    )
    message: Mapped[str] = mapped_column(Text)
    duration: Mapped[str] = mapped_column(String(40), default="")
    contact_time: Mapped[str] = mapped_column(String(40), default="")
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinic.id"))
    # A separate, optional permission to pass the description on to the clinic.
    share_message_with_clinic: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_given_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consent_notice_version: Mapped[str] = mapped_column(String(20))
    status: Mapped[RequestStatus] = mapped_column(
        enum_type(RequestStatus, "request_status"),
        default=RequestStatus.NEW,
        index=True,
    )
    # When staff first answered (moved it on from "new"); overdue is measured until then.
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The language the patient wrote in (the page's, "nb" or "en"): staff answer in it, and
    # an English-only patient stands out in the inbox. None for requests from before it
    # was kept.
    language: Mapped[str | None] = mapped_column(String(5))
    # The staff member who has taken the request on; None: nobody yet.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), index=True)
    # The complaint the patient came about (a slug of complaints.json, from the article's
    # link), for the referral; None if none, or for requests from before it was kept.
    complaint: Mapped[str | None] = mapped_column(String(60))

    clinic: Mapped[Clinic | None] = relationship()
    owner: Mapped[StaffUser | None] = relationship()
    events: Mapped[list[RequestEvent]] = relationship(
        back_populates="request", order_by="RequestEvent.at", cascade="all, delete-orphan"
    )
    referrals: Mapped[list[Referral]] = relationship(
        back_populates="request", order_by="Referral.at", cascade="all, delete-orphan"
    )

    @validates("name")
    def _drop_bidi_controls(self, _key: str, value: str | None) -> str | None:
        return without_bidi_controls(value)

    def is_overdue(self, now: datetime, cutoff: datetime | None = None) -> bool:
        """Whether the request has waited more than 48 working hours without an answer.

        ``cutoff`` is ``overdue_cutoff(now)``, for a list that asks of many requests.
        """
        # Imported here: working_hours needs this module's time zone.
        from .working_hours import overdue_cutoff

        if self.first_response_at is not None or self.status is not RequestStatus.NEW:
            return False
        return as_utc(self.created_at) < (cutoff or overdue_cutoff(now))

    def __repr__(self) -> str:  # never the content
        return f"<ContactRequest {self.reference}>"


class RequestEvent(db.Model):
    """Something staff did with a request: a note, a status change, a referral."""

    __tablename__ = "request_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("contact_request.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    kind: Mapped[str] = mapped_column(String(20))  # note, status, referral
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text, default="")

    request: Mapped[ContactRequest] = relationship(back_populates="events")
    actor: Mapped[StaffUser | None] = relationship()


class Referral(db.Model):
    """Staff referred a request's patient to a clinic: who, where, when; and whether it
    was cancelled before its emails went (kept, not deleted: the history is the truth)."""

    __tablename__ = "referral"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("contact_request.id"), index=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"))
    referred_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    shared_message: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))

    request: Mapped[ContactRequest] = relationship(back_populates="referrals")
    clinic: Mapped[Clinic] = relationship()
    referred_by: Mapped[StaffUser | None] = relationship(foreign_keys=[referred_by_id])
    cancelled_by: Mapped[StaffUser | None] = relationship(foreign_keys=[cancelled_by_id])
    messages: Mapped[list[OutboxMessage]] = relationship(order_by="OutboxMessage.id")


class OutboxMessage(db.Model):
    """An email waiting to be sent; a failed send stays here and is tried again later."""

    __tablename__ = "outbox_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    kind: Mapped[str] = mapped_column(String(40))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # Purging a request purges its messages (a referral email names the patient).
    request_id: Mapped[int | None] = mapped_column(ForeignKey("contact_request.id"), index=True)
    # The referral this email carries out: cancelling it cancels the email, if not yet sent.
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referral.id"), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=now_utc, index=True
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    # When a sender took it to send (mail.send_due): apart from the back-off in
    # next_attempt_at, so a send that ignores the back-off (--retry-now) never takes a message
    # another sender holds. Cleared when that attempt failed. While set and not
    # sent, the email may be on its way (or its sender died mid-send): it cannot be cancelled.
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Cancelled before any sender took it: never sent.
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The kind of failure only (e.g. "SMTPConnectError"), never message content.
    last_error: Mapped[str | None] = mapped_column(String(200))
