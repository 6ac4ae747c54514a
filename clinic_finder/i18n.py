"""Languages: Norwegian Bokmål first, English second (Flask-Babel).

The language of a page is, in order: ``?lang=`` on the URL (the visible switch; it is
then remembered in a cookie), the remembered choice, the browser's Accept-Language, and
the site's default (``DEFAULT_LOCALE``, nb). The JSON API always answers in English: its
answers are cached without regard to language, and its readers are programs. Catalogues
live in ``clinic_finder/translations``; ``make`` compiles them (``make translations``).

Dates and times are shown in Norwegian time (Europe/Oslo; they are stored in UTC), in the
page's language: "5. nov. 2026, 14:03" in nb, "Nov 5, 2026, 2:03 PM" in en.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from urllib.parse import urlencode

from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.dates import format_time as babel_format_time
from babel.numbers import NumberPattern, parse_pattern
from flask import (
    Flask,
    current_app,
    g,
    has_app_context,
    has_request_context,
    request,
    url_for,
)
from flask_babel import (
    Babel,
    LazyString,
    get_locale,
    get_translations,
    gettext,
    refresh,
    to_user_timezone,
)
from flask_babel import lazy_gettext as _l
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from .hpr import LicenceStatus
from .models import (
    NORWAY,
    PROFESSION_TERMS,
    ImportStatus,
    LocationSource,
    Profession,
    RequestStatus,
    RowStatus,
)
from .web.requests import wants_json

SUPPORTED_LOCALES = ("nb", "en")
LANGUAGE_NAMES = {"nb": "Norsk", "en": "English"}
LANGUAGE_COOKIE = "lang"
# Browsers say "no" or "nn" for Norwegian as often as "nb"; all read Bokmål best here.
_NORWEGIAN = {"no", "nb", "nn"}
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"

babel = Babel()

# The models' enums in words, in the page's language.
PROFESSION_NAMES = {profession: _l(terms.english) for profession, terms in PROFESSION_TERMS.items()}


def _profession_choice(profession: Profession) -> str:
    # In English the Norwegian title too, as it is on every clinic's sign.
    name = gettext(PROFESSION_TERMS[profession].english)
    if current_language() == "nb":
        return name
    return f"{name} ({PROFESSION_TERMS[profession].norwegian})"


# For patients choosing a profession in a form.
PROFESSION_CHOICES = {
    profession: LazyString(_profession_choice, profession) for profession in Profession
}
STATUS_NAMES = {
    RequestStatus.NEW: _l("New"),
    RequestStatus.IN_PROGRESS: _l("In progress"),
    RequestStatus.REFERRED: _l("Referred"),
    RequestStatus.CLOSED: _l("Closed"),
}
# What the last check against the Health Personnel Register (HPR) said, for staff.
LICENCE_STATUS_NAMES = {
    LicenceStatus.VALID: _l("Valid"),
    LicenceStatus.NOT_FOUND: _l("Not found in HPR"),
    LicenceStatus.NO_AUTHORISATION_FOR_PROFESSION: _l("No authorisation for the profession"),
    LicenceStatus.SUSPENDED: _l("Suspended"),
    LicenceStatus.EXPIRED: _l("Expired"),
    LicenceStatus.UNCHECKED: _l("Not checked yet"),
}
LOCATION_SOURCE_NAMES = {
    LocationSource.GIVEN: _l("given"),
    LocationSource.GEOCODED: _l("geocoded"),
    LocationSource.POSTCODE: _l("postcode"),
}
IMPORT_STATUS_NAMES = {
    ImportStatus.QUEUED: _l("waiting to be checked"),
    ImportStatus.PLANNING: _l("being checked"),
    ImportStatus.PLANNED: _l("checked, not imported"),
    ImportStatus.APPLY_QUEUED: _l("waiting to be imported"),
    ImportStatus.APPLYING: _l("being imported"),
    ImportStatus.APPLIED: _l("imported"),
    ImportStatus.FAILED: _l("could not be checked"),
}
ROW_STATUS_NAMES = {
    RowStatus.NEW: _l("new"),
    RowStatus.UPDATED: _l("updated"),
    RowStatus.UNCHANGED: _l("unchanged"),
    RowStatus.REJECTED: _l("rejected"),
}


def _requested_language() -> str | None:
    """The language asked for on the URL, if it is one we have."""
    asked = request.args.get("lang", "")
    return asked if asked in SUPPORTED_LOCALES else None


def visitor_language() -> str:
    """The language this visitor reads (see the module docstring for the order)."""
    if not has_request_context():
        return current_app.config["DEFAULT_LOCALE"]
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


def select_locale() -> str:
    """Pick the response's language: English for the API, else the visitor's."""
    if has_request_context() and wants_json():
        return "en"
    return visitor_language()


def current_language() -> str:
    """The response's language code, e.g. ``nb`` (the default outside a request)."""
    if not has_app_context():
        return SUPPORTED_LOCALES[0]
    if not has_request_context():
        return current_app.config["DEFAULT_LOCALE"]
    return str(get_locale() or current_app.config["DEFAULT_LOCALE"])


ERROR_PAGE_KEY = "clinic_finder.error_page"


def mark_error_page() -> None:
    """Note that this response is an error page: its links must not come from the request."""
    request.environ[ERROR_PAGE_KEY] = True


def language_switch_url(language: str) -> str:
    """This page again, in another language (the query kept, ``lang`` replaced).

    The address is built from the route that answered, never from the query's names:
    ``url_for`` reads ``endpoint``, ``_anchor``, ``_scheme`` and the view's own argument
    names as instructions, so a query carrying one used to break every page. An error page
    (or a request no route answered) links to the finder instead.
    """
    if (
        request.environ.get(ERROR_PAGE_KEY)
        or request.url_rule is None
        or request.endpoint is None
        or request.method != "GET"
    ):
        return url_for("public.find", lang=language)
    path = url_for(request.endpoint, **(request.view_args or {}))
    query = [(name, value) for name, value in request.args.items(multi=True) if name != "lang"]
    return path + "?" + urlencode([*query, ("lang", language)])


@cache
def _number_format(language: str, decimals: int) -> tuple[NumberPattern, Locale]:
    # Parsed once: Babel's format_decimal parses the pattern and the locale every call,
    # and a results page formats 40 distances.
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return parse_pattern(pattern), Locale.parse(language)


def format_number(value: float, decimals: int = 1) -> str:
    """A number with the response language's decimal sign: 2,4 in nb, 2.4 in en."""
    pattern, locale = _number_format(current_language(), decimals)
    # What babel.numbers.format_decimal(value, format=…, locale=…) does with the pattern.
    return pattern.apply(value, locale)


def _babel_locale() -> Locale:
    return get_locale() or Locale.parse(current_language())


def format_day(value: date | datetime | None) -> str:
    """A day in the page's language: "5. nov. 2026" (nb), "Nov 5, 2026" (en).

    A datetime (stored in UTC) gives its day in Norway.
    """
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = to_user_timezone(value).date()
    return babel_format_date(value, "medium", locale=_babel_locale())


def format_moment(value: datetime | None, seconds: bool = False) -> str:
    """A UTC datetime as Norwegian time in the page's language: "5. nov. 2026, 14:03"."""
    if value is None:
        return ""
    local = to_user_timezone(value)
    locale = _babel_locale()
    time_text = babel_format_time(local, "medium" if seconds else "short", locale=locale)
    # The language's own way of joining a date and a time ("{1}, {0}" in both of ours).
    joined = str(locale.datetime_formats["medium"]).replace("'", "")
    return joined.format(time_text, format_day(local))


def format_clock(value: datetime) -> str:
    """A UTC datetime's time of day in Norway, in the page's language: "14.31" / "2:31 PM".

    Rounded up to the whole minute, so a patient told 14.31 is not turned away at 14.30.40.
    """
    local = to_user_timezone(value)
    if local.second or local.microsecond:
        local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if current_language() == "nb":
        # Norwegian writes "kl. 14.30" (Språkrådet); CLDR's Bokmål pattern has a colon.
        return local.strftime("%H.%M")
    return babel_format_time(local, "short", locale=_babel_locale())


def profession_name(profession: Profession | str | None) -> str:
    """A profession's name, e.g. "Fysioterapeut" in nb."""
    if profession is None:
        return ""
    return str(PROFESSION_NAMES[Profession(profession)])


def status_name(status: RequestStatus | str | None) -> str:
    """A request status in words, e.g. "Under arbeid" in nb."""
    if status is None or status == "":
        return ""
    return str(STATUS_NAMES[RequestStatus(status)])


def licence_status_name(status: LicenceStatus | str | None) -> str:
    """A licence check's outcome in words, e.g. "Suspended"."""
    if status is None or status == "":
        return ""
    return str(LICENCE_STATUS_NAMES[LicenceStatus(status)])


def location_source_name(source: LocationSource | str) -> str:
    """How a clinic was placed, in words (given, geocoded, postcode)."""
    return str(LOCATION_SOURCE_NAMES[LocationSource(source)])


def import_status_name(status: ImportStatus | str) -> str:
    """Where an uploaded file is, in words ("being checked")."""
    return str(IMPORT_STATUS_NAMES[ImportStatus(status)])


def row_status_name(status: RowStatus | str) -> str:
    """What importing a row does, in words ("new", "rejected")."""
    return str(ROW_STATUS_NAMES[RowStatus(status)])


class _RequestCatalogue:
    """The current request's catalogue, found by its ``Locale`` in a dict of this app's."""

    def __init__(self) -> None:
        self.catalogues: dict = {}
        # The last (Locale, catalogue) pair: a request's Locale is one object, so most
        # look-ups end at an identity check (a dict look-up compares Locales field by field).
        self.last: tuple = (None, None)

    def __call__(self):
        try:
            # Where Flask-Babel 4 keeps the request's Locale once chosen (get_locale()
            # returns it from there, after three look-ups of g).
            locale = g._flask_babel.babel_locale
        except (AttributeError, RuntimeError):
            locale = None
        if locale is None:
            locale = get_locale()
        # One read of the pair: another thread may replace it between two.
        last = self.last
        if last[0] is locale and locale is not None:
            return last[1]
        try:
            found = self.catalogues[locale]
        except KeyError:
            found = self.catalogues[locale] = get_translations()
        self.last = (locale, found)
        return found


def _install_template_gettext(app: Flask) -> None:
    """Give the templates gettext and ngettext that find the catalogue in one step.

    Flask-Babel's own look up the request's locale and then the catalogue again for every
    string (its domain, its context, the locale's name as the cache key): a results page
    asks for about 230 strings, and those look-ups were a fifth of its rendering. Here the
    catalogue is found by the request's ``Locale`` (which Flask-Babel keeps for the
    request, and ``force_locale`` swaps) in a dict of this app's. ``_`` is one call, not
    Jinja's three (alias, new-style wrapper, function); what it returns is the same:
    the translation, as Markup when autoescaping, %-formatted with the keywords (as
    Jinja's new-style gettext does, "%%" included).
    """
    translations = _RequestCatalogue()

    def template_gettext(string: str) -> str:
        return translations().ugettext(string)

    def template_ngettext(singular: str, plural: str, num: int) -> str:
        return translations().ungettext(singular, plural, num)

    app.jinja_env.install_gettext_callables(
        gettext=template_gettext,
        ngettext=template_ngettext,
        newstyle=True,
        pgettext=lambda context, string: translations().upgettext(context, string),
        npgettext=lambda context, singular, plural, num: translations().unpgettext(
            context, singular, plural, num
        ),
    )

    @pass_context
    def underscore(context: Context, string: str, **variables) -> str:
        text = translations().ugettext(string)
        if context.eval_ctx.autoescape:
            # Our own catalogue's words, as Jinja's i18n extension marks them; the
            # keywords are escaped by the % below.
            text = Markup(text)  # noqa: S704  # nosec B704  # our catalogue, not user data
        # Without a % sign, formatting changes nothing (and costs a microsecond).
        return text % variables if variables or "%" in text else text

    app.jinja_env.globals["_"] = underscore


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    babel.init_app(app, locale_selector=select_locale, default_timezone=NORWAY.key)
    _install_template_gettext(app)
    for name, function in {
        "day": format_day,
        "moment": format_moment,
        "profession_name": profession_name,
        "status_name": status_name,
        "licence_status_name": licence_status_name,
        "location_source_name": location_source_name,
        "import_status_name": import_status_name,
        "row_status_name": row_status_name,
    }.items():
        app.add_template_filter(function, name)

    @app.before_request
    def choose_language_afresh():
        # Flask-Babel caches the language on the app context, which a test (or a worker
        # serving a request inside one) may share between requests: choose per request.
        refresh()

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
            # (API answers are the same in every language: always English.)
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
