"""Each clinic's public JSON, as the API and the staff tools give it, and kept ready.

``clinic_json`` is the one serializer of a clinic. An API search answer holds twenty of
them, and building them from the ORM (the clinic, its practices and clinicians loaded,
then walked) cost more than the whole search; so each listed clinic's JSON is stored in
``clinic_json`` (a table of its own, beside the search index) and an answer is one index
query plus one read.

Kept in step: database triggers (migration c5e1a9d7f3b2) mark a clinic's row stale (body
NULL) whenever its clinic row, one of its practices or a clinician of one of them changes
— from any code path: the ORM, Core bulk inserts, SQL by hand. Before a session commits a
transaction that wrote to the directory, :func:`refresh_stale` serializes the stale
clinics it changed, and a bounded number more (``_refresh_before_commit``), so the change
and its JSON commit together; the job worker and ``flask clinics refresh-json`` store the
rest (:func:`refresh_all_stale`). A row still stale (written by SQL by hand, or just
migrated) is never read: the answer serializes that clinic from the ORM, as it always
did, until it is stored.

The body is stored as pieces of the answer's own text (:func:`stored_json`), so an
answer splices its per-request values in instead of parsing and encoding each clinic.

What depends on the moment is not stored but computed per answer from stored facts, by
the same rules the models use: whether a clinician takes new patients (an answer
confirmed within 90 days) and so the clinic, and whether the clinic is closed today; the
services' names are looked up in the vocabulary per answer, since data/services.json may
change without any clinic changing. The distance is the search's. API answers are always
in English, so nothing is stored per language.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import date, datetime
from functools import lru_cache
from itertools import chain

from sqlalchemy import bindparam, delete, event, select, update
from sqlalchemy.orm import Session, selectinload

from .jsonutil import compact_dumps
from .models import (
    NORWAY,
    Clinic,
    Clinician,
    ListedClinic,
    Practice,
    StoredClinicJson,
    as_utc,
    clinic_new_patients_answer,
    closed_on,
    new_patients_answer,
    now_utc,
    today,
)
from .search import DriverStatement
from .services import ServiceVocabulary, current_vocabulary
from .validation import capped_list

# Clinics serialized per statement when refreshing.
REFRESH_CHUNK = 500


# --- the serializer -----------------------------------------------------------------------


def licence_json(practice: Practice) -> dict:
    """What the check against the Health Personnel Register found, for patients: never
    "valid" unless it was checked (``unchecked`` says it was not)."""
    clinician = practice.clinician
    checked_at = clinician.licence_checked_at
    return {
        "status": clinician.licence_status.value,
        "checked_at": as_utc(checked_at).isoformat() if checked_at else None,
        "categories": list(clinician.licence_categories or []),
    }


def practice_json(practice: Practice, now: datetime) -> dict:
    """One clinician as they work at this clinic."""
    clinician = practice.clinician
    return {
        "name": clinician.name,
        "profession": practice.profession.value,
        "hpr_number": clinician.hpr_number,
        # Lists stored before the caps (validation.py) are cut to them here.
        "languages": capped_list(clinician.languages),
        **services_json(capped_list(practice.services)),
        "public_agreement": practice.public_agreement,
        "agreement_municipality": practice.agreement_municipality,
        # null when unknown or not confirmed within 90 days
        "accepts_new_patients": practice.accepts_new_patients_as_of(now),
        "licence": licence_json(practice),
    }


def services_json(
    keys: list[str], prefix: str = "", vocabulary: ServiceVocabulary | None = None
) -> dict:
    """Services as the API gives them: ``services`` their names (in English, like every
    API answer), ``service_keys`` their stable vocabulary keys, in the same order."""
    vocabulary = vocabulary or current_vocabulary()
    return {
        f"{prefix}services": vocabulary.names(keys, "en"),
        f"{prefix}service_keys": list(keys),
    }


def clinic_json(clinic: Clinic, now: datetime | None = None, day: date | None = None) -> dict:
    """Describe a clinic and its clinicians for API callers (at ``now``, on ``day``)."""
    now = now or now_utc()
    return {
        "id": clinic.id,
        "name": clinic.name,
        "address": clinic.address,
        "postcode": clinic.postcode,
        "city": clinic.city,
        "latitude": clinic.latitude,
        "longitude": clinic.longitude,
        "location_precision": clinic.location_source.value,
        "professions": [profession.value for profession in clinic.professions],
        "clinicians": [practice_json(practice, now) for practice in clinic.listed_practices],
        "phone": clinic.phone,
        "email": clinic.email,
        "website": clinic.website,
        "booking_url": clinic.booking_url,
        "step_free_access": clinic.step_free_access,
        "accessible_toilet": clinic.accessible_toilet,
        "parking": clinic.parking,
        # A listed clinician here has a public agreement (details per clinician).
        "helfo_agreement": clinic.has_public_agreement(),
        # True if a clinician here takes new patients, as confirmed within 90 days;
        # false if every one has said no; null when unknown.
        "accepts_new_patients": clinic.accepts_new_patients_as_of(now),
        "closed_until": closed_until_json(clinic.closed_until, day or today()),
    }


def closed_until_json(closed_until: date | None, day: date) -> str | None:
    """The day a clinic reopens, while it is closed on ``day``."""
    return closed_until.isoformat() if closed_on(closed_until, day) else None


# --- stored, and read back ----------------------------------------------------------------


# Between the stored pieces: never in JSON text that escapes every control character.
_SEP = "\x01"
_LITERALS = {True: "true", False: "false", None: "null"}
# The keys each answer computes, where they fall among a clinic's sorted keys.
_CLINIC_COMPUTED = ("accepts_new_patients", "clinicians", "closed_until")
_CLINICIAN_COMPUTED = ("accepts_new_patients", "services")


def _pairs(body: dict, keys) -> str:
    return ",".join(f"{compact_dumps(key)}:{compact_dumps(body[key])}" for key in keys)


def stored_json(clinic: Clinic) -> str:
    """``clinic_json(clinic)`` as the pieces of the answer's text, written as ``jsonify``
    writes them (sorted keys, compact), without what depends on the moment or the
    vocabulary, and the facts those are computed from per answer (:func:`answer_text`).

    The pieces, joined by ``_SEP``: the facts (JSON); the clinic's keys before
    ``clinicians``; each clinician's keys between ``accepts_new_patients`` and
    ``services``; the clinic's keys after ``distance_km``. An answer puts its values
    between them instead of parsing and encoding the clinic again.
    """
    body = clinic_json(clinic)
    practices = clinic.listed_practices
    keys = sorted(key for key in body if key not in _CLINIC_COMPUTED)
    head = [key for key in keys if key < "clinicians"]
    tail = [key for key in keys if key > "distance_km"]
    assert len(head) + len(tail) == len(keys)  # no stored key among the computed ones
    clinicians = []
    for clinician in body["clinicians"]:
        kept = sorted(key for key in clinician if key not in _CLINICIAN_COMPUTED)
        assert all("accepts_new_patients" < key < "services" for key in kept)
        clinicians.append(_pairs(clinician, kept))
    facts = {
        "new_patients": [
            [
                practice.accepts_new_patients,
                as_utc(practice.accepts_new_patients_confirmed_at).isoformat()
                if practice.accepts_new_patients_confirmed_at
                else None,
            ]
            for practice in practices
        ],
        "closed_until": clinic.closed_until.isoformat() if clinic.closed_until else None,
        # Each clinician's services as shown (capped), named per answer.
        "services": [clinician["service_keys"] for clinician in body["clinicians"]],
        # The complaint's services are read from these, as Complaint.matching_services does.
        "offered": [list(practice.services or []) for practice in practices],
    }
    facts_text = json.dumps(facts, ensure_ascii=False, separators=(",", ":"))
    return _SEP.join([facts_text, _pairs(body, head), *clinicians, _pairs(body, tail)])


class _Names:
    """Services' names as JSON text, per vocabulary (it may change while no clinic does)."""

    def __init__(self) -> None:
        # One attribute, replaced whole, so threads never mix two vocabularies' names.
        self.current: tuple[ServiceVocabulary | None, dict[tuple[str, ...], str]] = (None, {})

    def __call__(self, vocabulary: ServiceVocabulary, keys: list[str]) -> str:
        known, texts = self.current
        if vocabulary is not known:
            texts = {}
            self.current = (vocabulary, texts)
        key = tuple(keys)
        text = texts.get(key)
        if text is None:
            if len(texts) > 10_000:  # combinations are few; never grow without end
                texts.clear()
            text = texts[key] = compact_dumps(vocabulary.names(keys, "en"))
        return text


_names = _Names()


def answer_text(
    text: str,
    now: datetime,
    day: date,
    vocabulary: ServiceVocabulary,
    *,
    distance_km: float | None = None,
    matching: Callable[[list[list[str]]], list[str]] | None = None,
) -> str:
    """A stored clinic as ``jsonify`` writes ``clinic_json`` at ``now`` on ``day``, with
    its distance and the complaint's services (``matching`` picks them from each listed
    clinician's services) when given."""
    facts_text, head, *clinicians, tail = text.split(_SEP)
    facts = json.loads(facts_text)
    answers = []
    parts = []
    for piece, (answer, confirmed), keys in zip(
        clinicians, facts["new_patients"], facts["services"], strict=True
    ):
        confirmed_at = datetime.fromisoformat(confirmed) if confirmed else None
        accepts = new_patients_answer(answer, confirmed_at, now)
        answers.append(accepts)
        parts.append(
            f'{{"accepts_new_patients":{_LITERALS[accepts]},{piece},'
            f'"services":{_names(vocabulary, keys)}}}'
        )
    closed_until = facts["closed_until"]
    closed = closed_until_json(date.fromisoformat(closed_until) if closed_until else None, day)
    closed_text = f'"{closed}"' if closed else "null"  # an ISO date needs no escaping
    text = (
        f'{{"accepts_new_patients":{_LITERALS[clinic_new_patients_answer(answers)]},'
        f'{head},"clinicians":[{",".join(parts)}],"closed_until":{closed_text}'
    )
    if matching is not None:
        keys = matching(facts["offered"])
        text += f',"complaint_service_keys":{compact_dumps(keys)}'
        text += f',"complaint_services":{_names(vocabulary, keys)}'
    if distance_km is not None:
        # What json writes for a finite float.
        text += f',"distance_km":{float.__repr__(distance_km)}'
    return f"{text},{tail}}}"


def answer_json(
    text: str, now: datetime, day: date, vocabulary: ServiceVocabulary
) -> tuple[dict, list[list[str]]]:
    """A stored clinic as ``clinic_json`` gives it at ``now`` on ``day``, and the services
    each listed clinician offers there."""
    offered = json.loads(text.split(_SEP, 1)[0])["offered"]
    return json.loads(answer_text(text, now, day, vocabulary)), offered


def answer_texts(
    session: Session,
    ranked: Sequence[tuple[float, int]],
    now: datetime,
    matching: Callable[[list[list[str]]], list[str]] | None = None,
) -> list[str]:
    """The search's clinics (distance in km, id) as the answer's JSON texts, in order,
    each with its distance rounded to metres (see :func:`answer_text`).

    One read of the stored JSON; a clinic whose row is stale (or missing) is loaded and
    serialized as before, so the answer never depends on whether its row is ready. A
    clinic gone since the index was read is left out.
    """
    day = now.astimezone(NORWAY).date()
    vocabulary = current_vocabulary()
    ids = [clinic_id for _, clinic_id in ranked]
    stored = _stored_bodies(session, ids)
    missing = [clinic_id for clinic_id in ids if not stored.get(clinic_id)]
    loaded = {clinic.id: clinic for clinic in _load_clinics(session, missing)} if missing else {}
    texts = []
    for km, clinic_id in ranked:
        distance = round(km, 3)
        if stored.get(clinic_id):
            texts.append(
                answer_text(
                    stored[clinic_id], now, day, vocabulary, distance_km=distance, matching=matching
                )
            )
        elif clinic_id in loaded:
            clinic = loaded[clinic_id]
            entry = clinic_json(clinic, now, day)
            entry["distance_km"] = distance
            if matching is not None:
                keys = matching([list(p.services or []) for p in clinic.listed_practices])
                entry.update(services_json(keys, "complaint_", vocabulary))
            texts.append(compact_dumps(entry))
    return texts


def _stored_bodies(session: Session, ids: Sequence[int]) -> dict[int, str | None]:
    """The stored bodies of these clinics, by id: one statement, straight to the driver."""
    if not ids:
        return {}
    # A fixed number of placeholders (a power of two, the spare ones repeating the last
    # id), so a few statements are compiled once and reused, as the search's band probes.
    slots = max(4, 1 << (len(ids) - 1).bit_length())
    connection = session.connection()
    driver = _stored_driver(slots, connection.dialect)
    parameters = {f"id_{slot}": ids[min(slot, len(ids) - 1)] for slot in range(slots)}
    return dict(driver.rows(connection, parameters))


@lru_cache(maxsize=16)
def _stored_driver(slots: int, dialect) -> DriverStatement:
    # SQLAlchemy's execution of this read cost more than the database's work on it.
    statement = select(StoredClinicJson.clinic_id, StoredClinicJson.body).where(
        StoredClinicJson.clinic_id.in_([bindparam(f"id_{slot}") for slot in range(slots)])
    )
    return DriverStatement.compile(statement, dialect)


def _load_clinics(session: Session, ids: Sequence[int], *, fresh: bool = False) -> list[Clinic]:
    statement = (
        select(Clinic)
        .where(Clinic.id.in_(ids))
        .options(selectinload(Clinic.practices).joinedload(Practice.clinician))
    )
    if fresh:
        # Another transaction may have changed them since this session loaded them.
        statement = statement.execution_options(populate_existing=True)
    return list(session.scalars(statement))


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def refresh_stale(
    session: Session, *, limit: int | None = None, first: Collection[int] = ()
) -> int:
    """Serialize clinics whose stored JSON is stale; return how many were stored.

    Every stale one; or with ``limit``, the stale ones among ``first`` (all of them) and
    then others up to ``limit`` in all, the newest clinics first (an import's before an
    upgrade's backlog). Flushes, never commits.
    """
    session.flush()
    return _store(session, _stale_ids(session, limit, first))


def refresh_all_stale(session: Session) -> int:
    """Serialize every stale clinic, committing every ``REFRESH_CHUNK``; count them.

    For the job worker and ``flask clinics refresh-json``: short transactions, so the
    backlog an upgrade leaves (every row) never holds the write lock for long.
    """
    stored = 0
    previous: list[int] = []
    while (ids := _stale_ids(session, REFRESH_CHUNK, ())) and ids != previous:
        # (The same rows again would mean none could be stored: never spin on them.)
        stored += _store(session, ids)
        session.commit()
        previous = ids
    session.commit()  # ends the last look's transaction (and its row locks)
    return stored


def _stale_ids(session: Session, limit: int | None, first: Collection[int]) -> list[int]:
    # On PostgreSQL the stale rows are locked first (rows another transaction holds are
    # its to refresh): a change committed meanwhile by another transaction marks its rows
    # stale again only after this one commits, so a body stored here is never older than
    # the data it was built from.
    stale = (
        select(StoredClinicJson.clinic_id)
        .where(StoredClinicJson.body.is_(None))
        .with_for_update(skip_locked=True)
    )
    if limit is None:
        return list(session.scalars(stale.order_by(StoredClinicJson.clinic_id)))
    ids: list[int] = []
    for chunk in _chunks(sorted(first), REFRESH_CHUNK):
        ids += session.scalars(stale.where(StoredClinicJson.clinic_id.in_(chunk)))
    if len(ids) < limit:
        others = stale.order_by(StoredClinicJson.clinic_id.desc()).limit(limit - len(ids))
        if ids:
            others = others.where(StoredClinicJson.clinic_id.not_in(ids))
        ids += session.scalars(others)
    return ids


def _store(session: Session, ids: Sequence[int]) -> int:
    stored = 0
    for chunk in _chunks(ids, REFRESH_CHUNK):
        listed = set(
            session.scalars(select(ListedClinic.clinic_id).where(ListedClinic.clinic_id.in_(chunk)))
        )
        unlisted = [clinic_id for clinic_id in chunk if clinic_id not in listed]
        if unlisted:
            # The API never shows them; a change that lists one again adds its row back.
            session.execute(
                delete(StoredClinicJson).where(StoredClinicJson.clinic_id.in_(unlisted)),
                execution_options={"synchronize_session": False},
            )
        bodies = [
            {"clinic_id": clinic.id, "body": stored_json(clinic)}
            for clinic in _load_clinics(session, sorted(listed), fresh=True)
        ]
        if bodies:
            # ORM bulk UPDATE by primary key: one executemany.
            session.execute(update(StoredClinicJson), bodies)
        stored += len(bodies)
    return stored


# --- keeping it in step -------------------------------------------------------------------

_DIRECTORY = (Clinic, Practice, Clinician)
_DIRECTORY_TABLES = frozenset(model.__tablename__ for model in _DIRECTORY)
_WROTE = "clinic_finder.directory_written"
_TOUCHED = "clinic_finder.clinics_touched"
_TOUCHED_CLINICIANS = "clinic_finder.clinicians_touched"
# Stale clinics a writing commit serializes beyond those it changed through the ORM:
# enough for an import's new clinics at staff scale (bulk inserts name no ids), while the
# backlog an upgrade leaves (every clinic, ~24 s at 100,000) is the job worker's and
# ``flask clinics refresh-json``'s, never a staff request's.
REFRESH_PER_COMMIT = 500


@event.listens_for(Session, "after_flush")
def _note_directory_flush(session: Session, _flush_context) -> None:
    clinics = session.info.setdefault(_TOUCHED, set())
    clinicians = session.info.setdefault(_TOUCHED_CLINICIANS, set())
    for instance in chain(session.new, session.dirty, session.deleted):
        if isinstance(instance, Clinic):
            clinics.add(instance.id)
        elif isinstance(instance, Practice):
            clinics.add(instance.clinic_id)
        elif isinstance(instance, Clinician):
            clinicians.add(instance.id)
        else:
            continue
        session.info[_WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _note_directory_statement(state) -> None:
    if state.is_select:
        return
    if not (state.is_insert or state.is_update or state.is_delete):
        # SQL by hand (text()): it may have written anything.
        state.session.info[_WROTE] = True
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in _DIRECTORY_TABLES:
        state.session.info[_WROTE] = True


@event.listens_for(Session, "before_commit")
def _refresh_before_commit(session: Session) -> None:
    # Only a transaction that wrote to the directory can have made rows stale (or one
    # that ran SQL by hand): a search's commit costs nothing here.
    session.flush()  # commit would flush after this hook: its writes must count too
    clinics = session.info.pop(_TOUCHED, set())
    clinicians = session.info.pop(_TOUCHED_CLINICIANS, set())
    if session.info.pop(_WROTE, False):
        if clinicians:
            # A clinician is shown at every clinic they work at.
            clinics.update(
                session.scalars(
                    select(Practice.clinic_id).where(Practice.clinician_id.in_(clinicians))
                )
            )
        clinics.discard(None)
        # Bounded: what this transaction changed first, then a few more (see
        # REFRESH_PER_COMMIT); the rest stay stale, answered from the ORM meanwhile.
        refresh_stale(session, limit=REFRESH_PER_COMMIT, first=clinics)


@event.listens_for(Session, "after_rollback")
def _forget_directory_writes(session: Session) -> None:
    for key in (_WROTE, _TOUCHED, _TOUCHED_CLINICIANS):
        session.info.pop(key, None)
