"""The staff guide (docs/staff-guide.md), in the staff area, where messages can link to it."""

from __future__ import annotations

from flask import current_app, render_template

from ..guides import render_guide
from . import bp

STAFF_GUIDE = "staff-guide.md"


@bp.get("/help")
def help_page():
    """Show the staff guide; its sections are anchors (e.g. /staff/help#import-format)."""
    guide = render_guide(current_app.config["DOCS_DIR"] / STAFF_GUIDE)
    return render_template("staff/help.html", guide=guide)
