"""Snippets for the article sites: an iframe of the finder, a link and a button to a search.

Admins pick a profession and a complaint from the catalogue and copy ready-made HTML; the
page lists which sites may frame the finder.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import current_app, render_template, request, url_for
from flask_babel import force_locale, gettext, lazy_gettext
from flask_wtf import FlaskForm
from markupsafe import escape
from wtforms import SelectChoice, SelectField

from ..i18n import LANGUAGE_NAMES, PROFESSION_NAMES, SUPPORTED_LOCALES, current_language
from ..models import Profession
from ..origins import allowed_origins
from ..web.catalogues import complaint_catalogue
from . import admin_required, bp

# What the frame is tall without our resize script (an article site that strips scripts):
# the compact search and the first results; the rest scrolls inside the frame.
IFRAME_HEIGHT = 900
# The resize script's address never changes: articles keep the snippet for years, so it is
# not a content-hashed static URL.
RESIZE_SCRIPT = "js/embed-resize.js"
# Inline styles on purpose: the snippet goes into the article site's page, not ours.
BUTTON_STYLE = (
    "display:inline-block;padding:.6em 1.2em;background:#0b5cad;color:#fff;"
    "border-radius:4px;text-decoration:none;font-weight:600"
)


class EmbedSnippetForm(FlaskForm):
    """What the article is about and which language its readers read."""

    class Meta:
        csrf = False  # a GET form that changes nothing

    profession = SelectField(
        lazy_gettext("Profession"),
        choices=[SelectChoice("", lazy_gettext("Any clinician"))]
        + [SelectChoice(p.value, PROFESSION_NAMES[p]) for p in Profession],
        default="",
    )
    complaint = SelectField(
        lazy_gettext("Complaint (optional)"),
        default="",
        description=lazy_gettext(
            "What the article is about: it ranks the clinics and prefills the contact form."
        ),
    )
    language = SelectField(
        lazy_gettext("Language"),
        choices=[SelectChoice(code, LANGUAGE_NAMES[code]) for code in SUPPORTED_LOCALES],
        default=SUPPORTED_LOCALES[0],
    )


def _public_url(endpoint: str, **query: str) -> str:
    """An absolute URL on the public site with the given non-empty query parameters."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/") + url_for(endpoint)
    present = {name: value for name, value in query.items() if value}
    return base + ("?" + urlencode(present) if present else "")


def build_snippets(profession: str, complaint: str, language: str) -> dict[str, str]:
    """Build an article site's HTML: the iframe and our resize script, a link, a button."""
    query = {"profession": profession, "complaint": complaint, "lang": language}
    embed_url = _public_url("embed.embed", **query)
    find_url = _public_url("public.find", **query)
    script_url = (
        current_app.config["PUBLIC_BASE_URL"].rstrip("/")
        + current_app.static_url_path
        + "/"
        + RESIZE_SCRIPT
    )
    with force_locale(language):
        title = gettext("Find a clinic near you")
    return {
        "embed_url": embed_url,
        "find_url": find_url,
        "script_url": script_url,
        # allow="geolocation" lets "Use my location" work inside the frame.
        "iframe": (
            f'<iframe src="{escape(embed_url)}" title="{escape(title)}" width="100%" '
            f'height="{IFRAME_HEIGHT}" style="border:0;max-width:48rem" loading="lazy" '
            f'allow="geolocation"></iframe>\n'
            f'<script src="{escape(script_url)}" async></script>'
        ),
        "link": f'<a href="{escape(find_url)}">{escape(title)}</a>',
        "button": f'<a href="{escape(find_url)}" style="{BUTTON_STYLE}">{escape(title)}</a>',
        "title": title,
    }


@bp.get("/embed")
@admin_required
def embed_snippets():
    """Show ready-to-paste iframe, link and button snippets for a profession and complaint."""
    form = EmbedSnippetForm(request.args)
    language = current_language()
    form.complaint.choices = [SelectChoice("", lazy_gettext("None"))] + [
        SelectChoice(slug, complaint.name(language))
        for slug, complaint in complaint_catalogue().items()
    ]
    snippets = None
    if form.validate():
        snippets = build_snippets(
            form.profession.data or "", form.complaint.data or "", form.language.data
        )
    return render_template(
        "staff/embed.html",
        form=form,
        snippets=snippets,
        origins=allowed_origins(current_app.config),
        iframe_height=IFRAME_HEIGHT,
    ), (200 if snippets else 400)
