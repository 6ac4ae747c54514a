"""Render a guide from docs/ (Markdown) as HTML for a page in the app, e.g. /staff/help.

Headings get the ids GitHub gives them (:func:`github_slug`), so ``/staff/help#import-format``
and ``docs/staff-guide.md#import-format`` name the same section, and messages in code can
link to either. Our docs are trusted, but a page must not run markup by accident: raw HTML
in the Markdown is shown as text, and links may only lead to web pages, mail or anchors.
"""

from __future__ import annotations

import html
import re
import threading
import xml.etree.ElementTree as etree
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from markdown import Markdown
from markdown.treeprocessors import Treeprocessor

# Headings that make the table of contents: sections and their subsections.
TOC_LEVELS = "2-3"
# Schemes a link or image in a guide may use; relative links and #anchors have none.
SAFE_SCHEMES = {"", "http", "https", "mailto"}
# GitHub keeps letters, digits, "_", "-" and spaces of a heading, then turns spaces to "-".
_NOT_IN_SLUG = re.compile(r"[^\w\- ]")


def github_slug(text: str, separator: str = "-") -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to "-"."""
    return _NOT_IN_SLUG.sub("", text.strip().lower()).replace(" ", separator)


@dataclass(frozen=True)
class Guide:
    """A rendered guide: its title (the first heading), body HTML and contents."""

    title: str
    html: str
    # (level, heading text, anchor) for the sections and subsections, in order.
    toc: tuple[tuple[int, str, str], ...]


class _TitleAndLinks(Treeprocessor):
    """Take the first <h1> out of the body as the title; drop links with unsafe schemes."""

    def run(self, root: etree.Element) -> None:
        self.title = ""
        first = next((child for child in root if child.tag == "h1"), None)
        if first is not None:
            self.title = "".join(first.itertext()).strip()
            root.remove(first)
        for element in root.iter():
            for attribute in ("href", "src"):
                target = element.get(attribute)
                if target is not None and not _is_safe_target(target):
                    del element.attrib[attribute]


def _is_safe_target(target: str) -> bool:
    try:
        scheme = urlsplit(target.strip()).scheme.lower()
    except ValueError:
        return False
    return scheme in SAFE_SCHEMES


def _markdown() -> tuple[Markdown, _TitleAndLinks]:
    md = Markdown(
        extensions=["toc", "tables", "fenced_code"],
        extension_configs={
            "toc": {"slugify": github_slug, "toc_depth": TOC_LEVELS, "permalink": False}
        },
        output_format="html",
    )
    # Python-Markdown passes raw HTML through; without these two it is escaped as text.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    title_and_links = _TitleAndLinks(md)
    # After the table of contents (priority 5), which must still see the title.
    md.treeprocessors.register(title_and_links, "title_and_links", 4)
    return md, title_and_links


def _flatten(tokens: list[dict]) -> list[tuple[int, str, str]]:
    entries: list[tuple[int, str, str]] = []
    for token in tokens:
        entries.append((token["level"], html.unescape(token["name"]), token["id"]))
        entries.extend(_flatten(token["children"]))
    return entries


def _render(text: str) -> Guide:
    md, title_and_links = _markdown()
    body = md.convert(text)
    toc = tuple(entry for entry in _flatten(md.toc_tokens) if entry[0] > 1)
    return Guide(title=title_and_links.title, html=body, toc=toc)


_cache: dict[Path, tuple[int, Guide]] = {}
_cache_lock = threading.Lock()


def render_guide(path: Path) -> Guide:
    """Render a Markdown guide; kept until the file changes (by its modification time)."""
    path = Path(path).resolve()
    modified = path.stat().st_mtime_ns
    with _cache_lock:
        cached = _cache.get(path)
    if cached is not None and cached[0] == modified:
        return cached[1]
    guide = _render(path.read_text(encoding="utf-8"))
    with _cache_lock:
        _cache[path] = (modified, guide)
    return guide
