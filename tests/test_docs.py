"""The docs stay findable: a short README, links that lead somewhere, every setting written down."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from clinic_finder.config import config_from_environment
from clinic_finder.guides import github_slug

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
CONFIGURATION = ROOT / "docs" / "configuration.md"
MAX_README_BYTES = 10 * 1024

# Where each section of the README went when the README became a front door (issue 15).
MOVED_README_SECTIONS = {
    "Finding a clinic": "docs/features.md#finding-a-clinic",
    "Complaints: deep links from the articles": "docs/features.md#complaints-and-deep-links",
    "How the search works": "docs/development.md#how-the-search-works",
    "JSON API": "docs/api.md#search-clinics",
    "Languages": "docs/features.md#languages",
    "Accessibility": "docs/features.md#accessibility",
    "Clinic pages": "docs/features.md#clinic-pages",
    "Embedding the finder": "docs/features.md#embedding-the-finder",
    "Contact requests and referrals": "docs/staff-guide.md#contact-requests",
    "Contact requests: the patient's side": "docs/features.md#the-contact-form",
    "Contact requests: the JSON post": "docs/api.md#contact-requests",
    "Referrals": "docs/staff-guide.md#referrals",
    "Privacy": "docs/staff-guide.md#privacy-requests",
    "Staff area": "docs/staff-guide.md#the-staff-area",
    "Sign-in and sessions": "docs/staff-guide.md#signing-in",
    "Operator commands": "docs/deploy.md#operator-commands",
    "Import format": "docs/staff-guide.md#import-format",
    "Geocoding": "docs/staff-guide.md#geocoding",
    "Configuration": "docs/configuration.md#settings",
    "Running in production": "docs/deploy.md#running-in-production",
    "Health checks": "docs/deploy.md#health-checks",
    "Robustness and security tests": "docs/development.md#robustness-and-security-tests",
    "Development": "docs/development.md#everyday-commands",
    "Dependencies and why": "docs/development.md#dependencies-and-why",
}

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"``.*?``|`[^`\n]*`")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> Iterator[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    fence = None
    for line in text.splitlines():
        match = _FENCE.match(line)
        if match and (fence is None or match.group(1) == fence):
            fence = match.group(1) if fence is None else None
            continue
        if fence is None:
            yield line


def anchors(path: Path) -> list[str]:
    """The #anchors of a Markdown file's headings, as GitHub makes them."""
    found = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if match:
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(2))
            found.append(github_slug(text))
    return found


def links(path: Path) -> list[str]:
    """The targets of a Markdown file's links, leaving out code."""
    return [
        target
        for line in prose_lines(path.read_text(encoding="utf-8"))
        for target in _LINK.findall(_INLINE_CODE.sub("", line))
    ]


def broken_link(source: Path, target: str) -> str | None:
    """Why a relative link from ``source`` leads nowhere, or None when it leads somewhere."""
    if _SCHEME.match(target):
        return None  # http:, https:, mailto: — not ours to check offline
    path_part, _, anchor = target.partition("#")
    destination = (source.parent / path_part).resolve() if path_part else source
    if not destination.is_relative_to(ROOT):
        return f"{target} leaves the repository"
    if not destination.exists():
        return f"{target}: no such file"
    if anchor:
        if destination.suffix != ".md":
            return f"{target}: an anchor into a file that is not Markdown"
        if anchor not in anchors(destination):
            return f"{target}: no heading with the anchor #{anchor}"
    return None


# --- the README ---------------------------------------------------------------------------


def test_readme_fits_in_10_kb():
    assert README.stat().st_size <= MAX_README_BYTES


def test_readme_starts_with_the_two_commands():
    first_lines = README.read_text(encoding="utf-8").splitlines()[:15]
    commands = [line for line in first_lines if line.startswith(("make run", "make test"))]
    assert [line.split()[1] for line in commands] == ["run", "test"]
    first_section = next(
        (i for i, line in enumerate(first_lines) if line.startswith("## ")), len(first_lines)
    )
    assert first_lines.index(commands[0]) < first_section


def test_readme_credits_erik_bolstads_postcode_register_and_openstreetmap():
    text = README.read_text(encoding="utf-8")
    assert "Erik Bolstad" in text
    assert "https://www.erikbolstad.no/postnummer/" in text
    assert "CC BY 3.0" in text
    assert "OpenStreetMap" in text


def test_readme_links_to_every_doc():
    targets = {target.partition("#")[0] for target in links(README)}
    assert {f"docs/{doc.name}" for doc in DOCS} <= targets


# --- links and anchors --------------------------------------------------------------------


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda path: path.name)
def test_every_relative_link_leads_to_a_file_and_heading(doc):
    problems = [problem for target in links(doc) if (problem := broken_link(doc, target))]
    assert problems == []


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda path: path.name)
def test_headings_have_unique_anchors(doc):
    # GitHub numbers a repeated anchor "-1", Python-Markdown "_1": only unique ones agree.
    found = anchors(doc)
    assert sorted({a for a in found if found.count(a) > 1}) == []


@pytest.mark.parametrize("section", sorted(MOVED_README_SECTIONS))
def test_every_section_the_readme_had_is_findable_in_docs(section):
    assert broken_link(README, MOVED_README_SECTIONS[section]) is None


def test_the_link_checker_notices_a_missing_file_and_a_missing_heading():
    assert broken_link(README, "docs/nowhere.md") is not None
    assert broken_link(README, "docs/staff-guide.md#no-such-section") is not None
    assert broken_link(README, "docs/staff-guide.md#import-format") is None


def test_github_slugs():
    assert github_slug("Import format") == "import-format"
    assert github_slug("Complaints: deep links") == "complaints-deep-links"
    assert github_slug("A deploy, step by step") == "a-deploy-step-by-step"
    assert github_slug("Columns — the list") == "columns--the-list"
    assert github_slug("`make test` and CI") == "make-test-and-ci"
    assert github_slug("Språk og «tegn»") == "språk-og-tegn"


# --- configuration ------------------------------------------------------------------------


class RecordingEnviron(Mapping):
    """An environment that remembers every variable asked for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return self.values[name]

    def __iter__(self):
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def variables_config_reads() -> set[str]:
    """Every environment variable config_from_environment asks for, in both environments."""
    asked: set[str] = set()
    for values in ({}, {"APP_ENV": "production"}):
        environ = RecordingEnviron(values)
        config_from_environment(environ)
        asked |= environ.asked
    # If config.py stopped asking the mapping (say, it copied os.environ), this test would
    # see nothing and pass: make sure it still sees the settings everyone knows.
    assert {"APP_ENV", "SECRET_KEY", "DATABASE_URL", "PUBLIC_BASE_URL"} <= asked
    return asked


def variables_gunicorn_reads() -> set[str]:
    text = (ROOT / "gunicorn.conf.py").read_text(encoding="utf-8")
    found = set(re.findall(r"environ\.get\(\s*\"([A-Z0-9_]+)\"", text))
    assert "GUNICORN_WORKERS" in found
    return found


def documented_names() -> set[str]:
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", CONFIGURATION.read_text(encoding="utf-8")))


def settings_table_names() -> set[str]:
    """The variables named in the first column of configuration.md's Settings table."""
    names: set[str] = set()
    in_settings = False
    for line in CONFIGURATION.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            in_settings = line == "## Settings"
        elif in_settings and line.startswith("|"):
            first_cell = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


@pytest.mark.parametrize("name", sorted(variables_config_reads() | variables_gunicorn_reads()))
def test_every_environment_variable_is_in_the_settings_table(name):
    assert name in settings_table_names(), f"add {name} to docs/configuration.md"


@pytest.mark.parametrize("key", sorted(config_from_environment({})))
def test_every_config_key_is_in_configuration_md(key):
    # Keys read from a variable of another name say so ("config key `…`"); keys no variable
    # sets are in the "Fixed in code" table.
    assert key in documented_names(), f"add {key} to docs/configuration.md"


def test_the_settings_table_names_only_variables_that_are_read():
    read = variables_config_reads() | variables_gunicorn_reads()
    assert settings_table_names() - read == set()
