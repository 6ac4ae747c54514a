"""The staff start page."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import func, select

from ..extensions import db
from ..geocoding import postcode_located_clinics
from ..imports import recent_batches
from ..models import Clinic
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
        "staff/home.html", counts=counts, batches=recent_batches(db.session, limit=5)
    )
