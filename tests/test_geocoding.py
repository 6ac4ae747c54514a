"""Geocoding: geopy against a Nominatim on loopback, the cache, the fallback, the staff re-run."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from clinic_finder import geocoding
from clinic_finder.config import ConfigError
from clinic_finder.geocoding import (
    DEFAULT_USER_AGENT,
    AddressLocator,
    GeocoderBusy,
    GeocoderUnavailable,
    ThrottledGeocoder,
    build_geocoder,
    current_geocoder,
    postcode_located_clinics,
    regeocode_postcode_located,
)
from clinic_finder.importer import RowStatus, apply_import, plan_import
from clinic_finder.models import Clinic, GeocodeCacheEntry, LocationSource, PostalCode

from .factories import make_clinic
from .helpers import GOOD_ROW, csv_text
from .nominatim_server import TEST_USER_AGENT, NominatimServer, running_nominatim

KARL_JOHAN = (59.9133, 10.7389)  # near 0154 Oslo's centre
STRANDGATA = (60.3953, 5.3245)  # near 5003 Bergen's centre
BRYGGEN_BERGEN = (60.3975, 5.3245)  # what a query for an Oslo "Bryggen" wrongly finds
PLACES = {
    "karl johans gate 22": KARL_JOHAN,
    "strandgata 4": STRANDGATA,
    "bryggen 1": BRYGGEN_BERGEN,
}
ROW_WITHOUT_COORDINATES = {**GOOD_ROW, "latitude": "", "longitude": ""}


@pytest.fixture
def nominatim() -> Iterator[NominatimServer]:
    """A Nominatim on a free loopback port that knows a few addresses."""
    with running_nominatim(PLACES) as server:
        yield server


@pytest.fixture
def geocoder(nominatim: NominatimServer) -> ThrottledGeocoder:
    """The app's geocoder, pointed at the loopback Nominatim."""
    built = build_geocoder(nominatim.config())
    assert built is not None
    return built


@pytest.fixture
def oslo(session) -> PostalCode:
    return session.get(PostalCode, "0154")


def cache_entries(session) -> list[GeocodeCacheEntry]:
    return list(session.scalars(select(GeocodeCacheEntry)))


def make_postcode_clinic(session, **fields) -> Clinic:
    """Add a clinic placed only at its postcode's centre."""
    clinic = make_clinic(session, **fields)
    clinic.location_source = LocationSource.POSTCODE
    return clinic


def import_text(session, text: str, locator: AddressLocator):
    report = plan_import(session, text, locate=locator)
    apply_import(session, report)
    session.commit()
    return report


# ThrottledGeocoder: the HTTP conversation


def test_lookup_returns_coordinates_of_known_address(geocoder, nominatim):
    point = geocoder.lookup("Karl Johans gate 22, 0154 Oslo, Norway")
    assert point == pytest.approx(KARL_JOHAN)


def test_lookup_sends_user_agent_and_country_restriction(geocoder, nominatim):
    geocoder.lookup("Karl Johans gate 22, 0154 Oslo, Norway")
    (request,) = nominatim.requests
    assert request.path == "/search"
    assert request.user_agent == TEST_USER_AGENT
    assert request.params["q"] == "Karl Johans gate 22, 0154 Oslo, Norway"
    assert request.params["countrycodes"] == "no"
    assert request.params["format"] == "json"


def test_lookup_returns_none_when_nothing_found(geocoder, nominatim):
    assert geocoder.lookup("Ukjentveien 99, 0154 Oslo, Norway") is None


@pytest.mark.parametrize("mode", ["down", "slow", "garbage"])
def test_lookup_raises_unavailable_when_service_fails(nominatim, mode):
    geocoder = build_geocoder(nominatim.config(GEOCODER_RETRIES=0))
    nominatim.fail(mode)
    with pytest.raises(GeocoderUnavailable):
        geocoder.lookup("Karl Johans gate 22, 0154 Oslo, Norway")
    # No retries hidden underneath ours (urllib3 would otherwise resend a timed-out GET).
    assert len(nominatim.requests) == 1


def test_lookup_gives_up_after_retries(geocoder, nominatim):
    nominatim.fail("down")
    with pytest.raises(GeocoderUnavailable):
        geocoder.lookup("Karl Johans gate 22, 0154 Oslo, Norway")
    assert len(nominatim.requests) == geocoder.retries + 1


def test_lookup_raises_unavailable_when_nothing_listens(nominatim):
    geocoder = build_geocoder(nominatim.config())
    nominatim.stop()
    with pytest.raises(GeocoderUnavailable):
        geocoder.lookup("Karl Johans gate 22, 0154 Oslo, Norway")


@pytest.mark.parametrize("status", [500, 429])
def test_lookup_retries_after_transient_error(geocoder, nominatim, status):
    nominatim.fail("error_then_ok", times=1, status=status)
    assert geocoder.lookup("Karl Johans gate 22, 0154 Oslo, Norway") == pytest.approx(KARL_JOHAN)
    assert len(nominatim.requests) == 2


def test_lookup_does_not_retry_a_refusal(geocoder, nominatim):
    nominatim.fail("error_then_ok", times=5, status=403)
    with pytest.raises(GeocoderUnavailable):
        geocoder.lookup("Karl Johans gate 22, 0154 Oslo, Norway")
    assert len(nominatim.requests) == 1


def test_lookup_spaces_requests_by_min_interval(nominatim):
    interval = 0.05
    first = build_geocoder(nominatim.config(GEOCODER_MIN_INTERVAL=interval))
    second = build_geocoder(nominatim.config(GEOCODER_MIN_INTERVAL=interval))
    for number in range(3):
        # Two instances: the turns are shared by the whole process, not per geocoder.
        first.lookup(f"Gate {number}, 0154 Oslo, Norway")
        second.lookup(f"Vei {number}, 0154 Oslo, Norway")
    times = [request.at for request in nominatim.requests]
    assert len(times) == 6
    assert (
        min(later - earlier for earlier, later in zip(times, times[1:], strict=False)) >= interval
    )


def test_lookups_from_threads_of_one_process_take_turns(nominatim):
    interval = 0.3
    prefix = f"turns-{secrets.token_hex(4)}"
    geocoders = [
        # Time enough to wait for two others' turns (a turn is waited for up to the timeout).
        build_geocoder(
            nominatim.config(
                GEOCODER_MIN_INTERVAL=interval, GEOCODER_TIMEOUT=5, RATELIMIT_KEY_PREFIX=prefix
            )
        )
        for _ in range(3)
    ]
    start = threading.Barrier(len(geocoders))

    def look_up(number: int) -> None:
        start.wait(timeout=5)
        for lookup in range(2):
            geocoders[number].lookup(f"Gate {number}-{lookup}, 0154 Oslo, Norway")

    threads = [threading.Thread(target=look_up, args=(n,)) for n in range(len(geocoders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    times = sorted(request.at for request in nominatim.requests)
    assert len(times) == 6
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    # A turn is taken just before the request leaves: allow the milliseconds in between.
    assert min(gaps) >= interval - 0.02, gaps


def test_lookup_gives_up_waiting_for_a_turn_after_its_timeout(nominatim):
    config = nominatim.config(
        GEOCODER_MIN_INTERVAL=5, RATELIMIT_KEY_PREFIX=f"busy-{secrets.token_hex(4)}"
    )
    first, second = build_geocoder(config), build_geocoder(config)
    first.lookup("Karl Johans gate 22, 0154 Oslo, Norway")
    started = time.monotonic()
    with pytest.raises(GeocoderBusy):
        second.lookup("Strandgata 4, 5003 Bergen, Norway")
    waited = time.monotonic() - started
    assert 0.4 <= waited < 2, waited  # its 0.5 s timeout, not the 5 s interval
    assert len(nominatim.requests) == 1


def test_locator_stops_at_its_budget_while_others_have_the_turns(session, nominatim, oslo):
    config = nominatim.config(
        GEOCODER_MIN_INTERVAL=5, RATELIMIT_KEY_PREFIX=f"budget-{secrets.token_hex(4)}"
    )
    build_geocoder(config).lookup("Strandgata 4, 5003 Bergen, Norway")  # another worker
    locate = AddressLocator(session, build_geocoder(config), time_budget=0.2)
    started = time.monotonic()
    location = locate("Karl Johans gate 22", oslo, "Oslo")
    assert time.monotonic() - started < 1
    assert location == (oslo.latitude, oslo.longitude, LocationSource.POSTCODE)
    assert locate.out_of_time and not locate.unavailable
    assert len(nominatim.requests) == 1


def test_lookups_go_on_in_this_process_when_the_shared_storage_is_down(nominatim):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nobody = f"redis://127.0.0.1:{unused.getsockname()[1]}/0"
    interval = 0.2
    geocoder = build_geocoder(
        nominatim.config(
            GEOCODER_MIN_INTERVAL=interval,
            RATELIMIT_STORAGE_URI=nobody,
            RATELIMIT_KEY_PREFIX=f"down-{secrets.token_hex(4)}",
        )
    )
    for number in range(3):
        assert geocoder.lookup(f"Karl Johans gate 22, 0154 Oslo, Norway #{number}") is not None
    times = [request.at for request in nominatim.requests]
    assert len(times) == 3
    assert min(b - a for a, b in zip(times, times[1:], strict=False)) >= interval - 0.02


# AddressLocator: cache, fallback, circuit breaker


def test_locator_places_found_address_as_geocoded(session, geocoder, oslo):
    locate = AddressLocator(session, geocoder)
    latitude, longitude, source = locate("Karl Johans gate 22", oslo, "Oslo")
    assert (latitude, longitude) == pytest.approx(KARL_JOHAN)
    assert source is LocationSource.GEOCODED
    (entry,) = cache_entries(session)
    assert entry.query == "karl johans gate 22, 0154 oslo, norway"
    assert (entry.latitude, entry.longitude, entry.provider) == (*KARL_JOHAN, "nominatim")


def test_locator_answers_same_address_from_cache(session, geocoder, nominatim, oslo):
    AddressLocator(session, geocoder)("Karl Johans gate 22", oslo, "Oslo")
    locate = AddressLocator(session, geocoder)
    latitude, longitude, source = locate("  KARL johans  gate 22 ", oslo, "oslo")
    assert (latitude, longitude, source) == (*KARL_JOHAN, LocationSource.GEOCODED)
    assert len(nominatim.requests) == 1
    assert (locate.from_cache, locate.looked_up) == (1, 0)


def test_locator_caches_not_found_and_uses_postcode(session, geocoder, oslo):
    locate = AddressLocator(session, geocoder)
    location = locate("Ukjentveien 99", oslo, "Oslo")
    assert location == (oslo.latitude, oslo.longitude, LocationSource.POSTCODE)
    (entry,) = cache_entries(session)
    assert (entry.latitude, entry.longitude) == (None, None)
    assert locate.fell_back == 1


def test_locator_does_not_ask_again_for_cached_not_found(session, geocoder, nominatim, oslo):
    AddressLocator(session, geocoder)("Ukjentveien 99", oslo, "Oslo")
    location = AddressLocator(session, geocoder)("Ukjentveien 99", oslo, "Oslo")
    assert location[2] is LocationSource.POSTCODE
    assert len(nominatim.requests) == 1


@pytest.mark.parametrize("mode", ["down", "slow", "garbage"])
def test_locator_falls_back_and_stops_asking_when_geocoder_fails(session, nominatim, oslo, mode):
    locate = AddressLocator(session, build_geocoder(nominatim.config(GEOCODER_RETRIES=0)))
    nominatim.fail(mode)
    first = locate("Karl Johans gate 22", oslo, "Oslo")
    second = locate("Ukjentveien 99", oslo, "Oslo")
    assert first == second == (oslo.latitude, oslo.longitude, LocationSource.POSTCODE)
    assert locate.unavailable
    assert len(nominatim.requests) == 1
    assert cache_entries(session) == []


def test_an_outage_is_remembered_by_later_lookups_until_down_seconds_pass(session, nominatim, oslo):
    geocoder = build_geocoder(nominatim.config(GEOCODER_DOWN_SECONDS=0.5))
    nominatim.fail("down")
    first = AddressLocator(session, geocoder)  # one request, or one import job
    assert first("Karl Johans gate 22", oslo, "Oslo")[2] is LocationSource.POSTCODE
    assert len(nominatim.requests) == geocoder.retries + 1

    later = AddressLocator(session, geocoder)  # the next one, a moment later
    assert later("Karl Johans gate 22", oslo, "Oslo")[2] is LocationSource.POSTCODE
    assert later.unavailable and geocoder.is_down()
    assert len(nominatim.requests) == geocoder.retries + 1, "the known outage was asked again"

    nominatim.fail("ok")
    time.sleep(0.5)
    back = AddressLocator(session, geocoder)
    latitude, longitude, source = back("Karl Johans gate 22", oslo, "Oslo")
    assert (latitude, longitude) == pytest.approx(KARL_JOHAN)
    assert source is LocationSource.GEOCODED
    assert not geocoder.is_down()


def test_a_busy_geocoder_is_not_taken_for_a_down_one(nominatim):
    config = nominatim.config(
        GEOCODER_MIN_INTERVAL=5, RATELIMIT_KEY_PREFIX=f"busy-down-{secrets.token_hex(4)}"
    )
    first, second = build_geocoder(config), build_geocoder(config)
    first.lookup("Karl Johans gate 22, 0154 Oslo, Norway")
    with pytest.raises(GeocoderBusy):
        second.lookup("Strandgata 4, 5003 Bergen, Norway")
    assert not second.is_down()


def test_locator_distrusts_point_far_from_postcode(session, geocoder, oslo):
    location = AddressLocator(session, geocoder)("Bryggen 1", oslo, "Oslo")
    assert location == (oslo.latitude, oslo.longitude, LocationSource.POSTCODE)
    (entry,) = cache_entries(session)
    assert (entry.latitude, entry.longitude) == BRYGGEN_BERGEN


def test_locator_without_address_uses_postcode(session, geocoder, nominatim, oslo):
    location = AddressLocator(session, geocoder)("", oslo, "Oslo")
    assert location[2] is LocationSource.POSTCODE
    assert nominatim.requests == []


def test_locator_without_geocoder_uses_postcode(session, oslo):
    location = AddressLocator(session, None)("Karl Johans gate 22", oslo, "Oslo")
    assert location == (oslo.latitude, oslo.longitude, LocationSource.POSTCODE)


# Importing through the locator


def test_import_stores_geocoded_clinic(session, geocoder):
    report = import_text(
        session, csv_text(ROW_WITHOUT_COORDINATES), AddressLocator(session, geocoder)
    )
    assert report.count(RowStatus.NEW) == 1
    clinic = session.scalars(select(Clinic)).one()
    assert clinic.location_source is LocationSource.GEOCODED
    assert (clinic.latitude, clinic.longitude) == pytest.approx(STRANDGATA)


def test_import_again_is_unchanged_without_request(session, geocoder, nominatim):
    text = csv_text(ROW_WITHOUT_COORDINATES)
    import_text(session, text, AddressLocator(session, geocoder))
    report = import_text(session, text, AddressLocator(session, geocoder))
    assert report.count(RowStatus.UNCHANGED) == 1
    assert len(nominatim.requests) == 1


def test_import_with_geocoder_down_places_clinic_at_postcode(session, geocoder, nominatim):
    nominatim.fail("down")
    locator = AddressLocator(session, geocoder)
    report = import_text(session, csv_text(ROW_WITHOUT_COORDINATES), locator)
    assert report.count(RowStatus.NEW) == 1
    assert locator.unavailable
    clinic = session.scalars(select(Clinic)).one()
    assert clinic.location_source is LocationSource.POSTCODE
    postal = session.get(PostalCode, "5003")
    assert (clinic.latitude, clinic.longitude) == (postal.latitude, postal.longitude)


# The staff list and re-run


def test_postcode_located_clinics_lists_active_ones_by_name(session):
    make_postcode_clinic(session, name="Ås klinikk")
    make_postcode_clinic(session, name="Berg klinikk")
    make_clinic(session, name="Gitt klinikk")
    make_postcode_clinic(session, name="Stengt klinikk", active=False)
    session.commit()
    names = [clinic.name for clinic in postcode_located_clinics(session)]
    assert names == ["Berg klinikk", "Ås klinikk"]


def test_regeocode_upgrades_clinic_once_geocoder_is_back(session, nominatim):
    geocoder = build_geocoder(nominatim.config(GEOCODER_DOWN_SECONDS=0.3))
    nominatim.fail("down")
    import_text(session, csv_text(ROW_WITHOUT_COORDINATES), AddressLocator(session, geocoder))
    nominatim.fail("ok")
    time.sleep(0.3)  # the outage is remembered that long
    report = regeocode_postcode_located(session, geocoder)
    session.commit()
    assert (report.updated, report.still_postcode, report.unavailable) == (1, 0, False)
    clinic = session.scalars(select(Clinic)).one()
    assert clinic.location_source is LocationSource.GEOCODED
    assert (clinic.latitude, clinic.longitude) == pytest.approx(STRANDGATA)


def test_regeocode_asks_again_for_cached_not_found(session, geocoder, nominatim):
    del nominatim.places["strandgata 4"]
    import_text(session, csv_text(ROW_WITHOUT_COORDINATES), AddressLocator(session, geocoder))
    nominatim.places["strandgata 4"] = STRANDGATA
    report = regeocode_postcode_located(session, geocoder)
    assert report.updated == 1
    (entry,) = cache_entries(session)
    assert (entry.latitude, entry.longitude) == pytest.approx(STRANDGATA)


def test_regeocode_reports_unavailable_when_down(session, geocoder, nominatim):
    make_postcode_clinic(session, name="A", address="Karl Johans gate 22", postcode="0154")
    make_postcode_clinic(session, name="B", address="Ukjentveien 99", postcode="0154")
    session.commit()
    nominatim.fail("down")
    report = regeocode_postcode_located(session, geocoder)
    assert (report.updated, report.still_postcode, report.unavailable) == (0, 2, True)
    assert len(nominatim.requests) == geocoder.retries + 1
    assert session.scalar(select(func.count()).select_from(GeocodeCacheEntry)) == 0


# Configuration


def test_build_geocoder_none_disables_geocoding():
    assert build_geocoder({"GEOCODER": "none"}) is None


def test_build_geocoder_defaults_to_public_nominatim():
    geocoder = build_geocoder({})
    assert geocoder is not None
    assert geocoder.geocoder.api == "https://nominatim.openstreetmap.org/search"
    assert geocoder.geocoder.headers["User-Agent"] == DEFAULT_USER_AGENT
    assert geocoder.geocoder.timeout == 5
    assert (geocoder.min_interval, geocoder.retries, geocoder.country_codes) == (1.0, 2, "no")


def test_build_geocoder_reads_strings_from_the_environment():
    geocoder = build_geocoder(
        {"GEOCODER_TIMEOUT": "2.5", "GEOCODER_MIN_INTERVAL": "1.5", "GEOCODER_RETRIES": "3"}
    )
    assert (geocoder.geocoder.timeout, geocoder.min_interval, geocoder.retries) == (2.5, 1.5, 3)


@pytest.mark.parametrize(
    "config",
    [
        {"GEOCODER": "google"},
        {"GEOCODER_TIMEOUT": "soon"},
        {"GEOCODER_RETRIES": "-1"},
        {"GEOCODER_MIN_INTERVAL": "0.1"},  # the public server allows one a second
        {"GEOCODER_DOWN_SECONDS": "-1"},
        {"RATELIMIT_STORAGE_URI": "nosuch://storage"},
    ],
)
def test_build_geocoder_refuses_bad_settings(config):
    with pytest.raises(ConfigError):
        build_geocoder(config)


def test_current_geocoder_is_the_one_init_app_built(app, nominatim):
    app.config.update(nominatim.config())
    geocoding.init_app(app)
    with app.app_context():
        assert current_geocoder() is app.extensions["clinic_finder.geocoder"]
        assert current_geocoder().geocoder.domain == nominatim.domain
