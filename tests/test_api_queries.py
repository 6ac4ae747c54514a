"""The API search's query parameters: every answer, 400s byte for byte, as the form gave them.

``api_query_answers.json`` holds what the API answered, when its query was read by the
WTForms search form, to many well and badly formed searches: each 400 whole (its body
and headers), each 200 as its envelope with the results cut to each clinic's name and
distance (test_api_answers.py holds whole answers byte for byte). A small directory
around Oslo is built here; nothing in it depends on the day.

Regenerate (only on purpose, from code whose answers are right):
``API_QUERIES_WRITE=1 .venv/bin/pytest tests/test_api_queries.py -n 0``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

from clinic_finder.models import PostalCode, Profession

from .factories import make_clinic
from .helpers import assert_as_recorded

ANSWERS_FILE = Path(__file__).with_name("api_query_answers.json")
LONG = "a" * 201

QUERIES = [
    # Where from: place, postcode (older links), both, neither, blank, too long.
    "",
    "place=",
    "postcode=",
    "place=&postcode=",
    "place=%20%20",
    "postcode=%20",
    "postcode=0150",
    "postcode=%200150%20",
    "postcode=0150&postcode=abcd",
    "postcode=abcd&postcode=0150",
    "postcode=015",
    "postcode=01500",
    "postcode=abcd",
    "postcode=0000",
    "postcode=9999",
    "postcode=0150%0A",
    f"postcode={'1' * 201}",
    f"place={LONG}",
    f"place={LONG}&postcode=0150",
    f"place={'a' * 200}",
    "place=0150",
    "place=0150%20Oslo",
    "place=Oslo",
    "place=oslo",
    "place=Sortland",
    "place=B%C3%B8",
    "place=bo&radius=10",
    "place=B%C3%B8%20i%20Telemark",
    "place=9999",
    "place=9999%20Nowhere",
    "place=1234567",
    "place=Xyzzyqq",
    "place=%3Cscript%3E",
    "place=100%25",
    "place=Oslo&postcode=abcd",
    "place=&postcode=0150",
    "place=Sortland&radius=abc",
    "place=B%C3%B8&radius=abc&page=0",
    # How far.
    "postcode=0150&radius=",
    "postcode=0150&radius=abc",
    "postcode=0150&radius=7",
    "postcode=0150&radius=-5",
    "postcode=0150&radius=%2025",
    "postcode=0150&radius=%2B10",
    "postcode=0150&radius=2_5",
    "postcode=0150&radius=25.0",
    "postcode=0150&radius=" + quote("２５"),
    "postcode=0150&radius=5&radius=x",
    "postcode=0150&radius=x&radius=5",
    "postcode=0150&radius=100",
    # Who.
    "postcode=0150&profession=",
    "postcode=0150&profession=naprapat",
    "postcode=0150&profession=Chiropractor",
    "postcode=0150&profession=chiropractor&profession=",
    "postcode=0150&profession=chiropractor&profession=x&profession=y",
    "postcode=0150&profession=physiotherapist&profession=physiotherapist",
    "postcode=0150&profession=chiropractor&profession=manual_therapist",
    # Which page, how many.
    "postcode=0150&page=",
    "postcode=0150&page=0",
    "postcode=0150&page=-1",
    "postcode=0150&page=abc",
    "postcode=0150&page=10000",
    "postcode=0150&page=10001",
    "postcode=0150&page=99999999999999999999",
    "postcode=0150&page=2&limit=3",
    "postcode=0150&page=%202&limit=3",
    "postcode=0150&page=1_0&limit=1",
    "postcode=0150&page=2.0",
    "postcode=0150&limit=",
    "postcode=0150&limit=%20",
    "postcode=0150&limit=0",
    "postcode=0150&limit=1",
    "postcode=0150&limit=100",
    "postcode=0150&limit=101",
    "postcode=0150&limit=many",
    "postcode=0150&limit=3.5",
    "postcode=0150&limit=2&limit=x",
    "postcode=9171&page=3&limit=2",
    # Filters: what counts as yes and no.
    "postcode=0150&helfo=true",
    "postcode=0150&helfo=True",
    "postcode=0150&helfo=TRUE",
    "postcode=0150&helfo=1",
    "postcode=0150&helfo=yes",
    "postcode=0150&helfo=on",
    "postcode=0150&helfo=false",
    "postcode=0150&helfo=False",
    "postcode=0150&helfo=FALSE",
    "postcode=0150&helfo=0",
    "postcode=0150&helfo=no",
    "postcode=0150&helfo=nei",
    "postcode=0150&helfo=",
    "postcode=0150&helfo=%20false",
    "postcode=0150&helfo=false&helfo=true",
    "postcode=0150&new_patients=true",
    "postcode=0150&new_patients=0",
    "postcode=0150&step_free=true",
    "postcode=0150&open_now=false",
    # A complaint, a language.
    "postcode=0150&complaint=sciatica",
    "postcode=0150&complaint=Sciatica",
    "postcode=0150&complaint=%20sciatica",
    "postcode=0150&complaint=",
    "postcode=0150&complaint=nope",
    "postcode=0150&complaint=nope&complaint=sciatica",
    "postcode=0150&language=pl",
    "postcode=0150&language=PL",
    "postcode=0150&language=",
    "postcode=0150&language=zz",
    "postcode=0150&language=pl&language=zz",
    # Everything wrong at once, and words the API does not take.
    "postcode=x&radius=3&profession=y&limit=500&page=0&complaint=q&language=q",
    "place=B%C3%B8&radius=3&limit=0&language=q",
    f"postcode={'x' * 250}&radius=3",
    "postcode=0150&foo=bar&lang=nb",
    "postcode=abcd&lang=nb",
    "postcode=0150&lang=en",
]


def build_directory(session) -> None:
    """Thirty clinics around Oslo and two in Tromsø, every kind the filters tell apart."""
    oslo = session.get(PostalCode, "0150")
    professions = list(Profession)
    for index in range(30):
        make_clinic(
            session,
            name=f"Oslo {index:02d}",
            latitude=oslo.latitude + 0.0013 * index,
            longitude=oslo.longitude - 0.0021 * (index % 7),
            professions=(professions[index % 3],) + ((professions[1],) if index % 4 == 0 else ()),
            helfo_agreement=index % 2 == 0,
            accepts_new_patients=(True, False, None)[index % 3],
            services=["exercise-therapy", "manual-therapy"] if index % 5 == 0 else [],
            languages=["nb", "pl"] if index % 6 == 0 else ["nb"],
            step_free_access=index % 4 == 1,
        )
    tromso = session.get(PostalCode, "9008")
    for index in range(2):
        make_clinic(
            session,
            name=f"Tromsø {index}",
            postcode="9008",
            latitude=tromso.latitude + 0.01 * index,
            longitude=tromso.longitude,
        )


def answer(client, query: str) -> dict:
    """What the API answers, as the golden file keeps it (see the module docstring)."""
    response = client.get(f"/api/v1/clinics?{query}")
    body = response.get_data(as_text=True)
    skipped = {"Content-Length", "Date", "X-Request-ID"}
    if response.status_code == 200:
        parsed = json.loads(body)
        parsed["results"] = [[found["name"], found["distance_km"]] for found in parsed["results"]]
        body = parsed
        skipped.add("ETag")  # a hash of the whole body, which holds HPR numbers
    return {
        "status": response.status_code,
        "headers": sorted(
            # A cookie's Expires is a date a year from now: its Max-Age says the same.
            [name, re.sub(r"Expires=[^;]*; ", "", value)]
            for name, value in response.headers.items()
            if name not in skipped
        ),
        "body": body,
    }


def test_search_answers_to_each_query_are_the_same_as_the_forms(client, session):
    build_directory(session)
    session.commit()
    answers = {query: answer(client, query) for query in QUERIES}
    assert_as_recorded(answers, ANSWERS_FILE, "API_QUERIES_WRITE")


def test_every_bad_query_here_is_a_400_naming_a_field(client, session):
    # The golden file is not a record of 500s: each refusal names what to change.
    before = json.loads(ANSWERS_FILE.read_text())
    refused = {query: found for query, found in before.items() if found["status"] != 200}
    assert len(refused) > 40
    for query, found in refused.items():
        assert found["status"] == 400, query
        body = json.loads(found["body"])
        assert body["error"] == "Bad Request" and body["errors"], query
