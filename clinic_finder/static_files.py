"""Static files under content-hashed names, cached by browsers for a year.

Templates keep writing ``url_for('static', filename='css/site.css')`` (or
``'leaflet.static'``); a ``url_defaults`` hook turns the name into
``css/site.3f9a1c2b7d4e.css``, where the twelve hex digits start the SHA-256 of the
file's bytes. Such a URL names one content forever, so its response says
``Cache-Control: public, max-age=31536000, immutable`` and a repeat visit asks for
nothing. A changed file gets a new name, so pages pick it up at once.

- The plain name (``css/site.css``) still works, as before: ``no-cache``, revalidated.
- A hashed name whose hash is not the file's (a page from the previous deploy, or a
  host that has not been updated yet) gets the file as it is now, with ``no-cache``:
  never under ``immutable``, which would pin the wrong bytes for a year.
- The hashes are computed once per process and file, on first use; a file whose size
  or modification time changes is hashed again (so ``flask run`` picks up edits).
- Hashed files are sent precompressed (Brotli or gzip, as the browser accepts),
  compressed once per process.

Relative ``url(…)`` references inside CSS stay unhashed (they revalidate); Leaflet's
marker images, the only ones our pages load that way, get hashed URLs through
``templates/_partials/map_script.html`` instead.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import brotli
from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.security import safe_join

HASH_LENGTH = 12
IMMUTABLE = "public, max-age=31536000, immutable"
# "name.<12 hex digits>.ext": the hash sits before the last suffix.
_HASHED_NAME = re.compile(rf"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{{{HASH_LENGTH}}})(?P<ext>\.[^./]+)$")
# Text worth compressing; images and fonts we serve are compressed already.
_COMPRESSIBLE = {
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/json",
    "image/svg+xml",
    "text/plain",
}
_MIN_COMPRESS_SIZE = 500
# Within 5 % of Brotli's best (11) at an eighth of its time: the first request for a file
# in each worker waits for it (65 ms for Designsystemet's CSS, against 430 ms at 11).
BROTLI_QUALITY = 9


@dataclass(frozen=True)
class HashedFile:
    """One file of a static folder: where it is, its digest, and the state it was read in."""

    path: Path
    digest: str
    mtime_ns: int
    size: int

    @property
    def short_hash(self) -> str:
        return self.digest[:HASH_LENGTH]


def hashed_name(filename: str, short_hash: str) -> str:
    """``css/site.css`` → ``css/site.<hash>.css`` (a name without a suffix gets one)."""
    head, _, last = filename.rpartition("/")
    stem, dot, ext = last.rpartition(".")
    if not dot or not stem:
        stem, ext = last, ""
    new_last = f"{stem}.{short_hash}" + (f".{ext}" if ext else "")
    return f"{head}/{new_last}" if head else new_last


def split_hashed_name(filename: str) -> tuple[str, str] | None:
    """``css/site.<hash>.css`` → (``css/site.css``, hash); None for a name without one."""
    head, _, last = filename.rpartition("/")
    match = _HASHED_NAME.match(last)
    if match is None:
        return None
    original = match["stem"] + match["ext"]
    return (f"{head}/{original}" if head else original), match["hash"]


class StaticManifest:
    """The content hashes of the files behind each static endpoint, made on first use."""

    def __init__(self) -> None:
        # Each endpoint's folder, asked for on use: as Flask's own views do, so a folder
        # changed after start (a test's) is the one both serve.
        self._folders: dict[str, Callable[[], str | None]] = {}
        self._files: dict[Path, HashedFile] = {}
        # Each link's hashed name and when its file was last looked at, by folder,
        # endpoint and name: a results page links 22 files, and looking at each on every
        # page (two system calls) was a twentieth of the page's time.
        self._links: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._compressed: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def add_endpoint(self, endpoint: str, folder: Callable[[], str | None]) -> None:
        """Serve the files of the folder, behind this static endpoint, under hashed names."""
        self._folders[endpoint] = folder

    def endpoints(self) -> list[str]:
        """The static endpoints whose files get hashed names."""
        return list(self._folders)

    def serves(self, endpoint: str) -> bool:
        """Whether this endpoint's files get hashed names."""
        return endpoint in self._folders

    def lookup(self, endpoint: str, filename: str) -> HashedFile | None:
        """The file behind endpoint and name with its hash, or None if there is no such file."""
        folder = self._folders[endpoint]() if endpoint in self._folders else None
        if folder is None:
            return None
        joined = safe_join(folder, filename)
        if joined is None:
            return None
        path = Path(joined)
        try:
            stat = path.stat()
        except OSError:
            return None
        if not path.is_file():
            return None
        known = self._files.get(path)
        if known is not None and (known.mtime_ns, known.size) == (stat.st_mtime_ns, stat.st_size):
            return known
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        entry = HashedFile(path=path, digest=digest, mtime_ns=stat.st_mtime_ns, size=stat.st_size)
        with self._lock:
            self._files[path] = entry
        return entry

    def url_name(self, endpoint: str, filename: str, recheck_seconds: float = 0.0) -> str:
        """The hashed name a page should link to (the plain name if there is no such file).

        The file is looked at again once ``recheck_seconds`` have passed since it last was
        (``STATIC_LINK_RECHECK_SECONDS``), so an edit shows in the links within that time.
        Serving a hashed name always looks (``lookup``): a link a moment stale is still
        answered with the file as it is, never pinned as immutable.
        """
        folder = self._folders[endpoint]() if endpoint in self._folders else None
        key = (folder or "", endpoint, filename)
        now = time.monotonic()
        known = self._links.get(key)
        if known is not None and now - known[1] < recheck_seconds:
            return known[0]
        entry = self.lookup(endpoint, filename)
        name = filename if entry is None else hashed_name(filename, entry.short_hash)
        with self._lock:
            self._links[key] = (name, now)
        return name

    def compressed(self, digest: str, encoding: str, body: bytes) -> bytes:
        """The body compressed with this encoding, compressed once per process and content."""
        key = (digest, encoding)
        cached = self._compressed.get(key)
        if cached is None:
            if encoding == "br":
                cached = brotli.compress(body, quality=BROTLI_QUALITY)
            else:
                cached = gzip.compress(body, compresslevel=9, mtime=0)
            with self._lock:
                self._compressed[key] = cached
        return cached


def _immutable_response(manifest: StaticManifest, entry: HashedFile, body: bytes) -> Response:
    mimetype = mimetypes.guess_type(entry.path.name)[0] or "application/octet-stream"
    response = Response(body, mimetype=mimetype)
    if mimetype in _COMPRESSIBLE and len(body) >= _MIN_COMPRESS_SIZE:
        response.vary.add("Accept-Encoding")
        encoding = request.accept_encodings.best_match(["br", "gzip"])
        if encoding is not None:
            response.set_data(manifest.compressed(entry.digest, encoding, body))
            response.headers["Content-Encoding"] = encoding
    response.headers["Cache-Control"] = IMMUTABLE
    # The validator names the bytes sent, so a compressed body has an ETag of its own.
    encoding = response.headers.get("Content-Encoding", "identity")
    response.set_etag(f"{entry.short_hash}-{encoding}")
    return response.make_conditional(request)


def _hashed_view(manifest: StaticManifest, endpoint: str, plain_view):
    """Wrap a static endpoint's view: hashed names as immutable (compressed once), the rest
    as before."""

    def serve_static(filename: str):
        split = split_hashed_name(filename)
        if split is None:
            return plain_view(filename=filename)
        original, asked_hash = split
        entry = manifest.lookup(endpoint, original)
        if entry is None:
            # Not one of our hashed names after all (or no such file): as before.
            return plain_view(filename=filename)
        if entry.short_hash == asked_hash:
            body = entry.path.read_bytes()
            # The file may have changed since it was hashed: the bytes must match the name.
            if hashlib.sha256(body).hexdigest() == entry.digest:
                return _immutable_response(manifest, entry, body)
        # Another version than the one named: today's bytes, revalidated on every use.
        return plain_view(filename=original)

    return serve_static


class StaticFilesWithoutSession(SecureCookieSessionInterface):
    """Flask's signed-cookie session, never saved on a static file's response.

    Every request reads the session (auth.py checks a staff session's age), which would add
    ``Vary: Cookie`` to static files, and a staff member's activity stamp a ``Set-Cookie``:
    a browser would then revalidate each file whenever the cookie changes (a staff
    member's on every page), and a shared cache could hand a file's ``Set-Cookie``, a
    session, to the next visitor. A static file depends on no cookie.
    """

    def __init__(self, manifest: StaticManifest) -> None:
        self.manifest = manifest

    def save_session(self, app, session, response) -> None:
        if request.endpoint is not None and self.manifest.serves(request.endpoint):
            return
        # The same for a static file served at a fixed path (browser_files.py).
        if getattr(app.view_functions.get(request.endpoint or ""), "static_file", False):
            return
        super().save_session(app, session, response)


def init_app(app: Flask) -> StaticManifest:
    """Link every static endpoint's files under hashed names, and serve those for a year."""
    manifest = StaticManifest()
    if app.has_static_folder:
        manifest.add_endpoint("static", lambda: app.static_folder)
    for name, blueprint in app.blueprints.items():
        if blueprint.has_static_folder:
            manifest.add_endpoint(
                f"{name}.static", lambda blueprint=blueprint: blueprint.static_folder
            )
    for endpoint in manifest.endpoints():
        plain_view = app.view_functions[endpoint]
        app.view_functions[endpoint] = _hashed_view(manifest, endpoint, plain_view)

    @app.url_defaults
    def hash_static_file_names(endpoint: str, values: dict) -> None:
        filename = values.get("filename")
        if filename and manifest.serves(endpoint):
            values["filename"] = manifest.url_name(
                endpoint, filename, app.config["STATIC_LINK_RECHECK_SECONDS"]
            )

    app.extensions["static_manifest"] = manifest
    app.session_interface = StaticFilesWithoutSession(manifest)
    return manifest
