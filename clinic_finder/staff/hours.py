"""Staff: a clinic's opening hours, one line per weekday."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length

from ..extensions import db
from ..hours import HoursError, format_day, parse_day, set_opening_hours, week_of
from ..models import Clinic
from . import bp

_DAY = [Length(max=60)]


class OpeningHoursForm(FlaskForm):
    """One line of hours per weekday; parsed by hours.parse_day."""

    day_0 = StringField(_l("Monday"), validators=_DAY)
    day_1 = StringField(_l("Tuesday"), validators=_DAY)
    day_2 = StringField(_l("Wednesday"), validators=_DAY)
    day_3 = StringField(_l("Thursday"), validators=_DAY)
    day_4 = StringField(_l("Friday"), validators=_DAY)
    day_5 = StringField(_l("Saturday"), validators=_DAY)
    day_6 = StringField(_l("Sunday"), validators=_DAY)


@bp.route("/clinics/<int:clinic_id>/hours", methods=["GET", "POST"])
def opening_hours(clinic_id: int):
    """Show and change a clinic's opening hours."""
    clinic = db.get_or_404(Clinic, clinic_id)
    form = OpeningHoursForm()
    fields = [form[f"day_{day}"] for day in range(7)]
    if not form.is_submitted():
        for day, stretches in week_of(clinic).items():
            fields[day].data = format_day(stretches)
    if form.validate_on_submit():
        week = {}
        for day, field in enumerate(fields):
            try:
                week[day] = parse_day(field.data)
            except HoursError as error:
                field.errors.append(str(error))
        if not any(field.errors for field in fields):
            changed = set_opening_hours(db.session, current_user, clinic, week)
            db.session.commit()
            flash(_l("Opening hours saved.") if changed else _l("Nothing changed."), "success")
            return redirect(url_for("staff.clinic", clinic_id=clinic.id))
    return render_template("staff/opening_hours.html", form=form, clinic=clinic, fields=fields)
