"""The directory's tables: postcodes, clinics and the licensed clinicians who work there."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, Enum, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def now_utc() -> datetime:
    """Return the current time in UTC (a callable default, evaluated per row)."""
    return datetime.now(UTC)


class Profession(enum.Enum):
    """The three title-protected professions this directory lists, each with an HPR number."""

    CHIROPRACTOR = "chiropractor"
    PHYSIOTHERAPIST = "physiotherapist"
    MANUAL_THERAPIST = "manual_therapist"

    @property
    def label(self) -> str:
        """English name for people."""
        return _PROFESSION_LABELS[self][0]

    @property
    def norwegian(self) -> str:
        """Norwegian (Bokmål) title as used by Helsedirektoratet."""
        return _PROFESSION_LABELS[self][1]


_PROFESSION_LABELS = {
    Profession.CHIROPRACTOR: ("Chiropractor", "kiropraktor"),
    Profession.PHYSIOTHERAPIST: ("Physiotherapist", "fysioterapeut"),
    Profession.MANUAL_THERAPIST: ("Manual therapist", "manuellterapeut"),
}


class LocationSource(enum.Enum):
    """How a clinic's coordinates were found, from most to least precise."""

    GIVEN = "given"
    GEOCODED = "geocoded"
    POSTCODE = "postcode"


def _enum_values(enum_class: type[enum.Enum]) -> list[str]:
    return [member.value for member in enum_class]


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
        Enum(
            LocationSource,
            native_enum=False,
            length=20,
            values_callable=_enum_values,
            name="location_source",
            create_constraint=True,
        ),
        default=LocationSource.GIVEN,
    )
    phone: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(254))
    website: Mapped[str | None] = mapped_column(String(500))
    # Driftsavtale with the municipality: patients pay the public rate (HELFO refunds).
    helfo_agreement: Mapped[bool] = mapped_column(Boolean, default=False)
    # None means nobody has told us.
    accepts_new_patients: Mapped[bool | None] = mapped_column(Boolean)
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=now_utc, onupdate=now_utc
    )

    postal_code: Mapped[PostalCode] = relationship()
    clinicians: Mapped[list[Clinician]] = relationship(
        back_populates="clinic", order_by="Clinician.name"
    )

    @property
    def professions(self) -> list[Profession]:
        """The professions practised here, in a fixed order."""
        present = {clinician.profession for clinician in self.clinicians}
        return [profession for profession in Profession if profession in present]

    def __repr__(self) -> str:
        return f"<Clinic {self.id} {self.name!r}>"


class Clinician(db.Model):
    """A publicly licensed clinician, identified by their HPR number."""

    __tablename__ = "clinician"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    profession: Mapped[Profession] = mapped_column(
        Enum(
            Profession,
            native_enum=False,
            length=20,
            values_callable=_enum_values,
            name="profession",
            create_constraint=True,
        ),
        index=True,
    )
    # HPR: Helsepersonellregisteret, the national register of licensed health personnel.
    hpr_number: Mapped[str] = mapped_column(String(9), unique=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"), index=True)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=now_utc, onupdate=now_utc
    )

    clinic: Mapped[Clinic] = relationship(back_populates="clinicians")

    def __repr__(self) -> str:
        return f"<Clinician {self.hpr_number} {self.name!r}>"
