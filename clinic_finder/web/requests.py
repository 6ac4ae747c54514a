"""Small facts about the request being answered, and answers every area gives the same way."""

from __future__ import annotations

from flask import Response, request

# Programs call these; people read everything else. Errors, languages and sign-in
# refusals are answered as JSON (in English) here, as pages (in the visitor's) elsewhere.
JSON_PATH_PREFIXES = ("/api/", "/staff/api/")
MAX_PAGE_NUMBER_DIGITS = 6


def wants_json() -> bool:
    """Whether this request is for the JSON API (public or staff)."""
    return request.path.startswith(JSON_PATH_PREFIXES)


def no_store(response: Response) -> Response:
    """Keep a response out of every cache: it shows what a patient typed, or staff data."""
    response.headers["Cache-Control"] = "no-store"
    return response


def page_number() -> int:
    """The ``page`` query parameter, 1 when missing or not a sensible page number."""
    page = request.args.get("page", "1")
    if page.isascii() and page.isdigit() and 0 < len(page) <= MAX_PAGE_NUMBER_DIGITS:
        return max(int(page), 1)
    return 1
