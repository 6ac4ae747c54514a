"""Form pieces every area uses: filters that tidy what was typed, and validators built on
the domain's ``clean_*`` rules (validation.py), so a value means the same in every form."""

from __future__ import annotations

from collections.abc import Callable

from wtforms.validators import ValidationError

from ..textguard import without_bidi_controls


def stripped(value):
    """Filter: the text without spaces around it."""
    return value.strip() if isinstance(value, str) else value


def name_text(value):
    """Filter for names and addresses: no bidirectional controls, no spaces around.

    The controls go first, so a name of nothing but controls is empty and "required"
    refuses it (the models drop them too, for every other way in).
    """
    return stripped(without_bidi_controls(value))


def cleaned_by(clean: Callable[[str], str]):
    """Make a WTForms validator from a ``clean_*`` rule, storing the normalised value."""

    def validator(form, field) -> None:
        if not field.data:
            return
        try:
            field.data = clean(field.data)
        except ValueError as error:
            raise ValidationError(str(error)) from error

    return validator
