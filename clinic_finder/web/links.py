"""Links a page repeats for many items, built once and filled in for each.

``url_for`` costs about 10 µs a call; a results page built two links for each of its 20
clinics the same way. ``url_pattern`` asks ``url_for`` once, with a placeholder for each
part that varies, and returns a pattern for ``str.format``: the same address ``url_for``
gives, for values that need no escaping in a URL (ids, slugs from ``clinic_pages.slugify``).
"""

from __future__ import annotations

from flask import request, url_for

# Digits no page puts in a link of its own: each varying part's stand-in.
_PLACEHOLDER = 9_073_514_268_301_000


def url_pattern(endpoint: str, varying: tuple[str, ...] | list[str], **values) -> str:
    """A ``str.format`` pattern of ``url_for(endpoint, **values)`` with a ``{name}`` for
    each name in ``varying`` (ids and slugs: values a URL needs no escaping for).

    The varying names come first in the query, as ``url_for(endpoint, name=…, **values)``
    puts them.
    """
    marks = {name: _PLACEHOLDER + index for index, name in enumerate(varying)}
    url = url_for(endpoint, **marks, **values)
    pattern = url.replace("{", "{{").replace("}", "}}")
    for name, mark in marks.items():
        if pattern.count(str(mark)) != 1:
            raise ValueError(f"{endpoint}'s address does not hold {name} once: {url}")
        pattern = pattern.replace(str(mark), "{" + name + "}")
    return pattern


# url_for's own keyword arguments: a query argument of that name would be taken as one.
_URL_FOR_OWN = frozenset({"endpoint", "_anchor", "_method", "_scheme", "_external"})


def request_arguments() -> dict[str, list[str]]:
    """This request's query arguments, to build a link that keeps them (``url_for(…,
    **request_arguments())``), without the names ``url_for`` takes for itself: a crafted
    ``?endpoint=x`` was a 500, and ``?_external=1`` made the link absolute, from the Host
    header."""
    return {
        name: values
        for name, values in request.args.to_dict(flat=False).items()
        if name not in _URL_FOR_OWN
    }
