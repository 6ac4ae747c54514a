"""Operator commands: `flask postcodes load`, `flask clinics import` and `flask staff …`."""

from __future__ import annotations

import csv

import pytest
from sqlalchemy import func, select

from clinic_finder.models import AuditEntry, Clinic, Clinician, ImportBatch, Practice, StaffUser

from .helpers import DEMO_FILE, GOOD_ROW, csv_text, partial_csv_text


def _count(app, model) -> int:
    from clinic_finder.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_postcodes_load_if_empty_skips_loaded_register(runner):
    result = runner.invoke(args=["postcodes", "load", "--if-empty"])
    assert result.exit_code == 0
    assert "already loaded" in result.output


def test_postcodes_load_reports_unchanged_on_second_run(runner):
    result = runner.invoke(args=["postcodes", "load"])
    assert result.exit_code == 0
    assert "0 new, 0 updated" in result.output


def test_clinics_import_loads_demo_file_and_is_idempotent(app, runner):
    first = runner.invoke(args=["clinics", "import", str(DEMO_FILE)])
    assert first.exit_code == 0, first.output
    assert "0 rejected" in first.output
    clinics, clinicians = _count(app, Clinic), _count(app, Clinician)
    practices = _count(app, Practice)  # a row each; some clinicians work at two clinics
    assert clinics >= 300 and clinicians >= 500 and practices > clinicians

    second = runner.invoke(args=["clinics", "import", str(DEMO_FILE)])
    assert second.exit_code == 0
    assert f"{practices} unchanged" in second.output
    assert " 0 new, 0 updated" in second.output
    counted = (_count(app, Clinic), _count(app, Clinician), _count(app, Practice))
    assert counted == (clinics, clinicians, practices)


def _directory_facts(app) -> list[tuple]:
    """Every practice with what a list of names, addresses and phones does not give."""
    from clinic_finder.extensions import db

    with app.app_context():
        return sorted(
            (p.clinician.hpr_number, p.clinic_id, p.clinic.email, p.clinic.website,
             p.clinic.booking_url, p.clinic.step_free_access, p.public_agreement,
             p.agreement_municipality, p.accepts_new_patients, p.services, p.clinician.languages)
            for p in db.session.scalars(select(Practice))
        )  # fmt: skip


def test_clinics_import_of_the_demo_cut_to_a_few_columns_changes_nothing(app, runner, tmp_path):
    runner.invoke(args=["clinics", "import", str(DEMO_FILE)])
    before = _directory_facts(app)
    with DEMO_FILE.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = ["clinic_name", "address", "postcode", "phone", "clinician_name", "profession",
               "hpr_number"]  # fmt: skip
    path = tmp_path / "phones.csv"
    path.write_text(partial_csv_text(columns, *rows), encoding="utf-8")
    result = runner.invoke(args=["clinics", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert f" 0 new, 0 updated, {len(rows)} unchanged" in result.output
    assert _directory_facts(app) == before


def test_clinics_import_dry_run_writes_nothing(app, runner, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text(csv_text(GOOD_ROW), encoding="utf-8")
    result = runner.invoke(args=["clinics", "import", "--dry-run", str(path)])
    assert result.exit_code == 0
    assert "Dry run" in result.output and "1 new" in result.output
    assert _count(app, Clinic) == 0


def test_clinics_import_if_empty_leaves_existing_directory(app, runner, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text(csv_text(GOOD_ROW), encoding="utf-8")
    runner.invoke(args=["clinics", "import", str(path)])
    result = runner.invoke(args=["clinics", "import", "--if-empty", str(DEMO_FILE)])
    assert "already has clinics" in result.output
    assert _count(app, Clinic) == 1


def test_clinics_import_reports_rejected_lines(app, runner, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(csv_text(GOOD_ROW, {**GOOD_ROW, "hpr_number": "1", "postcode": "9999"}))
    result = runner.invoke(args=["clinics", "import", str(path)])
    assert result.exit_code == 0
    assert "Line 3: rejected: postcode '9999' is not in the Norwegian postcode register" in (
        result.output
    )
    assert "1 new" in result.output and "1 rejected" in result.output


def test_clinics_import_missing_column_fails_clearly(runner, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("name,town\nA,B\n")
    result = runner.invoke(args=["clinics", "import", str(path)])
    assert result.exit_code != 0
    assert "Required column(s) missing" in result.output


def test_clinics_import_strict_writes_nothing_when_a_row_is_rejected(app, runner, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(csv_text(GOOD_ROW, {**GOOD_ROW, "hpr_number": "1", "postcode": "9999"}))
    result = runner.invoke(args=["clinics", "import", "--strict", str(path)])
    assert result.exit_code == 1
    assert "--strict: rows were rejected, so nothing was written" in result.output
    assert _count(app, Clinic) == 0


def test_clinics_import_is_audited_with_its_file(app, runner, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text(csv_text(GOOD_ROW), encoding="utf-8")
    assert runner.invoke(args=["clinics", "import", str(path)]).exit_code == 0
    from clinic_finder.extensions import db

    with app.app_context():
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "import.apply")
        ).one()
        batch = db.session.scalars(select(ImportBatch)).one()
    assert entry.actor_label == "command line" and entry.changes["new"] == [GOOD_ROW["hpr_number"]]
    assert batch.filename == "one.csv" and batch.applied_at is not None


def test_staff_deactivate_ends_account(app, runner):
    from .conftest import make_staff

    make_staff(app)
    result = runner.invoke(args=["staff", "deactivate", "STAFF@clinic-finder.example"])
    assert result.exit_code == 0
    listing = runner.invoke(args=["staff", "list"]).output
    assert "staff@clinic-finder.example\tstaff\tdeactivated" in listing


def test_staff_create_prompts_for_the_password_twice(app, runner):
    from .conftest import STAFF_PASSWORD

    result = runner.invoke(
        args=["staff", "create", "new@clinic-finder.example"],
        input=f"{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "Password:" in result.output and "Repeat for confirmation:" in result.output
    assert STAFF_PASSWORD not in result.output
    assert "Created staff account new@clinic-finder.example." in result.output


def test_staff_create_asks_again_when_the_passwords_differ(app, runner):
    from .conftest import STAFF_PASSWORD

    result = runner.invoke(
        args=["staff", "create", "new@clinic-finder.example"],
        input=f"{STAFF_PASSWORD}\nsomething else entirely\n{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    assert _count(app, StaffUser) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--password", "correct horse battery staple"],
        ["--password=correct horse battery staple"],
    ],
)
def test_staff_create_refuses_a_password_on_the_command_line(app, runner, args):
    result = runner.invoke(
        args=["staff", "create", "new@clinic-finder.example", *args], input="\n\n"
    )
    assert result.exit_code == 2
    assert "No such option '--password'" in result.output
    assert _count(app, StaffUser) == 0


def test_no_staff_command_takes_a_password_option(app):
    from clinic_finder.commands import staff_cli

    for name, command in staff_cli.commands.items():
        options = {option for param in command.params for option in param.opts}
        assert not any("password" in option for option in options), name
