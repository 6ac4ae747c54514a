"""JSON responses that stay inert even if a browser is tricked into reading them as HTML."""

from __future__ import annotations

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider


class HtmlSafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, with ``<``, ``>``, ``&`` and ``'`` written as \\u escapes.

    Those characters only ever occur inside JSON strings, so the output is the same JSON;
    but a clinic named ``<script>…`` never appears as markup in any response body.
    """

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return html_safe(super().dumps(obj, **kwargs))

    def writes_compact(self) -> bool:
        """Whether ``jsonify`` writes what :func:`compact_dumps` does (not in debug mode,
        which indents, nor with other settings)."""
        indents = self.compact is False or (self.compact is None and self._app.debug)
        return not indents and self.sort_keys and self.ensure_ascii


def html_safe(text: str) -> str:
    """JSON text with ``<``, ``>``, ``&`` and ``'`` written as \\u escapes."""
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("'", "\\u0027")
    )


def compact_dumps(obj: Any) -> str:
    """JSON text exactly as ``jsonify`` writes it in production (sorted keys, ASCII, no
    spaces, HTML-safe), so answers can be put together from pieces written earlier."""
    return html_safe(json.dumps(obj, ensure_ascii=True, sort_keys=True, separators=(",", ":")))
