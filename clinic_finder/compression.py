"""Compress pages, JSON and static files (Flask-Compress), except where BREACH could read secrets.

BREACH recovers a secret from a compressed response when the same response also echoes
text an attacker chooses (a search term, a query parameter, a form field sent cross-site)
and the attacker can make the victim's browser fetch it many times and watch the sizes.
So two kinds of response are never compressed:

- anything under ``/staff``: it shows health data and the directory's internals beside
  echoed search terms and form input, and carries the CSRF token;
- any response that carries the CSRF token (the contact form, on public pages): the
  token lives in the session, which staff share with the public pages when they browse
  them signed in, so a token read from the contact page would be good for staff forms.

Everything else (the results and clinic pages, the API's JSON, CSS and JavaScript) holds
nothing secret: the CSP nonce is new in every response, so a size oracle cannot converge
on it.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request
from flask_compress import Compress


def may_compress() -> bool:
    """Whether this request's response may be compressed (see the module's BREACH note)."""
    if request.path == "/staff" or request.path.startswith("/staff/"):
        return False
    # Flask-WTF keeps the token it rendered into the page in g under the field's name.
    return current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token") not in g


def init_app(app: Flask) -> None:
    """Compress what may be compressed, when the browser asks for it (Accept-Encoding)."""
    # Our own after_request decides which responses Flask-Compress sees.
    app.config.setdefault("COMPRESS_REGISTER", False)
    # Brotli where the browser takes it (the smallest), else gzip.
    app.config.setdefault("COMPRESS_ALGORITHM", ["br", "gzip"])
    app.config.setdefault("COMPRESS_ALGORITHM_STREAMING", ["br"])
    # No streamed response is compressed: Flask-Compress wraps the stream in a generator
    # that never closes the file under it (a plain-named static file, sent as a stream,
    # leaked its file handle). Hashed static files are compressed once by static_files.py.
    app.config.setdefault("COMPRESS_STREAMS", False)
    # Level 5 costs about what gzip's 6 does, and is a fifth smaller on our pages.
    app.config.setdefault("COMPRESS_BR_LEVEL", 5)
    compress = Compress()
    compress.init_app(app)

    @app.after_request
    def compress_response(response: Response) -> Response:
        if not may_compress():
            return response
        if request.accept_encodings.best_match(["br", "gzip"]) is None:
            # Flask-Compress would take "br;q=0" (not acceptable) as a yes.
            response.vary.add("Accept-Encoding")
            return response
        return compress.after_request(response)
