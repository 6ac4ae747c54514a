"""The in-app staff guide: docs/staff-guide.md rendered with stable anchors, and no live markup."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import render_template

from clinic_finder.guides import Guide, render_guide

STAFF_GUIDE = Path(__file__).resolve().parent.parent / "docs" / "staff-guide.md"

# Code links to these as /staff/help#<anchor> (and docs/staff-guide.md#<anchor>): renaming
# a heading breaks those links, so each rename shows up here first.
LINKED_ANCHORS = (
    "signing-in",
    "setting-up-your-account",
    "recovery-codes",
    "a-lost-phone",
    "forgotten-password",
    "passwords",
    "sessions-and-pauses",
    "the-staff-area",
    "clinics",
    "opening-hours",
    "importing-a-clinic-list",
    "upload",
    "checking-in-the-background",
    "preview",
    "importing-the-accepted-rows",
    "rejected-rows",
    "import-format",
    "columns",
    "norwegian-column-names",
    "encodings-and-separators",
    "list-caps",
    "how-rows-are-classified",
    "matching-clinics-and-clinicians",
    "geocoding",
    "clinics-placed-at-their-postcode",
    "exporting-the-directory",
    "contact-requests",
    "the-inbox",
    "a-requests-page",
    "referrals",
    "privacy-requests",
    "embed-snippets",
    "staff-accounts",
    "audit-log",
)


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)
        self.ids.extend(value for name, value in attrs if name == "id" and value)


def parsed(html: str) -> _Ids:
    parser = _Ids()
    parser.feed(html)
    return parser


def write_guide(tmp_path: Path, text: str) -> Guide:
    path = tmp_path / "guide.md"
    path.write_text(text, encoding="utf-8")
    return render_guide(path)


def test_the_staff_guide_renders_with_its_title_and_contents():
    guide = render_guide(STAFF_GUIDE)
    assert guide.title == "Staff guide"
    assert "<h1" not in guide.html  # the page has its own heading
    assert (2, "Import format", "import-format") in guide.toc
    assert (3, "Columns", "columns") in guide.toc
    assert {level for level, _text, _anchor in guide.toc} == {2, 3}


@pytest.mark.parametrize("anchor", LINKED_ANCHORS)
def test_the_staff_guide_has_the_anchor_code_links_to(anchor):
    guide = render_guide(STAFF_GUIDE)
    assert anchor in parsed(guide.html).ids
    assert anchor in [entry[2] for entry in guide.toc]


def test_the_staff_guide_links_to_no_other_file():
    # Shown at /staff/help, a relative link to another doc would lead nowhere.
    text = STAFF_GUIDE.read_text(encoding="utf-8")
    relative = [
        target
        for target in re.findall(r"\]\(([^)\s]+)", text)
        if not target.startswith(("#", "http://", "https://", "mailto:"))
    ]
    assert relative == []


def test_tables_render_as_tables():
    guide = render_guide(STAFF_GUIDE)
    assert guide.html.count("<table>") >= 3
    assert "<td><code>clinic_name</code></td>" in guide.html


def test_anchors_follow_githubs_rules(tmp_path):
    guide = write_guide(
        tmp_path,
        "# T\n\n## A deploy, step by step\n\n### Columns — the list\n\n## A request's page\n",
    )
    assert [anchor for _level, _text, anchor in guide.toc] == [
        "a-deploy-step-by-step",
        "columns--the-list",
        "a-requests-page",
    ]


def test_raw_html_is_shown_as_text_not_run(tmp_path):
    guide = write_guide(
        tmp_path,
        "# T\n\n"
        "A line with <script>alert(1)</script> and <img src=x onerror=alert(2)>.\n\n"
        '<div onclick="alert(3)">a block</div>\n\n'
        "| a | b |\n|---|---|\n| <b>bold</b> | 1 |\n\n"
        "## Heading <em>with markup</em>\n",
    )
    tags = parsed(guide.html).tags
    assert not {"script", "img", "div", "b", "em"} & set(tags)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in guide.html
    assert "&lt;div onclick=" in guide.html
    assert "&lt;b&gt;bold&lt;/b&gt;" in guide.html


def test_code_keeps_its_angle_brackets_escaped(tmp_path):
    guide = write_guide(tmp_path, "# T\n\n`<iframe>`\n\n```html\n<iframe src=x></iframe>\n```\n")
    assert "iframe" not in parsed(guide.html).tags
    assert "<code>&lt;iframe&gt;</code>" in guide.html
    assert "&lt;iframe src=x&gt;&lt;/iframe&gt;" in guide.html


def test_links_may_not_run_script(tmp_path):
    guide = write_guide(
        tmp_path,
        "# T\n\n[a](javascript:alert(1)) [b](JavaScript:x) [c](data:text/html,x) "
        "[d](#import-format) [e](https://example.org/) [f](mailto:staff@example.org)\n",
    )
    hrefs = re.findall(r'href="([^"]*)"', guide.html)
    assert hrefs == ["#import-format", "https://example.org/", "mailto:staff@example.org"]


def test_a_guide_is_rendered_again_when_the_file_changes(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text("# First\n", encoding="utf-8")
    first = render_guide(path)
    assert render_guide(path) is first  # cached while unchanged
    path.write_text("# Second\n", encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert render_guide(path).title == "Second"


def test_the_help_template_shows_the_contents_and_the_guide(app):
    guide = render_guide(STAFF_GUIDE)
    with app.test_request_context("/staff/help"):
        page = render_template("staff/help.html", guide=guide)
    assert 'href="#import-format"' in page
    assert 'id="import-format"' in page
    assert '<article class="guide" lang="en">' in page
    # The nested contents list closes what it opens.
    contents = page[page.index('<nav class="guide-contents"') : page.index("</nav>")]
    assert contents.count("<ul") == contents.count("</ul>")
    assert contents.count("<li") == contents.count("</li>")
