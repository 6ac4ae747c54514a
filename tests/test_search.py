"""find_clinics_near: order, radius, profession, activity, and the nearest-anyway fallback."""

from __future__ import annotations

import pytest

from clinic_finder.importer import apply_import, decode_upload, plan_import
from clinic_finder.models import PostalCode, Profession
from clinic_finder.search import BoundingBox, find_clinics_near

from .factories import make_clinic
from .helpers import DEMO_FILE, haversine_km


@pytest.fixture
def demo_directory(session):
    report = plan_import(session, decode_upload(DEMO_FILE.read_bytes()))
    apply_import(session, report)
    session.commit()
    return session


@pytest.mark.parametrize("postcode", ["0150", "5003", "7010", "9008", "4006", "9600"])
def test_results_are_nearest_first_with_correct_distances(demo_directory, postcode):
    origin = demo_directory.get(PostalCode, postcode)
    result = find_clinics_near(demo_directory, origin, radius_km=100, limit=50)
    assert result.within_radius and result.hits
    point = (origin.latitude, origin.longitude)
    expected = [
        haversine_km(point, (hit.clinic.latitude, hit.clinic.longitude)) for hit in result.hits
    ]
    assert [hit.distance_km for hit in result.hits] == pytest.approx(expected, abs=0.001)
    assert expected == sorted(expected)


def test_radius_keeps_only_clinics_within_it(session):
    origin = session.get(PostalCode, "0150")
    near = make_clinic(
        session, name="Near", latitude=origin.latitude + 0.03, longitude=origin.longitude
    )
    make_clinic(session, name="Far", latitude=origin.latitude + 0.2, longitude=origin.longitude)
    session.commit()
    result = find_clinics_near(session, origin, radius_km=5)
    assert [hit.clinic.id for hit in result.hits] == [near.id]
    assert result.total == 1
    assert result.hits[0].distance_km == pytest.approx(
        haversine_km((origin.latitude, origin.longitude), (near.latitude, near.longitude)),
        abs=0.001,
    )


def test_radius_is_a_circle_not_a_box(session):
    origin = session.get(PostalCode, "0150")
    # Inside the bounding box's corner but 7 km away: outside a 5 km radius.
    make_clinic(
        session, name="Corner", latitude=origin.latitude + 0.0405, longitude=origin.longitude + 0.08
    )
    session.commit()
    result = find_clinics_near(session, origin, radius_km=5)
    assert result.within_radius is False


def test_profession_filter(session):
    origin = session.get(PostalCode, "0150")
    make_clinic(session, name="Physio", professions=(Profession.PHYSIOTHERAPIST,))
    chiro = make_clinic(
        session, name="Chiro", professions=(Profession.CHIROPRACTOR, Profession.PHYSIOTHERAPIST)
    )
    session.commit()
    result = find_clinics_near(session, origin, profession=Profession.CHIROPRACTOR)
    assert [hit.clinic.id for hit in result.hits] == [chiro.id]


def test_inactive_clinics_are_not_found(session):
    origin = session.get(PostalCode, "0150")
    make_clinic(session, name="Closed for good", active=False)
    open_clinic = make_clinic(session, name="Open")
    session.commit()
    result = find_clinics_near(session, origin)
    assert [hit.clinic.id for hit in result.hits] == [open_clinic.id]


def test_pages_split_results_in_order(session):
    origin = session.get(PostalCode, "0150")
    for step in range(5):
        make_clinic(
            session,
            name=f"Clinic {step}",
            latitude=origin.latitude + 0.01 * step,
            longitude=origin.longitude,
        )
    session.commit()
    first = find_clinics_near(session, origin, limit=2, offset=0)
    third = find_clinics_near(session, origin, limit=2, offset=4)
    assert first.total == 5
    assert [hit.clinic.name for hit in first.hits] == ["Clinic 0", "Clinic 1"]
    assert [hit.clinic.name for hit in third.hits] == ["Clinic 4"]


@pytest.mark.parametrize("postcode", ["9171", "9990"])
def test_nothing_within_radius_gives_the_nearest_anyway(demo_directory, postcode):
    origin = demo_directory.get(PostalCode, postcode)
    result = find_clinics_near(demo_directory, origin, radius_km=25, limit=5)
    assert result.within_radius is False
    assert len(result.hits) == 5
    assert all(hit.distance_km > 25 for hit in result.hits)
    distances = [hit.distance_km for hit in result.hits]
    assert distances == sorted(distances)
    # The fallback must really be the nearest: compare with every clinic's distance.
    everything = find_clinics_near(demo_directory, origin, radius_km=5000, limit=10_000)
    assert [hit.clinic.id for hit in result.hits] == [hit.clinic.id for hit in everything.hits[:5]]


def test_fallback_on_an_empty_directory_is_empty(session):
    result = find_clinics_near(session, session.get(PostalCode, "0150"))
    assert result.within_radius is False
    assert result.hits == [] and result.total == 0


def test_bounding_box_widens_in_longitude_towards_the_pole():
    oslo = BoundingBox.around(59.9, 10.7, 25)
    longyearbyen = BoundingBox.around(78.2, 15.6, 25)
    assert (longyearbyen.max_longitude - longyearbyen.min_longitude) > 2 * (
        oslo.max_longitude - oslo.min_longitude
    )
    assert oslo.max_latitude - oslo.min_latitude == pytest.approx(2 * 25 / 111.195, rel=1e-3)
