"""Staff JSON, for staff tools."""

from __future__ import annotations

from flask import jsonify

from ..extensions import db
from ..models import Clinic
from ..web.serializers import clinic_json
from . import bp

# --- staff JSON ------------------------------------------------------------------------


@bp.get("/api/clinics/<int:clinic_id>")
def api_clinic(clinic_id: int):
    """One clinic as JSON, active or not, for staff tools."""
    clinic = db.get_or_404(Clinic, clinic_id)
    return jsonify(
        {
            **clinic_json(clinic),
            "active": clinic.active,
            "verified_at": clinic.verified_at.isoformat() if clinic.verified_at else None,
        }
    )
