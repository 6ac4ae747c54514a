"""Input no field may hold: NUL characters, lone surrogates, and files where none is taken.

PostgreSQL refuses NUL in text and no database can store a lone UTF-16 surrogate, so both
would end as a 500 — or, on SQLite, be stored and copied into emails. They never come from
a person typing; they are refused at the door with the field's name. So is a file sent
where a form expects text (a 500 in the contact form before): only the views in
:data:`UPLOAD_ENDPOINTS` take files.
"""

from __future__ import annotations

from typing import Any

from flask import Request

MAX_JSON_DEPTH = 20
# The only views that take a file: the staff import of a clinic list.
UPLOAD_ENDPOINTS = frozenset({"staff.import_upload"})


def is_storable(text: str) -> bool:
    """Whether a string can be stored and sent on: no NUL, valid UTF-8 all through."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _first_bad_json(value: Any, path: str, depth: int = 0) -> str | None:
    if depth > MAX_JSON_DEPTH:
        return path or "body"
    if isinstance(value, str):
        return None if is_storable(value) else (path or "body")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not is_storable(key):
                return "body"
            found = _first_bad_json(item, key if not path else f"{path}.{key}", depth + 1)
            if found:
                return found
    if isinstance(value, list):
        for item in value:
            found = _first_bad_json(item, path, depth + 1)
            if found:
                return found
    return None


def unstorable_field(request: Request) -> str | None:
    """Name the first field of the request holding text we cannot store, or None."""
    for source in (request.args, request.form):
        for name, value in source.items(multi=True):
            if not is_storable(name) or not is_storable(value):
                return name if is_storable(name) else "field name"
    for name, upload in request.files.items(multi=True):
        if upload.filename and not is_storable(upload.filename):
            return name
    if request.is_json:
        try:
            body = request.get_json(silent=True)
        except RecursionError:
            return "body"
        return _first_bad_json(body, "")
    return None


def unexpected_file_field(request: Request) -> str | None:
    """Name the first file field of a request to a view that takes no files, or None."""
    if request.endpoint in UPLOAD_ENDPOINTS:
        return None
    for name in request.files:
        return name if is_storable(name) else "field name"
    return None


# Characters that reorder the text around them when shown: embeddings and overrides
# (U+202A–U+202E), isolates (U+2066–U+2069) and the invisible direction marks. In a name a
# right-to-left override makes "Klinikk\u202eevil" read as something else on every page,
# email and CSV. Real right-to-left names need none of them: browsers order Arabic and
# Hebrew letters by themselves.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_NO_BIDI_CONTROLS = str.maketrans(dict.fromkeys(BIDI_CONTROLS))


def without_bidi_controls(text: str | None) -> str | None:
    """Return the text without bidirectional control characters (None stays None)."""
    return text.translate(_NO_BIDI_CONTROLS) if isinstance(text, str) else text
