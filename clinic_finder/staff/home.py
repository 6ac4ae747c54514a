"""The staff start page."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user
from sqlalchemy import func, select

from ..contact_requests import inbox_counts
from ..extensions import db
from ..geocoding import postcode_located_clinics
from ..imports import recent_batches
from ..models import Clinic, now_utc
from . import bp


@bp.get("/")
def home():
    """The staff start page: what needs attention."""
    counts = {
        "active": db.session.scalar(select(func.count()).where(Clinic.active.is_(True))),
        "inactive": db.session.scalar(select(func.count()).where(Clinic.active.is_(False))),
        "postcode_located": len(postcode_located_clinics(db.session)),
    }
    return render_template(
        "staff/home.html",
        counts=counts,
        requests=inbox_counts(db.session, current_user, now_utc()),
        batches=recent_batches(db.session, limit=5),
    )
