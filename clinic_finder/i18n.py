"""Languages: Norwegian Bokmål first, English second (Flask-Babel).

The language of a response is, in order: ``?lang=`` on the URL (the visible switch; it is
then remembered in a cookie), the remembered choice, the browser's Accept-Language, and
the site's default (``DEFAULT_LOCALE``, nb). Catalogues live in
``clinic_finder/translations``; ``make`` compiles them (``make translations``).
"""

from __future__ import annotations

from pathlib import Path

from babel.numbers import format_decimal
from flask import (
    Flask,
    current_app,
    has_app_context,
    has_request_context,
    request,
    url_for,
)
from flask_babel import Babel, get_locale

SUPPORTED_LOCALES = ("nb", "en")
LANGUAGE_NAMES = {"nb": "Norsk", "en": "English"}
LANGUAGE_COOKIE = "lang"
# Browsers say "no" or "nn" for Norwegian as often as "nb"; all read Bokmål best here.
_NORWEGIAN = {"no", "nb", "nn"}
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"

babel = Babel()


def _requested_language() -> str | None:
    """The language asked for on the URL, if it is one we have."""
    asked = request.args.get("lang", "")
    return asked if asked in SUPPORTED_LOCALES else None


def select_locale() -> str:
    """Pick the response's language (see the module docstring for the order)."""
    asked = _requested_language()
    if asked:
        return asked
    remembered = request.cookies.get(LANGUAGE_COOKIE)
    if remembered in SUPPORTED_LOCALES:
        return remembered
    for language, _quality in request.accept_languages:
        primary = language.split("-")[0].split("_")[0].lower()
        if primary in _NORWEGIAN:
            return "nb"
        if primary == "en":
            return "en"
    return current_app.config["DEFAULT_LOCALE"]


def current_language() -> str:
    """The response's language code, e.g. ``nb`` (the default outside a request)."""
    if not has_app_context():
        return SUPPORTED_LOCALES[0]
    if not has_request_context():
        return current_app.config["DEFAULT_LOCALE"]
    return str(get_locale() or current_app.config["DEFAULT_LOCALE"])


def language_switch_url(language: str) -> str:
    """This page again, in another language (the query kept, ``lang`` replaced)."""
    if request.endpoint is None or request.method != "GET":
        return f"{request.path}?lang={language}"
    arguments = request.args.to_dict(flat=False)
    arguments["lang"] = [language]
    return url_for(request.endpoint, **(request.view_args or {}), **arguments)


def format_number(value: float, decimals: int = 1) -> str:
    """A number with the response language's decimal sign: 2,4 in nb, 2.4 in en."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, format=pattern, locale=current_language())


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    babel.init_app(app, locale_selector=select_locale, default_timezone="Europe/Oslo")

    @app.after_request
    def remember_language(response):
        asked = _requested_language()
        if asked and request.cookies.get(LANGUAGE_COOKIE) != asked:
            # A preference, not tracking: strictly necessary for the service asked for.
            response.set_cookie(
                LANGUAGE_COOKIE,
                asked,
                max_age=365 * 24 * 3600,
                secure=app.config["SESSION_COOKIE_SECURE"],
                httponly=True,
                samesite="Lax",
            )
        if response.mimetype == "text/html":
            # Pages differ by language, which may come from the cookie or Accept-Language.
            # (API answers are the same in every language: names come in both.)
            response.vary.add("Accept-Language")
            response.vary.add("Cookie")
        return response

    @app.context_processor
    def inject_languages() -> dict:
        return {
            "current_language": current_language(),
            "language_names": LANGUAGE_NAMES,
            "language_switch_url": language_switch_url,
        }
