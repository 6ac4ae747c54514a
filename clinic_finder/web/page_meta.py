"""What a patient page tells search engines and chat apps about itself.

Every patient page gets a description in its own language, Open Graph and Twitter card
tags, a canonical link and ``hreflang`` alternates (templates/_partials/page_meta.html
writes them). All addresses are absolute on ``PUBLIC_BASE_URL``, whatever host was asked.

The page in a language is its address with ``?lang=nb`` or ``?lang=en`` (its ``hreflang``
alternate); the address without ``lang`` answers in the visitor's language, so it is
``x-default``. Each of the three is its own canonical: an address without ``lang`` that
named ``?lang=nb`` as canonical would send search engines from the one to the other (and
Lighthouse fails a canonical that points at another hreflang address). A canonical address
keeps only what makes the page (a search's own arguments), never what a link brought along
(``utm_…``, ``from``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from flask import current_app, request, url_for
from flask_babel import gettext, ngettext

from ..complaints import Complaint
from ..i18n import SUPPORTED_LOCALES, current_language, format_number, profession_name
from ..models import Clinic, Profession
from ..search import SearchResult
from .search_forms import FinderForm

# The service's name in every language: it is the brand, as on the image.
SITE_NAME = "Finn klinikk"
OPEN_GRAPH_LOCALES = {"nb": "nb_NO", "en": "en_GB"}
# The image chat apps show for a shared link (made by scripts/make_og_image.py).
OG_IMAGE = "img/og-image.png"
OG_IMAGE_SIZE = (1200, 630)


@dataclass(frozen=True)
class PageMeta:
    """One page's description, addresses and share image, ready for the head."""

    description: str
    canonical_url: str
    # Language code (and "x-default") → the page's absolute address in it.
    alternate_urls: dict[str, str]
    locale: str
    alternate_locales: tuple[str, ...]
    image_url: str
    image_alt: str
    image_width: int = OG_IMAGE_SIZE[0]
    image_height: int = OG_IMAGE_SIZE[1]
    og_type: str = "website"
    site_name: str = SITE_NAME


def public_url(path: str) -> str:
    """An absolute URL on the public site (PUBLIC_BASE_URL), whatever host was asked."""
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def _address(arguments: Mapping[str, object], language: str | None) -> str:
    path = url_for(request.endpoint, **(request.view_args or {}))
    query = [
        (name, item)
        for name, value in arguments.items()
        for item in (value if isinstance(value, list | tuple) else [value])
    ]
    if language is not None:
        query.append(("lang", language))
    return public_url(path + ("?" + urlencode(query) if query else ""))


def page_meta(description: str, arguments: Mapping[str, object] | None = None) -> PageMeta:
    """This page's metadata: ``arguments`` are the query arguments that make the page."""
    arguments = arguments or {}
    language = current_language()
    alternates = {code: _address(arguments, code) for code in SUPPORTED_LOCALES}
    alternates["x-default"] = _address(arguments, None)
    asked = request.args.get("lang")
    return PageMeta(
        description=description,
        canonical_url=alternates[language]
        if asked in SUPPORTED_LOCALES
        else alternates["x-default"],
        alternate_urls=alternates,
        locale=OPEN_GRAPH_LOCALES[language],
        alternate_locales=tuple(
            OPEN_GRAPH_LOCALES[code] for code in SUPPORTED_LOCALES if code != language
        ),
        image_url=public_url(url_for("static", filename=OG_IMAGE)),
        image_alt=gettext(
            "Finn klinikk: find a chiropractor, physiotherapist or manual therapist near you"
        ),
    )


def finder_description() -> str:
    """What the finder is, for a page without a search."""
    return gettext(
        "Find a publicly licensed chiropractor, physiotherapist or manual therapist near "
        "you in Norway: search by postcode or place, and see prices, opening hours and "
        "who takes new patients."
    )


def contact_description() -> str:
    """What the contact form is for."""
    return gettext(
        "Tell us what you need, and Finn klinikk helps you find a chiropractor, "
        "physiotherapist or manual therapist near you. We answer within 24–48 hours "
        "on weekdays."
    )


def privacy_description() -> str:
    """What the privacy notice for contact requests covers."""
    return gettext(
        "How Finn klinikk handles what you write when you ask us for help finding a "
        "clinician: what we keep, for how long, who reads it, and your rights."
    )


def complaint_description(complaint: Complaint) -> str:
    """A complaint's landing page: who can help, and the search for clinics near you."""
    return gettext(
        "%(complaint)s: which clinicians can help, and clinics near you that treat it.",
        complaint=complaint.name(current_language()),
    )


def _professions_plural(professions: Collection[Profession], count: int) -> str:
    names = {
        Profession.CHIROPRACTOR: ngettext("chiropractor", "chiropractors", count),
        Profession.PHYSIOTHERAPIST: ngettext("physiotherapist", "physiotherapists", count),
        Profession.MANUAL_THERAPIST: ngettext("manual therapist", "manual therapists", count),
    }
    return names[next(iter(professions))]


def results_description(result: SearchResult, professions: Collection[Profession]) -> str:
    """What a result list is: "12 physiotherapists within 10 km of 0150 Oslo"."""
    place = result.origin.label
    km = format_number(result.radius_km, 0 if float(result.radius_km).is_integer() else 1)
    if not result.within_radius:
        return gettext(
            "No clinics within %(km)s km of %(place)s. See the nearest ones, how far away "
            "they are, and who takes new patients.",
            km=km,
            place=place,
        )
    count = result.total
    if len(professions) == 1:
        what = _professions_plural(professions, count)
    elif professions and len(professions) < len(Profession):
        names = [profession_name(p).lower() for p in sorted(professions, key=lambda p: p.value)]
        what = ngettext(
            "clinic with a %(names)s",
            "clinics with a %(names)s",
            count,
            names=gettext(" or ").join(names),
        )
    else:
        what = ngettext("clinic", "clinics", count)
    if result.total_capped:
        return gettext(
            "More than %(count)s %(what)s within %(km)s km of %(place)s",
            count=format_number(count, 0),
            what=what,
            km=km,
            place=place,
        )
    return gettext(
        "%(count)s %(what)s within %(km)s km of %(place)s",
        count=format_number(count, 0),
        what=what,
        km=km,
        place=place,
    )


def clinic_description(clinic: Clinic, now: datetime) -> str:
    """A clinic in a line: its professions, its place, and whether it takes new patients."""
    professions = gettext(" and ").join(profession_name(p).lower() for p in clinic.professions)
    professions = professions[:1].upper() + professions[1:]
    place = f"{clinic.postcode} {clinic.city}".strip()
    accepting = clinic.accepts_new_patients_as_of(now)
    if accepting is True:
        news = gettext("Taking new patients.")
    elif accepting is False:
        news = gettext("Not taking new patients at the moment.")
    else:
        news = gettext("Ask the clinic whether it takes new patients.")
    return gettext(
        "%(professions)s in %(place)s. %(new_patients)s See prices, opening hours and access.",
        professions=professions,
        place=place,
        new_patients=news,
    )


def finder_page_meta(complaint: Complaint | None) -> PageMeta:
    """The finder before a search: a complaint's page, or the finder itself."""
    if complaint is None:
        return page_meta(finder_description())
    return page_meta(complaint_description(complaint), {"complaint": complaint.slug})


def results_page_meta(result: SearchResult, form: FinderForm) -> PageMeta:
    """A result list: its address is the search and its page, nothing a link brought."""
    search = form.query_arguments()
    if form.page_number > 1:
        search["page"] = form.page_number
    return page_meta(results_description(result, form.selected_professions), search)
