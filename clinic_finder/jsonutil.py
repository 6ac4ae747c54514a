"""JSON responses that stay inert even if a browser is tricked into reading them as HTML."""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider


class HtmlSafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, with ``<``, ``>``, ``&`` and ``'`` written as \\u escapes.

    Those characters only ever occur inside JSON strings, so the output is the same JSON;
    but a clinic named ``<script>…`` never appears as markup in any response body.
    """

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        text = super().dumps(obj, **kwargs)
        return (
            text.replace("&", "\\u0026")
            .replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("'", "\\u0027")
        )
