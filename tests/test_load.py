"""Concurrency and load: many patients at once against a real server, imports racing each other.

Contact requests go to gunicorn in a child process (two sync workers, so two processes
write at once); the racing imports run in threads of this process, held at a barrier so
that both have planned before either writes — the moment a race can go wrong.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from clinic_finder.extensions import db
from clinic_finder.importer import apply_import, plan_import
from clinic_finder.models import Clinic, Clinician

from .helpers import (
    clinic_rows,
    contact_request_body,
    csv_text,
    post_json,
    running_gunicorn,
    stored_requests,
)

REQUESTS = 200
THREADS = 20


@pytest.mark.slow
def test_two_hundred_contact_requests_from_twenty_threads_are_all_stored(
    app, database_url, tmp_path
):
    with running_gunicorn(database_url, tmp_path, workers=2) as server:
        url = f"{server.base_url}/api/v1/contact-requests"
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            answers = list(
                pool.map(lambda n: post_json(url, contact_request_body(n)), range(REQUESTS))
            )
        elapsed = time.monotonic() - started

    statuses = Counter(status for status, _ in answers)
    references = [answer.get("reference") for _, answer in answers]
    stored = stored_requests(app)
    print(
        f"\n{REQUESTS} requests from {THREADS} threads to 2 workers: {dict(statuses)}, "
        f"{len(stored)} stored, {len(set(references) - set(stored))} lost, {elapsed:.1f} s"
    )
    assert statuses == {201: REQUESTS}
    assert len(set(references)) == REQUESTS
    assert set(stored) == set(references)
    assert all(kinds == ["request.confirmation", "request.staff"] for kinds in stored.values())


def _import_in_step(app: Flask, text: str, barrier: threading.Barrier) -> str:
    """Plan an import, wait until the other import has planned too, then both apply at once."""
    with app.app_context():
        session = db.session()
        try:
            report = plan_import(session, text)
            # Both have read the directory and found the same things missing; now both write.
            barrier.wait(timeout=30)
            apply_import(session, report)
            session.commit()
        except SQLAlchemyError as error:
            session.rollback()
            return type(error).__name__
        return "ok"


def _race(app: Flask, *texts: str) -> list[str]:
    """Run one import per text at once; return how each ended ("ok" or the error's name)."""
    barrier = threading.Barrier(len(texts))
    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        return list(pool.map(lambda text: _import_in_step(app, text, barrier), texts))


def _import_again(app: Flask, text: str) -> None:
    with app.app_context():
        apply_import(db.session, plan_import(db.session, text))
        db.session.commit()


def _hpr_numbers(app: Flask) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(select(Clinician.hpr_number)))


@pytest.mark.slow
def test_concurrent_imports_of_overlapping_files_never_duplicate_a_clinician(app):
    # Clinicians 20–39 are in both files.
    first = clinic_rows(0, 40)
    second = clinic_rows(20, 40)
    texts = [csv_text(*first), csv_text(*second)]
    outcomes = _race(app, *texts)

    # Imports apply one at a time, each reading the directory afresh: both go through.
    assert outcomes == ["ok", "ok"]

    hpr_numbers = _hpr_numbers(app)
    assert hpr_numbers == sorted({row["hpr_number"] for row in first + second})
    assert max(Counter(hpr_numbers).values()) == 1


@pytest.mark.slow
def test_concurrent_imports_of_one_new_clinic_create_it_once(app):
    # The same clinic, with a different clinician in each file.
    first = clinic_rows(0, 1)
    second = clinic_rows(1, 1)
    assert first[0]["clinic_name"] == second[0]["clinic_name"]
    texts = [csv_text(*first), csv_text(*second)]
    for text, outcome in zip(texts, _race(app, *texts), strict=True):
        if outcome != "ok":
            _import_again(app, text)
    assert _hpr_numbers(app) == sorted(row["hpr_number"] for row in first + second)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Clinic)) == 1
